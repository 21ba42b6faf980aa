"""Collecting experience of many tasks at once from the batched envs: MAML-RL's episodes, RL²'s trials.

MAML-RL (:func:`sample_episodes`): T tasks with N episodes each run as T * N
environments of one :class:`~metarl_course.tasks.navigation.BatchedNavigationEnv`
(env ``i * N + j`` is episode ``j`` of task ``i``), and each task's policy has
its own parameters: one batched forward pass per time step picks the actions of
every episode.

RL² (:func:`rollout`): one trial (several episodes of the same task) of every
task of a batched env, the GRU's hidden state carried across the trial's
episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import nn

from metarl_course.adaptation import Params, batched_forward
from metarl_course.rl.policies import RL2ActorCritic, gaussian_log_prob, split_output
from metarl_course.rl.returns import discounted_returns, linear_baseline, normalize_per_task
from metarl_course.seeding import normal
from metarl_course.tasks.batched import BatchedEnv
from metarl_course.tasks.navigation import MAX_ACTION, BatchedNavigationEnv, NavigationTask


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

    @property
    def kept(self) -> torch.Tensor:
        """(T, N) bool: the episodes that count. :func:`sample_env_steps` drops each task's episodes beyond its
        step budget (they stay in the tensors, never alive); every episode from :func:`sample_episodes` counts."""
        return self.alive[..., 0]

    @property
    def task_returns(self) -> torch.Tensor:
        """Each task's average undiscounted return over the episodes that count: (T,)."""
        kept = self.kept.to(self.rewards.dtype)
        return (self.episode_returns * kept).sum(dim=1) / kept.sum(dim=1)

    def counted(self, real_steps_only: bool = False) -> torch.Tensor:
        """(T, N, H) bool: the steps that losses and the baseline fit average over.

        By default every step of the episodes that count (:attr:`kept`), the steps after an episode reached its
        goal included (the env holds the agent there with reward 0); with ``real_steps_only``, only the steps the
        episodes really took (:attr:`alive`), as Finn et al.'s and Rothfuss et al.'s samplers, which cut each
        path where it ends."""
        return self.alive if real_steps_only else self.kept[..., None].expand_as(self.alive)

    def step_weights(self, real_steps_only: bool = False) -> torch.Tensor:
        """(T, N, H): weights that make a plain mean over each task's N * H steps a mean over its
        :meth:`counted` steps (0 elsewhere), whatever their number."""
        counted = self.counted(real_steps_only)
        per_task = counted.flatten(1).sum(dim=1).clamp(min=1)  # (T,)
        return counted.to(self.rewards.dtype) * (counted[0].numel() / per_task)[:, None, None]

    def advantages(self, gamma: float = 0.99, normalize: bool = True, real_steps_only: bool = False) -> torch.Tensor:
        """Discounted returns minus each task's linear baseline: (T, N, H), 0 after an episode ended.

        The baseline is fitted on the :meth:`counted` steps."""
        returns = discounted_returns(self.rewards, gamma)
        advantages = returns - linear_baseline(self.obs, returns, mask=self.counted(real_steps_only))
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
        noise = normal(mean.shape, generator, device, mean.dtype)
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


def sample_env_steps(policy: nn.Module, task_params: Params, tasks: list[NavigationTask], min_steps: int,
                     chunk: int, generator: torch.Generator, horizon: int = 100, max_episodes: int = 400) -> Episodes:
    """Whole episodes until every task has taken at least ``min_steps`` environment steps.

    Finn et al.'s test script adapts on batches of a fixed number of environment steps (rllab's
    ``batch_size=4000``), so a policy whose episodes end early at the goal gets more of them. Episodes are
    sampled ``chunk`` per task at a time; each task keeps its episodes up to the one that reaches ``min_steps``
    (its :attr:`Episodes.kept`), the others are marked never alive with zero reward. At most ``max_episodes``
    per task are sampled (then a task keeps what it has).
    """
    if min_steps < 1 or chunk < 1:
        raise ValueError(f"min_steps and chunk must be >= 1, got {min_steps} and {chunk}")
    parts = [sample_episodes(policy, task_params, tasks, chunk, generator, horizon)]
    steps = parts[0].alive.sum(dim=(1, 2))  # (T,)
    sampled = chunk
    while (steps < min_steps).any() and sampled < max_episodes:
        # enough episodes in one go for the task that needs most, at its average episode length so far
        needed = ((min_steps - steps).clamp(min=0) * sampled / steps.clamp(min=1)).max().item()
        more = min(max(chunk, math.ceil(1.1 * needed)), max_episodes - sampled)
        parts.append(sample_episodes(policy, task_params, tasks, more, generator, horizon))
        steps, sampled = steps + parts[-1].alive.sum(dim=(1, 2)), sampled + more
    episodes = Episodes(**{f.name: torch.cat([getattr(p, f.name) for p in parts], dim=1) for f in fields(Episodes)})
    lengths = episodes.alive.sum(dim=-1)  # (T, N)
    keep = (lengths.cumsum(dim=1) - lengths) < min_steps  # started before the budget was used up
    alive = episodes.alive & keep[..., None]
    return Episodes(episodes.obs, episodes.actions, episodes.rewards * alive, episodes.log_probs, episodes.outputs,
                    alive)


# ---------------------------------------------------------------------------
# RL²: one trial of every task, step by step
# ---------------------------------------------------------------------------


@dataclass
class Trials:
    """One trial of each of B tasks, time-major (T = trial length)."""

    inputs: torch.Tensor
    """(T, B, input_size) what the GRU saw: s_t, a_{t-1}, r_{t-1}, d_{t-1}."""
    actions: torch.Tensor
    """(T, B) long, or (T, B, A) float: the sampled actions (in the policy's units)."""
    log_probs: torch.Tensor
    """(T, B) log pi(a_t | history) under the policy that acted."""
    values: torch.Tensor
    """(T, B) the critic's V(history_t)."""
    rewards: torch.Tensor
    """(T, B) rewards as the env paid them (unscaled)."""
    horizon: int
    """Steps per episode (episode boundaries are every ``horizon`` steps)."""
    active: torch.Tensor | None = None
    """(T, B) bool: False for steps after an episode ended early (navigation at its goal), where the env
    holds the agent still and the action changes nothing; None: every step counts."""

    @property
    def num_steps(self) -> int:
        """Environment steps the trials really took: the steps after an episode reached its goal (where the
        env holds the agent still) are not counted, as in :attr:`metarl_course.rl.sampling.Episodes.num_steps`."""
        return self.rewards.numel() if self.active is None else int(self.active.sum().item())

    def episode_returns(self) -> torch.Tensor:
        """(B, episodes_per_trial) total reward of each episode of each trial."""
        T, B = self.rewards.shape
        return self.rewards.T.reshape(B, T // self.horizon, self.horizon).sum(-1)

    def trial_returns(self) -> torch.Tensor:
        """(B,) total reward of each trial (the score of Duan et al.'s Table 1)."""
        return self.rewards.sum(0)


def env_action(model: RL2ActorCritic, actions: torch.Tensor) -> torch.Tensor:
    """The action the env gets: arm/action indices as they are; navigation velocities scaled to +-MAX_ACTION."""
    return actions if model.discrete else MAX_ACTION * actions


@torch.no_grad()
def rollout(model: RL2ActorCritic, env: BatchedEnv, generator: torch.Generator | None = None,
            seed: int | None = None, greedy: bool = False, reset_hidden_every_episode: bool = False) -> Trials:
    """Play one trial of every task of ``env`` (a new trial starts with ``env.reset``).

    The hidden state and the "previous" inputs start at zero once, at the start
    of the trial, and are carried across the episodes of the trial.
    ``reset_hidden_every_episode=True`` reproduces the tutorial's mistake:
    they are zeroed again at the start of every episode, so nothing learned in
    one episode reaches the next.

    Args:
        env: any env with the batched API (``reset``, ``step``, ``num_envs``, ``horizon``, ``trial_length``).
        generator: source of the action noise (None: torch's global generator).
        seed: passed to ``env.reset(seed=...)`` (None continues the env's stream).
        greedy: take the most likely action instead of sampling.
    """
    obs, _ = env.reset(seed=seed)
    B, T = env.num_envs, env.trial_length
    hidden = model.initial_hidden(B)
    prev_action = torch.zeros(B, model.action_dim, device=model.device)
    prev_reward = torch.zeros(B, device=model.device)
    prev_done = torch.zeros(B, device=model.device)
    inputs = torch.empty(T, B, model.input_size, device=model.device)
    log_probs, values, rewards = (torch.empty(T, B, device=model.device) for _ in range(3))
    actions = []
    active = torch.ones(T, B, dtype=torch.bool, device=model.device)
    ended = torch.zeros(B, dtype=torch.bool, device=model.device)  # the episode ended early (terminated)
    for t in range(T):
        if t % env.horizon == 0:
            ended = torch.zeros_like(ended)
        active[t] = ~ended
        if reset_hidden_every_episode and t % env.horizon == 0:  # the tutorial's bug, kept for the lesson
            hidden = model.initial_hidden(B)
            prev_action, prev_reward, prev_done = (torch.zeros_like(x) for x in (prev_action, prev_reward, prev_done))
        inputs[t] = model.encode(torch.as_tensor(obs, device=model.device), prev_action, prev_reward, prev_done)
        policy_out, value, hidden = model(inputs[t : t + 1], hidden)
        action = model.sample(policy_out[0], generator, greedy)
        log_probs[t] = model.distribution(policy_out[0]).log_prob(action)
        values[t] = value[0]
        obs, reward, terminated, truncated, _ = env.step(env_action(model, action))
        rewards[t] = torch.as_tensor(reward, device=model.device)
        actions.append(action)
        prev_action = model.action_features(action)
        prev_reward = rewards[t]
        prev_done = torch.as_tensor(terminated | truncated, device=model.device).float()
        ended = ended | torch.as_tensor(terminated, device=model.device)
    return Trials(inputs, torch.stack(actions), log_probs, values, rewards, env.horizon,
                  None if bool(active.all()) else active)
