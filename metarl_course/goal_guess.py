"""The smallest meta-RL experiment: meta-learning where to look for the goal in 2D navigation.

The policy has two parameters, ``theta``: a guess of where the goal is. It
steers towards the guess, ``mean action = 0.1 * tanh((theta - position) / 0.1)``,
with Gaussian exploration noise. The goal is hidden (the observation is the
position), so on a new task the agent must improve its guess from rewards:

* **inner loop (adaptation):** a few REINFORCE steps (Williams 1992) on
  ``theta``, from ``rollouts_per_task`` episodes of the task;
* **outer loop (meta-learning):** Reptile (Nichol et al. 2018) moves the
  shared starting guess ``theta0`` towards the adapted guesses of a batch of
  tasks: ``theta0 += meta_lr * mean_i(theta_i' - theta0)``.

What can ``theta0`` learn? Only what the tasks of p(T) share: where goals
tend to be. That makes the effect of the task distribution easy to see
(chapter 03): a narrow p(T) gives a confident guess that is excellent on
tasks like those and poor elsewhere; a wide one gives a cautious guess.

Everything runs in the batched navigation env, one tensor operation for all
tasks x rollouts at each step, on ``metarl_course.device.get_device()``.

Why its own small REINFORCE (:func:`rollouts`, :func:`normalized_advantages`,
:func:`reinforce_gradient`) rather than the MAML-RL pieces of
:mod:`metarl_course.rl`? This is a one-screen teaching example with a
two-number policy and a fixed exploration noise, and its numbers (chapter 03's
table and assertions) are pinned. The package's pieces compute the same
quantities in another floating-point order, so they would move those numbers
in the last digits: :func:`metarl_course.rl.returns.discounted_returns` sums
the reward-to-go in a loop (here: ``flip().cumsum().flip()``, gamma = 1),
:func:`metarl_course.rl.policies.gaussian_log_prob` scales by ``exp(-log_std)``
and adds constants (here: the log-density up to a constant, divided by
``2 std^2``), and :func:`metarl_course.rl.returns.normalize_per_task` also
subtracts the mean. The baseline differs in kind: a per-step mean over the
task's rollouts here, a fitted linear baseline in MAML-RL.

References:
    Finn et al. 2017, "Model-Agnostic Meta-Learning..." (the task, section 5.3).
    Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms" (Reptile).
    Williams 1992, "Simple statistical gradient-following algorithms..." (REINFORCE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from metarl_course.device import get_device
from metarl_course.seeding import cpu_generator, normal
from metarl_course.tasks.distribution import check_count
from metarl_course.tasks.navigation import MAX_ACTION, BatchedNavigationEnv, NavigationDistribution, NavigationTask
from metarl_course.training import History, train


HELDOUT_NOISE_SEED = 2017
"""Seeds the exploration noise of :meth:`GoalGuessLearner.evaluate_heldout`: every evaluation plays the same noise."""


@dataclass(frozen=True)
class GoalGuessConfig:
    """Hyperparameters of the goal-guess learner (REINFORCE inside, Reptile outside)."""

    inner_lr: float = 1e-3
    """REINFORCE step size on theta (the gradient of a return sum over 100 steps is large, ~200)."""
    inner_steps: int = 1
    """Adaptation steps per task during meta-training."""
    rollouts_per_task: int = 20
    """Episodes per task and adaptation step (Finn et al. 2017 use 20)."""
    tasks_per_batch: int = 20
    """Tasks per Reptile meta-update."""
    meta_lr: float = 0.2
    """Reptile's step size: the fraction of the way theta0 moves towards the adapted guesses."""
    action_std: float = 0.05
    """Standard deviation of the Gaussian exploration noise on actions."""
    horizon: int = 100
    """Steps per episode (Finn et al. 2017)."""

    def __post_init__(self) -> None:
        for name in ("inner_lr", "meta_lr", "action_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("inner_steps", "rollouts_per_task", "tasks_per_batch", "horizon"):
            check_count(name, getattr(self, name))


def policy_mean(theta: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """Mean action: head for the guess at up to 0.1 per axis. theta, obs: ``(N, 2)`` -> ``(N, 2)``."""
    return MAX_ACTION * torch.tanh((theta - obs) / MAX_ACTION)


def rollouts(
    theta_rep: torch.Tensor, tasks: Sequence[NavigationTask], config: GoalGuessConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Play one episode per row of ``theta_rep``: ``rollouts_per_task`` rows for each task, task by task.

    Args:
        theta_rep: ``(num_tasks * rollouts_per_task, 2)`` guesses, each task's repeated ``rollouts_per_task`` times.
        tasks: the ``num_tasks`` tasks.
        config: hyperparameters; generator: the source of the exploration noise.

    Returns:
        ``(log_probs, rewards)``, each ``(horizon, num_tasks, rollouts_per_task)``; the log-probabilities of
        the actions taken (up to a constant), differentiable with respect to ``theta_rep``.
    """
    num_tasks, m = len(tasks), config.rollouts_per_task
    env = BatchedNavigationEnv(
        [task for task in tasks for _ in range(m)], horizon=config.horizon, device=theta_rep.device
    )
    obs, _ = env.reset()
    log_probs, rewards = [], []
    for _ in range(config.horizon):
        mean = policy_mean(theta_rep, obs)
        noise = normal(mean.shape, generator, mean.device)
        action = (mean + config.action_std * noise).detach()
        log_probs.append(-((action - mean) ** 2).sum(-1) / (2 * config.action_std**2))  # up to a constant
        obs, reward, *_ = env.step(action)
        rewards.append(reward)
    shape = (config.horizon, num_tasks, m)
    return torch.stack(log_probs).view(shape), torch.stack(rewards).view(shape)


def normalized_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """Reward-to-go minus the task's mean at that step, scaled to unit std per task.

    Args:
        rewards: ``(horizon, num_tasks, rollouts)``.

    Returns:
        ``(horizon, num_tasks, rollouts)`` advantages.
    """
    to_go = rewards.flip(0).cumsum(0).flip(0)  # reward-to-go, (T, tasks, rollouts)
    advantage = to_go - to_go.mean(dim=2, keepdim=True)  # baseline: the task's mean at that step
    return advantage / (advantage.std(dim=(0, 2), keepdim=True) + 1e-8)  # critical: same scale per task


def reinforce_gradient(
    theta: torch.Tensor, tasks: Sequence[NavigationTask], config: GoalGuessConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One REINFORCE estimate per task, from ``rollouts_per_task`` episodes of each task.

    Args:
        theta: ``(num_tasks, 2)`` goal guesses, one per task.
        tasks: the ``num_tasks`` tasks.
        config: hyperparameters; generator: the source of the exploration noise.

    Returns:
        ``(gradient, returns)``: gradient of the expected return w.r.t. theta,
        ``(num_tasks, 2)``, and the mean episode return of theta on each task, ``(num_tasks,)``.
    """
    num_tasks, m = len(tasks), config.rollouts_per_task
    theta_rep = theta.detach().repeat_interleave(m, dim=0).requires_grad_(True)  # (num_tasks * m, 2)
    log_probs, rewards = rollouts(theta_rep, tasks, config, generator)  # (T, tasks, rollouts) each
    objective = (log_probs * normalized_advantages(rewards)).sum(0).mean(1).sum()  # tasks are independent: sum
    (grad,) = torch.autograd.grad(objective, theta_rep)
    return grad.view(num_tasks, m, 2).sum(1), rewards.sum(0).mean(1)


def adapt_guess(
    theta0: torch.Tensor,
    tasks: Sequence[NavigationTask],
    config: GoalGuessConfig,
    num_steps: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adapt the guess ``theta0`` (shape ``(2,)``) to every task with ``num_steps`` REINFORCE steps.

    (Named apart from :func:`metarl_course.adaptation.adapt`, the gradient-descent inner loop of MAML on
    networks: this one adapts a two-number guess from rewards.)

    Returns:
        ``(thetas, returns)``: ``(num_steps + 1, num_tasks, 2)`` guesses after 0..num_steps
        steps, and ``(num_steps + 1, num_tasks)`` mean episode returns of those guesses.
    """
    theta = theta0.detach().expand(len(tasks), 2).clone()
    thetas, returns = [theta], []
    for step in range(num_steps + 1):
        grad, mean_return = reinforce_gradient(theta, tasks, config, generator)
        returns.append(mean_return)
        if step < num_steps:
            theta = theta + config.inner_lr * grad
            thetas.append(theta)
    return torch.stack(thetas), torch.stack(returns)


class GoalGuessLearner:
    """The goal-guess learner in the course's meta-training loop (:func:`metarl_course.training.train`).

    sample tasks (``tasks_per_batch`` of the fixed meta-training tasks) -> adapt (REINFORCE on
    each task's copy of the guess) -> evaluate (returns before and after) -> meta-update (Reptile).
    The state is the guess ``theta`` ``(2,)`` and the exploration-noise generator.
    """

    def __init__(self, train_tasks: Sequence[NavigationTask], config: GoalGuessConfig = GoalGuessConfig(),
                 seed: int = 0, theta0: Sequence[float] = (-0.8, 0.8),
                 heldout_tasks: Sequence[NavigationTask] = ()) -> None:
        self.train_tasks = list(train_tasks)
        check_count("len(train_tasks)", len(self.train_tasks))
        self.config = config
        self.heldout_tasks = list(heldout_tasks)
        self.theta = torch.tensor(theta0, dtype=torch.float32, device=get_device())
        self.generator = cpu_generator(seed)

    def sample_tasks(self, rng: np.random.Generator) -> list[NavigationTask]:
        few = len(self.train_tasks) < self.config.tasks_per_batch  # with replacement only if there are fewer
        chosen = rng.choice(len(self.train_tasks), size=self.config.tasks_per_batch, replace=few)
        return [self.train_tasks[i] for i in chosen]

    def adapt(self, tasks: list[NavigationTask]) -> tuple[torch.Tensor, torch.Tensor]:
        return adapt_guess(self.theta, tasks, self.config, self.config.inner_steps, self.generator)

    def evaluate(self, tasks: list[NavigationTask], adapted: tuple[torch.Tensor, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        returns = adapted[1]  # (inner_steps + 1, tasks)
        after = returns[-1].mean()
        return -after, {"meta/return_before": returns[0].mean().item(), "meta/return_after": after.item()}

    def meta_update(self, tasks: list[NavigationTask], adapted: tuple[torch.Tensor, torch.Tensor],
                    meta_loss: torch.Tensor) -> dict[str, float]:
        thetas = adapted[0]  # (inner_steps + 1, tasks, 2)
        self.theta = self.theta + self.config.meta_lr * (thetas[-1].mean(0) - self.theta)  # Reptile
        return {"meta/theta0_x": self.theta[0].item(), "meta/theta0_y": self.theta[1].item()}

    def evaluate_heldout(self) -> dict[str, float]:
        """Mean return on the held-out tasks after 0 and ``inner_steps`` steps (nothing if none were given)."""
        if not self.heldout_tasks:
            return {}
        generator = cpu_generator(HELDOUT_NOISE_SEED)  # the same noise every time
        _, returns = adapt_guess(self.theta, self.heldout_tasks, self.config, self.config.inner_steps, generator)
        return {"eval/return_step0": returns[0].mean().item(), "eval/return_after": returns[-1].mean().item()}

    def state_dict(self) -> dict[str, Any]:
        return {"theta": self.theta.clone(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.theta = state["theta"].to(self.theta.device)
        self.generator.set_state(state["generator"])


def meta_train(
    train_tasks: Sequence[NavigationTask],
    config: GoalGuessConfig = GoalGuessConfig(),
    num_iterations: int = 300,
    seed: int = 0,
    theta0: Sequence[float] = (-0.8, 0.8),
) -> tuple[torch.Tensor, History]:
    """Meta-learn the starting guess on a fixed set of meta-training tasks with Reptile.

    Runs :class:`GoalGuessLearner` through the course's one loop, :func:`metarl_course.training.train`.

    Args:
        train_tasks: the meta-training tasks (e.g. the first part of ``distribution.split``);
            each iteration draws ``tasks_per_batch`` of them (with replacement only if there are fewer).
        config: hyperparameters; num_iterations: Reptile meta-updates.
        seed: seeds the choice of tasks (NumPy) and the exploration noise (torch).
        theta0: the starting guess before meta-training (far from every default goal,
            so that learning is visible).

    Returns:
        ``(theta0, history)``: the meta-learned guess ``(2,)`` and the :class:`~metarl_course.training.History`
        of ``"meta/theta0_x"``, ``"meta/theta0_y"``, ``"meta/return_before"``, ``"meta/return_after"``;
        ``history["meta/return_after"]`` is ``(iterations, values)``.

    Example:
        >>> tasks = NavigationDistribution(goal_low=0.2, goal_high=0.5).sample(40, np.random.default_rng(0))
        >>> theta0, history = meta_train(tasks, num_iterations=60)  # about 3 s on a laptop CPU
    """
    learner = GoalGuessLearner(train_tasks, config, seed, theta0)
    history = train(learner, num_iterations, seed=seed, progress=False, desc="goal guess")
    return learner.theta, history
