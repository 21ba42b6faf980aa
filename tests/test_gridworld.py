"""GridNavi (VariBAD's gridworld) and its exact references.

The environment is checked twice (gymnasium and batched envs step for step,
and rules by hand); the references against an independent calculation
(Bayes-optimal 4.00 then 11.07 per episode, told-the-goal 11.07), against
plain dynamic programmes written here without the module's shortcuts, and
against the agents played in the env.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from metarl_course.rl.gridworld_bayes import (
    BayesOptimalGridNavi,
    bayes_optimal_agent,
    goal_posterior,
    monte_carlo_reference,
    play_reference,
    posterior_sampling_reference,
    reference_returns,
)
from metarl_course.tasks.gridworld import (
    START,
    BatchedGridNaviEnv,
    GridNaviDistribution,
    GridNaviEnv,
    GridNaviTask,
    move,
)

CPU = "cpu"
ROUNDING = 0.005  # the independent numbers are rounded to 2 decimals: |exact - rounded| <= 0.005
F32_STEP = float(np.float32(-0.1))


@lru_cache(maxsize=1)
def references():
    return reference_returns()


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- task distribution
def test_distribution_is_varibads_21_cells_and_splits():
    dist = GridNaviDistribution()
    cells = set(dist.goal_cells)
    assert len(cells) == 21 and cells.isdisjoint({(0, 0), (0, 1), (1, 0), (1, 1)})
    assert dist.out_of_distribution().goal_cells == ((0, 1), (1, 0), (1, 1))
    assert dist.sample(5, rng(3)) == dist.sample(5, rng(3)) != dist.sample(5, rng(4))
    goals = [t.goal for t in dist.sample(21_000, rng(0))]
    counts = np.array([goals.count(c) for c in dist.goal_cells])
    assert abs(counts - 1000).max() < 130  # uniform: each cell ~ Binomial(21000, 1/21), sd ~ 31
    train, test = dist.split(15, 6, rng(0))
    assert len(set(train)) == 15 and set(train).isdisjoint(test) and set(train) | set(test) == set(dist.all_tasks())
    with pytest.raises(ValueError, match="too few distinct tasks"):
        dist.split(20, 5, rng(0))
    custom = GridNaviDistribution(goals=[(4, 4), (2, 3), (4, 4)])
    assert custom.goal_cells == ((2, 3), (4, 4))  # sorted, duplicates dropped


# --------------------------------------------------------------------------- environments
def test_gym_and_batched_envs_agree_step_for_step():
    tasks = GridNaviDistribution().sample(32, rng(0))
    horizon, episodes = 15, 4
    actions = torch.randint(0, 5, (episodes * horizon, 32), generator=torch.Generator().manual_seed(0))
    batched = BatchedGridNaviEnv(tasks, horizon=horizon, episodes_per_trial=episodes, device=CPU)
    obs, _ = batched.reset(seed=0)
    batched_obs, batched_rewards = [obs], []
    for t in range(episodes * horizon):
        obs, rewards, terminated, truncated, info = batched.step(actions[t])
        assert not terminated.any() and bool(truncated.all()) == ((t + 1) % horizon == 0)
        batched_obs.append(info.get("final_obs", obs))
        batched_rewards.append(rewards)
        if "final_obs" in info and not info["trial_over"]:
            assert torch.equal(obs, torch.zeros(32, 2))  # back to the start, same goal
    assert sum(bool((r > 0).any()) for r in batched_rewards) > 0  # random play does reach some goals
    for i, task in enumerate(tasks):
        env = GridNaviEnv(task=task, horizon=horizon)
        for episode in range(episodes):
            obs, _ = env.reset(seed=0)
            np.testing.assert_array_equal(obs, np.zeros(2, np.float32))
            for k in range(horizon):
                t = episode * horizon + k
                obs, reward, terminated, truncated, _ = env.step(int(actions[t, i]))
                np.testing.assert_array_equal(obs, batched_obs[t + 1][i].numpy())
                assert reward == batched_rewards[t][i].item()  # bit for bit (float32 -0.1)
                assert not terminated and truncated == (k == horizon - 1)


@pytest.mark.filterwarnings("ignore:.*environment not having a spec")  # made directly, not via gymnasium.make
def test_rules_by_hand():
    """Walls block, 0 stays, +1 on the goal on every step spent there, -0.1 elsewhere, reset to (0, 0)."""
    env = GridNaviEnv(task=GridNaviTask(goal=(2, 1)))
    env.reset()
    steps = [(4, (0, 0)), (3, (0, 0)), (2, (1, 0)), (2, (2, 0)), (1, (2, 1)), (0, (2, 1)), (3, (2, 0))]
    rewards = []
    for action, cell in steps:
        obs, reward, *_ = env.step(action)
        assert tuple(obs.astype(int)) == cell == env.position
        rewards.append(reward)
    assert rewards == [F32_STEP] * 4 + [1.0, 1.0, F32_STEP]
    assert env.reset()[0].tolist() == [0.0, 0.0] and env.task.goal == (2, 1)  # the goal is kept
    assert move((4, 4), 1) == (4, 4) and move((4, 4), 2) == (4, 4)  # the far walls too
    check_env(GridNaviEnv(task_seed=3))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: GridNaviDistribution(num_cells=2), "too small for varibad's goal set.*num_cells >= 3"),
        (lambda: GridNaviDistribution(num_cells=1), "num_cells must be a whole number >= 2"),
        (lambda: GridNaviDistribution(goals=[(1, 6)]), r"outside the 5x5 grid.*num_cells >= 7"),
        (lambda: GridNaviDistribution(goals=[]), "goals is empty"),
        (lambda: GridNaviDistribution(goals=[(0, 0), (3, 3)]), "start cell"),
        (lambda: GridNaviTask(goal=(5, 0)), r"outside the 5x5 grid"),
        (lambda: GridNaviTask(goal=(3, 3), num_cells=3), r"outside the 3x3 grid.*num_cells >= 4"),
        (lambda: GridNaviTask(goal=(0, 0)), "cannot be the start cell"),
        (lambda: GridNaviTask(goal=(1.5, 2)), "two whole numbers"),
        (lambda: GridNaviTask(goal=(1, 2, 3)), "two whole numbers"),
        (lambda: GridNaviDistribution().check_task(GridNaviTask(goal=(1, 1))), "not one of the distribution's"),
        (lambda: GridNaviDistribution(num_cells=3, goals=[(x, y) for x in range(3) for y in range(3) if x + y])
         .out_of_distribution(), "no out-of-distribution goal is left"),
        (lambda: GridNaviEnv(horizon=0), "horizon must be a whole number >= 1"),
        (lambda: BatchedGridNaviEnv(GridNaviDistribution().all_tasks(), horizon=0, device=CPU), "horizon"),
        (lambda: BatchedGridNaviEnv(GridNaviDistribution().all_tasks(), episodes_per_trial=0, device=CPU),
         "episodes_per_trial must be a whole number >= 1"),
        (lambda: BatchedGridNaviEnv([GridNaviTask((2, 2)), GridNaviTask((2, 2), num_cells=4)], device=CPU),
         "same grid size"),
        (lambda: BayesOptimalGridNavi(horizon=0), "horizon must be"),
        (lambda: BayesOptimalGridNavi(episodes=0), "episodes must be"),
        (lambda: BayesOptimalGridNavi().value(candidates=[(0, 1)]), "not one of the prior's goal cells"),
        (lambda: BayesOptimalGridNavi().value(candidates=[(2, 0), (3, 0)], position=(2, 0), step=2), "stands on"),
        (lambda: BayesOptimalGridNavi().value(position=(1, 0)), "starts on"),
        (lambda: BayesOptimalGridNavi().value(episode=4), r"episode must be in \[0, 3\]"),
        (lambda: goal_posterior([(2, 0)], [1.0, -0.1]), "shape"),
        (lambda: goal_posterior([(2, 7)], [-0.1]), "cells of the 5x5 grid"),
        (lambda: goal_posterior([(2, 0), (3, 0)], [1.0, 1.0]), "impossible"),
        (lambda: goal_posterior([(1, 1)], [1.0]), "impossible"),
        (lambda: goal_posterior([(2, 0)], [-0.1], GridNaviDistribution(goals=[(2, 0)])), "rules out every goal"),
        (lambda: play_reference("greedy", BatchedGridNaviEnv([GridNaviTask((2, 2))], device=CPU)), "unknown"),
    ],
)
def test_bad_input_raises_value_errors_naming_the_fix(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_actions_and_tasks():
    env = GridNaviEnv()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    env.reset()
    for action in (5, -1, 1.0, True):
        with pytest.raises(ValueError, match="action"):
            env.step(action)
    with pytest.raises(ValueError, match="make a new env"):
        env.set_task(GridNaviTask(goal=(2, 2), num_cells=4))
    with pytest.raises(TypeError, match="GridNaviTask"):
        env.set_task((3, 3))
    batched = BatchedGridNaviEnv(GridNaviDistribution().sample(3, rng()), device=CPU)
    batched.reset()
    for actions in (torch.full((3,), 5), torch.zeros(3), torch.zeros(2, dtype=torch.long)):
        with pytest.raises(ValueError, match="actions"):
            batched.step(actions)


# --------------------------------------------------------------------------- the exact references
def test_exact_values_agree_with_the_independent_calculation():
    """Bayes-optimal 4.00, 11.07, 11.07, 11.07 (37.21); told the goal 11.07 per episode (44.29)."""
    refs = references()
    bayes, oracle = refs["bayes_optimal"], refs["oracle"]
    assert bayes.exact and oracle.exact
    np.testing.assert_allclose(bayes.episode_returns, [4.00, 11.07, 11.07, 11.07], atol=ROUNDING)
    np.testing.assert_allclose(oracle.episode_returns, [11.07] * 4, atol=ROUNDING)
    assert abs(bayes.trial_return - 37.21) <= ROUNDING and abs(oracle.trial_return - 44.29) <= ROUNDING
    # as exact fractions: the goals lie 2..8 steps away (2, 4, 5, 4, 3, 2, 1 cells), mean 32/7
    assert bayes_optimal_agent().episode_returns_exact() == (Fraction(4), *[Fraction(155, 14)] * 3)


def test_references_are_ordered():
    refs = references()
    bayes, oracle = refs["bayes_optimal"].episode_returns, refs["oracle"].episode_returns
    ps, rand = refs["posterior_sampling"].episode_returns, refs["random"].episode_returns
    assert all(o >= b - 1e-12 for o, b in zip(oracle, bayes))
    assert all(b >= p for b, p in zip(bayes, ps)) and refs["bayes_optimal"].trial_return >= sum(ps)
    assert all(p > r for p, r in zip(ps, rand)) and sum(ps) > sum(rand)
    assert list(ps) == sorted(ps)  # posterior sampling improves from episode to episode


def oracle_return(goal, n, horizon):
    cell, total = START, 0.0
    for _ in range(horizon):
        cell = move(cell, 2 if cell[0] < goal[0] else 1 if cell[1] < goal[1] else 0, n)
        total += 1.0 if cell == goal else -0.1
    return total


def brute_force_bayes_value(dist, horizon, episodes):
    """The belief MDP solved plainly: all 5 actions (stays, walls) at every step, belief = candidate set."""
    n = dist.num_cells

    @lru_cache(maxsize=None)
    def value(pos, candidates, e, t):
        if t == horizon:
            return 0.0 if e + 1 == episodes else value(START, candidates, e + 1, 0)
        best = -np.inf
        for a in range(5):
            nxt = move(pos, a, n)
            if nxt in candidates:  # found with probability 1 / |candidates|: stay on it, then walk straight to it
                p = 1 / len(candidates)
                found = 1.0 + (horizon - t - 1) + (episodes - e - 1) * oracle_return(nxt, n, horizon)
                rest = -0.1 + value(nxt, candidates - {nxt}, e, t + 1) if len(candidates) > 1 else 0.0
                best = max(best, p * found + (1 - p) * rest)
            else:
                best = max(best, -0.1 + value(nxt, candidates, e, t + 1))
        return best

    return value(START, frozenset(dist.goal_cells), 0, 0)


@pytest.mark.parametrize(
    "dist, horizon, episodes",
    [
        (GridNaviDistribution(num_cells=4), 6, 2),
        (GridNaviDistribution(num_cells=4), 5, 3),
        (GridNaviDistribution(num_cells=3), 4, 3),
        (GridNaviDistribution(goals=((4, 0), (0, 4), (2, 2), (3, 3), (1, 4))), 9, 3),
    ],
)
def test_bayes_optimal_search_equals_plain_dynamic_programming(dist, horizon, episodes):
    agent = BayesOptimalGridNavi(dist, horizon, episodes)
    expected = brute_force_bayes_value(dist, horizon, episodes)
    assert agent.value() == pytest.approx(expected, abs=1e-9)
    assert sum(agent.episode_returns()) == pytest.approx(expected, abs=1e-9)


def test_bayes_optimal_policy_in_the_env_and_from_midway_states():
    agent = bayes_optimal_agent()
    plan = agent.plan()
    env = BatchedGridNaviEnv(GridNaviDistribution().all_tasks(), device=CPU)  # every goal once: exact average
    for name in ("bayes_optimal", "oracle"):
        played = play_reference(name, env).episode_returns.mean(0)
        np.testing.assert_allclose(played, references()[name].episode_returns, atol=1e-5)  # float32 rewards
    # after k steps of the plan without finding the goal, the search from that state expects what the plan gets
    for k in (3, 8):
        cell, candidates = START, set(GridNaviDistribution().goal_cells)
        for a in plan[0][:k]:
            cell = move(cell, a)
            candidates.discard(cell)
        continuation = []
        for goal in candidates:  # the plan's return from step k + 1 on, if the goal is `goal`
            here, total, found = cell, 0.0, False
            for e, actions in enumerate(plan):
                if found:
                    total += oracle_return(goal, 5, 15)
                    continue
                here = here if e == 0 else START
                for a in actions[k:] if e == 0 else actions:
                    here = here if found else move(here, a)
                    found = found or here == goal
                    total += 1.0 if found else -0.1
            continuation.append(total)
        assert agent.value(candidates, cell, episode=0, step=k) == pytest.approx(np.mean(continuation), abs=1e-9)
        assert agent.action(candidates, cell, episode=0, step=k) in (1, 2, 3, 4)
    assert agent.action() == plan[0][0]
    assert agent.value(candidates=[(3, 1)], position=(3, 1), episode=3, step=10) == pytest.approx(5.0)  # on the goal
    assert agent.action(candidates=[(3, 1)], position=(3, 1), episode=3, step=10) == 0
    assert agent.action(candidates=[(3, 1)], position=(1, 0), episode=0, step=1) == 2


def posterior_sampling_by_recursion(dist, horizon, episodes):
    """Committed posterior sampling, by plain recursion over candidate sets (total per trial)."""
    n = dist.num_cells

    def walks(cell, goal):
        options = [c for c in (move(cell, 2, n), move(cell, 1, n), move(cell, 4, n), move(cell, 3, n))
                   if abs(c[0] - goal[0]) + abs(c[1] - goal[1]) < abs(cell[0] - goal[0]) + abs(cell[1] - goal[1])]
        if not options:
            return [(1.0, ())]
        return [(q / len(options), (c, *rest)) for c in options for q, rest in walks(c, goal)]

    @lru_cache(maxsize=None)
    def value(candidates, e):  # expected return from episode e on, goal uniform over candidates
        if e == episodes:
            return 0.0
        total = 0.0
        for sample in candidates:
            for q, cells in walks(START, sample):
                for goal in candidates:
                    step = next((s for s, c in enumerate(cells, 1) if c == goal), None)
                    if step is None:
                        ret = -0.1 * horizon + value(candidates - set(cells), e + 1)
                    else:
                        ret = -0.1 * (step - 1) + (horizon - step + 1) + (episodes - e - 1) * oracle_return(
                            goal, n, horizon)
                    total += q * ret / len(candidates) ** 2
        return total

    return value(frozenset(dist.goal_cells), 0)


def test_posterior_sampling_exact_and_played():
    two = posterior_sampling_reference(episodes=2)
    assert sum(two.episode_returns) == pytest.approx(posterior_sampling_by_recursion(GridNaviDistribution(), 15, 2))
    assert two.episode_returns == pytest.approx(references()["posterior_sampling"].episode_returns[:2])
    for name in ("posterior_sampling", "random"):
        estimate = monte_carlo_reference(name, num_trials=2000, seed=1)
        exact = np.array(references()[name].episode_returns)
        assert not estimate.exact
        assert np.all(np.abs(np.array(estimate.episode_returns) - exact) <= 2 * np.array(estimate.episode_ci95))
    resample = monte_carlo_reference("posterior_sampling", num_trials=1000, seed=2, within_episode="resample")
    assert resample.name == "posterior_sampling_resample"
    assert references()["posterior_sampling"].trial_return < resample.trial_return < references()[
        "bayes_optimal"].trial_return


# --------------------------------------------------------------------------- the posterior
def test_goal_posterior_is_uniform_over_the_cells_not_ruled_out():
    prior = goal_posterior(np.zeros((0, 2)), [])
    assert prior.sum() == pytest.approx(1.0) and np.count_nonzero(prior) == 21 and prior[0, 0] == 0
    env = BatchedGridNaviEnv([GridNaviTask(goal=(4, 4))], episodes_per_trial=2, device=CPU)
    env.reset()
    cells, rewards = [], []
    for a in [1, 1, 1, 2, 2, 0] + [0] * 9 + [2, 2, 2, 1]:  # episode 1 (15 steps), then 4 steps of episode 2
        obs, reward, _, _, info = env.step(torch.tensor([a]))
        cells.append(info.get("final_obs", obs)[0].tolist())
        rewards.append(reward.item())
    posterior = goal_posterior(torch.tensor(cells), torch.tensor(rewards))  # tensors and float32 rewards work
    visited = {tuple(map(int, c)) for c in cells}
    assert posterior.sum() == pytest.approx(1.0)
    assert all(posterior[c] == 0 for c in visited)
    alive = [c for c in GridNaviDistribution().goal_cells if c not in visited]
    assert len(alive) == 21 - 7 and all(posterior[c] == pytest.approx(1 / len(alive)) for c in alive)
    found = goal_posterior(cells + [[3, 2], [4, 2]], rewards + [-0.1, 1.0])
    assert found[4, 2] == 1.0 and found.sum() == 1.0
    # after the Bayes-optimal first episode without the goal, 7 candidates are left, on one monotone path
    cell, trail = START, []
    for a in bayes_optimal_agent().plan()[0]:
        cell = move(cell, a)
        trail.append(cell)
    left = goal_posterior(trail, [-0.1] * len(trail))
    assert sorted(zip(*np.nonzero(left))) == [(2, 0), (3, 0), (4, 0), (4, 1), (4, 2), (4, 3), (4, 4)]
