"""Sampling trajectories of many tasks at once from the batched navigation env.

T tasks with N episodes each run as T * N environments of one
:class:`~metarl_course.tasks.navigation.BatchedNavigationEnv` (env ``i * N + j``
is episode ``j`` of task ``i``), and each task's policy has its own parameters:
one batched forward pass per time step picks the actions of every episode.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from metarl_course.adaptation import Params, batched_forward
from metarl_course.rl.policies import gaussian_log_prob, split_output
from metarl_course.rl.returns import discounted_returns, linear_baseline, normalize_per_task
from metarl_course.tasks.navigation import BatchedNavigationEnv, NavigationTask


@dataclass(frozen=True)
class Episodes:
    """N episodes of H steps for each of T tasks (all tensors batch-first).

    Attributes:
        obs: (T, N, H, obs_dim) observations the actions were chosen from.
        actions: (T, N, H, act_dim) actions as sampled, in the policy's units (the env receives
            ``policy.action_scale`` times them, and clips them).
        rewards: (T, N, H)
        log_probs: (T, N, H) log-probability of each action under the sampling policy.
        outputs: (T, N, H, 2 * act_dim) the sampling policy's mean and log-std (for KL terms).
        alive: (T, N, H) True while the episode is running (False after it reached the goal).
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    log_probs: torch.Tensor
    outputs: torch.Tensor
    alive: torch.Tensor

    @property
    def num_steps(self) -> int:
        """Environment steps these episodes took (steps after an episode reached its goal are not counted)."""
        return int(self.alive.sum().item())

    @property
    def episode_returns(self) -> torch.Tensor:
        """Undiscounted return of every episode: (T, N)."""
        return self.rewards.sum(dim=-1)

    def advantages(self, gamma: float = 0.99, normalize: bool = True) -> torch.Tensor:
        """Discounted returns minus each task's linear baseline: (T, N, H), 0 after an episode ended."""
        returns = discounted_returns(self.rewards, gamma)
        advantages = returns - linear_baseline(self.obs, returns)
        if normalize:
            return normalize_per_task(advantages, self.alive)
        return torch.where(self.alive, advantages, torch.zeros_like(advantages))

    def select(self, tasks: slice | torch.Tensor) -> "Episodes":
        """The episodes of some of the tasks (indexing the first dim)."""
        return Episodes(**{f.name: getattr(self, f.name)[tasks] for f in fields(self)})

    def flat(self, name: str) -> torch.Tensor:
        """A field with the episode and time dims merged: (T, N * H, ...)."""
        value = getattr(self, name)
        return value.reshape(value.shape[0], -1, *value.shape[3:])


def expand_params(params: Params, num_tasks: int) -> Params:
    """Shared parameters -> one (identical) copy per task, without copying memory."""
    return {k: v.expand(num_tasks, *v.shape) for k, v in params.items()}


@torch.no_grad()
def sample_episodes(policy: nn.Module, task_params: Params, tasks: list[NavigationTask], num_episodes: int,
                    generator: torch.Generator, horizon: int = 100, deterministic: bool = False) -> Episodes:
    """Run ``num_episodes`` episodes of every task, each task with its own policy parameters.

    Args:
        task_params: the policy's parameters with a leading ``len(tasks)`` dim.
        generator: the source of the action noise (same generator state, same episodes).
        deterministic: take the mean action (for pictures), not a sample.
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1 (trajectories per task), got {num_episodes}")
    T, N = len(tasks), num_episodes
    device = next(iter(task_params.values())).device
    env = BatchedNavigationEnv([task for task in tasks for _ in range(N)], horizon=horizon, device=device)
    scale = float(getattr(policy, "action_scale", 1.0))  # policy units -> the env's units
    obs, _ = env.reset()
    columns: dict[str, list[torch.Tensor]] = {"obs": [], "actions": [], "rewards": [], "log_probs": [], "outputs": [],
                                              "alive": []}
    alive = torch.ones(T, N, dtype=torch.bool, device=device)
    for _ in range(horizon):
        obs_t = obs.reshape(T, N, -1)
        out = batched_forward(policy, task_params, obs_t)  # (T, N, 2 * act_dim)
        mean, log_std = split_output(out)
        noise = torch.randn(mean.shape, generator=generator, device=device, dtype=mean.dtype)
        actions = mean if deterministic else mean + torch.exp(log_std) * noise
        if not torch.isfinite(actions).all():
            raise FloatingPointError("the policy produced non-finite actions; the policy has diverged "
                                     "(try smaller step sizes)")
        obs, rewards, terminated, _, _ = env.step(scale * actions.reshape(T * N, -1))
        for name, value in (("obs", obs_t), ("actions", actions), ("rewards", rewards.reshape(T, N)),
                            ("log_probs", gaussian_log_prob(out, actions)), ("outputs", out), ("alive", alive)):
            columns[name].append(value)
        alive = alive & ~terminated.reshape(T, N)
    return Episodes(**{name: torch.stack(values, dim=2) for name, values in columns.items()})
