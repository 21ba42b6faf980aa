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
from dataclasses import asdict, dataclass
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from metarl_course.device import get_device
from metarl_course.evaluation import mean_ci
from metarl_course.rl.bandit_baselines import sample_arm_means
from metarl_course.rl.returns import gae
from metarl_course.seeding import categorical, cpu_generator, normal
from metarl_course.tasks.bandits import BanditDistribution, BanditTask, BatchedBanditEnv
from metarl_course.tasks.batched import BatchedEnv
from metarl_course.tasks.navigation import (
    GOAL_TOLERANCE,
    MAX_ACTION,
    BatchedNavigationEnv,
    NavigationDistribution,
    NavigationTask,
)
from metarl_course.tasks.tabular_mdp import BatchedTabularMDPEnv, TabularMDPDistribution
from metarl_course.training import ModelOptimizerState

TASKS = ("bandit", "tabular_mdp", "navigation")
MAX_ARMS, MAX_PULLS = 100, 1000
"""Bounds on k and n (Duan et al. use k <= 50, n <= 500); beyond them a trial no longer fits in memory and time."""
DEFAULT_HORIZON = {"bandit": 10, "tabular_mdp": 10, "navigation": 100}


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
    """Which task distribution: 'bandit' (Bernoulli arms U[0, 1]), 'tabular_mdp' (10 states, 5 actions)
    or 'navigation' (2D point, unseen goal U[-0.5, 0.5]^2)."""
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
    eval_seed: int = 12345
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
                     "num_minibatches", "num_eval_trials"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.anneal_iterations, int) or self.anneal_iterations < 0:
            raise ValueError(f"anneal_iterations must be an integer >= 0 (0: no annealing), "
                             f"got {self.anneal_iterations!r}")
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def schedule(self, iteration: int) -> float:
        """The factor (1 down to 0) on ``lr`` and ``entropy_coef`` for the update of ``iteration`` (0-based)."""
        if self.anneal_iterations == 0:
            return 1.0
        return max(0.0, 1.0 - iteration / self.anneal_iterations)



# ---------------------------------------------------------------------------
# The recurrent actor-critic
# ---------------------------------------------------------------------------


class RL2ActorCritic(nn.Module):
    """A GRU over (s_t, a_{t-1}, r_{t-1}, d_{t-1}) with a policy head and a value head.

    Discrete actions are fed back one-hot, continuous ones as the (clipped,
    rescaled to [-1, 1]) action itself. Discrete observations are one-hot.
    The GRU is time-major: inputs ``(T, B, input_size)``, hidden ``(1, B, H)``.

    The model remembers the setting it was built for (``setting``, part of its
    ``state_dict``): loading weights trained for another (n, k) raises a
    ValueError that says what to change.

    Example:
        >>> model = RL2ActorCritic(obs_dim=1, action_dim=5, discrete=True, hidden_size=8)
        >>> x = model.encode(torch.zeros(3, dtype=torch.long), torch.zeros(3, 5), torch.zeros(3), torch.zeros(3))
        >>> out, values, h = model(x[None], model.initial_hidden(3))
        >>> out.shape, values.shape, h.shape
        (torch.Size([1, 3, 5]), torch.Size([1, 3]), torch.Size([1, 3, 8]))
    """

    def __init__(self, obs_dim: int, action_dim: int, discrete: bool, hidden_size: int = 128,
                 obs_is_index: bool = True, setting: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.obs_dim, self.action_dim, self.discrete, self.obs_is_index = obs_dim, action_dim, discrete, obs_is_index
        self.setting = dict(setting or {})
        self.input_size = obs_dim + action_dim + 2  # s_t, a_{t-1}, r_{t-1}, d_{t-1}
        self.gru = nn.GRU(self.input_size, hidden_size)
        self.policy_head = nn.Linear(hidden_size, action_dim)
        self.value_head = nn.Linear(hidden_size, 1)
        nn.init.orthogonal_(self.policy_head.weight, gain=0.01)  # a near-uniform first policy (CleanRL)
        nn.init.zeros_(self.policy_head.bias)
        if not discrete:
            self.log_std = nn.Parameter(torch.zeros(action_dim))

    @property
    def hidden_size(self) -> int:
        return self.gru.hidden_size

    @property
    def device(self) -> torch.device:
        return self.value_head.weight.device

    def initial_hidden(self, batch_size: int) -> torch.Tensor:
        """Zeros ``(1, batch_size, H)`` on the model's device: the state at the start of a trial."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        return torch.zeros(1, batch_size, self.hidden_size, device=self.device)

    def action_features(self, actions: torch.Tensor) -> torch.Tensor:
        """How an action is fed back at the next step: (B,) long -> one-hot (B, A); (B, A) float -> clipped."""
        if self.discrete:
            return F.one_hot(actions.long(), self.action_dim).float()
        return actions.clamp(-1.0, 1.0)

    def encode(self, obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
               prev_done: torch.Tensor) -> torch.Tensor:
        """The GRU's input (B, input_size) = [s_t, a_{t-1}, r_{t-1}, d_{t-1}].

        Args:
            obs: (B,) long state indices, or (B, obs_dim) floats.
            prev_action: (B, action_dim) from :meth:`action_features` (zeros at the start of a trial).
            prev_reward: (B,) the reward of the previous step (0 at the start of a trial).
            prev_done: (B,) 1.0 if the previous step ended an episode, else 0.0.
        """
        obs_features = F.one_hot(obs.long(), self.obs_dim).float() if self.obs_is_index else obs.float()
        if prev_action.shape != (obs.shape[0], self.action_dim):
            raise ValueError(f"prev_action must be (B, {self.action_dim}) = action_features(a_(t-1)), "
                             f"got {tuple(prev_action.shape)}")
        return torch.cat([obs_features, prev_action.float(), prev_reward.float()[:, None],
                          prev_done.float()[:, None]], dim=1)

    def forward(self, inputs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the GRU over a sequence in one call (cuDNN/MKL fused on long sequences).

        Args:
            inputs: (T, B, input_size) encoded steps.
            hidden: (1, B, H) the state before the first of them.

        Returns:
            ``(policy_out, values, hidden)``: logits or action means (T, B, A), values (T, B), state (1, B, H).
        """
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(f"inputs must be (T, B, {self.input_size}), got {tuple(inputs.shape)}")
        if hidden.shape != (1, inputs.shape[1], self.hidden_size):
            raise ValueError(f"hidden must be (1, {inputs.shape[1]}, {self.hidden_size}) for a batch of "
                             f"{inputs.shape[1]} trials, got {tuple(hidden.shape)}; "
                             f"make it with model.initial_hidden({inputs.shape[1]})")
        features, hidden = self.gru(inputs, hidden)  # (T, B, H)
        return self.policy_head(features), self.value_head(features).squeeze(-1), hidden

    def distribution(self, policy_out: torch.Tensor) -> torch.distributions.Distribution:
        """Categorical over logits, or a diagonal Gaussian (state-independent std) over actions."""
        if self.discrete:
            return torch.distributions.Categorical(logits=policy_out)
        return torch.distributions.Independent(torch.distributions.Normal(policy_out, self.log_std.exp()), 1)

    def sample(self, policy_out: torch.Tensor, generator: torch.Generator | None, greedy: bool = False
               ) -> torch.Tensor:
        """An action per row of ``policy_out`` (B, A) from an explicit generator; ``greedy``: the mode."""
        if self.discrete:
            if greedy:
                return policy_out.argmax(-1)
            return categorical(policy_out.softmax(-1), generator)
        if greedy:
            return policy_out
        noise = normal(policy_out.shape, generator, policy_out.device)
        return policy_out + self.log_std.exp() * noise

    def get_extra_state(self) -> dict[str, Any]:
        return {"setting": dict(self.setting)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        theirs = state.get("setting", {}) if isinstance(state, dict) else {}
        if theirs != self.setting:
            diff = {k: (theirs.get(k), self.setting.get(k)) for k in sorted(set(theirs) | set(self.setting))
                    if theirs.get(k) != self.setting.get(k)}
            wrong = ", ".join(f"{k}={a!r} (this model: {b!r})" for k, (a, b) in diff.items())
            raise ValueError(f"these weights were trained for {wrong}; build the model for the checkpoint's "
                             f"setting (e.g. RL2Config.bandit(num_pulls=..., num_arms=...)) or load the "
                             f"checkpoint trained for this one")


def build_model(config: RL2Config, seed: int = 0, device: torch.device | str | None = None) -> RL2ActorCritic:
    """The actor-critic for ``config.task``, initialised from ``seed``, on ``device`` (default: the course's)."""
    torch.manual_seed(seed)
    if config.task == "bandit":
        dims = dict(obs_dim=1, action_dim=config.num_arms, discrete=True)
    elif config.task == "tabular_mdp":
        dims = dict(obs_dim=TabularMDPDistribution().num_states, action_dim=TabularMDPDistribution().num_actions,
                    discrete=True)
    else:
        dims = dict(obs_dim=2, action_dim=2, discrete=False, obs_is_index=False)
    model = RL2ActorCritic(hidden_size=config.hidden_size, setting=config.setting(), **dims)
    return model.to(device if device is not None else get_device())


def task_distribution(config: RL2Config):
    """p(T) of ``config.task``, with the papers' parameters."""
    if config.task == "bandit":
        return BanditDistribution(num_arms=config.num_arms)
    if config.task == "tabular_mdp":
        return TabularMDPDistribution()
    return NavigationDistribution()


def make_env(config: RL2Config, tasks, device: torch.device | str | None = None) -> BatchedEnv:
    """A batched env stepping ``tasks`` in trials of ``config.episodes_per_trial`` episodes."""
    env_type = {"bandit": BatchedBanditEnv, "tabular_mdp": BatchedTabularMDPEnv,
                "navigation": BatchedNavigationEnv}[config.task]
    extra = {"goal_tolerance": config.goal_tolerance} if config.task == "navigation" else {}
    return env_type(tasks, horizon=config.horizon, episodes_per_trial=config.episodes_per_trial, device=device,
                    **extra)


# ---------------------------------------------------------------------------
# Rollouts: one trial of every task, step by step
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
        return self.rewards.numel()

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
class TrialEvaluation:
    """Scores of a policy on held-out trials."""

    trial_returns: np.ndarray
    """(num_trials,) total reward of each trial."""
    episode_returns: np.ndarray
    """(num_trials, episodes_per_trial) total reward of each episode."""

    @property
    def mean(self) -> float:
        return float(self.trial_returns.mean())

    @property
    def ci95(self) -> float:
        """Half-width of the 95% confidence interval of the mean (Student's t)."""
        return float(mean_ci(self.trial_returns)[1])


class RL2Learner(ModelOptimizerState):
    """RL² for :func:`metarl_course.training.train`: an iteration is one trial of each of ``num_trials`` tasks.

    * ``sample_tasks``: ``num_trials`` tasks from p(T) and a seed for the trial's random numbers;
    * ``adapt``: play one trial of each task: the adaptation *is* the GRU's hidden state evolving;
    * ``evaluate``: the meta-objective, minus the mean trial return;
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
        """Environment steps of one iteration: ``num_trials * trial_length``."""
        return self.config.num_trials * self.config.trial_length

    def sample_tasks(self, rng: np.random.Generator):
        return self.distribution.sample(self.config.num_trials, rng), int(rng.integers(2**31 - 1))

    def adapt(self, tasks) -> Trials:
        tasks, seed = tasks
        self.env.set_tasks(tasks)
        self.generator.manual_seed(seed)
        self.minibatch_generator.manual_seed(seed)
        trials = rollout(self.model, self.env, self.generator, seed=seed)
        self.env_steps += trials.num_steps
        return trials

    def evaluate(self, tasks, adapted: Trials) -> tuple[torch.Tensor, dict[str, float]]:
        returns = adapted.trial_returns()
        metrics = {"charts/trial_return": returns.mean().item(), "charts/env_steps": float(self.env_steps)}
        if self.config.episodes_per_trial > 1:
            episodes = adapted.episode_returns().mean(0)
            metrics.update({"charts/episode1_return": episodes[0].item(), "charts/episode2_return": episodes[1].item()})
        return -returns.mean(), metrics

    def meta_update(self, tasks, adapted: Trials, meta_loss: torch.Tensor) -> dict[str, float]:
        metrics = ppo_update(self.model, self.optimizer, adapted, self.config, self.minibatch_generator,
                             iteration=self.updates)
        self.updates += 1
        return metrics

    def heldout_env(self, num_trials: int | None = None) -> BatchedEnv:
        """A batched env over the fixed held-out tasks (drawn from ``config.eval_seed``)."""
        n = num_trials or self.config.num_eval_trials
        if self._heldout_env is None or self._heldout_env.num_envs != n:
            tasks = self.distribution.sample(n, np.random.default_rng(self.config.eval_seed))
            self._heldout_env = make_env(self.config, tasks, self.device)
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


def evaluate_on_baseline_tasks(model: RL2ActorCritic, num_pulls: int, num_arms: int, num_trials: int = 1000,
                               seed: int = 0, greedy: bool = False) -> TrialEvaluation:
    """RL² on exactly the bandits that ``evaluate_bandit_policy(..., seed=seed)`` gives the baselines.

    The arm means are the same (common random numbers), so the difference
    between RL² and a baseline is measured with less noise than either score.
    """
    setting = {"task": "bandit", "num_arms": num_arms, "horizon": num_pulls, "episodes_per_trial": 1}
    if model.setting != setting:
        raise ValueError(f"the model was trained for {model.setting}, not n={num_pulls}, k={num_arms}; "
                         "load the checkpoint of that setting")
    generator = cpu_generator(int(seed))
    arm_means = sample_arm_means(num_trials, num_arms, generator).cpu().numpy()  # as the baselines draw them
    env = BatchedBanditEnv([BanditTask(arm_probs=tuple(p)) for p in arm_means], horizon=num_pulls, seed=seed,
                           device=model.device)
    trials = rollout(model, env, generator, seed=seed, greedy=greedy)
    return TrialEvaluation(trials.trial_returns().cpu().double().numpy(),
                           trials.episode_returns().cpu().double().numpy())


def navigation_goal_returns(model: RL2ActorCritic, goals: Sequence[NavigationTask], trials_per_goal: int = 20,
                            goal_tolerance: float | None = GOAL_TOLERANCE, seed: int = 0,
                            greedy: bool = False) -> np.ndarray:
    """Returns of an RL² navigation agent on given goals, episode by episode: ``(num_goals, episodes_per_trial)``.

    Each goal is played for ``trials_per_goal`` trials of the model's ``episodes_per_trial`` episodes of
    ``horizon`` steps (from the model's setting), with the hidden state reset once per trial; entry
    ``[g, e]`` is the mean undiscounted return of episode ``e`` over those trials. The env is the one
    MAML-RL is evaluated in (:func:`metarl_course.rl.maml_rl.adaptation_returns`): reward minus the
    distance to the goal, and with the default ``goal_tolerance`` (0.01, the env's default) an episode
    ends when the agent is within 0.01 of the goal in both coordinates. Pass the tolerance the agent was
    trained with (``RL2Config.goal_tolerance``) to score it in its own setting.

    Example:
        >>> from metarl_course.rl.maml_rl import heldout_goals
        >>> returns = navigation_goal_returns(learner.model, heldout_goals())  # doctest: +SKIP
        >>> returns.shape  # doctest: +SKIP
        (40, 2)
    """
    if model.setting.get("task") != "navigation":
        raise ValueError(f"the model was trained for {model.setting}, not navigation; load an RL² navigation "
                         "checkpoint, e.g. load_result('rl2-nav-2ep')[0].model")
    goals = list(goals)
    if not goals or not all(isinstance(g, NavigationTask) for g in goals):
        raise TypeError("goals must be a non-empty list of NavigationTask, e.g. maml_rl.heldout_goals()")
    if not isinstance(trials_per_goal, int) or trials_per_goal < 1:
        raise ValueError(f"trials_per_goal must be a positive integer, got {trials_per_goal!r}")
    horizon, episodes = model.setting["horizon"], model.setting["episodes_per_trial"]
    env = BatchedNavigationEnv([g for g in goals for _ in range(trials_per_goal)], horizon=horizon,
                               episodes_per_trial=episodes, device=model.device, goal_tolerance=goal_tolerance)
    generator = cpu_generator(int(seed))
    trials = rollout(model, env, generator, seed=seed, greedy=greedy)
    per_trial = trials.episode_returns().cpu().double().numpy()  # (goals * trials_per_goal, episodes)
    return per_trial.reshape(len(goals), trials_per_goal, episodes).mean(1)
