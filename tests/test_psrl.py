"""PSRL and the other tabular-MDP baselines: backward induction, the posterior, scores on RL²'s held-out trials."""

from __future__ import annotations

import numpy as np
import pytest

from metarl_course.rl.psrl import PSRL, evaluate_mdp_baseline, finite_horizon_policy, play_mdp_baseline
from metarl_course.tasks.tabular_mdp import BatchedTabularMDPEnv, TabularMDPDistribution, TabularMDPTask


def test_backward_induction_by_hand():
    # state 0: action 0 pays 1 and stays; action 1 pays 0 and moves to state 1, where everything pays 5.
    # One step left: take the 1 now. Two steps left: move first (0 + 5 > 1 + 1).
    transitions = np.zeros((1, 2, 2, 2))
    transitions[0, 0, 0, 0] = transitions[0, 0, 1, 1] = transitions[0, 1, :, 1] = 1.0
    rewards = np.array([[[1.0, 0.0], [5.0, 5.0]]])
    actions = finite_horizon_policy(transitions, rewards, horizon=2)
    assert actions.shape == (2, 1, 2)
    assert actions[1, 0, 0] == 0 and actions[0, 0, 0] == 1


def test_posterior_concentrates_on_what_was_seen():
    prior = TabularMDPDistribution(num_states=2, num_actions=2)
    psrl = PSRL(1, prior, np.random.default_rng(0))
    for _ in range(2000):  # (s=0, a=1) always pays 3 and leads to state 1
        psrl.update(np.array([0]), np.array([1]), np.array([3.0]), np.array([1]))
    transitions, rewards = psrl.sample_mdp()
    assert abs(rewards[0, 0, 1] - 3.0) < 0.1 and transitions[0, 0, 1, 1] > 0.99
    # an unvisited pair keeps the prior: mean reward ~ N(1, 1), no sharper
    samples = np.array([psrl.sample_mdp()[1][0, 1, 0] for _ in range(400)])
    assert abs(samples.mean() - 1.0) < 0.2 and 0.8 < samples.std() < 1.2


@pytest.fixture(scope="module")
def baselines():
    return {name: evaluate_mdp_baseline(name, num_trials=300) for name in ("random", "psrl", "oracle")}


def test_psrl_learns_within_the_trial_and_starts_like_random(baselines):
    random, psrl, oracle = baselines["random"], baselines["psrl"], baselines["oracle"]
    assert abs(random.mean - 100.0) < 4 * random.ci95, random.mean  # expected reward 1 per step
    # episode 1: PSRL knows nothing yet (its first MDP is a prior sample), so it plays about as well as random
    first = psrl.episode_returns[:, 0] - random.episode_returns[:, 0]
    assert abs(first.mean()) < 3 * first.std() / np.sqrt(len(first)) + 0.3, first.mean()
    # and it improves along the trial, ending well above random but below the informed optimum
    per_episode = psrl.episode_returns.mean(0)
    assert per_episode[-1] > per_episode[0] + 4, per_episode
    assert random.mean + 20 < psrl.mean < oracle.mean - 40, (random.mean, psrl.mean, oracle.mean)


def test_same_seed_same_trials():
    tasks = TabularMDPDistribution().sample(20, np.random.default_rng(3))
    env = BatchedTabularMDPEnv(tasks, episodes_per_trial=3, device="cpu")
    a, b = play_mdp_baseline("psrl", env, seed=5), play_mdp_baseline("psrl", env, seed=5)
    np.testing.assert_array_equal(a.trial_returns, b.trial_returns)


def test_bad_input():
    env = BatchedTabularMDPEnv([TabularMDPTask(transitions=[[[1.0], [1.0]]], reward_means=[[0.0, 1.0]])],
                               horizon=2, device="cpu")
    with pytest.raises(ValueError, match="choose one of"):
        play_mdp_baseline("ucb", env)
    with pytest.raises(TypeError, match="BatchedTabularMDPEnv"):
        play_mdp_baseline("psrl", object())
    with pytest.raises(ValueError, match="\\(B, S, A, S\\)"):
        finite_horizon_policy(np.ones((2, 2, 2)), np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match="num_envs must be a whole number >= 1"):
        PSRL(0, TabularMDPDistribution(), np.random.default_rng(0))
