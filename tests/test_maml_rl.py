import numpy as np
import pytest
import torch

from metarl_course.evaluation import rescore_problems, rescore_tolerance
from metarl_course.adaptation import batched_forward, parameters_of
from metarl_course.rl.maml_rl import MAMLRLConfig, MAMLRLLearner, adapt_policy
from metarl_course.rl.pretrained import PretrainedPolicyLearner
from metarl_course.tasks.heldout import heldout_goals
from metarl_course.rl.policies import GaussianMLPPolicy, gaussian_kl, gaussian_log_prob, reinforce_loss
from metarl_course.rl.returns import discounted_returns, linear_baseline, normalize_per_task
from metarl_course.rl.sampling import Episodes, expand_params, sample_env_steps, sample_episodes
from metarl_course.rl.trpo import conjugate_gradient, flatten, hessian_vector_product, trpo_step
from metarl_course.tasks import NavigationTask
from metarl_course.training import train


def test_discounted_returns_by_hand():
    r = torch.tensor([[1.0, 0.0, 2.0]])
    # R2 = 2, R1 = 0 + 0.9 * 2 = 1.8, R0 = 1 + 0.9 * 1.8 = 2.62
    assert torch.allclose(discounted_returns(r, 0.9), torch.tensor([[2.62, 1.8, 2.0]]))
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns(r, 1.5)


def test_linear_baseline_is_ridge_regression_per_task():
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 3, 50, 2, generator=g, dtype=torch.float64)
    returns = torch.randn(2, 3, 50, generator=g, dtype=torch.float64)
    fitted = linear_baseline(obs, returns, reg=1e-5)
    for i in range(2):  # NumPy reference, task by task
        t = np.tile(np.arange(50) / 100.0, 3)[:, None]
        o = obs[i].reshape(-1, 2).numpy()
        X = np.hstack([o, o ** 2, t, t ** 2, t ** 3, np.ones_like(t)])
        w = np.linalg.solve(X.T @ X + 1e-5 * np.eye(X.shape[1]), X.T @ returns[i].reshape(-1).numpy())
        assert np.allclose(fitted[i].reshape(-1).numpy(), X @ w, atol=1e-8)
    # a return that is exactly linear in the features is fitted exactly
    exact = 2.0 * obs[..., 0] - obs[..., 1] ** 2 + 0.5
    assert torch.allclose(linear_baseline(obs, exact, reg=1e-10), exact, atol=1e-6)


def test_log_prob_and_kl_match_torch_distributions():
    g = torch.Generator().manual_seed(1)
    out_a, out_b, actions = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g), torch.randn(4, 2, generator=g)
    normal = lambda out: torch.distributions.Independent(torch.distributions.Normal(out[:, :2], out[:, 2:].exp()), 1)  # noqa: E731
    assert torch.allclose(gaussian_log_prob(out_a, actions), normal(out_a).log_prob(actions), atol=1e-5)
    assert torch.allclose(gaussian_kl(out_a, out_b), torch.distributions.kl_divergence(normal(out_a), normal(out_b)), atol=1e-5)


def test_reinforce_loss_by_hand():
    # mean 0, log-std 0: log pi(a) = -a^2/2 - log(2 pi)/2 per dimension
    output = torch.zeros(1, 2, 2)  # one task, two steps, act_dim 1
    target = torch.tensor([[[1.0, 2.0], [0.0, -1.0]]])  # (action, advantage)
    logp = torch.tensor([-0.5 - 0.5 * np.log(2 * np.pi), -0.5 * np.log(2 * np.pi)])
    expected = -(logp * torch.tensor([2.0, -1.0])).mean()
    assert torch.allclose(reinforce_loss(output, target), expected.reshape(1).float())


def test_hessian_vector_product_matches_explicit_hessian():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64)
    x = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    f = lambda v: (torch.sin(a @ v) ** 2).sum() + (v ** 4).sum()  # noqa: E731
    hessian = torch.autograd.functional.hessian(f, x.detach())
    v = torch.randn(3, generator=g, dtype=torch.float64)
    hvp = hessian_vector_product(f(x), {"x": x})
    assert torch.allclose(hvp(v), hessian @ v, atol=1e-10)


def test_conjugate_gradient_solves_spd_system():
    g = torch.Generator().manual_seed(3)
    m = torch.randn(5, 5, generator=g, dtype=torch.float64)
    a = m @ m.T + 5 * torch.eye(5, dtype=torch.float64)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iterations=20)
    assert torch.allclose(a @ x, b, atol=1e-8)


def test_trpo_step_respects_the_kl_bound_and_improves():
    g = torch.Generator().manual_seed(4)
    target = torch.randn(4, generator=g)
    params = {"mean": torch.zeros(4, requires_grad=True)}

    def objective(p):  # a quadratic loss, and a "KL" that is a quadratic distance from the start
        return ((p["mean"] - target) ** 2).sum(), 0.5 * (p["mean"] - start).pow(2).sum()

    start = params["mean"].detach().clone()
    metrics = trpo_step(params, objective, max_kl=0.01)
    assert metrics["losses/surrogate_after"] < metrics["losses/surrogate_before"]
    assert 0.5 * (params["mean"].detach() - start).pow(2).sum() <= 0.01 + 1e-6
    with pytest.raises(ValueError, match="max_kl"):
        trpo_step(params, objective, max_kl=0.0)


def tiny(outer="maml-trpo"):
    config = MAMLRLConfig(outer=outer, meta_batch_size=3, num_trajectories=4, horizon=10, hidden=(16,),
                          cg_iterations=3, promp_steps=2)
    learner = PretrainedPolicyLearner if outer == "pretrained" else MAMLRLLearner
    return learner(config, heldout=heldout_goals(4), device="cpu", eval_steps=1)


def test_the_pretrained_baseline_is_its_own_learner_and_takes_no_inner_step():
    with pytest.raises(ValueError, match="PretrainedPolicyLearner"):
        MAMLRLLearner(MAMLRLConfig(outer="pretrained"), device="cpu")
    with pytest.raises(ValueError, match="outer='pretrained'"):
        PretrainedPolicyLearner(MAMLRLConfig(), device="cpu")
    learner = tiny("pretrained")
    rollouts = learner.adapt(learner.sample_tasks(np.random.default_rng(0)))
    assert rollouts.inner == [] and rollouts.train is rollouts.valid  # sampled with theta itself
    loss, metrics = learner.evaluate(None, rollouts)
    assert loss is None and "returns/post_adaptation" not in metrics
    # its TRPO objective is the surrogate of theta's own episodes: exactly 0 at theta (ratio 1, advantages mean 0)
    surrogate, kl = learner.objective(rollouts)(learner.params)
    assert kl.item() == 0 and abs(surrogate.item()) < 1e-6


def test_inner_step_leaves_meta_parameters_untouched_and_changes_the_policy():
    learner = tiny()
    before = {k: v.clone() for k, v in learner.model.state_dict().items()}
    rollouts = learner.adapt(learner.sample_tasks(np.random.default_rng(0)))
    stages = learner.adapted(learner.params, rollouts)
    assert len(stages) == 2  # theta (one copy per task), then after the inner step
    adapted = stages[-1]
    assert all(torch.equal(before[k], v) for k, v in learner.model.state_dict().items())
    assert adapted["log_std"].shape == (3, 2)
    assert not torch.allclose(adapted["mean.net.0.weight"][0], learner.params["mean.net.0.weight"])


def test_several_inner_steps_sample_again_before_each_step_and_chain_the_step_sizes():
    config = MAMLRLConfig(meta_batch_size=3, num_trajectories=4, horizon=10, hidden=(8,), inner_steps=2,
                          later_inner_lr=0.1)
    learner = MAMLRLLearner(config, heldout=heldout_goals(4), device="cpu", eval_steps=1)
    assert [config.step_size(i) for i in range(3)] == [0.5, 0.1, 0.1]
    assert MAMLRLConfig(inner_lr=0.4).step_size(2) == 0.2  # default: half of the first step size
    rollouts = learner.adapt(learner.sample_tasks(np.random.default_rng(0)))
    assert len(rollouts.inner) == 2 and learner.env_steps == sum(e.num_steps for e in [*rollouts.inner, rollouts.valid])
    stages = learner.adapted(learner.params, rollouts)
    # the chain by hand: step 1 on the first episodes with 0.5, step 2 on the second episodes with 0.1
    by_hand = adapt_policy(learner.model, adapt_policy(learner.model, learner.params, rollouts.inner[0], 0.5, 0.99),
                           rollouts.inner[1], 0.1, 0.99, per_task_params=True)
    assert all(torch.allclose(stages[2][k], by_hand[k], atol=1e-6) for k in by_hand)
    # the episodes of the second step were sampled with the once-adapted policies: their log-probs say so
    out = batched_forward(learner.model, {k: v.detach() for k, v in stages[1].items()}, rollouts.inner[1].flat("obs"))
    assert torch.allclose(gaussian_log_prob(out, rollouts.inner[1].flat("actions")),
                          rollouts.inner[1].flat("log_probs"), atol=1e-4)
    # the meta-gradient reaches theta through both steps
    loss, _ = learner.objective(rollouts)(learner.params)
    grads = torch.autograd.grad(loss, list(learner.params.values()))
    assert all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    history = train(learner, 1, progress=False)
    assert np.isfinite(history.last("eval/return_step1"))


def test_sampling_is_repeatable_and_shaped():
    policy = GaussianMLPPolicy(2, 2, (8,))
    tasks = [NavigationTask(goal=(0.3, 0.1)), NavigationTask(goal=(-0.2, 0.4))]
    params = expand_params({k: v.detach() for k, v in parameters_of(policy).items()}, 2)
    a = sample_episodes(policy, params, tasks, 3, torch.Generator().manual_seed(5), horizon=7)
    b = sample_episodes(policy, params, tasks, 3, torch.Generator().manual_seed(5), horizon=7)
    assert a.obs.shape == (2, 3, 7, 2) and a.rewards.shape == (2, 3, 7)
    assert torch.equal(a.actions, b.actions) and torch.equal(a.rewards, b.rewards)
    # rewards are minus the distance to each task's own goal
    goal = torch.tensor([0.3, 0.1])
    position = a.obs[0, :, 1:]  # observation at t+1 = position after action t
    assert torch.allclose(a.rewards[0, :, :-1], -(position - goal).norm(dim=-1), atol=1e-5)
    advantages = a.advantages()
    assert torch.allclose(normalize_per_task(advantages).mean(dim=(1, 2)), torch.zeros(2), atol=1e-5)


def test_policy_actions_are_scaled_into_the_env():
    # rllab's normalize: the policy acts in [-1, 1], the env moves by 0.1 times that
    policy = GaussianMLPPolicy(2, 2, (8,), action_scale=0.1)
    params = expand_params({k: v.detach() for k, v in parameters_of(policy).items()}, 1)
    episodes = sample_episodes(policy, params, [NavigationTask(goal=(0.9, 0.9))], 2, torch.Generator().manual_seed(0),
                               horizon=5)
    moves = episodes.obs[0, :, 1:] - episodes.obs[0, :, :-1]  # (2, 4, 2) position changes
    assert torch.allclose(moves, (0.1 * episodes.actions[0, :, :-1]).clamp(-0.1, 0.1), atol=1e-6)
    assert episodes.actions.abs().max() > 1.0  # some sampled actions exceed the box and are clipped
    with pytest.raises(ValueError, match="action_scale"):
        GaussianMLPPolicy(2, 2, action_scale=0.0)


@pytest.mark.parametrize("outer", ["maml-trpo", "promp", "pretrained"])
def test_tiny_training_runs(outer):
    learner = tiny(outer)
    history = train(learner, 2, progress=False)
    assert "eval/return_step1" in history
    assert np.isfinite(history.last("eval/return_step0"))
    # environment steps: at most 3 tasks x 4 trajectories x 10 steps per sampling, two samplings but for pretrained
    steps = history["charts/env_steps"][1]
    per_iteration = 3 * 4 * 10 * (1 if outer == "pretrained" else 2)
    assert steps[0] <= per_iteration and steps[1] > steps[0] and steps[1] <= 2 * per_iteration
    assert learner.state_dict()["env_steps"] == steps[1]


@pytest.mark.parametrize("kwargs,match", [
    ({"inner_lr": -1.0}, "inner_lr"), ({"num_trajectories": 0}, "num_trajectories"),
    ({"max_kl": 0.0}, "max_kl"), ({"outer": "sgd"}, "outer"), ({"inner_steps": 0}, "inner_steps"),
    ({"later_inner_lr": -0.25}, "later_inner_lr"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MAMLRLConfig(**kwargs)


def test_policy_with_wrong_action_size_is_rejected():
    policy = GaussianMLPPolicy(2, 3, (8,))  # the navigation env has 2D actions
    params = expand_params({k: v.detach() for k, v in parameters_of(policy).items()}, 1)
    with pytest.raises(ValueError, match="actions must have shape"):
        sample_episodes(policy, params, [NavigationTask(goal=(0.1, 0.1))], 2, torch.Generator(), horizon=3)
    with pytest.raises(ValueError, match="num_episodes"):
        sample_episodes(policy, params, [NavigationTask(goal=(0.1, 0.1))], 0, torch.Generator(), horizon=3)


def test_shipped_navigation_checkpoints_score_what_they_claim():
    from metarl_course.experiments import load_result

    scores = {}
    for name in ("maml-trpo-navigation", "maml-trpo-2step-navigation", "promp-navigation", "pretrained-navigation"):
        learner, data = load_result(name)
        now = learner.evaluate_heldout()
        assert not rescore_problems(name, data, now)  # within what floating point may move (evaluation.py)
        scores[name] = now
        steps = [value for _, value in data["history"]["charts/env_steps"]]  # cumulative, one per meta-update
        assert len(steps) == data["iterations"] and all(b > a for a, b in zip(steps, steps[1:])), name
    maml, pretrained = scores["maml-trpo-navigation"], scores["pretrained-navigation"]
    # at the meta-training step size 0.5 the meta-learned policies gain a lot from one step; the pretrained one
    # overshoots there (chapter 04 tunes its step size)
    assert maml["eval/return_step1"] - maml["eval/return_step0"] > 15
    assert maml["eval/return_step1"] > -12 and maml["eval/return_step3"] > maml["eval/return_step1"] + 4
    assert scores["promp-navigation"]["eval/return_step3"] > scores["promp-navigation"]["eval/return_step1"] + 4
    assert maml["eval/return_step1"] > pretrained["eval/return_step1"]
    # meta-trained through two steps with a loss after each: Finn et al.'s curve (-11.7 after one step, -3.2 after three)
    two = scores["maml-trpo-2step-navigation"]
    assert two["eval/return_step1"] >= -12 and two["eval/return_step3"] >= -4
    assert scores["promp-navigation"]["eval/return_step1"] > pretrained["eval/return_step1"]


def test_oracle_heads_straight_for_the_goal():
    from metarl_course.tasks.navigation import oracle_returns

    # (0.1, 0.05) is 0.15 from the goal, (0.2, 0.05) is 0.05, then the goal itself: the episode ends
    assert oracle_returns([NavigationTask(goal=(0.25, 0.05))]).item() == pytest.approx(-0.2, abs=1e-5)
    slow = oracle_returns([NavigationTask(goal=(0.25, 0.05), dynamics=0.5)]).item()
    assert slow < -0.2  # half-speed dynamics take more steps


def test_linear_baseline_with_a_mask_ignores_the_masked_steps():
    g = torch.Generator().manual_seed(3)
    obs = torch.randn(1, 4, 30, 2, generator=g, dtype=torch.float64)
    exact = 2.0 * obs[..., 0] - obs[..., 1] ** 2 + 0.5
    mask = torch.zeros(1, 4, 30, dtype=torch.bool)
    mask[:, :2] = True
    noisy = torch.where(mask, exact, torch.full_like(exact, 1e3))  # garbage where masked out
    assert torch.allclose(linear_baseline(obs, noisy, reg=1e-10, mask=mask), exact, atol=1e-6)


def test_sample_env_steps_keeps_whole_episodes_up_to_the_budget():
    policy = GaussianMLPPolicy(2, 2, (8,), action_scale=0.1)
    tasks = [NavigationTask(goal=(0.05, 0.0)), NavigationTask(goal=(0.4, -0.3))]
    params = expand_params({k: v.detach() for k, v in parameters_of(policy).items()}, 2)
    episodes = sample_env_steps(policy, params, tasks, min_steps=95, chunk=3, generator=torch.Generator().manual_seed(0),
                                horizon=20)
    lengths = episodes.alive.sum(dim=-1)  # (T, N); dropped episodes have length 0
    for task in range(2):
        kept = episodes.kept[task]
        n = int(kept.sum())
        assert kept[:n].all() and not kept[n:].any()  # the first n episodes count, in order
        assert lengths[task, :n].sum() >= 95 and lengths[task, :n - 1].sum() < 95  # the n-th one reached the budget
        assert episodes.rewards[task, n:].abs().sum() == 0
        mean = episodes.episode_returns[task, :n].mean()
        assert torch.allclose(episodes.task_returns[task], mean)
    with pytest.raises(ValueError, match="min_steps"):
        sample_env_steps(policy, params, tasks, 0, 3, torch.Generator())


def test_evaluation_with_an_env_step_budget_adapts_on_the_kept_episodes_only():
    learner = MAMLRLLearner(MAMLRLConfig(num_trajectories=4, horizon=20, hidden=(8,), eval_budget=2.0),
                            heldout=heldout_goals(3), device="cpu", eval_steps=1)
    curve = learner.adaptation_returns()
    assert curve.shape == (3, 2) and torch.isfinite(curve).all()
    # the inner loss is a mean over the kept episodes: padding a batch with dropped episodes changes nothing
    episodes = sample_episodes(learner.model, expand_params({k: v.detach() for k, v in learner.params.items()}, 3),
                               learner.heldout, 4, torch.Generator().manual_seed(1), horizon=20)
    dropped = Episodes(*(torch.cat([t, t[:, :2]], dim=1) for t in (episodes.obs, episodes.actions)),
                       torch.cat([episodes.rewards, torch.zeros_like(episodes.rewards[:, :2])], dim=1),
                       *(torch.cat([t, t[:, :2]], dim=1) for t in (episodes.log_probs, episodes.outputs)),
                       torch.cat([episodes.alive, torch.zeros_like(episodes.alive[:, :2])], dim=1))
    a = adapt_policy(learner.model, learner.params, episodes, 0.5, 0.99)
    b = adapt_policy(learner.model, learner.params, dropped, 0.5, 0.99)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_evaluate_command_rescores_a_shipped_file(capsys):
    from metarl_course.__main__ import main

    assert main(["evaluate", "promp-navigation"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[1].startswith("return_step1")
    now, stored = float(lines[1].split()[2]), float(lines[1].split()[4])
    # printed to 3 decimals: the tolerance plus one unit of the last digit
    assert abs(now - stored) <= rescore_tolerance("promp-navigation", "eval/return_step1", stored) + 1e-3
    assert main(["evaluate", "maml-sinusoid", "--eval-budget", "2"]) == 2
    err = capsys.readouterr().err
    assert "cannot change 'eval_budget'" in err and "maml-trpo-navigation" in err
    assert main(["evaluate", "rl2-bandit-n10-k5", "--set", "eval_seed=1.5"]) == 2
    assert "eval_seed must be a whole number" in capsys.readouterr().err


def test_loss_after_every_step_averages_the_surrogate_after_each_inner_step():
    kwargs = dict(meta_batch_size=3, num_trajectories=4, horizon=10, hidden=(8,), inner_steps=2)
    every = MAMLRLLearner(MAMLRLConfig(**kwargs, loss_after_every_step=True), heldout=heldout_goals(2), device="cpu")
    last = MAMLRLLearner(MAMLRLConfig(**kwargs), heldout=heldout_goals(2), device="cpu")
    rollouts = every.adapt(every.sample_tasks(np.random.default_rng(0)))
    loss_every, kl_every = every.objective(rollouts)(every.params)
    loss_last, kl_last = last.objective(rollouts)(every.params)
    # after step 1 by hand: the episodes sampled with the once-adapted policies, importance-weighted
    once = every.adapted(every.params, rollouts)[1]
    episodes = rollouts.inner[1]
    out = batched_forward(every.model, once, episodes.flat("obs"))
    ratio = torch.exp(gaussian_log_prob(out, episodes.flat("actions")) - episodes.flat("log_probs"))
    loss_first = -(ratio * episodes.advantages().reshape(3, -1)).mean()
    assert torch.allclose(loss_every, (loss_first + loss_last) / 2, atol=1e-6)
    assert kl_every.item() == pytest.approx(0.0, abs=1e-6) and kl_last.item() == pytest.approx(0.0, abs=1e-6)


def test_later_step_size_is_chosen_on_validation_goals_not_the_heldout_ones():
    from metarl_course.rl.maml_rl import adaptation_returns, choose_later_lr
    from metarl_course.tasks.heldout import validation_goals

    goals = validation_goals(3)
    assert not {t.goal for t in goals} & {t.goal for t in heldout_goals(40)}
    with pytest.raises(ValueError, match="held-out"):
        validation_goals(seed=2017)
    config = MAMLRLConfig(num_trajectories=4, horizon=10, hidden=(8,))
    policy = GaussianMLPPolicy(2, 2, (8,), action_scale=0.1)
    best, scores = choose_later_lr(policy, config, (0.3, 0.1), goals, num_steps=2, seeds=(0,))
    assert set(scores) == {0.3, 0.1} and scores[best] == max(scores.values())
    assert scores[0.1] == pytest.approx(adaptation_returns(policy, config, goals, 2, 0, later_lr=0.1)[:, -1].mean().item())
    with pytest.raises(ValueError, match="candidates"):
        choose_later_lr(policy, config, (0.1, -1.0), goals)


def _episodes_that_end_early(seed=0, T=3, N=4, H=12):
    """Random episodes of T tasks whose episodes end after 3..H steps (alive False after; rewards 0 there)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, H + 1, (T, N), generator=g)
    alive = torch.arange(H)[None, None, :] < lengths[..., None]  # (T, N, H)
    obs = torch.randn(T, N, H, 2, generator=g, dtype=torch.float64)
    actions = torch.randn(T, N, H, 2, generator=g, dtype=torch.float64)
    rewards = torch.where(alive, -torch.rand(T, N, H, generator=g, dtype=torch.float64), torch.zeros(()))
    outputs = torch.zeros(T, N, H, 4, dtype=torch.float64)
    return Episodes(obs=obs, actions=actions, rewards=rewards, log_probs=gaussian_log_prob(outputs, actions),
                    outputs=outputs, alive=alive)


def _cut_paths_step(policy, episodes, lr, gamma):
    """The papers' samplers: each path cut where it ends, the baseline fitted on real steps only, advantages
    normalised over them, the loss a mean over them; one gradient step per task (written independently)."""
    returns = discounted_returns(episodes.rewards, gamma)
    steps = []
    for task in range(episodes.obs.shape[0]):
        alive = episodes.alive[task]
        obs, ret = episodes.obs[task][alive], returns[task][alive]  # (M, 2), (M,): the real steps only
        t = (torch.nonzero(alive)[:, 1].double() / 100.0)[:, None]
        features = torch.cat([obs, obs ** 2, t, t ** 2, t ** 3, torch.ones_like(t)], dim=1)
        weights = torch.linalg.solve(features.T @ features + 1e-5 * torch.eye(features.shape[1], dtype=torch.float64),
                                     features.T @ ret)
        adv = ret - features @ weights
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        params = {k: v.detach().clone().requires_grad_() for k, v in policy.named_parameters()}
        out = torch.func.functional_call(policy, params, (obs,))
        loss = -(gaussian_log_prob(out, episodes.actions[task][alive]) * adv).mean()
        grads = torch.autograd.grad(loss, list(params.values()))
        steps.append({k: v - lr * grad for (k, v), grad in zip(params.items(), grads)})
    return steps


def test_real_steps_only_matches_cut_paths_and_differs_from_the_padded_convention():
    """MAMLRLConfig.real_steps_only: the inner step equals one computed on paths cut where they end (Finn et al.'s
    and Rothfuss et al.'s samplers); the default (padded steps counted) gives another step when episodes end early."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(2, 2, hidden=(8,)).double()
    episodes = _episodes_that_end_early()
    params = expand_params({k: v.detach() for k, v in parameters_of(policy).items()}, 3)
    real = adapt_policy(policy, params, episodes, 0.1, 0.99, per_task_params=True, real_steps_only=True)
    padded = adapt_policy(policy, params, episodes, 0.1, 0.99, per_task_params=True)
    reference = _cut_paths_step(policy, episodes, 0.1, 0.99)
    for task, ref in enumerate(reference):
        for name, value in ref.items():
            assert torch.allclose(real[name][task], value, atol=1e-10), (task, name)
    assert max((real[k] - padded[k]).abs().max().item() for k in real) > 1e-3
    # every step real: the two conventions are the same
    full = Episodes(**{**{f: getattr(episodes, f) for f in ("obs", "actions", "rewards", "log_probs", "outputs")},
                       "alive": torch.ones_like(episodes.alive)})
    a = adapt_policy(policy, params, full, 0.1, 0.99, per_task_params=True, real_steps_only=True)
    b = adapt_policy(policy, params, full, 0.1, 0.99, per_task_params=True)
    assert all(torch.allclose(a[k], b[k], atol=1e-12) for k in a)


@pytest.mark.parametrize("outer", ["maml-trpo", "promp"])
def test_real_steps_only_trains(outer):
    config = MAMLRLConfig(outer=outer, meta_batch_size=4, num_trajectories=3, horizon=20, fisher_tasks=2,
                          real_steps_only=True)
    learner = MAMLRLLearner(config, heldout=heldout_goals()[:3], seed=0, device="cpu", eval_steps=1)
    history = train(learner, 2, seed=0, progress=False)
    assert np.isfinite(history.last("eval/return_step1"))
