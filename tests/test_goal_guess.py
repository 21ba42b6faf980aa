"""The chapter-03 goal-guess learner: its REINFORCE gradient and its Reptile meta-training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metarl_course.goal_guess import (GoalGuessConfig, GoalGuessLearner, adapt_guess, meta_train,
                                     normalized_advantages, policy_mean, reinforce_gradient)
from metarl_course.rl.returns import discounted_returns
from metarl_course.tasks import NavigationDistribution, NavigationTask
from metarl_course.training import train

SMALL = GoalGuessConfig(tasks_per_batch=5, rollouts_per_task=8, meta_lr=0.3)


def test_policy_mean_heads_for_the_guess_at_most_0_1_per_axis():
    theta = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    obs = torch.tensor([[0.0, 0.0], [0.0, 0.02]])
    mean = policy_mean(theta, obs)
    assert mean[0, 0] == pytest.approx(0.1 * np.tanh(10.0)) and mean[0, 1] == 0.0
    assert mean[1, 1] == pytest.approx(0.1 * np.tanh(-0.2))


def test_reinforce_gradient_points_towards_the_goal():
    """Averaged over noise, the gradient at theta = (0, 0) has a positive component towards the goal."""
    tasks = [NavigationTask(goal=(0.4, 0.0)), NavigationTask(goal=(0.0, -0.4))]
    grad, returns = reinforce_gradient(torch.zeros(2, 2), tasks, GoalGuessConfig(rollouts_per_task=64),
                                       torch.Generator().manual_seed(0))
    assert grad[0, 0] > 3 * abs(grad[0, 1]) and -grad[1, 1] > 3 * abs(grad[1, 0])
    # staying near (0, 0) costs about 100 * 0.4 per episode
    np.testing.assert_allclose(returns.numpy(), -40.0, rtol=0.1)


def test_advantages_equal_the_package_reward_to_go_minus_the_step_mean_scaled_per_task():
    """The goal guess keeps its own reward-to-go (another summation order): it agrees with rl.returns to rounding."""
    rewards = -torch.rand(7, 3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # (T, tasks, m)
    to_go = discounted_returns(rewards.permute(1, 2, 0), gamma=1.0).permute(2, 0, 1)  # (T, tasks, m)
    centred = to_go - to_go.mean(dim=2, keepdim=True)
    expected = torch.stack([centred[:, i] / (centred[:, i].std() + 1e-8) for i in range(3)], dim=1)  # task by task
    # float64: only the summation order differs, ~1e-15 relative; a wrong baseline or scale is off by O(1)
    torch.testing.assert_close(normalized_advantages(rewards), expected, rtol=1e-12, atol=1e-12)


def test_adaptation_improves_the_return_on_a_far_goal():
    tasks = [NavigationTask(goal=(0.45, -0.3))] * 4
    thetas, returns = adapt_guess(torch.zeros(2), tasks, GoalGuessConfig(rollouts_per_task=10), 3,
                            torch.Generator().manual_seed(0))
    assert thetas.shape == (4, 4, 2) and returns.shape == (4, 4)
    assert returns[-1].mean() > returns[0].mean() + 15
    distance = (thetas - torch.tensor([0.45, -0.3])).norm(dim=-1).mean(1)
    assert distance[-1] < 0.5 * distance[0]


def test_meta_training_learns_where_the_goals_of_p_T_are():
    narrow = NavigationDistribution(goal_low=0.2, goal_high=0.5).sample(20, np.random.default_rng(0))
    theta0, history = meta_train(narrow, SMALL, num_iterations=30, seed=0)
    # the best fixed guess for goals U[0.2, 0.5]^2 is near the centre (0.35, 0.35); we started at (-0.8, 0.8)
    assert torch.linalg.norm(theta0.cpu() - torch.tensor([0.35, 0.35])) < 0.15
    _, before = history["meta/return_before"]
    assert np.mean(before[-5:]) > np.mean(before[:5]) + 30
    assert meta_train(narrow, SMALL, num_iterations=3, seed=1)[0].tolist() == \
        meta_train(narrow, SMALL, num_iterations=3, seed=1)[0].tolist()  # same seed, same result


def test_a_single_meta_training_task_is_memorised():
    """Meta-overfitting in its purest form: with one training task, theta0 becomes that task's goal."""
    task = NavigationTask(goal=(-0.3, 0.1))
    theta0, _ = meta_train([task], SMALL, num_iterations=30, seed=0)
    assert torch.linalg.norm(theta0.cpu() - torch.tensor(task.goal)) < 0.1


def test_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="inner_lr must be > 0"):
        GoalGuessConfig(inner_lr=-0.1)
    with pytest.raises(ValueError, match="rollouts_per_task"):
        GoalGuessConfig(rollouts_per_task=0)


def test_goal_guess_runs_in_the_course_loop_and_resumes_identically(tmp_path):
    """The chapter-03 learner is trained by the same loop as every other algorithm, checkpoints included."""
    tasks = NavigationDistribution(goal_low=0.2, goal_high=0.5).sample(10, np.random.default_rng(0))
    straight = GoalGuessLearner(tasks, SMALL, seed=3, heldout_tasks=tasks[:4])
    history = train(straight, 6, seed=3, progress=False)
    assert "eval/return_after" in history
    first = GoalGuessLearner(tasks, SMALL, seed=3, heldout_tasks=tasks[:4])
    train(first, 3, seed=3, progress=False, checkpoint_path=tmp_path / "run.pt")
    resumed = GoalGuessLearner(tasks, SMALL, seed=3, heldout_tasks=tasks[:4])
    train(resumed, 6, seed=3, progress=False, checkpoint_path=tmp_path / "run.pt")
    assert resumed.theta.tolist() == straight.theta.tolist()
