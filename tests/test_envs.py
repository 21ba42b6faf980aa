"""The course's task distributions and environments.

Each environment exists twice, as a gymnasium env and as a batched tensor
env; the central tests step both with the same tasks, seeds and actions and
require identical observations and rewards. For the random envs (bandits,
MDPs) the batched env returns the uniform/normal draws of its trial and the
test replays them into the gymnasium envs, so both consume the same numbers.
Other tests compare with closed forms and with the distributions' moments.
"""

from __future__ import annotations

import importlib

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import metarl_course.tasks as tasks_pkg
from metarl_course.tasks import (
    BanditDistribution,
    BanditTask,
    BatchedBanditEnv,
    BatchedNavigationEnv,
    BatchedTabularMDPEnv,
    BernoulliBanditEnv,
    Navigation2DEnv,
    NavigationDistribution,
    NavigationTask,
    TabularMDPDistribution,
    TabularMDPEnv,
    TabularMDPTask,
)
from metarl_course.tasks.gym_env import TaskEnv

CPU = "cpu"  # the batched envs take an explicit device in tests: results must not depend on METARL_DEVICE


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- distributions
@pytest.mark.parametrize(
    "distribution",
    [NavigationDistribution(), NavigationDistribution(dynamics_low=0.8, dynamics_high=1.2), BanditDistribution(),
     TabularMDPDistribution()],
)
def test_same_seed_same_tasks_and_split_is_disjoint(distribution):
    assert distribution.sample(5, rng(3)) == distribution.sample(5, rng(3))
    assert distribution.sample(5, rng(3)) != distribution.sample(5, rng(4))
    train, test = distribution.split(30, 20, rng(0))
    assert len(train) == 30 and len(test) == 20
    assert set(train).isdisjoint(test) and len(set(train)) == 30


def test_navigation_distribution_moments_and_out_of_distribution():
    tasks = NavigationDistribution(dynamics_low=0.8, dynamics_high=1.2).sample(20_000, rng(0))
    goals = np.array([t.goal for t in tasks])
    dyn = np.array([t.dynamics for t in tasks])
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    np.testing.assert_allclose(goals.mean(0), 0.0, atol=0.01)
    np.testing.assert_allclose(goals.var(0), 1 / 12, rtol=0.03)  # variance of U[-0.5, 0.5]
    assert 0.8 <= dyn.min() and dyn.max() <= 1.2 and abs(dyn.mean() - 1.0) < 0.005

    ood = NavigationDistribution().out_of_distribution().sample(5_000, rng(1))
    ood_goals = np.array([t.goal for t in ood])
    assert np.abs(ood_goals).max() <= 1.0  # inside the arena
    assert np.all(np.abs(ood_goals).max(1) > 0.5)  # never inside the training square
    # uniform over the ring: a quarter of the arena's area is excluded, so each quadrant holds ~1/4 of the goals
    assert abs(np.mean(ood_goals[:, 0] > 0) - 0.5) < 0.03

    corner = NavigationDistribution(goal_low=0.2, goal_high=0.5)
    ood_corner = np.array([t.goal for t in corner.out_of_distribution().sample(2_000, rng(2))])
    assert not np.any(np.all((ood_corner >= 0.2) & (ood_corner <= 0.5), axis=1))


def test_bandit_and_mdp_distributions_match_duan_et_al():
    probs = np.array([t.arm_probs for t in BanditDistribution(num_arms=5).sample(4_000, rng(0))])
    assert probs.shape == (4_000, 5) and probs.min() >= 0 and probs.max() <= 1
    assert abs(probs.mean() - 0.5) < 0.01 and abs(probs.var() - 1 / 12) < 0.003

    narrow = BanditDistribution(low=0.25, high=0.75)
    ood = np.array([t.arm_probs for t in narrow.out_of_distribution().sample(2_000, rng(1))])
    assert np.all((ood < 0.25) | (ood > 0.75))
    assert abs(np.mean(ood < 0.25) - 0.5) < 0.02  # both pieces equally likely (equal lengths)
    with pytest.raises(ValueError, match="narrower range"):
        BanditDistribution().out_of_distribution()

    mdps = TabularMDPDistribution().sample(500, rng(0))
    p = np.stack([t.transition_array for t in mdps])  # (500, 10, 5, 10)
    r = np.stack([t.reward_array for t in mdps])  # (500, 10, 5)
    assert p.shape == (500, 10, 5, 10) and r.shape == (500, 10, 5)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-12)
    # flat Dirichlet over 10 states: each entry ~ Beta(1, 9): mean 0.1, variance 9 / (100 * 11)
    assert abs(p.mean() - 0.1) < 1e-9 and abs(p.var() - 9 / 1100) < 3e-4
    assert abs(r.mean() - 1.0) < 0.02 and abs(r.std() - 1.0) < 0.02  # N(1, 1)
    sparse = TabularMDPDistribution().out_of_distribution().sample(200, rng(1))
    assert np.mean([t.transition_array.max(-1).mean() for t in sparse]) > 0.6  # nearly deterministic rows


# --------------------------------------------------------------------------- navigation
def test_navigation_gym_and_batched_agree_over_a_trial():
    tasks = NavigationDistribution(dynamics_low=0.5, dynamics_high=1.5).sample(16, rng(0))
    horizon, episodes = 7, 3
    actions = torch.randn(episodes * horizon, 16, 2, generator=torch.Generator().manual_seed(0)) * 0.2
    batched = BatchedNavigationEnv(tasks, horizon=horizon, episodes_per_trial=episodes, device=CPU)
    obs, _ = batched.reset(seed=0)
    batched_obs, batched_rewards = [obs], []
    for t in range(episodes * horizon):
        obs, rewards, terminated, truncated, info = batched.step(actions[t])
        batched_obs.append(info.get("final_obs", obs))
        batched_rewards.append(rewards)
    for i, task in enumerate(tasks):
        env = Navigation2DEnv(task=task, horizon=horizon)
        for episode in range(episodes):
            obs, _ = env.reset(seed=0)
            if episode == 0:
                np.testing.assert_array_equal(obs, batched_obs[0][i].numpy())
            for k in range(horizon):
                t = episode * horizon + k
                obs, reward, terminated, truncated, _ = env.step(actions[t, i].numpy())
                np.testing.assert_array_equal(obs, batched_obs[t + 1][i].numpy())  # bit for bit
                assert reward == batched_rewards[t][i].item()
                assert not terminated and truncated == (k == horizon - 1)


def test_navigation_matches_closed_form():
    """Constant action a for t steps: position = t * dynamics * clip(a), reward = -|position - goal|."""
    task = NavigationTask(goal=(0.3, -0.45), dynamics=0.7)
    env = Navigation2DEnv(task=task)
    env.reset()
    action = np.array([0.25, -0.04])  # the first coordinate is clipped to 0.1
    for t in range(1, 101):
        obs, reward, _, truncated, _ = env.step(action)
        expected = t * 0.7 * np.array([0.1, -0.04])
        np.testing.assert_allclose(obs, expected, rtol=1e-5, atol=1e-6)
        assert reward == pytest.approx(-np.linalg.norm(expected - task.goal), abs=1e-5)
    assert truncated  # the time limit the tutorial's version lacks


def test_navigation_perfect_controller_return_by_hand():
    """Step straight at the goal (0.25, 0.05): positions (0.1, 0.05), (0.2, 0.05), then the goal."""
    env = BatchedNavigationEnv([NavigationTask(goal=(0.25, 0.05))], device=CPU)
    obs, _ = env.reset(seed=0)
    rewards = []
    for _ in range(100):
        obs, reward, *_ = env.step(env.goals - obs)  # the env clips each axis to 0.1
        rewards.append(reward.item())
    assert rewards[:2] == pytest.approx([-0.15, -0.05], abs=1e-6)
    assert sum(rewards) == pytest.approx(-0.2, abs=1e-5)
    # Finn et al. 2017's "oracle" (-2.29) is a *learned* policy that sees the goal; this hand-made
    # controller does better on average over U[-0.5, 0.5]^2 goals.
    env = BatchedNavigationEnv(NavigationDistribution().sample(1_000, rng(0)), device=CPU)
    obs, _ = env.reset(seed=0)
    total = torch.zeros(1_000)
    for _ in range(100):
        obs, reward, *_ = env.step(env.goals - obs)
        total += reward
    assert -2.29 < total.mean().item() < -0.4


def test_batched_trial_autoreset_and_task_changes():
    tasks = NavigationDistribution().sample(4, rng(0))
    env = BatchedNavigationEnv(tasks, horizon=5, episodes_per_trial=3, device=CPU)
    obs, _ = env.reset(seed=1)
    ones = torch.full((4, 2), 0.1)
    seen = []
    for t in range(1, 16):
        obs, _, terminated, truncated, info = env.step(ones)
        seen.append(obs)
        assert not terminated.any()
        assert bool(truncated.all()) == (t % 5 == 0) and bool(truncated.any()) == (t % 5 == 0)
        if t % 5 == 0:
            torch.testing.assert_close(info["final_obs"], torch.full((4, 2), 0.5))
            assert info["trial_over"] == (t == 15)
            if t < 15:  # same-step autoreset to the start of the next episode, same task
                assert torch.equal(obs, torch.zeros(4, 2))
    assert torch.equal(seen[0], torch.full((4, 2), 0.1))  # earlier observations were not overwritten
    with pytest.raises(RuntimeError, match="trial is over"):
        env.step(ones)
    env.reset()
    assert env.tasks == tuple(tasks)  # reset keeps the tasks ...
    new_tasks = NavigationDistribution().sample(4, rng(1))
    env.reset(options={"tasks": new_tasks})  # ... unless given new ones
    assert env.tasks == tuple(new_tasks)
    torch.testing.assert_close(env.goals, torch.tensor([t.goal for t in new_tasks], dtype=torch.float32))


# --------------------------------------------------------------------------- bandits
def test_bandit_gym_and_batched_agree_with_replayed_noise():
    tasks = BanditDistribution(num_arms=5).sample(32, rng(0))
    batched = BatchedBanditEnv(tasks, horizon=50, device=CPU)
    _, info = batched.reset(seed=7)
    noise = info["noise"].clone()  # (32, 50)
    actions = torch.randint(0, 5, (50, 32), generator=torch.Generator().manual_seed(1))
    rewards = torch.stack([batched.step(a)[1] for a in actions], dim=1)  # (32, 50)
    for i, task in enumerate(tasks):
        env = BernoulliBanditEnv(task=task, num_pulls=50)
        obs, _ = env.reset(seed=123, options={"noise": noise[i]})
        assert obs == 0
        gym_rewards = [env.step(int(a))[1] for a in actions[:, i]]
        assert gym_rewards == rewards[i].tolist()
        # and both equal the rule they document: reward = 1 if u < p[action]
        expected = (noise[i].numpy() < np.float32(task.arm_probs)[actions[:, i].numpy()]).astype(float)
        assert gym_rewards == expected.tolist()


def test_bandit_rewards_have_the_arm_means_and_seeding_is_reproducible():
    task = BanditTask(arm_probs=(0.1, 0.35, 0.8))
    env = BatchedBanditEnv([task] * 4_000, horizon=25, device=CPU)
    _, info = env.reset(seed=0)
    totals = torch.zeros(3)
    for t in range(24):
        arm = t % 3
        totals[arm] += env.step(torch.full((4_000,), arm))[1].mean()
    means = totals / 8
    np.testing.assert_allclose(means.numpy(), task.arm_probs, atol=0.01)  # s.e. ~ 0.0025
    expected = env.expected_rewards(torch.tensor([2] * 4_000))
    assert torch.all(expected == np.float32(0.8))
    noise_again = BatchedBanditEnv([task] * 4_000, horizon=25, device=CPU).reset(seed=0)[1]["noise"]
    assert torch.equal(info["noise"], noise_again)  # same seed, same noise
    assert not torch.equal(env.reset()[1]["noise"], info["noise"])  # no seed: the stream continues


def test_bandit_gym_env_uses_np_random_reproducibly():
    env = gym.make("metarl_course/BernoulliBandit-v0", task=BanditTask(arm_probs=(0.5, 0.5)), num_pulls=200)
    env.reset(seed=5)
    first = [env.step(0)[1] for _ in range(200)]
    env.reset(seed=5)
    assert [env.step(0)[1] for _ in range(200)] == first
    assert 70 < sum(first) < 130  # Binomial(200, 0.5)


# --------------------------------------------------------------------------- tabular MDPs
def test_mdp_gym_and_batched_agree_with_replayed_noise():
    tasks = TabularMDPDistribution().sample(16, rng(0))
    horizon, episodes = 10, 3
    batched = BatchedTabularMDPEnv(tasks, horizon=horizon, episodes_per_trial=episodes, device=CPU)
    obs, info = batched.reset(seed=3)
    noise = info["noise"].clone()  # (16, 30, 2)
    actions = torch.randint(0, 5, (episodes * horizon, 16), generator=torch.Generator().manual_seed(2))
    states, rewards = [obs], []
    for t in range(episodes * horizon):
        obs, reward, _, truncated, step_info = batched.step(actions[t])
        states.append(step_info.get("final_obs", obs))
        rewards.append(reward)
    for i, task in enumerate(tasks):
        env = TabularMDPEnv(task=task, horizon=horizon)
        for episode in range(episodes):
            window = slice(episode * horizon, (episode + 1) * horizon)
            obs, _ = env.reset(options={"noise": noise[i, window]})
            assert obs == 0
            for k in range(horizon):
                t = episode * horizon + k
                obs, reward, _, truncated, _ = env.step(int(actions[t, i]))
                assert obs == states[t + 1][i].item()
                assert reward == rewards[t][i].item()  # bit for bit, float32 arithmetic on both sides
                assert truncated == (k == horizon - 1)


def test_mdp_transitions_and_rewards_follow_the_tables():
    task = TabularMDPDistribution().sample(1, rng(5))[0]
    n = 20_000
    env = BatchedTabularMDPEnv([task] * n, horizon=2, device=CPU)
    env.reset(seed=0)
    next_states, rewards, *_ = env.step(torch.full((n,), 3))  # from state 0, action 3
    frequencies = torch.bincount(next_states, minlength=10).numpy() / n
    np.testing.assert_allclose(frequencies, task.transition_array[0, 3], atol=0.012)  # s.e. <= 0.0036
    assert abs(rewards.mean().item() - task.reward_array[0, 3]) < 0.03  # unit-variance noise, s.e. 0.007
    assert abs(rewards.std().item() - 1.0) < 0.03
    torch.testing.assert_close(
        env.expected_rewards(next_states, torch.zeros(n, dtype=torch.long)),
        torch.as_tensor(task.reward_array[:, 0], dtype=torch.float32)[next_states],
    )


# --------------------------------------------------------------------------- gymnasium integration
@pytest.mark.parametrize("env_id", sorted(tasks_pkg.GYMNASIUM_IDS))
def test_registered_envs_pass_the_gymnasium_checker(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped)
    assert env.spec.id == env_id


def test_registration_is_idempotent_and_tasks_come_through_reset():
    importlib.reload(tasks_pkg)  # registering twice must not fail or warn
    goal = NavigationTask(goal=(0.4, 0.4))
    env = gym.make("metarl_course/Navigation2D-v0")
    env.reset(options={"task": goal})
    assert env.unwrapped.task == goal
    env.reset()
    assert env.unwrapped.task == goal  # kept across resets until changed
    env.unwrapped.set_task(NavigationTask(goal=(0.0, 0.1)))
    with pytest.raises(RuntimeError, match="before reset"):
        env.unwrapped.step(np.zeros(2))


def test_gymnasium_vector_env_matches_batched_env():
    tasks = NavigationDistribution().sample(8, rng(0))
    vec = gym.vector.SyncVectorEnv([lambda task=task: Navigation2DEnv(task=task, horizon=5) for task in tasks])
    batched = BatchedNavigationEnv(tasks, horizon=5, device=CPU)
    vec.reset(seed=0)
    batched.reset(seed=0)
    for _ in range(4):
        action = np.random.default_rng(0).uniform(-0.1, 0.1, size=(8, 2)).astype(np.float32)
        v_obs, v_rew, *_ = vec.step(action)
        b_obs, b_rew, *_ = batched.step(torch.as_tensor(action))
        np.testing.assert_array_equal(v_obs, b_obs.numpy())
        np.testing.assert_array_equal(v_rew, b_rew.numpy().astype(np.float64))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BanditTask(arm_probs=(0.3,)), "k >= 2"),
        (lambda: BanditTask(arm_probs=(0.3, 1.2)), r"\[0, 1\]"),
        (lambda: BanditDistribution(num_arms=1), "num_arms must be"),
        (lambda: NavigationTask(goal=(1.5, 0.0)), "outside the arena"),
        (lambda: NavigationTask(goal=(0.1, 0.2, 0.3)), "two numbers"),
        (lambda: NavigationTask(goal=(0.1, float("nan"))), "finite"),
        (lambda: NavigationTask(goal=(0.1, 0.1), dynamics=-1.0), "dynamics must be in"),
        (lambda: NavigationDistribution(goal_low=-2.0), "goal_low"),
        (lambda: NavigationDistribution(dynamics_low=-0.5), "dynamics_low"),
        (lambda: NavigationDistribution(exclude=(-1.0, 1.0)), "no goal is left"),
        (lambda: TabularMDPTask(transitions=np.full((3, 2, 3), 0.5), reward_means=np.zeros((3, 2))), "sum to 1"),
        (lambda: TabularMDPTask(transitions=np.full((3, 1, 3), 1 / 3), reward_means=np.zeros((3, 1))), ">= 2 actions"),
        (lambda: TabularMDPTask(transitions=np.full((3, 2, 3), 1 / 3), reward_means=np.zeros((2, 2))), "shape"),
        (lambda: TabularMDPDistribution(dirichlet_alpha=0.0), "dirichlet_alpha"),
        (lambda: NavigationDistribution().sample(0, rng()), "num_tasks"),
        (lambda: BatchedNavigationEnv([], device=CPU), "tasks is empty"),
        (lambda: BatchedBanditEnv([BanditTask((0.1, 0.2)), BanditTask((0.1, 0.2, 0.3))], device=CPU), "same number"),
    ],
)
def test_invalid_task_parameters_raise_value_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_kinds_of_arguments_raise_type_errors():
    with pytest.raises(TypeError, match="numpy Generator"):
        NavigationDistribution().sample(3, rng=0)
    with pytest.raises(TypeError, match="NavigationTask"):
        BatchedNavigationEnv([{"goal": (0.1, 0.1), "dynamics": 1.0}], device=CPU)  # the tutorial's dict
    with pytest.raises(TypeError, match="BanditTask"):
        BernoulliBanditEnv().reset(options={"task": (0.1, 0.9)})


def make_all_envs():
    nav_tasks = NavigationDistribution().sample(3, rng())
    bandit_tasks = BanditDistribution().sample(3, rng())
    mdp_tasks = TabularMDPDistribution().sample(3, rng())
    return [
        (Navigation2DEnv(task=nav_tasks[0]), BatchedNavigationEnv(nav_tasks, device=CPU), "continuous"),
        (BernoulliBanditEnv(task=bandit_tasks[0]), BatchedBanditEnv(bandit_tasks, device=CPU), "discrete"),
        (TabularMDPEnv(task=mdp_tasks[0]), BatchedTabularMDPEnv(mdp_tasks, device=CPU), "discrete"),
    ]


@pytest.mark.parametrize("index", range(3))
def test_gym_envs_share_task_env_task_handling(index):
    single, batched, kind = make_all_envs()[index]
    env_type, action = type(single), np.zeros(2, np.float32) if kind == "continuous" else 0
    assert isinstance(single, TaskEnv)
    assert env_type(task_seed=3).task == env_type(task_seed=3).task != env_type(task_seed=4).task  # default task
    with pytest.raises(TypeError, match=f"task must be a {env_type.task_type.__name__}, got dict; e.g. "):
        single.set_task({"goal": (0.1, 0.1)})  # the tutorial's dict
    single.reset(seed=0)
    single.step(action)
    single.set_task(batched.tasks[1])  # takes effect now, and stepping needs a new reset
    assert single.task == batched.tasks[1]
    with pytest.raises(RuntimeError, match=r"before reset\(\); call env.reset\(\) first"):
        single.step(action)
    assert single.reset()[1]["task"] == batched.tasks[1]
    with pytest.raises(TypeError, match="abstract"):
        TaskEnv()


def test_set_task_refuses_tasks_that_do_not_fit_the_spaces():
    bandit = BernoulliBanditEnv(task=BanditTask((0.1, 0.9)))
    with pytest.raises(ValueError, match="this env has 2 arms, the new task 3; make a new env"):
        bandit.reset(options={"task": BanditTask((0.1, 0.2, 0.3))})
    mdp = TabularMDPEnv()
    with pytest.raises(ValueError, match="different number of states or actions; make a new env"):
        mdp.set_task(TabularMDPDistribution(num_states=3).sample(1, rng())[0])
    assert bandit.task == BanditTask((0.1, 0.9)) and mdp.task == TabularMDPEnv().task  # unchanged


@pytest.mark.parametrize("index", range(3))
def test_bad_actions_and_bad_order_raise(index):
    single, batched, kind = make_all_envs()[index]
    good_single = np.zeros(2, np.float32) if kind == "continuous" else 0
    good_batched = torch.zeros(3, 2) if kind == "continuous" else torch.zeros(3, dtype=torch.long)
    with pytest.raises(RuntimeError, match="before reset"):
        single.step(good_single)
    with pytest.raises(RuntimeError, match="before reset"):
        batched.step(good_batched)
    single.reset(seed=0)
    batched.reset(seed=0)
    if kind == "continuous":
        bad_single = [np.zeros(3), np.array([0.1, np.nan]), np.zeros((1, 2))]
        bad_batched = [torch.zeros(3, 3), torch.zeros(2, 2), torch.tensor([[0.0, np.nan]] * 3)]
    else:
        bad_single = [1.0, -1, 99, True, np.array([0, 1]), float("nan")]
        bad_batched = [torch.zeros(3), torch.zeros(2, dtype=torch.long), torch.full((3,), 99), torch.zeros(3, 1)]
    for action in bad_single:
        with pytest.raises(ValueError, match="action"):
            single.step(action)
    for actions in bad_batched:
        with pytest.raises(ValueError, match="actions"):
            batched.step(actions)
    horizon = single.num_pulls if isinstance(single, BernoulliBanditEnv) else single.horizon
    for _ in range(horizon):
        single.step(good_single)
    with pytest.raises(RuntimeError, match="call env.reset"):
        single.step(good_single)
    for _ in range(batched.trial_length):
        batched.step(good_batched)
    with pytest.raises(RuntimeError, match="trial is over"):
        batched.step(good_batched)
    with pytest.raises(ValueError, match="unknown reset option"):
        batched.reset(options={"task": None})
    with pytest.raises(ValueError, match="this env steps 3 tasks"):
        batched.reset(options={"tasks": batched.tasks[:2]})


def test_navigation_ends_at_the_goal_in_both_implementations():
    """Finn et al.'s rllab rule: the episode ends within 0.01 of the goal in both coordinates."""
    tasks = [NavigationTask(goal=(0.3, 0.2)), NavigationTask(goal=(-0.45, 0.05)), NavigationTask(goal=(0.5, 0.5))]
    batched = BatchedNavigationEnv(tasks, horizon=10, device=CPU)
    obs, _ = batched.reset(seed=0)
    b_rewards, b_terminated = [], []
    for _ in range(10):
        obs, reward, terminated, truncated, _ = batched.step(batched.goals - obs)  # straight at the goal
        b_rewards.append(reward.clone())
        b_terminated.append(terminated.clone())
    b_rewards, b_terminated = torch.stack(b_rewards), torch.stack(b_terminated)  # (10, 3)
    for i, task in enumerate(tasks):
        env = Navigation2DEnv(task=task, horizon=10)
        position, _ = env.reset(seed=0)
        for t in range(10):
            position, reward, terminated, truncated, _ = env.step(np.asarray(task.goal, np.float32) - position)
            assert reward == b_rewards[t, i].item() and terminated == b_terminated[t, i].item()
            if terminated:
                with pytest.raises(RuntimeError, match="has ended"):
                    env.step(np.zeros(2, np.float32))
                break
        assert terminated, "the controller reaches every goal within 10 steps"
        # after the end the batched task stays put and earns nothing
        assert (b_rewards[t + 1:, i] == 0).all() and b_terminated[:, i].sum() == 1
    assert b_terminated.nonzero()[:, 0].tolist() == [2, 4, 4]  # steps (0-based) when each goal is reached
