"""VariBAD: the ELBO's terms against plain calculations, the rollout's bookkeeping, and learning in a short run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from metarl_course.rl.gridworld_bayes import goal_posterior
from metarl_course.rl.varibad import (BeliefEncoder, RewardDecoder, VariBADConfig, VariBADLearner, belief_kl,
                                      elbo_terms, gaussian_kl, reward_reconstruction, rollout)
from metarl_course.tasks.gridworld import GOAL_REWARD, STEP_REWARD


def test_gaussian_kl_matches_the_closed_form_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    mean0, logvar0 = torch.randn(3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(mean0, (0.5 * logvar0).exp())
    exact = torch.distributions.kl_divergence(q, p).sum()
    assert torch.allclose(gaussian_kl(mean, logvar, mean0, logvar0), exact, atol=1e-12)
    samples = q.sample((200_000,))
    mc = (q.log_prob(samples) - p.log_prob(samples)).sum(-1)
    assert abs(mc.mean() - exact) < 4 * mc.std() / math.sqrt(len(mc))  # the estimate's 4-sigma band
    assert gaussian_kl(mean, logvar, mean, logvar).abs().max() == 0


def test_reward_reconstruction_equals_a_loop_over_beliefs_and_steps():
    g = torch.Generator().manual_seed(1)
    T, B, cells = 6, 3, 25
    logits = torch.randn(T + 1, B, cells, generator=g, dtype=torch.float64)
    next_cells = torch.randint(cells, (T, B), generator=g)
    rewards = torch.where(torch.rand(T, B, generator=g) < 0.3, GOAL_REWARD, STEP_REWARD).double()
    loop = torch.zeros(B, dtype=torch.float64)
    for b in range(B):
        for t in range(T + 1):  # every belief, the prior included
            for j in range(T):  # decodes every step, past and future
                target = 1.0 if rewards[j, b] == GOAL_REWARD else 0.0
                p = torch.sigmoid(logits[t, b, next_cells[j, b]])
                loop[b] -= target * torch.log(p) + (1 - target) * torch.log(1 - p)
    assert torch.allclose(reward_reconstruction(logits, next_cells, rewards), loop, atol=1e-9)


def test_belief_kl_chains_each_belief_to_the_one_before():
    g = torch.Generator().manual_seed(2)
    means, logvars = torch.randn(4, 2, 5, generator=g), torch.randn(4, 2, 5, generator=g)
    chain = gaussian_kl(means[0], logvars[0], torch.zeros(2, 5), torch.zeros(2, 5))
    for t in range(1, 4):
        chain = chain + gaussian_kl(means[t], logvars[t], means[t - 1], logvars[t - 1])
    assert torch.allclose(belief_kl(means, logvars), chain, atol=1e-5)


def test_the_elbo_is_its_two_terms():
    config = VariBADConfig()
    torch.manual_seed(0)
    encoder, decoder = BeliefEncoder(25, config), RewardDecoder(25, config)
    next_cells = torch.randint(25, (60, 4))
    rewards = torch.full((60, 4), STEP_REWARD)
    terms = elbo_terms(encoder, decoder, next_cells, rewards, GOAL_REWARD, 0.01, torch.Generator().manual_seed(0))
    assert torch.isclose(terms.loss, terms.reconstruction + 0.01 * terms.kl)
    assert terms.kl >= 0 and terms.reconstruction > 0


@pytest.fixture(scope="module")
def learner():
    return VariBADLearner(VariBADConfig(num_trials=16, num_eval_trials=42, vae_batch_trials=16), seed=0, device="cpu")


def test_a_trial_keeps_its_belief_across_episodes(learner):
    env = learner._make_env(learner.distribution.sample(16, np.random.default_rng(0)))
    trials, beliefs = rollout(learner.model, env, torch.Generator().manual_seed(0), seed=0)
    T = learner.config.trial_length
    assert trials.rewards.shape == (T, 16) and beliefs.shape == (T + 1, 16, 2 * learner.config.latent_dim)
    # the belief at the start of episode 2 is the belief after the last step of episode 1, not the prior
    h = learner.config.horizon
    assert torch.equal(trials.beliefs[h], beliefs[h]) and not torch.allclose(beliefs[h], beliefs[0])
    # every episode starts on the start cell; next_cells hold where the steps led, also at episode ends
    assert (trials.cells[::h] == 0).all()
    assert trials.episode_returns().shape == (16, learner.config.episodes_per_trial)
    assert torch.allclose(trials.episode_returns().sum(1), trials.trial_returns())


def test_evaluation_is_reproducible_and_uses_rl2s_goals(learner):
    first, _, _ = learner.evaluate_trials()
    second, _, _ = learner.evaluate_trials()
    assert np.array_equal(first.trial_returns, second.trial_returns)
    from metarl_course.rl.rl2 import RL2Config, RL2Learner

    rl2 = RL2Learner(RL2Config(task="gridworld", horizon=15, episodes_per_trial=4, num_trials=4, num_eval_trials=42),
                     device="cpu")
    assert [t.goal for t in rl2.heldout_env().tasks] == [t.goal for t in learner.heldout_tasks()]


def test_decoded_belief_is_a_distribution_over_cells(learner):
    _, _, beliefs = learner.evaluate_trials(num_trials=8)
    p = learner.model.goal_probabilities(beliefs[..., :5], beliefs[..., 5:], samples=4,
                                         generator=torch.Generator().manual_seed(0))
    assert p.shape == (61, 8, 25) and torch.allclose(p.sum(-1), torch.ones(61, 8), atol=1e-5)


def test_exact_posterior_and_learner_agree_on_the_cells():
    """The learner's cell index x * 5 + y is the exact posterior's [x, y] layout, flattened."""
    p = goal_posterior(np.array([[1, 0], [2, 0]]), np.array([STEP_REWARD, STEP_REWARD]))
    flat = p.reshape(-1)
    assert flat[1 * 5 + 0] == 0 and flat[2 * 5 + 0] == 0 and abs(flat.sum() - 1) < 1e-12



def test_bad_configs_say_what_to_change():
    with pytest.raises(ValueError, match="kl_weight"):
        VariBADConfig(kl_weight=0)
    with pytest.raises(ValueError, match="gamma"):
        VariBADConfig(gamma=1.5)
    with pytest.raises(ValueError, match="episodes_per_trial"):
        VariBADConfig(episodes_per_trial=0)


def test_a_resumed_run_trains_as_an_uninterrupted_one(tmp_path):
    from metarl_course.training import train

    config = VariBADConfig(num_trials=8, num_eval_trials=8, vae_batch_trials=8, vae_buffer_trials=16,
                           anneal_iterations=4)
    assert [config.schedule(i) for i in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    straight = VariBADLearner(config, seed=0, device="cpu")
    train(straight, num_iterations=4, seed=0, progress=False)
    interrupted = VariBADLearner(config, seed=0, device="cpu")
    train(interrupted, num_iterations=2, seed=0, progress=False, checkpoint_path=tmp_path / "run.pt")
    resumed = VariBADLearner(config, seed=0, device="cpu")
    train(resumed, num_iterations=4, seed=0, progress=False, checkpoint_path=tmp_path / "run.pt")
    assert resumed.updates == straight.updates == 4
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_the_weights_best_on_validation_are_kept_and_survive_a_resume(tmp_path):
    from metarl_course.training import train

    config = VariBADConfig(num_trials=8, num_eval_trials=8, vae_batch_trials=8, num_validation_trials=8,
                           select_every=2)
    learner = VariBADLearner(config, seed=0, device="cpu")
    history = train(learner, num_iterations=4, seed=0, progress=False, checkpoint_path=tmp_path / "run.pt")
    scores = [v for _, v in history.records["charts/validation_return"]]
    assert len(scores) == 2 and learner.best[0] == max(scores)
    resumed = VariBADLearner(config, seed=0, device="cpu")
    train(resumed, num_iterations=4, seed=0, progress=False, checkpoint_path=tmp_path / "run.pt")
    assert resumed.best[0] == learner.best[0] and resumed.best[1] == learner.best[1]
    selected = learner.finish_training()
    assert selected["charts/selected_iteration"] == learner.best[1]
    assert learner.validation_score() == pytest.approx(learner.best[0])  # the kept weights score what they scored
    with pytest.raises(ValueError, match="validation_seed must differ"):
        VariBADConfig(validation_seed=VariBADConfig().eval_seed)
