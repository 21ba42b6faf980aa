"""Baselines for random tabular MDPs: posterior sampling for RL (PSRL), random play and the informed optimum.

PSRL (Osband, Russo, Van Roy 2013, "(More) Efficient Reinforcement Learning
via Posterior Sampling") keeps a posterior over the unknown MDP. At the start
of every episode it draws one MDP from the posterior, computes that MDP's
optimal policy for the episode's horizon by backward induction, and follows
it for the whole episode; then it adds the episode's transitions and rewards
to the posterior. Duan et al. (2016) use it as the reference learner for the
tabular MDPs of chapter 05 (their scores: :data:`metarl_course.papers.DUAN_2016_MDPS`).

The posterior here is exact for the course's task distribution
(:class:`~metarl_course.tasks.tabular_mdp.TabularMDPDistribution`): every
transition row has a flat Dirichlet prior, so its posterior is
Dirichlet(alpha + counts); every mean reward has the prior N(mu0, sigma0^2)
and the rewards have unit-variance Gaussian noise, so its posterior is normal
with precision ``1 / sigma0^2 + n`` and mean ``(mu0 / sigma0^2 + sum of
rewards) / precision``.

:func:`evaluate_mdp_baseline` plays exactly the held-out trials on which
:meth:`metarl_course.rl.rl2.RL2Learner.evaluate_heldout` scores RL² (the same
MDPs and the same random numbers of the env), so RL² and the baselines can be
compared trial by trial.

Example:
    >>> result = evaluate_mdp_baseline("psrl", num_trials=100)  # doctest: +SKIP
    >>> round(result.mean)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import torch

from metarl_course.evaluation import TrialEvaluation
from metarl_course.tasks.distribution import check_count
from metarl_course.tasks.heldout import RL2_HELDOUT_SEED
from metarl_course.tasks.tabular_mdp import BatchedTabularMDPEnv, TabularMDPDistribution, TabularMDPTask

MDP_BASELINES = ("random", "psrl", "oracle")
"""``random``: uniform actions; ``psrl``: posterior sampling; ``oracle``: the optimal policy of the true MDP
(it is told the transitions and mean rewards: an upper bound no learner reaches)."""


def finite_horizon_policy(transitions: np.ndarray, rewards: np.ndarray, horizon: int) -> np.ndarray:
    """Optimal actions of finite-horizon MDPs by backward induction.

    Args:
        transitions: ``(B, S, A, S)`` P(s' | s, a) of B MDPs.
        rewards: ``(B, S, A)`` mean rewards.
        horizon: steps per episode.

    Returns:
        ``(horizon, B, S)`` int: the action to take at step h of the episode in state s.
    """
    if transitions.ndim != 4 or rewards.shape != transitions.shape[:3]:
        raise ValueError(f"transitions must be (B, S, A, S) and rewards (B, S, A), got {transitions.shape} "
                         f"and {rewards.shape}")
    value = np.zeros(transitions.shape[:2])  # (B, S) value after the last step
    actions = np.empty((horizon, *transitions.shape[:2]), dtype=np.int64)
    for h in reversed(range(horizon)):
        q = rewards + np.einsum("bsat,bt->bsa", transitions, value)  # (B, S, A)
        actions[h] = q.argmax(-1)
        value = q.max(-1)
    return actions


class PSRL:
    """Posterior sampling for B tabular MDPs at once (one posterior per trial).

    Args:
        num_envs: B, trials played in parallel.
        prior: the task distribution whose parameters give the prior.
        rng: source of the posterior samples.
    """

    def __init__(self, num_envs: int, prior: TabularMDPDistribution, rng: np.random.Generator) -> None:
        check_count("num_envs", num_envs)
        self.prior, self.rng = prior, rng
        S, A = prior.num_states, prior.num_actions
        self.transition_counts = np.zeros((num_envs, S, A, S))
        self.reward_sums = np.zeros((num_envs, S, A))
        self.visits = np.zeros((num_envs, S, A))

    def sample_mdp(self) -> tuple[np.ndarray, np.ndarray]:
        """One MDP per trial from the posterior: transitions ``(B, S, A, S)``, mean rewards ``(B, S, A)``."""
        gammas = self.rng.gamma(self.prior.dirichlet_alpha + self.transition_counts)
        transitions = gammas / gammas.sum(-1, keepdims=True)
        prior_precision = 1.0 / self.prior.reward_std**2 if self.prior.reward_std > 0 else np.inf
        if np.isinf(prior_precision):  # the mean rewards are known exactly
            return transitions, np.full(self.visits.shape, self.prior.reward_mean)
        precision = prior_precision + self.visits  # unit-variance reward noise
        mean = (prior_precision * self.prior.reward_mean + self.reward_sums) / precision
        return transitions, mean + self.rng.standard_normal(mean.shape) / np.sqrt(precision)

    def update(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_states: np.ndarray) -> None:
        """Add one step of every trial, all ``(B,)``, to the posterior."""
        rows = np.arange(len(states))
        self.transition_counts[rows, states, actions, next_states] += 1
        self.reward_sums[rows, states, actions] += rewards
        self.visits[rows, states, actions] += 1


def play_mdp_baseline(name: str, env: BatchedTabularMDPEnv, seed: int = 0) -> TrialEvaluation:
    """Play one trial of every task of ``env`` with baseline ``name`` (one of :data:`MDP_BASELINES`).

    ``env.reset(seed=seed)`` fixes the env's random numbers (as :func:`metarl_course.rl.rl2.rollout` does with
    the same seed); ``seed`` also seeds the baseline's own randomness.
    """
    if name not in MDP_BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {MDP_BASELINES}")
    if not isinstance(env, BatchedTabularMDPEnv):
        raise TypeError(f"env must be a BatchedTabularMDPEnv, got {type(env).__name__}")
    # the baseline's own stream, never the one the tasks were drawn from: with the same seed, the first
    # posterior sample of PSRL would be the true MDP (numpy draws Dirichlets from the same gamma variates)
    rng = np.random.default_rng((int(seed), 1))
    tasks: tuple[TabularMDPTask, ...] = env.tasks
    B, S, A = env.num_envs, env.num_states, env.num_actions
    prior = TabularMDPDistribution(num_states=S, num_actions=A)
    psrl = PSRL(B, prior, rng)
    true_policy = None
    if name == "oracle":
        true_policy = finite_horizon_policy(np.stack([t.transition_array for t in tasks]),
                                            np.stack([t.reward_array for t in tasks]), env.horizon)
    obs, _ = env.reset(seed=seed)
    rows = np.arange(B)
    rewards = np.zeros((env.trial_length, B))
    policy = true_policy
    for t in range(env.trial_length):
        h = t % env.horizon
        states = obs.cpu().numpy()
        if name == "psrl" and h == 0:
            policy = finite_horizon_policy(*psrl.sample_mdp(), env.horizon)  # a new sample every episode
        if name == "random":
            actions = rng.integers(A, size=B)
        else:
            actions = policy[h, rows, states]
        obs, reward, _, _, info = env.step(torch.as_tensor(actions, device=env.device))
        next_states = info["final_obs"] if "final_obs" in info else obs
        rewards[t] = reward.cpu().numpy()
        psrl.update(states, actions, rewards[t], next_states.cpu().numpy())
    episodes = rewards.T.reshape(B, env.episodes_per_trial, env.horizon).sum(-1)
    return TrialEvaluation(rewards.sum(0), episodes)


def evaluate_mdp_baseline(name: str, num_trials: int = 1000, episodes_per_trial: int = 10, horizon: int = 10,
                          seed: int = RL2_HELDOUT_SEED) -> TrialEvaluation:
    """Baseline ``name`` on the held-out MDPs of RL²'s evaluation (``seed``: ``RL2Config.eval_seed``, by default
    :data:`~metarl_course.tasks.heldout.RL2_HELDOUT_SEED`).

    The MDPs are ``TabularMDPDistribution().sample(num_trials, np.random.default_rng(seed))`` and the env is
    reset with ``seed``, exactly as in :meth:`~metarl_course.rl.rl2.RL2Learner.evaluate_trials`.
    """
    tasks = TabularMDPDistribution().sample(num_trials, np.random.default_rng(seed))
    env = BatchedTabularMDPEnv(tasks, horizon=horizon, episodes_per_trial=episodes_per_trial, device="cpu")
    return play_mdp_baseline(name, env, seed=seed)


__all__ = ["MDP_BASELINES", "PSRL", "evaluate_mdp_baseline", "finite_horizon_policy", "play_mdp_baseline"]
