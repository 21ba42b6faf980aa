"""VariBAD: a belief over the task, learned as a VAE, and a policy that acts on it (Zintgraf et al. 2020).

RL² (chapter 05) leaves everything to one recurrent policy. VariBAD splits the job in two:

* an **encoder** (a GRU) reads the trial so far, one transition at a time, and outputs a Gaussian
  ``q(m | tau_{:t}) = N(mu_t, diag(sigma_t^2))`` over a latent task description ``m`` (5 numbers here): the
  agent's *belief* about the task;
* a **reward decoder** ``p(r | s', m)`` says, for a latent ``m``, which reward each state would give (on the
  gridworld: for every cell, the probability that it is the goal);
* they are trained as a VAE on whole trials: for every belief ``q_t`` (t = 0 .. T, the prior included), a
  sample ``m ~ q_t`` must explain the rewards of the **whole** trial, past and future, and ``q_t`` pays a KL
  penalty to ``q_{t-1}`` (to ``N(0, I)`` for t = 0). The ELBO of step t is
  ``sum_j log p(r_j | s'_j, m) - KL(q_t || q_{t-1})``, summed over t;
* a feed-forward **policy** sees the state and the belief's mean and log-variance and is trained by PPO on the
  trial's return (the belief is an input only: the RL loss does not flow into the encoder).

The model follows the authors' gridworld configuration (``config/gridworld/args_grid_varibad.py`` in
``lmzintgraf/varibad``): latent size 5, GRU of 64 units, state and reward embeddings of 8, a Bernoulli "is this
cell the goal" decoder with one output per cell and layers (32, 32), KL weight 0.01, decoding past and future,
the KL to the previous posterior, a tanh policy on embeddings of the state and of the (normalised) belief.
Changed to fit a laptop (each field of :class:`VariBADConfig` gives the authors' value): 128 trials stepped at
once by the batched env instead of 16 processes, about 11.5 million steps instead of the authors' 20 million, a
larger policy (layers (64, 64) and embeddings of 32 instead of (32,) and 16), the optimiser settings of the
course's RL² (PPO with 4 epochs, clip 0.2, learning rate 3e-3, gamma 0.99) and more VAE updates per step (10 of
128 trials, learning rate 3e-3).

Reference:
    Zintgraf, Shiarlis, Igl, Schulze, Gal, Hofmann, Whiteson (2020), "VariBAD: A Very Good Method for
    Bayes-Adaptive Deep RL via Meta-Learning", ICLR 2020, arXiv:1910.08348.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metarl_course.device import get_device
from metarl_course.evaluation import TrialEvaluation
from metarl_course.rl.returns import gae
from metarl_course.tasks.distribution import check_count
from metarl_course.rl.rl2 import TrialBatch
from metarl_course.seeding import normal, uniform
from metarl_course.tasks.heldout import GRIDWORLD_VALIDATION_SEED, RL2_HELDOUT_SEED


@dataclass(frozen=True)
class VariBADConfig:
    """VariBAD on the gridworld. "The authors" below: ``config/gridworld/args_grid_varibad.py`` of
    ``lmzintgraf/varibad``; where a default differs, the field says why (all measured on this gridworld with one
    CPU thread: with the authors' optimiser settings and our budget of about 1,500 iterations, the belief barely
    formed and trials returned under 10, against 37.21 for the Bayes-optimal agent)."""

    grid_size: int = 5
    horizon: int = 15
    episodes_per_trial: int = 4
    latent_dim: int = 5
    """The authors: 5."""
    encoder_hidden: int = 64
    """GRU units (the authors: 64)."""
    embedding: int = 8
    """State and reward embeddings fed to the encoder's GRU (the authors: 8 each, no action)."""
    decoder_layers: tuple[int, ...] = (32, 32)
    """The reward decoder's hidden layers (the authors: 32, 32; one Bernoulli output per cell)."""
    kl_weight: float = 0.01
    """Weight of the KL terms in the VAE loss (the authors: 0.01)."""
    policy_layers: tuple[int, ...] = (64, 64)
    """The policy's hidden layers, tanh (the authors: one of 32; with it, and with a policy given the exact
    belief, trials still returned under 34 after 600 iterations, where (64, 64) reached 35.9 after 400)."""
    policy_embedding: int = 32
    """Embeddings of the state and of the belief fed to the policy (the authors: 16 each)."""
    num_trials: int = 128
    """Trials (tasks) played side by side per iteration (the authors: 16 processes, one trial each)."""
    ppo_epochs: int = 4
    """PPO passes over each batch (the authors: 2; 4 as the course's RL²)."""
    ppo_minibatches: int = 4
    """Minibatches per pass, of single steps (the policy is feed-forward; the authors: 4)."""
    clip: float = 0.2
    """PPO's ratio clip (the authors: 0.05, which with our few updates learned several times slower)."""
    lr: float = 3e-3
    """The policy's Adam learning rate (the authors: 7e-4; 3e-3 as the course's RL²)."""
    gamma: float = 0.99
    """Discount over the whole trial (the authors: 0.95; 0.99 as RL² learned faster here)."""
    gae_lambda: float = 0.95
    """GAE's lambda (the authors: 0.95)."""
    entropy_coef: float = 0.01
    """Entropy bonus (the authors: 0.01)."""
    value_coef: float = 0.5
    """Weight of the critic's squared error (the authors: 0.5; they also clip the value change, we do not)."""
    max_grad_norm: float = 0.5
    """The policy's gradient clip (the authors: 0.5)."""
    reward_scale: float = 0.1
    """Rewards are multiplied by this for the critic (as RL²'s ``reward_scale``; the authors normalise rewards)."""
    anneal_iterations: int = 0
    """The policy's learning rate and entropy bonus decay linearly to 0 over this many iterations (0: constant,
    as the authors), as RL²'s ``anneal_iterations``; the VAE's learning rate stays constant. (Annealed over 1500
    iterations, one run stalled at 18.6 per trial: the policy's step shrank before it had learned to use the
    belief.)"""
    lr_vae: float = 3e-3
    """The encoder's and decoder's Adam learning rate (the authors: 1e-3)."""
    vae_updates: int = 10
    """VAE updates per iteration (the authors: 3 per 16 x 60 steps, about 26 times more per step than here;
    with 3, the decoded belief had not yet found a goal after 600 updates)."""
    vae_batch_trials: int = 128
    """Trials per VAE update, drawn from the buffer of recent trials (the authors: 25)."""
    vae_buffer_trials: int = 2000
    """Recent trials kept for the VAE (the authors keep 100,000 frames, about 1,700 trials of 60 steps)."""
    num_eval_trials: int = 1000
    """Held-out trials (the 95% CI is over these)."""
    select_every: int = 100
    """Every this many iterations the policy is scored on ``num_validation_trials`` validation trials (their own
    seed, never the held-out one) and the best weights so far are kept; :meth:`VariBADLearner.finish_training`
    restores them (0: keep the last weights). The training curve oscillates: one run scored 37.4 after 800
    iterations, 3.8 after 500 and 27.7 after 1500."""
    num_validation_trials: int = 500
    validation_seed: int = GRIDWORLD_VALIDATION_SEED
    """Seed of the validation goals and random numbers (not ``eval_seed``: the held-out score stays unselected)."""
    eval_greedy: bool = True
    """Evaluate with the policy's most likely action, as the authors' evaluation does (``deterministic=True`` in
    ``utils/evaluation.py``); False samples actions as in training."""
    eval_seed: int = RL2_HELDOUT_SEED
    """Seed of the held-out goals and of the evaluation's random numbers: RL²'s, so both meet the same goals."""

    def __post_init__(self) -> None:
        check_count("anneal_iterations (0: no annealing)", self.anneal_iterations, minimum=0)
        check_count("select_every (0: keep the last weights)", self.select_every, minimum=0)
        check_count("num_validation_trials (a mean needs two)", self.num_validation_trials, minimum=2)
        if self.validation_seed == self.eval_seed:
            raise ValueError("validation_seed must differ from eval_seed: selecting on the held-out trials would "
                             "bias the held-out score")
        for name in ("grid_size", "horizon", "episodes_per_trial", "latent_dim", "encoder_hidden", "embedding",
                     "policy_embedding", "num_trials", "ppo_epochs", "ppo_minibatches", "vae_updates",
                     "vae_batch_trials", "vae_buffer_trials"):
            check_count(name, getattr(self, name))
        check_count("num_eval_trials (a confidence interval needs two)", self.num_eval_trials, minimum=2)
        for name in ("kl_weight", "clip", "lr", "lr_vae", "max_grad_norm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @property
    def trial_length(self) -> int:
        return self.horizon * self.episodes_per_trial

    def schedule(self, iteration: int) -> float:
        """The factor (1 down to 0) on the policy's ``lr`` and ``entropy_coef`` at ``iteration`` (0-based)."""
        if self.anneal_iterations == 0:
            return 1.0
        return max(0.0, 1.0 - iteration / self.anneal_iterations)

    @property
    def num_cells(self) -> int:
        return self.grid_size * self.grid_size


def _mlp(sizes: list[int], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), activation()]
    return nn.Sequential(*layers)


class BeliefEncoder(nn.Module):
    """GRU over (next state, reward) -> Gaussian belief (mean, log-variance) over the latent task."""

    def __init__(self, num_cells: int, config: VariBADConfig) -> None:
        super().__init__()
        self.num_cells, self.hidden_size = num_cells, config.encoder_hidden
        self.state_embed = nn.Linear(2, config.embedding)
        self.reward_embed = nn.Linear(1, config.embedding)
        self.gru = nn.GRU(2 * config.embedding, config.encoder_hidden)
        self.mean = nn.Linear(config.encoder_hidden, config.latent_dim)
        self.logvar = nn.Linear(config.encoder_hidden, config.latent_dim)
        self.grid_size = int(round(math.sqrt(num_cells)))

    def xy(self, cells: torch.Tensor) -> torch.Tensor:
        """Cell indices -> (x, y) scaled to [-1, 1]."""
        g = self.grid_size
        x, y = (cells // g).float(), (cells % g).float()
        return torch.stack([x, y], dim=-1) * (2.0 / max(g - 1, 1)) - 1.0

    def prior(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The belief before any step (from a zero hidden state): mean, logvar (B, L) and the hidden (1, B, H)."""
        hidden = torch.zeros(1, batch, self.hidden_size, device=device)
        return self.mean(hidden[0]), self.logvar(hidden[0]), hidden

    def forward(self, next_cells: torch.Tensor, rewards: torch.Tensor, hidden: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Beliefs after each of T transitions: next_cells, rewards (T, B) -> mean, logvar (T, B, L), hidden."""
        x = torch.cat([F.relu(self.state_embed(self.xy(next_cells))),
                       F.relu(self.reward_embed(rewards.unsqueeze(-1)))], dim=-1)
        out, hidden = self.gru(x, hidden)
        return self.mean(out), self.logvar(out), hidden


class RewardDecoder(nn.Module):
    """Latent task -> one logit per cell: the probability that the cell is the goal (reward +1)."""

    def __init__(self, num_cells: int, config: VariBADConfig) -> None:
        super().__init__()
        sizes = [config.latent_dim, *config.decoder_layers]
        self.body = _mlp(sizes, nn.ReLU)
        self.head = nn.Linear(sizes[-1], num_cells)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(latent))


class BeliefPolicy(nn.Module):
    """Actor-critic on (state, belief mean, belief log-variance); feed-forward: the belief carries the memory."""

    def __init__(self, num_actions: int, config: VariBADConfig) -> None:
        super().__init__()
        e = config.policy_embedding
        self.state_embed = nn.Linear(2, e)
        self.belief_embed = nn.Linear(2 * config.latent_dim, e)
        sizes = [2 * e, *config.policy_layers]
        self.body = _mlp(sizes, nn.Tanh)
        self.actor = nn.Linear(sizes[-1], num_actions)
        self.critic = nn.Linear(sizes[-1], 1)

        # running mean and variance of the belief inputs (the authors normalise the latent for the policy)
        self.register_buffer("belief_mean", torch.zeros(2 * config.latent_dim))
        self.register_buffer("belief_var", torch.ones(2 * config.latent_dim))
        self.register_buffer("belief_count", torch.tensor(0.0))

    def update_normalizer(self, beliefs: torch.Tensor) -> None:
        """Fold a batch of beliefs (..., 2L) into the running mean and variance (Chan et al.'s parallel update)."""
        x = beliefs.reshape(-1, beliefs.shape[-1]).detach()
        n, mean, var = x.shape[0], x.mean(0), x.var(0, unbiased=False)
        total = self.belief_count + n
        delta = mean - self.belief_mean
        self.belief_var.copy_((self.belief_var * self.belief_count + var * n
                               + delta ** 2 * self.belief_count * n / total) / total)
        self.belief_mean.add_(delta * n / total)
        self.belief_count.copy_(total)

    def normalize(self, belief: torch.Tensor) -> torch.Tensor:
        return ((belief - self.belief_mean) / (self.belief_var + 1e-8).sqrt()).clamp(-10.0, 10.0)

    def forward(self, state_xy: torch.Tensor, belief: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        belief = self.normalize(belief)
        h = torch.cat([torch.tanh(self.state_embed(state_xy)), torch.tanh(self.belief_embed(belief))], dim=-1)
        h = self.body(h)
        return self.actor(h), self.critic(h).squeeze(-1)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor, mean0: torch.Tensor, logvar0: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, e^logvar) || N(mean0, e^logvar0)), summed over the last dimension."""
    return 0.5 * (logvar0 - logvar + (logvar.exp() + (mean - mean0) ** 2) / logvar0.exp() - 1.0).sum(-1)


@dataclass
class ELBOTerms:
    """The VAE loss of a batch of trials and its parts (means over trials)."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    """Minus the summed log-likelihood of every reward of the trial, under a sample of every belief."""
    kl: torch.Tensor
    """Summed KL of each belief to the one before (the first to N(0, I))."""


def reward_reconstruction(logits: torch.Tensor, next_cells: torch.Tensor, rewards: torch.Tensor,
                          goal_reward: float = 1.0) -> torch.Tensor:
    """Minus the log-likelihood of every reward of each trial under every belief's decoded latent: (B,).

    Args:
        logits: (T + 1, B, cells): the decoder's "is this cell the goal" logits for a latent drawn from each
            belief t = 0 .. T (t = 0 is the prior).
        next_cells: (T, B) long: the cell each step led to.
        rewards: (T, B): the reward of each step; its target is 1 when it is the goal reward, else 0.

    Returns:
        For each trial, the binary cross-entropy summed over beliefs t and steps j (past *and* future):
        ``sum_t sum_j BCE(logits[t, b, next_cells[j, b]], rewards[j, b] == goal_reward)``.
    """
    T1, B, _ = logits.shape
    T = rewards.shape[0]
    index = next_cells.T[None].expand(T1, B, T).long()  # (T+1, B, T): every step's cell, for every belief
    picked = logits.gather(2, index)
    targets = (rewards.T[None] >= goal_reward - 1e-6).to(logits.dtype).expand_as(picked)
    return F.binary_cross_entropy_with_logits(picked, targets, reduction="none").sum((0, 2))


def belief_kl(means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """Each belief's KL to the one before it (the first, the prior, to N(0, I)), summed over time: (B,).

    Args:
        means, logvars: (T + 1, B, L): the beliefs t = 0 .. T.
    """
    previous_mean = torch.cat([torch.zeros_like(means[:1]), means[:-1]], 0)
    previous_logvar = torch.cat([torch.zeros_like(logvars[:1]), logvars[:-1]], 0)
    return gaussian_kl(means, logvars, previous_mean, previous_logvar).sum(0)


def elbo_terms(encoder: BeliefEncoder, decoder: RewardDecoder, next_cells: torch.Tensor, rewards: torch.Tensor,
               goal_reward: float, kl_weight: float, generator: torch.Generator | None = None) -> ELBOTerms:
    """VariBAD's negative ELBO on whole trials: ``next_cells``, ``rewards`` (T, B).

    For each belief t = 0..T (prior included), one latent sample decodes *all* T rewards (past and future)
    (:func:`reward_reconstruction`), and each belief pays its KL to the one before (:func:`belief_kl`).
    """
    T, B = rewards.shape
    mean0, logvar0, hidden = encoder.prior(B, rewards.device)
    mean, logvar, _ = encoder(next_cells, rewards, hidden)
    means = torch.cat([mean0[None], mean], 0)  # (T+1, B, L)
    logvars = torch.cat([logvar0[None], logvar], 0)
    noise = normal(means.shape, generator, means.device)
    latents = means + (0.5 * logvars).exp() * noise
    reconstruction = reward_reconstruction(decoder(latents), next_cells, rewards, goal_reward).mean()
    kl = belief_kl(means, logvars).mean()
    return ELBOTerms(reconstruction + kl_weight * kl, reconstruction, kl)


@dataclass
class BeliefTrials:
    """One batch of trials played by VariBAD: what PPO and the VAE need, all (T, B) unless said."""

    cells: torch.Tensor
    """The cell the agent acts from at each step."""
    next_cells: torch.Tensor
    """The cell each action led to (before the env moves the agent back to the start for a new episode)."""
    beliefs: torch.Tensor
    """(T, B, 2L): the belief (mean, logvar) the policy acted on."""
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    horizon: int

    def trial_returns(self) -> torch.Tensor:
        return self.rewards.sum(0)

    def episode_returns(self) -> torch.Tensor:
        """(B, episodes): the return of each episode of each trial."""
        T, B = self.rewards.shape
        return self.rewards.T.reshape(B, T // self.horizon, self.horizon).sum(-1)


class VariBADModel(nn.Module):
    """The three networks of VariBAD, saved and loaded together."""

    def __init__(self, config: VariBADConfig, num_actions: int = 5) -> None:
        super().__init__()
        self.config = config
        self.encoder = BeliefEncoder(config.num_cells, config)
        self.decoder = RewardDecoder(config.num_cells, config)
        self.policy = BeliefPolicy(num_actions, config)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def cells(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations (B, 2) float (x, y) -> cell indices x * grid_size + y (varibad's ``task_to_id``)."""
        obs = obs.long()
        return obs[..., 0] * self.config.grid_size + obs[..., 1]

    def goal_probabilities(self, mean: torch.Tensor, logvar: torch.Tensor | None = None, samples: int = 0,
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """The decoded belief over goal cells, normalised to sum to 1 over the cells: (..., cells).

        With ``samples`` > 0 the decoder's per-cell probabilities are averaged over that many latents drawn from
        the belief; else the belief's mean is decoded.
        """
        with torch.no_grad():
            if samples and logvar is not None:
                noise = normal((samples, *mean.shape), generator, mean.device)
                p = torch.sigmoid(self.decoder(mean + (0.5 * logvar).exp() * noise)).mean(0)
            else:
                p = torch.sigmoid(self.decoder(mean))
            return p / p.sum(-1, keepdim=True).clamp(min=1e-12)


def rollout(model: VariBADModel, env, generator: torch.Generator | None = None, seed: int | None = None,
            greedy: bool = False) -> tuple[BeliefTrials, torch.Tensor]:
    """Play one trial of every task of ``env`` (a :class:`~metarl_course.tasks.gridworld.BatchedGridNaviEnv`).

    The belief starts at the encoder's prior and is updated after every step from (cell reached, reward); it is
    carried across the episodes of the trial (the agent is put back on the start, the goal stays).

    Returns:
        the trials, and the beliefs after each step (T + 1, B, 2L): index 0 is the prior.
    """
    obs, _ = env.reset(seed=seed)
    B, T, device = env.num_envs, env.trial_length, model.device
    with torch.no_grad():
        mean, logvar, hidden = model.encoder.prior(B, device)
        beliefs_after = [torch.cat([mean, logvar], -1)]
        cells, next_cells, actions, log_probs, values, rewards = ([] for _ in range(6))
        for t in range(T):
            cell = model.cells(torch.as_tensor(obs, device=device))
            belief = beliefs_after[-1]
            logits, value = model.policy(model.encoder.xy(cell), belief)
            dist = torch.distributions.Categorical(logits=logits)
            if greedy:
                action = logits.argmax(-1)
            else:
                u = uniform((B,), generator, device)
                action = (dist.probs.cumsum(-1) < u[:, None]).sum(-1).clamp(max=logits.shape[-1] - 1)
            obs, reward, terminated, truncated, info = env.step(action)
            reached = info["final_obs"] if "final_obs" in info else obs
            reached_cell = model.cells(torch.as_tensor(reached, device=device))
            reward = torch.as_tensor(reward, device=device).float()
            mean, logvar, hidden = model.encoder(reached_cell[None], reward[None], hidden)
            beliefs_after.append(torch.cat([mean[0], logvar[0]], -1))
            cells.append(cell)
            next_cells.append(reached_cell)
            actions.append(action)
            log_probs.append(dist.log_prob(action))
            values.append(value)
            rewards.append(reward)
    stack = torch.stack
    beliefs = stack(beliefs_after)
    trials = BeliefTrials(stack(cells), stack(next_cells), beliefs[:-1], stack(actions), stack(log_probs),
                          stack(values), stack(rewards), env.horizon)
    return trials, beliefs


def ppo_update(model: VariBADModel, optimizer: torch.optim.Optimizer, trials: BeliefTrials, config: VariBADConfig,
               generator: torch.Generator | None = None, factor: float = 1.0) -> dict[str, float]:
    """PPO on the policy: GAE over the whole trial (the BAMDP ends only with the trial), then minibatches of steps.

    The policy is feed-forward on (state, belief), so steps can be shuffled freely; the belief is an input only.
    ``factor`` scales the learning rate and the entropy bonus (the annealing schedule).
    """
    for group in optimizer.param_groups:
        group["lr"] = config.lr * factor
    T, B = trials.rewards.shape
    terminal = torch.zeros(T, B, dtype=torch.bool, device=trials.rewards.device)
    terminal[-1] = True
    advantages, returns = gae(trials.rewards * config.reward_scale, trials.values, torch.zeros(B, device=trials.rewards.device), terminal,
                              config.gamma, config.gae_lambda)
    flat = lambda x: x.reshape(T * B, *x.shape[2:])  # noqa: E731
    xy, beliefs = flat(model.encoder.xy(trials.cells)), flat(trials.beliefs)
    actions, old_log_probs = flat(trials.actions), flat(trials.log_probs)
    advantages, returns = flat(advantages), flat(returns)
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    metrics: dict[str, float] = {}
    for _ in range(config.ppo_epochs):
        order = torch.randperm(T * B, generator=generator, device="cpu").to(xy.device)
        for index in order.chunk(config.ppo_minibatches):
            logits, values = model.policy(xy[index], beliefs[index])
            dist = torch.distributions.Categorical(logits=logits)
            log_ratio = dist.log_prob(actions[index]) - old_log_probs[index]
            ratio = log_ratio.exp()
            adv = advantages[index]
            policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - config.clip, 1 + config.clip) * adv).mean()
            value_loss = 0.5 * (values - returns[index]).pow(2).mean()
            entropy = dist.entropy().mean()
            loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * factor * entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.policy.parameters(), config.max_grad_norm)
            optimizer.step()
            metrics = {"losses/policy": policy_loss.item(), "losses/value": value_loss.item(),
                       "losses/entropy": entropy.item()}
    return metrics


class VariBADLearner:
    """VariBAD for :func:`metarl_course.training.train`: an iteration is one trial of each of ``num_trials`` tasks,
    one PPO update of the policy and ``vae_updates`` ELBO steps of the encoder and decoder on recent trials."""

    def __init__(self, config: VariBADConfig, seed: int = 0, device: torch.device | str | None = None) -> None:
        from metarl_course.tasks.gridworld import BatchedGridNaviEnv, GridNaviDistribution

        self.config, self.device = config, torch.device(device) if device is not None else get_device()
        torch.manual_seed(seed)
        self.distribution = GridNaviDistribution(num_cells=config.grid_size)
        self.model = VariBADModel(config).to(self.device)
        self.policy_optimizer = torch.optim.Adam(self.model.policy.parameters(), lr=config.lr, eps=1e-8)
        self.vae_optimizer = torch.optim.Adam([*self.model.encoder.parameters(), *self.model.decoder.parameters()],
                                              lr=config.lr_vae)
        self._env_class = BatchedGridNaviEnv
        self.env = self._make_env(self.distribution.sample(config.num_trials, np.random.default_rng(seed)))
        self.generator = torch.Generator()
        self.env_steps = 0
        self.updates = 0
        """Updates done so far (the annealing schedule's clock; resumed runs keep it)."""
        self.best: tuple[float, int, dict] | None = None
        """(validation return, iteration, weights) of the best validation score so far."""
        self._buffer: list[tuple[torch.Tensor, torch.Tensor]] = []  # (next_cells, rewards) (T, B) per iteration

    def _make_env(self, tasks: list):
        c = self.config
        return self._env_class(tasks, horizon=c.horizon, episodes_per_trial=c.episodes_per_trial, device=self.device)

    # ---------------------------------------------------------------- training (MetaLearner)
    def sample_tasks(self, rng: np.random.Generator) -> TrialBatch:
        return TrialBatch(self.distribution.sample(self.config.num_trials, rng), int(rng.integers(2**31 - 1)))

    def adapt(self, batch: TrialBatch) -> BeliefTrials:
        self.env.set_tasks(batch.tasks)
        self.generator.manual_seed(batch.seed)
        trials, _ = rollout(self.model, self.env, self.generator, seed=batch.seed)
        self.env_steps += trials.rewards.numel()
        return trials

    def evaluate(self, batch: TrialBatch, adapted: BeliefTrials) -> tuple[None, dict[str, float]]:
        episodes = adapted.episode_returns().mean(0)
        metrics = {"charts/trial_return": adapted.trial_returns().mean().item(), "charts/env_steps": float(self.env_steps)}
        metrics.update({f"charts/episode{i + 1}_return": v.item() for i, v in enumerate(episodes)})
        return None, metrics

    def meta_update(self, batch: TrialBatch, adapted: BeliefTrials, meta_loss: None) -> dict[str, float]:
        metrics = ppo_update(self.model, self.policy_optimizer, adapted, self.config, self.generator,
                             self.config.schedule(self.updates))
        self.model.policy.update_normalizer(adapted.beliefs)  # after the update: PPO saw the inputs it acted on
        self.updates += 1
        self._buffer.append((adapted.next_cells, adapted.rewards))
        while sum(r.shape[1] for _, r in self._buffer) > self.config.vae_buffer_trials:
            self._buffer.pop(0)
        next_cells = torch.cat([c for c, _ in self._buffer], 1)
        rewards = torch.cat([r for _, r in self._buffer], 1)
        from metarl_course.tasks.gridworld import GOAL_REWARD

        for _ in range(self.config.vae_updates):
            pick = torch.randint(rewards.shape[1], (self.config.vae_batch_trials,), generator=self.generator)
            terms = elbo_terms(self.model.encoder, self.model.decoder, next_cells[:, pick], rewards[:, pick],
                               GOAL_REWARD, self.config.kl_weight, self.generator)
            self.vae_optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            self.vae_optimizer.step()
        metrics.update({"losses/vae_reconstruction": terms.reconstruction.item(), "losses/vae_kl": terms.kl.item()})
        if self.config.select_every and self.updates % self.config.select_every == 0:
            score = self.validation_score()
            metrics["charts/validation_return"] = score
            if self.best is None or score > self.best[0]:
                self.best = (score, self.updates, copy.deepcopy(self.model.state_dict()))
        return metrics

    def validation_score(self) -> float:
        """Mean trial return on the validation trials (greedy as the evaluation; never the held-out trials)."""
        tasks = self.distribution.sample(self.config.num_validation_trials,
                                         np.random.default_rng(self.config.validation_seed))
        generator = torch.Generator()
        generator.manual_seed(self.config.validation_seed)
        trials, _ = rollout(self.model, self._make_env(tasks), generator, seed=self.config.validation_seed,
                            greedy=self.config.eval_greedy)
        return float(trials.trial_returns().mean())

    def finish_training(self) -> dict[str, float]:
        """Restore the weights that scored best on the validation trials (see ``select_every``); returns which."""
        if self.best is None:
            return {}
        score, iteration, state = self.best
        self.model.load_state_dict(state)
        return {"charts/selected_iteration": float(iteration), "charts/selected_validation_return": score}

    # ---------------------------------------------------------------- evaluation
    def heldout_tasks(self, num_trials: int | None = None) -> list:
        """The fixed held-out goals: drawn from ``eval_seed``, the same as RL²'s on the gridworld."""
        n = num_trials or self.config.num_eval_trials
        return self.distribution.sample(n, np.random.default_rng(self.config.eval_seed))

    def evaluate_trials(self, num_trials: int | None = None, greedy: bool | None = None
                        ) -> tuple[TrialEvaluation, BeliefTrials, torch.Tensor]:
        """Play the held-out trials (same goals and random numbers every call) and score them.

        ``greedy`` (default: ``config.eval_greedy``) takes the most likely action instead of sampling one."""
        greedy = self.config.eval_greedy if greedy is None else greedy
        tasks = self.heldout_tasks(num_trials)
        env = self._make_env(tasks)
        generator = torch.Generator()
        generator.manual_seed(self.config.eval_seed)
        trials, beliefs = rollout(self.model, env, generator, seed=self.config.eval_seed, greedy=greedy)
        result = TrialEvaluation(trials.trial_returns().cpu().double().numpy(),
                                 trials.episode_returns().cpu().double().numpy())
        return result, trials, beliefs

    def evaluate_heldout(self) -> dict[str, float]:
        result, _, _ = self.evaluate_trials()
        metrics = {"eval/trial_return": result.mean, "eval/trial_return_ci95": result.ci95}
        for i, v in enumerate(result.episode_returns.mean(0)):
            metrics[f"eval/episode{i + 1}_return"] = float(v)
        return metrics

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "policy_optimizer": self.policy_optimizer.state_dict(),
                "vae_optimizer": self.vae_optimizer.state_dict(), "env_steps": self.env_steps, "updates": self.updates,
                # the VAE's buffer of recent trials, so that a resumed run trains as an uninterrupted one
                "buffer": [(c.cpu(), r.cpu()) for c, r in self._buffer],
                **({"best_score": self.best[0], "best_iteration": self.best[1], "best_model": self.best[2]}
                   if self.best is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.policy_optimizer.load_state_dict(state["policy_optimizer"])
        self.vae_optimizer.load_state_dict(state["vae_optimizer"])
        self.env_steps = int(state.get("env_steps", 0))
        self.updates = int(state.get("updates", 0))
        self._buffer = [(c.to(self.device), r.to(self.device)) for c, r in state.get("buffer", [])]
        self.best = ((float(state["best_score"]), int(state["best_iteration"]), state["best_model"])
                     if "best_model" in state else None)
