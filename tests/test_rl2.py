"""RL²: GAE, the recurrent actor-critic's inputs and hidden state, training through the course's loop, errors."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from metarl_course.rl.returns import gae
from metarl_course.rl.bandit_baselines import evaluate_bandit_policy
from metarl_course.rl.bandit_game import BanditGame
from metarl_course.rl.rl2 import RL2Config, RL2Learner, build_model, make_env, rollout, task_distribution
from metarl_course.tasks.bandits import BanditTask, BatchedBanditEnv
from metarl_course.training import train


# ---------------------------------------------------------------------------- GAE
def test_gae_hand_computed():
    # two steps then the trial ends; gamma = 0.5, lambda = 0.5, worked out by hand:
    # delta_1 = 2 + 0 - 1 = 1 (terminal), A_1 = 1
    # delta_0 = 1 + 0.5 * 1 - 0.5 = 1, A_0 = 1 + 0.25 * 1 = 1.25
    rewards = torch.tensor([[1.0], [2.0]])
    values = torch.tensor([[0.5], [1.0]])
    adv, ret = gae(rewards, values, torch.tensor([7.0]), torch.tensor([[False], [True]]), gamma=0.5, lam=0.5)
    torch.testing.assert_close(adv[:, 0], torch.tensor([1.25, 1.0]))
    torch.testing.assert_close(ret[:, 0], torch.tensor([1.75, 2.0]))


def test_gae_bootstraps_without_terminal_and_lambda_one_is_monte_carlo():
    rewards = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])  # (T=3, B=2)
    values = torch.rand(3, 2)
    last = torch.tensor([10.0, 0.0])
    adv, ret = gae(rewards, values, last, torch.zeros(3, 2, dtype=torch.bool), gamma=0.9, lam=1.0)
    # lambda = 1: returns are the discounted rewards plus gamma^3 * last value, whatever V is
    expected = torch.tensor([[1 + 0.9 + 0.81 + 0.729 * 10, 0 + 0.9 + 0], [1 + 0.9 + 0.81 * 10, 1 + 0], [1 + 9.0, 0]])
    torch.testing.assert_close(ret, expected)


# ---------------------------------------------------------------------------- the model
@pytest.fixture(scope="module")
def bandit_model():
    return build_model(RL2Config.bandit(num_pulls=6, num_arms=3, hidden_size=16), seed=0, device="cpu")


def test_inputs_hold_previous_action_reward_and_done():
    config = RL2Config(task="tabular_mdp", horizon=3, episodes_per_trial=2, hidden_size=8, num_trials=4)
    model = build_model(config, device="cpu")
    tasks = task_distribution(config).sample(4, np.random.default_rng(0))
    env = make_env(config, tasks, "cpu")
    trials = rollout(model, env, torch.Generator().manual_seed(0), seed=0)
    S, A = 10, 5
    assert trials.inputs.shape == (6, 4, S + A + 2)
    obs_part, act_part, rew_part, done_part = trials.inputs.split([S, A, 1, 1], dim=-1)
    # step 0 of the trial: nothing happened before
    assert act_part[0].abs().sum() == 0 and rew_part[0].abs().sum() == 0 and done_part[0].abs().sum() == 0
    for t in range(1, 6):
        torch.testing.assert_close(act_part[t], torch.nn.functional.one_hot(trials.actions[t - 1], A).float())
        torch.testing.assert_close(rew_part[t, :, 0], trials.rewards[t - 1])
        assert torch.all(done_part[t, :, 0] == float(t == 3)), "d_{t-1} is 1 exactly when step t starts episode 2"
    assert torch.all(obs_part[3].argmax(-1) == 0), "every episode starts in state 0"


def test_sequence_call_equals_step_by_step(bandit_model):
    torch.manual_seed(1)
    inputs = torch.randn(7, 5, bandit_model.input_size)
    out_seq, values_seq, h_seq = bandit_model(inputs, bandit_model.initial_hidden(5))
    h = bandit_model.initial_hidden(5)
    outs, values = [], []
    for t in range(7):
        out, value, h = bandit_model(inputs[t : t + 1], h)
        outs.append(out[0])
        values.append(value[0])
    torch.testing.assert_close(out_seq, torch.stack(outs), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(values_seq, torch.stack(values), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h_seq, h, atol=1e-6, rtol=1e-5)


def test_hidden_state_kept_across_episodes_and_reset_between_trials():
    config = RL2Config(task="tabular_mdp", horizon=3, episodes_per_trial=2, hidden_size=8, num_trials=2)
    model = build_model(config, device="cpu")
    tasks = task_distribution(config).sample(2, np.random.default_rng(0))
    env = make_env(config, tasks, "cpu")
    kept = rollout(model, env, torch.Generator().manual_seed(0), seed=0)
    again = rollout(model, env, torch.Generator().manual_seed(0), seed=0)
    # a new trial starts from a fresh state: the same tasks and random numbers give the same trial
    torch.testing.assert_close(kept.log_probs, again.log_probs)
    # the first step of episode 2 depends on episode 1: change an episode-1 input and its output moves
    h0 = model.initial_hidden(2)
    out, _, _ = model(kept.inputs, h0)
    changed = kept.inputs.clone()
    changed[1, :, 10:17] = torch.tensor([0, 0, 0, 0, 1, 5.0, 0])  # another a_0 and r_0 inside episode 1
    out_changed, _, _ = model(changed, h0)
    assert (out[3] - out_changed[3]).abs().max() > 1e-4
    # with the tutorial's per-episode reset, episode 2 starts as if nothing happened: its first output
    # equals that of a fresh trial's first step in the same state
    reset = rollout(model, env, torch.Generator().manual_seed(0), seed=0, reset_hidden_every_episode=True)
    first, _, _ = model(reset.inputs[3:4], h0)
    fresh, _, _ = model(reset.inputs[0:1], h0)
    torch.testing.assert_close(first, fresh)


def test_initial_hidden_on_model_device(bandit_model):
    h = bandit_model.initial_hidden(3)
    assert h.shape == (1, 3, 16) and h.device == bandit_model.value_head.weight.device
    assert torch.all(h == 0)


# ---------------------------------------------------------------------------- training
def test_smoke_training_beats_random_on_two_armed_bandits():
    config = RL2Config.bandit(num_pulls=10, num_arms=2, hidden_size=32, num_trials=256, num_minibatches=1,
                              lr=3e-3, num_eval_trials=500)
    learner = RL2Learner(config, seed=0, device="cpu")
    history = train(learner, num_iterations=60, seed=0, progress=False)
    score = history.last("eval/trial_return")
    random = evaluate_bandit_policy("random", 2, 10, num_trials=2000, seed=0, device="cpu").mean
    assert score > random + 0.4, (score, random)  # random: 5.0, always the best arm: 6.67


def test_env_steps_are_logged_cumulatively_and_survive_a_resume(tmp_path):
    config = RL2Config.bandit(num_pulls=4, num_arms=2, hidden_size=8, num_trials=16, num_eval_trials=16)
    learner = RL2Learner(config, seed=0, device="cpu")
    history = train(learner, num_iterations=3, seed=0, progress=False, checkpoint_path=tmp_path / "run.pt")
    steps = [v for _, v in history.records["charts/env_steps"]]
    assert steps == [64.0, 128.0, 192.0] and learner.env_steps == 192
    resumed = RL2Learner(config, seed=0, device="cpu")
    history = train(resumed, num_iterations=5, seed=0, progress=False, checkpoint_path=tmp_path / "run.pt")
    assert [v for _, v in history.records["charts/env_steps"]][-2:] == [256.0, 320.0]


def test_annealing_takes_lr_and_entropy_bonus_linearly_to_zero_and_survives_a_resume(tmp_path):
    config = RL2Config.bandit(num_pulls=4, num_arms=2, hidden_size=8, num_trials=16, num_eval_trials=16,
                              lr=1e-2, anneal_iterations=4)
    assert [config.schedule(i) for i in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert RL2Config().schedule(10_000) == 1.0  # 0: constant
    learner = RL2Learner(config, seed=0, device="cpu")
    train(learner, num_iterations=3, seed=0, progress=False, checkpoint_path=tmp_path / "run.pt")
    assert learner.updates == 3 and learner.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5)
    resumed = RL2Learner(config, seed=0, device="cpu")
    train(resumed, num_iterations=5, seed=0, progress=False, checkpoint_path=tmp_path / "run.pt")
    assert resumed.updates == 5 and resumed.optimizer.param_groups[0]["lr"] == 0.0
    before = [p.detach().clone() for p in resumed.model.parameters()]
    resumed.meta_update(None, resumed.adapt(resumed.sample_tasks(np.random.default_rng(1))), torch.tensor(0.0))
    assert all(torch.equal(a, b) for a, b in zip(before, resumed.model.parameters())), "lr 0 must not move"


def test_annealed_entropy_bonus_enters_the_loss():
    from metarl_course.rl.rl2 import ppo_loss, trial_advantages

    config = RL2Config.bandit(num_pulls=5, num_arms=3, hidden_size=8, num_trials=4, entropy_coef=0.5)
    model = build_model(config, device="cpu")
    env = make_env(config, task_distribution(config).sample(4, np.random.default_rng(0)), "cpu")
    trials = rollout(model, env, torch.Generator().manual_seed(0), seed=0)
    adv, ret = trial_advantages(trials, config)
    index = torch.arange(4)
    full, metrics = ppo_loss(model, trials, index, adv, ret, config)
    none, _ = ppo_loss(model, trials, index, adv, ret, config, entropy_coef=0.0)
    torch.testing.assert_close(none - full, torch.tensor(0.5 * metrics["losses/entropy"]))


def test_anneal_iterations_validated():
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="anneal_iterations"):
            RL2Config(anneal_iterations=bad)


# ---------------------------------------------------------------------------- navigation
def nav_config(**overrides):
    return RL2Config(task="navigation", horizon=30, episodes_per_trial=2, hidden_size=8, num_trials=6,
                     **overrides)


def test_steps_after_reaching_the_goal_are_left_out_of_the_loss():
    from metarl_course.rl.rl2 import ppo_loss, trial_advantages
    from metarl_course.tasks.navigation import NavigationTask

    config = nav_config(goal_tolerance=0.5)  # a wide tolerance: most trials reach the goal early
    model = build_model(config, device="cpu")
    env = make_env(config, [NavigationTask(goal=(0.05 * i, 0.0)) for i in range(6)], "cpu")
    trials = rollout(model, env, torch.Generator().manual_seed(0), seed=0)
    assert trials.active is not None and not trials.active[0].any() == False  # noqa: E712
    assert trials.active[:30].all(0).sum() < 6 and trials.active[30].all(), "each episode starts active"
    dead = ~trials.active
    assert torch.all(trials.rewards[dead] == 0), "the env pays nothing after the goal is reached"
    adv, ret = trial_advantages(trials, config)
    index = torch.arange(6)
    loss, _ = ppo_loss(model, trials, index, adv, ret, config)
    noisy = adv.clone()
    noisy[dead] = 100.0  # whatever the advantage of a dead step, the loss does not change
    loss_noisy, _ = ppo_loss(model, trials, index, noisy, ret, config)
    torch.testing.assert_close(loss, loss_noisy)
    # the steps the env really took, as MAML-RL's Episodes.num_steps counts them (charts/env_steps)
    assert trials.num_steps == int(trials.active.sum()) < trials.rewards.numel()
    # without a tolerance every step counts
    free = rollout(model, make_env(nav_config(), env.tasks, "cpu"), torch.Generator().manual_seed(0), seed=0)
    assert free.active is None and free.num_steps == free.rewards.numel()


def test_navigation_goal_returns_on_given_goals():
    from metarl_course.comparison import navigation_goal_returns
    from metarl_course.tasks.navigation import NavigationTask

    model = build_model(nav_config(), device="cpu")
    goals = [NavigationTask(goal=(0.2, 0.1)), NavigationTask(goal=(-0.3, 0.4)), NavigationTask(goal=(0.0, -0.1))]
    returns = navigation_goal_returns(model, goals, trials_per_goal=4, goal_tolerance=None)
    assert returns.shape == (3, 2) and np.all(returns < 0)
    # row g is goal g: played alone (greedy, so no noise), each goal gives the same returns as in the batch
    greedy = navigation_goal_returns(model, goals, trials_per_goal=2, goal_tolerance=None, greedy=True)
    for g, goal in enumerate(goals):
        alone = rollout(model, make_env(nav_config(), [goal], "cpu"), greedy=True, seed=0)
        np.testing.assert_allclose(greedy[g], alone.episode_returns()[0].double().numpy(), rtol=1e-4)
    with_tolerance = navigation_goal_returns(model, goals, trials_per_goal=4)  # the env's default, 0.01
    assert with_tolerance.shape == (3, 2)
    with pytest.raises(ValueError, match="not navigation"):
        navigation_goal_returns(build_model(RL2Config.bandit(5, 2, hidden_size=8), device="cpu"), goals)
    with pytest.raises(TypeError, match="NavigationTask"):
        navigation_goal_returns(model, [(0.1, 0.2)])


def test_goal_tolerance_only_for_navigation():
    with pytest.raises(ValueError, match="navigation setting"):
        RL2Config(task="tabular_mdp", goal_tolerance=0.01)
    with pytest.raises(ValueError, match="goal_tolerance must be"):
        nav_config(goal_tolerance=-1.0)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("n, k, match", [(10, 1, "k \\(num_arms\\)"), (10, 101, "k \\(num_arms\\)"),
                                         (0, 5, "n \\(num_pulls"), (1001, 5, "n \\(num_pulls")])
def test_n_or_k_out_of_range(n, k, match):
    with pytest.raises(ValueError, match=match):
        RL2Config.bandit(num_pulls=n, num_arms=k)


def test_checkpoint_for_another_setting_is_refused():
    trained = build_model(RL2Config.bandit(num_pulls=10, num_arms=5, hidden_size=8), device="cpu")
    other_n = build_model(RL2Config.bandit(num_pulls=100, num_arms=5, hidden_size=8), device="cpu")
    with pytest.raises(ValueError, match="horizon=10 .*this model: 100"):
        other_n.load_state_dict(trained.state_dict())
    other_k = build_model(RL2Config.bandit(num_pulls=10, num_arms=10, hidden_size=8), device="cpu")
    with pytest.raises(ValueError, match="num_arms=5"):
        other_k.load_state_dict(trained.state_dict())


def test_hidden_of_wrong_batch_size(bandit_model):
    inputs = torch.zeros(2, 4, bandit_model.input_size)
    with pytest.raises(ValueError, match="initial_hidden\\(4\\)"):
        bandit_model(inputs, bandit_model.initial_hidden(3))


# ---------------------------------------------------------------------------- the game
def test_game_uses_the_envs_luck_and_thompson_plays_it():
    task = BanditTask(arm_probs=(0.2, 0.5, 0.8))
    game = BanditGame(task, num_pulls=8, seed=3)
    env = BatchedBanditEnv([task], horizon=8, device="cpu")
    _, info = env.reset(seed=3)
    torch.testing.assert_close(info["noise"][0], game.uniforms)
    for t in range(8):
        assert game.pull(2) == (1.0 if game.uniforms[t] < 0.8 else 0.0)
    assert game.done
    with pytest.raises(RuntimeError, match="over"):
        game.pull(0)
    arms, rewards = game.play_thompson()
    assert len(arms) == 8 and all(r == game.payout(t, a) for t, (a, r) in enumerate(zip(arms, rewards)))


def test_game_rl2_player(bandit_model):
    game = BanditGame(BanditTask(arm_probs=(0.2, 0.5, 0.8)), num_pulls=6, seed=1)
    arms, rewards = game.play_rl2(bandit_model)
    assert len(arms) == 6 and all(r == game.payout(t, a) for t, (a, r) in enumerate(zip(arms, rewards)))
    with pytest.raises(ValueError, match="arm must be"):
        game.pull(3)


# ---------------------------------------------------------------------------- shipped checkpoints
RL2_EXPERIMENTS = ["rl2-bandit-n10-k5", "rl2-bandit-n100-k5", "rl2-mdp-n10", "rl2-nav-2ep"]


@pytest.mark.parametrize("name", RL2_EXPERIMENTS)
def test_shipped_checkpoint_scores_what_it_claims(name):
    from metarl_course.evaluation import rescore_problems
    from metarl_course.experiments import CHECKPOINT_DIR, heldout_trial_returns, load_result

    if not (CHECKPOINT_DIR / f"{name}.pt").exists():
        pytest.skip(f"{name}.pt not shipped")
    learner, data = load_result(name)
    assert learner.model.setting == RL2Config(**data["config"]).setting()
    measured = learner.evaluate_heldout()  # the same held-out tasks and random numbers as at the end of training
    # within what floating point may move, as a mean and trial by trial (evaluation.rescore_problems)
    assert not rescore_problems(name, data, measured, heldout_trial_returns(learner))


def test_shipped_bandit_checkpoint_n10_beats_thompson_and_is_within_2_percent_of_gittins():
    from metarl_course.experiments import CHECKPOINT_DIR, load_result
    from metarl_course.rl.rl2_analysis import rl2_pulls

    if not (CHECKPOINT_DIR / "rl2-bandit-n10-k5.pt").exists():
        pytest.skip("bandit checkpoint not shipped")
    model = load_result("rl2-bandit-n10-k5")[0].model
    rl2 = rl2_pulls(model, 10, 5, num_trials=2000, seed=0).totals.mean()  # the baselines' bandits
    thompson = evaluate_bandit_policy("thompson", 5, 10, num_trials=2000, seed=0, device="cpu").mean
    gittins = evaluate_bandit_policy("gittins", 5, 10, num_trials=2000, seed=0, device="cpu").mean
    assert rl2 > thompson and rl2 > 0.98 * gittins, (rl2, thompson, gittins)


def test_shipped_mdp_checkpoint_learns_within_the_trial():
    from metarl_course.evaluation import mean_ci
    from metarl_course.experiments import CHECKPOINT_DIR, load_result
    from metarl_course.rl.psrl import evaluate_mdp_baseline

    if not (CHECKPOINT_DIR / "rl2-mdp-n10.pt").exists():
        pytest.skip("MDP checkpoint not shipped")
    learner, data = load_result("rl2-mdp-n10")
    kept, _ = learner.evaluate_trials()
    reset, _ = learner.evaluate_trials(reset_hidden_every_episode=True)
    random = evaluate_mdp_baseline("random", num_trials=learner.config.num_eval_trials, seed=learner.config.eval_seed)
    gain, gain_ci = mean_ci(kept.trial_returns - random.trial_returns)  # the same MDPs and env noise
    assert gain - gain_ci > 10, (kept.mean, random.mean)
    memory, memory_ci = mean_ci(kept.trial_returns - reset.trial_returns)
    assert memory - memory_ci > 5, "keeping the hidden state across episodes should pay"
    assert kept.episode_returns[:, -1].mean() > kept.episode_returns[:, 0].mean() + 1
    assert data["history"]["charts/env_steps"][-1][1] == data["iterations"] * learner.steps_per_iteration
