"""RL²: a recurrent network whose hidden state is the learning algorithm (Duan et al. 2016).

A *trial* is several episodes of one task (one bandit, one MDP, one goal).
The agent is a GRU that sees, at every step t, the observation s_t together
with what just happened: the previous action a_{t-1}, the previous reward
r_{t-1} and the previous done flag d_{t-1} (1 when step t starts a new
episode). Its hidden state is set to zeros once, at the start of the trial,
and carried across the trial's episodes: whatever the agent has learned about
the task (which arm pays, where the goal is) lives in that state. Training
(the "slow" RL) is ordinary policy-gradient RL on whole trials: the return of
a step includes the rewards of the later episodes of the same trial, so
exploring early is rewarded when it pays off later.

Mistakes of the tutorial fixed here (chapter 07 lists all its errata):
the hidden state is reset per *trial*, not per episode; the input holds the
*previous* action, reward and done flag, not the current action; and
:meth:`RL2ActorCritic.initial_hidden` creates the state on the model's device.

References:
    Duan, Schulman, Chen, Bartlett, Sutskever, Abbeel (2016), "RL²: Fast
    Reinforcement Learning via Slow Reinforcement Learning", arXiv:1611.02779.
    Wang, Kurth-Nelson, Tirumala, Soyer, Leibo, Munos, Blundell, Kumaran,
    Botvinick (2016), "Learning to reinforcement learn", arXiv:1611.05763.
    Schulman, Wolski, Dhariwal, Radford, Klimov (2017), "Proximal Policy
    Optimization Algorithms", arXiv:1707.06347.

Example:
    >>> learner = RL2Learner(RL2Config.bandit(num_pulls=10, num_arms=5, num_trials=64), device="cpu")
    >>> history = train(learner, num_iterations=3, progress=False)  # doctest: +SKIP
    >>> learner.evaluate_heldout()["eval/trial_return"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from metarl_course.device import get_device
from metarl_course.evaluation import TrialEvaluation
from metarl_course.rl.policies import RL2ActorCritic
from metarl_course.rl.returns import gae
from metarl_course.rl.sampling import Trials, rollout
from metarl_course.seeding import cpu_generator
from metarl_course.tasks.bandits import BanditDistribution, BatchedBanditEnv
from metarl_course.tasks.batched import BatchedEnv
from metarl_course.tasks.distribution import TaskDistribution, check_count
from metarl_course.tasks.gridworld import NUM_ACTIONS as NUM_GRID_ACTIONS
from metarl_course.tasks.gridworld import BatchedGridNaviEnv, GridNaviDistribution
from metarl_course.tasks.heldout import RL2_HELDOUT_SEED
from metarl_course.tasks.navigation import BatchedNavigationEnv, NavigationDistribution
from metarl_course.tasks.tabular_mdp import BatchedTabularMDPEnv, TabularMDPDistribution
from metarl_course.training import ModelOptimizerState

TASKS = ("bandit", "tabular_mdp", "navigation", "gridworld")
MAX_ARMS, MAX_PULLS = 100, 1000
"""Bounds on k and n (Duan et al. use k <= 50, n <= 500); beyond them a trial no longer fits in memory and time."""


@dataclass(frozen=True)
class RL2Config:
    """RL² trained by PPO with GAE over whole trials.

    Duan et al. (2016) train a GRU (256 units) with TRPO and GAE on trials of
    one task. We keep the GRU, GAE and trial-level returns, and use PPO's
    clipped objective (Schulman et al. 2017) with Adam, which needs no
    conjugate gradients; the sizes below are smaller than the paper's so that
    each experiment meta-trains in about ten minutes on one CPU thread. Every
    default was chosen by us for that budget (see each field); the
    experiments in :mod:`metarl_course.experiments` list the values they use.
    """

    task: str = "bandit"
    """Which task distribution: 'bandit' (Bernoulli arms U[0, 1]), 'tabular_mdp' (10 states, 5 actions),
    'navigation' (2D point, unseen goal U[-0.5, 0.5]^2) or 'gridworld' (VariBAD's 5x5 GridNavi, a hidden goal
    cell; horizon 15 and 4 episodes per trial as in Zintgraf et al. 2020)."""
    num_arms: int = 5
    """k, arms per bandit (bandit only; 2 <= k <= 100). Duan et al.: 5, 10, 50."""
    horizon: int = 10
    """Steps per episode. For bandits this is n, the pulls per trial (1 <= n <= 1000; Duan et al.: 10, 100, 500);
    tabular MDPs 10 and navigation 100 as in the papers."""
    episodes_per_trial: int = 1
    """Episodes of the same task per trial (bandits: 1; Duan et al.'s MDPs: 10 or 25)."""
    hidden_size: int = 64
    """GRU units (Duan et al.: 256). 64 trains ~3x faster than 128 on a CPU and learned faster per second here."""
    num_trials: int = 256
    """Trials (tasks) per iteration, all stepped together by the batched env (1024 learned slower per second)."""
    num_epochs: int = 4
    """PPO passes over each batch of trials (CleanRL's default)."""
    num_minibatches: int = 1
    """Minibatches per epoch; each holds whole trials, so the GRU always starts from the trial's first step."""
    lr: float = 3e-3
    """Adam's learning rate (3e-3 reached 6.5 on n=10, k=5 in 40 s, 1e-3 with 128 units 6.2 in 150 s)."""
    gamma: float = 0.99
    """Discount over the whole trial (the score is the undiscounted total; close to 1 keeps exploration worth it)."""
    gae_lambda: float = 0.95
    """GAE's lambda (CleanRL's default)."""
    clip: float = 0.2
    """PPO's ratio clip (Schulman et al. 2017)."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus (keeps the policy exploring while the critic learns)."""
    value_coef: float = 0.5
    """Weight of the critic's squared error in the loss."""
    max_grad_norm: float = 0.5
    """Gradients are clipped to this global norm (CleanRL's default)."""
    reward_scale: float = 0.1
    """Rewards are multiplied by this for the critic (returns of 10-100 become 1-10); scores are reported unscaled."""
    goal_tolerance: float | None = None
    """Navigation only: an episode ends when the agent is within this distance of the goal in both coordinates
    (the navigation env's default, 0.01, is what MAML-RL is trained and evaluated with); None: episodes always run
    the full horizon. Steps after the end of an episode (the env holds the agent still, reward 0) are left out
    of the policy's loss."""
    anneal_iterations: int = 0
    """Adam's learning rate and the entropy bonus decay linearly to 0 over this many iterations, then stay 0
    (0: both constant). CleanRL's PPO anneals its learning rate to 0 over the run by default; set this to the
    run's number of iterations to do the same."""
    num_eval_trials: int = 1000
    """Held-out trials for ``evaluate_heldout`` (the 95% CI is over these)."""
    eval_seed: int = RL2_HELDOUT_SEED
    """Seed of the held-out tasks and of the evaluation's random numbers (fixed: same seed, same numbers)."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task == "bandit":
            if not (isinstance(self.num_arms, int) and 2 <= self.num_arms <= MAX_ARMS):
                raise ValueError(f"k (num_arms) must be an integer in [2, {MAX_ARMS}], got {self.num_arms!r}")
            if not (isinstance(self.horizon, int) and 1 <= self.horizon <= MAX_PULLS):
                raise ValueError(f"n (num_pulls, the horizon) must be an integer in [1, {MAX_PULLS}], "
                                 f"got {self.horizon!r}")
            if self.episodes_per_trial != 1:
                raise ValueError("a bandit trial is one episode of n pulls: set episodes_per_trial=1 and "
                                 "horizon=n (e.g. RL2Config.bandit(num_pulls=100, num_arms=5))")
        for name in ("horizon", "episodes_per_trial", "hidden_size", "num_trials", "num_epochs",
                     "num_minibatches"):
            check_count(name, getattr(self, name))
        check_count("num_eval_trials (a confidence interval needs two)", self.num_eval_trials, minimum=2)
        check_count("eval_seed", self.eval_seed, minimum=0)
        check_count("anneal_iterations (0: no annealing)", self.anneal_iterations, minimum=0)
        if self.num_minibatches > self.num_trials:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) must be <= num_trials ({self.num_trials})")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.goal_tolerance is not None:
            if self.task != "navigation":
                raise ValueError(f"goal_tolerance is a navigation setting; leave it None for task={self.task!r}")
            if not (math.isfinite(self.goal_tolerance) and self.goal_tolerance >= 0):
                raise ValueError(f"goal_tolerance must be >= 0 or None, got {self.goal_tolerance!r}")
        for name in ("lr", "clip", "max_grad_norm", "reward_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")

    @classmethod
    def bandit(cls, num_pulls: int, num_arms: int, **overrides: Any) -> RL2Config:
        """Bernoulli bandits with k = ``num_arms`` arms and n = ``num_pulls`` pulls per trial."""
        return cls(task="bandit", num_arms=num_arms, horizon=num_pulls, episodes_per_trial=1, **overrides)

    @property
    def trial_length(self) -> int:
        """Steps per trial: ``episodes_per_trial * horizon``."""
        return self.episodes_per_trial * self.horizon

    def setting(self) -> dict[str, Any]:
        """What a trained policy is tied to: the task, (n, k) for bandits, the trial's shape."""
        out = {"task": self.task, "horizon": self.horizon, "episodes_per_trial": self.episodes_per_trial}
        if self.task == "bandit":
            out["num_arms"] = self.num_arms
        return out


    def schedule(self, iteration: int) -> float:
        """The factor (1 down to 0) on ``lr`` and ``entropy_coef`` for the update of ``iteration`` (0-based)."""
        if self.anneal_iterations == 0:
            return 1.0
        return max(0.0, 1.0 - iteration / self.anneal_iterations)


# ---------------------------------------------------------------------------
# The task families RL² is trained on: one table instead of a switch per function
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFamily:
    """How RL² meets one task family: its p(T), its batched env and the sizes of the model's inputs and outputs."""

    distribution: Callable[[RL2Config], TaskDistribution]
    """config -> p(T), with the papers' parameters."""
    env: Callable[..., BatchedEnv]
    """The batched env class: ``env(tasks, horizon=..., episodes_per_trial=..., device=..., **env_options)``."""
    model_sizes: Callable[[RL2Config], dict[str, Any]]
    """config -> the keyword arguments of :class:`RL2ActorCritic` that depend on the task."""
    env_options: Callable[[RL2Config], dict[str, Any]] = field(default=lambda config: {})
    """config -> extra keyword arguments of the env."""


_MDP = TabularMDPDistribution()
TASK_FAMILIES: dict[str, TaskFamily] = {
    "bandit": TaskFamily(
        distribution=lambda config: BanditDistribution(num_arms=config.num_arms),
        env=BatchedBanditEnv,
        model_sizes=lambda config: dict(obs_dim=1, action_dim=config.num_arms, discrete=True)),
    "tabular_mdp": TaskFamily(
        distribution=lambda config: TabularMDPDistribution(),
        env=BatchedTabularMDPEnv,
        model_sizes=lambda config: dict(obs_dim=_MDP.num_states, action_dim=_MDP.num_actions, discrete=True)),
    "navigation": TaskFamily(
        distribution=lambda config: NavigationDistribution(),
        env=BatchedNavigationEnv,
        model_sizes=lambda config: dict(obs_dim=2, action_dim=2, discrete=False, obs_is_index=False),
        env_options=lambda config: {"goal_tolerance": config.goal_tolerance}),
    "gridworld": TaskFamily(
        distribution=lambda config: GridNaviDistribution(),
        env=BatchedGridNaviEnv,
        model_sizes=lambda config: dict(obs_dim=2, action_dim=NUM_GRID_ACTIONS, discrete=True, obs_is_index=False)),
}
assert tuple(TASK_FAMILIES) == TASKS


def build_model(config: RL2Config, seed: int = 0, device: torch.device | str | None = None) -> RL2ActorCritic:
    """The actor-critic for ``config.task``, initialised from ``seed``, on ``device`` (default: the course's)."""
    torch.manual_seed(seed)
    model = RL2ActorCritic(hidden_size=config.hidden_size, setting=config.setting(),
                           **TASK_FAMILIES[config.task].model_sizes(config))
    return model.to(device if device is not None else get_device())


def task_distribution(config: RL2Config) -> TaskDistribution:
    """p(T) of ``config.task``, with the papers' parameters."""
    return TASK_FAMILIES[config.task].distribution(config)


def make_env(config: RL2Config, tasks: list, device: torch.device | str | None = None) -> BatchedEnv:
    """A batched env stepping ``tasks`` in trials of ``config.episodes_per_trial`` episodes."""
    family = TASK_FAMILIES[config.task]
    return family.env(tasks, horizon=config.horizon, episodes_per_trial=config.episodes_per_trial, device=device,
                      **family.env_options(config))


# ---------------------------------------------------------------------------
# PPO over whole trials
# ---------------------------------------------------------------------------


def trial_advantages(trials: Trials, config: RL2Config) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the whole trial (bootstrapping stops only at its end): advantages and value targets (T, B)."""
    T, B = trials.rewards.shape
    terminal = torch.zeros(T, B, dtype=torch.bool, device=trials.rewards.device)
    terminal[-1] = True
    return gae(trials.rewards * config.reward_scale, trials.values, torch.zeros(B, device=trials.rewards.device),
               terminal, config.gamma, config.gae_lambda)


def ppo_loss(model: RL2ActorCritic, trials: Trials, index: torch.Tensor, advantages: torch.Tensor,
             returns: torch.Tensor, config: RL2Config,
             entropy_coef: float | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped loss on the trials ``index`` (whole trials: one GRU call from the trial's start).

    ``entropy_coef`` overrides ``config.entropy_coef`` (the annealed value during training)."""
    policy_out, values, _ = model(trials.inputs[:, index], model.initial_hidden(len(index)))  # (T, b, A), (T, b)
    dist = model.distribution(policy_out)
    log_probs = dist.log_prob(trials.actions[:, index])
    log_ratio = log_probs - trials.log_probs[:, index]
    ratio = log_ratio.exp()
    adv = advantages[:, index]
    if trials.active is None:
        mean = torch.mean
    else:  # steps after an early end of the episode are no decisions: leave them out
        weight = trials.active[:, index].float()
        weight = weight / weight.sum().clamp(min=1.0)
        mean = lambda x: (x * weight).sum()  # noqa: E731
    policy_loss = -mean(torch.min(ratio * adv, ratio.clamp(1 - config.clip, 1 + config.clip) * adv))
    value_loss = 0.5 * (values - returns[:, index]).pow(2).mean()
    entropy = mean(dist.entropy())
    entropy_coef = config.entropy_coef if entropy_coef is None else entropy_coef
    loss = policy_loss + config.value_coef * value_loss - entropy_coef * entropy
    with torch.no_grad():
        approx_kl = mean((ratio - 1) - log_ratio)  # Schulman's low-variance KL estimate
    return loss, {"losses/policy": policy_loss.item(), "losses/value": value_loss.item(),
                  "losses/entropy": entropy.item(), "losses/approx_kl": approx_kl.item()}


def ppo_update(model: RL2ActorCritic, optimizer: torch.optim.Optimizer, trials: Trials, config: RL2Config,
               generator: torch.Generator | None = None, iteration: int = 0) -> dict[str, float]:
    """``num_epochs`` passes of PPO over the batch, in minibatches of whole trials; returns the last metrics.

    ``iteration`` (0-based) sets the annealed learning rate and entropy bonus (``config.schedule``)."""
    factor = config.schedule(iteration)
    for group in optimizer.param_groups:
        group["lr"] = config.lr * factor
    advantages, returns = trial_advantages(trials, config)
    counted = advantages if trials.active is None else advantages[trials.active]
    advantages = (advantages - counted.mean()) / (counted.std() + 1e-8)
    B = trials.rewards.shape[1]
    metrics: dict[str, float] = {}
    for _ in range(config.num_epochs):
        order = torch.randperm(B, generator=generator, device="cpu").to(trials.rewards.device)
        for index in order.chunk(config.num_minibatches):
            loss, metrics = ppo_loss(model, trials, index, advantages, returns, config,
                                     entropy_coef=config.entropy_coef * factor)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
    return metrics


# ---------------------------------------------------------------------------
# The meta-learner for metarl_course.training.train
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialBatch:
    """The tasks of one iteration (one trial each) and the seed of the trial's random numbers."""

    tasks: list
    seed: int


class RL2Learner(ModelOptimizerState):
    """RL² for :func:`metarl_course.training.train`: an iteration is one trial of each of ``num_trials`` tasks.

    * ``sample_tasks``: ``num_trials`` tasks from p(T) and a seed for the trial's random numbers;
    * ``adapt``: play one trial of each task: the adaptation *is* the GRU's hidden state evolving;
    * ``evaluate``: metrics of those trials (no meta-loss: PPO builds its own in ``meta_update``);
    * ``meta_update``: PPO epochs on those trials (the "slow" RL that trains the "fast" learner);
    * ``evaluate_heldout``: ``num_eval_trials`` fixed held-out tasks, mean trial return with a 95% CI.

    Every random number of an iteration comes from the ``rng`` given to
    ``sample_tasks``, so a resumed run reproduces an uninterrupted one.
    """

    def __init__(self, config: RL2Config, seed: int = 0, device: torch.device | str | None = None) -> None:
        self.config, self.device = config, torch.device(device) if device is not None else get_device()
        self.model = build_model(config, seed, self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.distribution = task_distribution(config)
        self.env = make_env(config, self.distribution.sample(config.num_trials, np.random.default_rng(seed)),
                            self.device)
        # both on the CPU whatever the device (metarl_course.seeding), both seeded per iteration in adapt
        self.generator = torch.Generator()  # action noise of the rollout
        self.minibatch_generator = torch.Generator()  # PPO's minibatch order
        self._heldout_env: BatchedEnv | None = None
        self._heldout_key: tuple[int, int] | None = None  # (trials, seed) the held-out env was built for
        self.env_steps = 0
        """Environment steps simulated for meta-training so far (logged as ``charts/env_steps``; resumed runs keep it)."""
        self.updates = 0
        """PPO updates done so far (the annealing schedule's clock; resumed runs keep it)."""

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "env_steps": self.env_steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.env_steps = int(state.get("env_steps", 0))
        self.updates = int(state.get("updates", self.env_steps // self.steps_per_iteration))

    @property
    def steps_per_iteration(self) -> int:
        """Steps one iteration simulates: ``num_trials * trial_length`` (``charts/env_steps`` counts fewer when
        navigation episodes end early at the goal)."""
        return self.config.num_trials * self.config.trial_length

    def sample_tasks(self, rng: np.random.Generator) -> TrialBatch:
        return TrialBatch(self.distribution.sample(self.config.num_trials, rng), int(rng.integers(2**31 - 1)))

    def adapt(self, batch: TrialBatch) -> Trials:
        self.env.set_tasks(batch.tasks)
        self.generator.manual_seed(batch.seed)
        self.minibatch_generator.manual_seed(batch.seed)
        trials = rollout(self.model, self.env, self.generator, seed=batch.seed)
        self.env_steps += trials.num_steps
        return trials

    def evaluate(self, batch: TrialBatch, adapted: Trials) -> tuple[None, dict[str, float]]:
        """Metrics of the trials just played; no meta-loss (PPO builds its own loss in ``meta_update``)."""
        metrics = {"charts/trial_return": adapted.trial_returns().mean().item(),
                   "charts/env_steps": float(self.env_steps)}
        if self.config.episodes_per_trial > 1:
            episodes = adapted.episode_returns().mean(0)
            metrics.update({"charts/episode1_return": episodes[0].item(), "charts/episode2_return": episodes[1].item()})
        return None, metrics

    def meta_update(self, batch: TrialBatch, adapted: Trials, meta_loss: None) -> dict[str, float]:
        metrics = ppo_update(self.model, self.optimizer, adapted, self.config, self.minibatch_generator,
                             iteration=self.updates)
        self.updates += 1
        return metrics

    def heldout_env(self, num_trials: int | None = None) -> BatchedEnv:
        """A batched env over the fixed held-out tasks (drawn from ``config.eval_seed``)."""
        n = num_trials or self.config.num_eval_trials
        if self._heldout_key != (n, self.config.eval_seed):
            tasks = self.distribution.sample(n, np.random.default_rng(self.config.eval_seed))
            self._heldout_env, self._heldout_key = make_env(self.config, tasks, self.device), (n, self.config.eval_seed)
        return self._heldout_env

    def evaluate_trials(self, num_trials: int | None = None, reset_hidden_every_episode: bool = False,
                        greedy: bool = False) -> tuple[TrialEvaluation, Trials]:
        """Play the held-out trials (same tasks and random numbers every call) and score them."""
        env = self.heldout_env(num_trials)
        generator = cpu_generator(self.config.eval_seed)
        trials = rollout(self.model, env, generator, seed=self.config.eval_seed, greedy=greedy,
                         reset_hidden_every_episode=reset_hidden_every_episode)
        result = TrialEvaluation(trials.trial_returns().cpu().double().numpy(),
                                 trials.episode_returns().cpu().double().numpy())
        return result, trials

    def evaluate_heldout(self) -> dict[str, float]:
        result, _ = self.evaluate_trials()
        metrics = {"eval/trial_return": result.mean, "eval/trial_return_ci95": result.ci95}
        if self.config.episodes_per_trial > 1:
            per_episode = result.episode_returns.mean(0)
            metrics.update({f"eval/episode{i + 1}_return": float(v) for i, v in enumerate(per_episode)})
            # the tutorial's mistake, measured on the same trials: hidden state zeroed every episode
            reset, _ = self.evaluate_trials(reset_hidden_every_episode=True)
            metrics.update({"eval/trial_return_reset_every_episode": reset.mean,
                            "eval/trial_return_reset_every_episode_ci95": reset.ci95})
        return metrics
