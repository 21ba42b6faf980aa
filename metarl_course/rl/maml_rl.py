"""MAML for reinforcement learning, with TRPO or ProMP as the outer optimiser.

Supervised MAML adapts on a fixed support set. In RL the "support set" is a
batch of trajectories that the policy itself samples, and the loss is an
expectation over them: the inner step is a policy-gradient step,

    theta_i' = theta + alpha * grad_theta E_{tau ~ pi_theta}[R(tau)]   (estimated by REINFORCE with a baseline),

and the outer step improves the *post-adaptation* return, estimated from fresh
trajectories sampled with theta_i'. Both use the functional
:func:`metarl_course.adaptation.adapt`; all tasks and trajectories step together
in the batched navigation env.

Outer optimisers:

* ``"maml-trpo"`` (Finn et al. 2017): one TRPO step on the importance-weighted
  post-adaptation surrogate, with the KL constraint measured on the adapted
  policies; the conjugate-gradient products differentiate through the inner step.
  As in the paper, the inner loss is REINFORCE's, which ignores that the inner
  trajectories depend on theta (the "meta-gradient through sampling").
* ``"promp"`` (Rothfuss et al. 2019): the inner loss is the low-variance-curvature
  (LVC) objective, whose second derivative accounts for that dependence with low
  variance; the outer objective is PPO's clipped surrogate of the adapted policies
  minus a KL penalty on the pre-adaptation policy, optimised by a few Adam steps
  on the same trajectories.
* ``"pretrained"``: no inner step during training: TRPO on the return over the task
  distribution (one policy for every goal), the paper's "pretrained" baseline
  (:class:`metarl_course.rl.pretrained.PretrainedPolicyLearner`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from metarl_course.adaptation import Params, adapt, batched_forward, parameters_of
from metarl_course.device import get_device
from metarl_course.rl.policies import GaussianMLPPolicy, gaussian_kl, gaussian_log_prob, lvc_loss, reinforce_loss
from metarl_course.rl.sampling import Episodes, expand_params, sample_env_steps, sample_episodes
from metarl_course.rl.trpo import trpo_step
from metarl_course.seeding import cpu_generator
from metarl_course.tasks.distribution import check_count
from metarl_course.tasks.heldout import heldout_goals, validation_goals
from metarl_course.tasks.navigation import NavigationDistribution, NavigationTask
from metarl_course.training import ModelOptimizerState

OUTER = ("maml-trpo", "promp", "pretrained")


@dataclass(frozen=True)
class MAMLRLConfig:
    """Hyperparameters of MAML-RL on 2D navigation.

    Defaults follow Finn et al. (2017) for MAML-TRPO (40 tasks x 20 trajectories,
    horizon 100, TRPO with max KL 0.01, 100-100 ReLU policy), with the inner step
    size used by the course (see ``inner_lr``); ProMP's fields follow Rothfuss et al. (2019).
    """

    outer: Literal["maml-trpo", "promp", "pretrained"] = "maml-trpo"
    """The outer optimiser: "maml-trpo", "promp", or "pretrained" (no inner step while training)."""
    inner_lr: float = 0.5
    """Step size of the first inner policy-gradient step (advantages normalised per task); Finn et al.: 0.5.
    The pretrained baseline takes no inner step in training; for it this is the fine-tuning step size at test."""
    inner_steps: int = 1
    """Inner policy-gradient steps per task in meta-training, each on fresh trajectories sampled with the policy
    adapted so far; the outer step differentiates through all of them (Finn et al.: 1 for 2D navigation)."""
    loss_after_every_step: bool = False
    """With several inner steps: the outer objective averages the return after every inner step (as MAML++'s
    multi-step loss, Antoniou et al. 2019), not only after the last, so no step may get worse on the way."""
    later_inner_lr: float | None = None
    """Step size of the second and later inner steps, in meta-training and at test time; None: half of
    ``inner_lr`` (Finn et al. evaluate with 0.5 for the first step and 0.25 after)."""
    meta_batch_size: int = 40
    """Tasks (goals) per meta-update."""
    num_trajectories: int = 20
    """Trajectories per task, for the inner step and again for the outer step."""
    horizon: int = 100
    """Steps per episode."""
    gamma: float = 0.99
    """Discount factor for returns and advantages."""
    hidden: tuple[int, ...] = (100, 100)
    """Hidden layer sizes of the policy's mean network."""
    init_std: float = 1.0
    """Initial standard deviation of the policy's actions, in its units (rllab's default, used by Finn et al.: 1.0)."""
    action_scale: float = 0.1
    """The env receives ``action_scale`` times the policy's action: Finn et al. wrap the env in rllab's
    ``normalize``, which maps the policy's [-1, 1] onto the action box [-0.1, 0.1]. With 1.0 the policy acts in
    the env's units, and its initial standard deviation is ten times the largest allowed step."""
    max_kl: float = 0.01
    """TRPO's trust region: the largest mean KL between the adapted policies before and after a step."""
    cg_iterations: int = 10
    """Conjugate-gradient iterations of the TRPO step."""
    cg_damping: float = 1e-5
    """Damping added to the Fisher-vector products."""
    fisher_tasks: int = 10
    """Tasks whose KL gives the curvature for conjugate gradients (a subsample: cheaper products)."""
    real_steps_only: bool = False
    """True: the inner and outer losses, their KL terms and the linear baseline average over the steps the
    episodes really took, as Finn et al.'s and Rothfuss et al.'s samplers do (they cut each path where it ends).
    False (how the shipped results were trained): over all ``horizon`` steps of every episode, the steps after an
    episode reached its goal included (advantage 0 there), so a task whose episodes end early takes a smaller
    step, and the baseline is fitted on those steps too."""
    eval_budget: float = 0.0
    """0: evaluation (``adaptation_returns``) adapts each goal on ``num_trajectories`` episodes per step, as
    in training. > 0: on whole episodes until they have taken ``eval_budget * num_trajectories * horizon``
    environment steps, so a policy whose episodes end early at the goal gets more of them; Finn et al.'s test
    script uses 4000 steps (rllab's ``batch_size``), twice their training batch of 20 x 100: ``eval_budget=2``."""
    eval_seed: int = 0
    """Seed of the action noise of the held-out evaluation (fixed: the same policy gets the same score)."""
    promp_lr: float = 1e-3
    """ProMP: Adam step size of the outer optimisation."""
    promp_steps: int = 5
    """ProMP: gradient steps per meta-batch."""
    promp_clip: float = 0.3
    """ProMP: clipping range of the likelihood ratio."""
    promp_kl_penalty: float = 5e-4
    """ProMP: weight eta of the KL penalty on the pre-adaptation policy."""

    def __post_init__(self) -> None:
        if self.outer not in OUTER:
            raise ValueError(f"outer must be one of {OUTER}, got {self.outer!r}")
        for name in ("inner_lr", "max_kl", "promp_lr", "promp_clip", "init_std", "action_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not (math.isfinite(self.eval_budget) and self.eval_budget >= 0):
            raise ValueError(f"eval_budget must be >= 0 (0: num_trajectories episodes per step), got {self.eval_budget!r}")
        check_count("eval_seed", self.eval_seed, minimum=0)
        if self.later_inner_lr is not None and not (math.isfinite(self.later_inner_lr) and self.later_inner_lr > 0):
            raise ValueError(f"later_inner_lr must be > 0 (or None: half of inner_lr), got {self.later_inner_lr!r}")
        for name in ("meta_batch_size", "num_trajectories", "horizon", "cg_iterations", "promp_steps", "fisher_tasks",
                     "inner_steps"):
            check_count(name, getattr(self, name))
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")

    def step_size(self, step: int) -> float:
        """The step size of inner step ``step`` (0 is the first)."""
        if step == 0:
            return self.inner_lr
        return self.inner_lr / 2 if self.later_inner_lr is None else self.later_inner_lr

    def test_step_sizes(self, num_steps: int, first_lr: float | None = None,
                        later_lr: float | None = None) -> list[float]:
        """The step sizes of ``num_steps`` test-time steps: :meth:`step_size` by default; with only ``first_lr``
        given, later steps take half of it (Finn et al.'s schedule); ``later_lr`` overrides the later ones."""
        if first_lr is None:
            first_lr, later_lr = self.inner_lr, self.step_size(1) if later_lr is None else later_lr
        later_lr = first_lr / 2 if later_lr is None else later_lr
        return [first_lr if step == 0 else later_lr for step in range(num_steps)]


def inner_target(episodes: Episodes, gamma: float, lvc: bool, real_steps_only: bool = False) -> torch.Tensor:
    """The inner loss's targets per time step: (T, N * H, act_dim + 1), or + 2 with the old log-prob for LVC."""
    # the loss is a plain mean over N * H steps (see reinforce_loss); the weights make it a mean over each
    # task's counted steps, whatever their number (sample_env_steps drops episodes; episodes end at the goal)
    advantages = episodes.advantages(gamma, real_steps_only=real_steps_only) * episodes.step_weights(real_steps_only)
    advantages = advantages.reshape(episodes.obs.shape[0], -1, 1)
    columns = [episodes.flat("actions")]
    if lvc:
        columns.append(episodes.flat("log_probs")[..., None])
    return torch.cat(columns + [advantages], dim=-1)


def adapt_policy(policy: GaussianMLPPolicy, params: Params, episodes: Episodes, lr: float, gamma: float,
                 lvc: bool = False, per_task_params: bool = False, real_steps_only: bool = False) -> Params:
    """One policy-gradient step per task on its own episodes; differentiable w.r.t. ``params`` when they require grad.

    ``real_steps_only``: see :attr:`MAMLRLConfig.real_steps_only`."""
    return adapt(policy, params, episodes.flat("obs"), inner_target(episodes, gamma, lvc, real_steps_only), lr, 1,
                 loss_fn=lvc_loss if lvc else reinforce_loss, per_task_params=per_task_params)


@dataclass
class MetaBatch:
    """The tasks of one meta-update and the seed of their action noise."""

    tasks: list[NavigationTask]
    noise_seed: int


@dataclass
class Rollouts:
    """The episodes of a meta-batch: before each inner step (``inner[0]`` with theta itself) and after the last.

    ``[*inner, valid][k]`` was sampled with the policies after ``k`` inner steps (with no inner step,
    ``inner`` is empty and ``valid`` was sampled with theta)."""

    inner: list[Episodes]
    valid: Episodes

    @property
    def train(self) -> Episodes:
        """The pre-adaptation episodes (sampled with theta)."""
        return (self.inner or [self.valid])[0]

    def select(self, tasks: slice) -> "Rollouts":
        return Rollouts([episodes.select(tasks) for episodes in self.inner], self.valid.select(tasks))


class MAMLRLLearner(ModelOptimizerState):
    """MAML-TRPO / ProMP on 2D navigation, for :func:`metarl_course.training.train`.

    ``sample_tasks`` draws goals and a noise seed; ``adapt`` samples episodes and takes the inner steps;
    ``evaluate`` logs returns (no meta-loss: TRPO and ProMP build their objectives in ``meta_update``);
    ``meta_update`` takes the TRPO step or ProMP's Adam steps; ``evaluate_heldout`` adapts on the held-out goals.

    Args:
        config: the hyperparameters.
        distribution: the goal distribution p(T).
        heldout: fixed meta-test tasks for ``evaluate_heldout``.
        seed: initialises the policy.
    """

    def __init__(self, config: MAMLRLConfig, distribution: NavigationDistribution | None = None,
                 heldout: list[NavigationTask] | None = None, seed: int = 0,
                 device: torch.device | str | None = None, eval_steps: int = 3) -> None:
        self.config = config
        self.distribution = distribution or NavigationDistribution()
        self.heldout = heldout if heldout is not None else heldout_goals()
        self.eval_steps = eval_steps
        if config.outer == "pretrained" and type(self) is MAMLRLLearner:
            raise ValueError("outer='pretrained' takes no inner step in training: use "
                             "metarl_course.rl.pretrained.PretrainedPolicyLearner(config)")
        torch.manual_seed(seed)
        self.model = GaussianMLPPolicy(2, 2, config.hidden, config.init_std, config.action_scale).to(
            device or get_device())
        self.device = next(self.model.parameters()).device
        self.params = parameters_of(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.promp_lr)
        self.env_steps = 0
        """Environment steps simulated so far in meta-training (inner and outer trajectories)."""

    def state_dict(self) -> dict:
        return {**super().state_dict(), "env_steps": self.env_steps}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.env_steps = int(state.get("env_steps", 0))

    @property
    def training_inner_steps(self) -> int:
        """Inner steps per task in meta-training (``config.inner_steps``)."""
        return self.config.inner_steps

    # -- the four steps of the meta-training loop -------------------------------------------------
    def sample_tasks(self, rng: np.random.Generator) -> MetaBatch:
        return MetaBatch(self.distribution.sample(self.config.meta_batch_size, rng), int(rng.integers(2**31)))

    def adapt(self, batch: MetaBatch) -> Rollouts:
        """Sample with theta, take the inner steps (no graph; fresh episodes before each), sample with the result."""
        c, T = self.config, len(batch.tasks)
        generator = cpu_generator(batch.noise_seed)
        params = expand_params({k: v.detach() for k, v in self.params.items()}, T)
        inner: list[Episodes] = []
        for step in range(self.training_inner_steps):
            inner.append(sample_episodes(self.model, params, batch.tasks, c.num_trajectories, generator, c.horizon))
            self.env_steps += inner[-1].num_steps
            with torch.no_grad():
                params = adapt_policy(self.model, params, inner[-1], c.step_size(step), c.gamma, c.outer == "promp",
                                      per_task_params=True, real_steps_only=c.real_steps_only)
        valid = sample_episodes(self.model, params, batch.tasks, c.num_trajectories, generator, c.horizon)
        self.env_steps += valid.num_steps
        return Rollouts(inner, valid)

    def evaluate(self, batch: MetaBatch, rollouts: Rollouts) -> tuple[None, dict[str, float]]:
        metrics = {"returns/pre_adaptation": rollouts.train.episode_returns.mean().item(),
                   "charts/env_steps": float(self.env_steps),
                   "policy/std": self.model.log_std.exp().mean().item()}
        if rollouts.inner:
            metrics["returns/post_adaptation"] = rollouts.valid.episode_returns.mean().item()
        return None, metrics

    def meta_update(self, batch: MetaBatch, rollouts: Rollouts, meta_loss: None) -> dict[str, float]:
        c = self.config
        if c.outer == "promp":
            return self.promp_update(rollouts)
        subset = rollouts.select(slice(0, c.fisher_tasks))
        metrics = trpo_step(self.params, self.objective(rollouts), c.max_kl, c.cg_damping, c.cg_iterations,
                            fisher_objective=self.objective(subset))
        if not torch.isfinite(self.model.log_std).all() or self.model.log_std.min() < -10:
            raise FloatingPointError(f"the policy's standard deviation collapsed (log-std {self.model.log_std.tolist()}); "
                                     "try a smaller max_kl or inner_lr")
        return metrics

    # -- objectives ------------------------------------------------------------------------------
    def adapted(self, params: Params, rollouts: Rollouts) -> list[Params]:
        """Each task's parameters before every inner step and after the last: ``len(rollouts.inner) + 1``
        entries, differentiable with respect to ``params``."""
        c = self.config
        stages = [expand_params(params, rollouts.valid.obs.shape[0])]
        for step, episodes in enumerate(rollouts.inner):
            stages.append(adapt_policy(self.model, stages[-1], episodes, c.step_size(step), c.gamma,
                                       c.outer == "promp", per_task_params=True, real_steps_only=c.real_steps_only))
        return stages

    def objective(self, rollouts: Rollouts):
        """params -> (surrogate loss of the adapted policies, mean KL from the policies that sampled the episodes).

        The loss is the importance-weighted return of the episodes sampled after the last inner step, or with
        ``loss_after_every_step`` the average over the episodes after each inner step."""
        c = self.config
        sampled = [*rollouts.inner, rollouts.valid]  # sampled[k]: episodes of the policies after k inner steps
        last = len(rollouts.inner)
        stages = range(last, 0, -1) if c.loss_after_every_step and last > 0 else [last]
        terms = []
        for stage in stages:
            episodes = sampled[stage]
            advantages = episodes.advantages(c.gamma, real_steps_only=c.real_steps_only).reshape(episodes.obs.shape[0], -1)
            weights = episodes.step_weights(c.real_steps_only).reshape(episodes.obs.shape[0], -1)  # (T, N * H)
            terms.append((stage, advantages, weights, episodes.flat("obs"),
                          episodes.flat("actions"), episodes.flat("log_probs"), episodes.flat("outputs")))

        def objective(params: Params) -> tuple[torch.Tensor, torch.Tensor]:
            adapted = self.adapted(params, rollouts)
            losses, kls = [], []
            for stage, advantages, weights, obs, actions, old_log_probs, old_outputs in terms:
                out = batched_forward(self.model, adapted[stage], obs)
                ratio = torch.exp(gaussian_log_prob(out, actions) - old_log_probs)
                losses.append(-(ratio * advantages * weights).mean())
                kls.append((gaussian_kl(old_outputs, out) * weights).mean())
            return torch.stack(losses).mean(), torch.stack(kls).mean()

        return objective

    def promp_update(self, rollouts: Rollouts) -> dict[str, float]:
        """ProMP's outer optimisation: a few Adam steps on the clipped surrogate with a KL penalty.

        The penalty is the mean KL between the policies that sampled each inner step's episodes and the
        current ones (theta and, with several inner steps, the policies adapted so far)."""
        c, valid = self.config, rollouts.valid
        advantages = valid.advantages(c.gamma, real_steps_only=c.real_steps_only).reshape(valid.obs.shape[0], -1)
        weights = valid.step_weights(c.real_steps_only).reshape(valid.obs.shape[0], -1)  # (T, N * H)
        inner_weights = [episodes.step_weights(c.real_steps_only).reshape(valid.obs.shape[0], -1)
                         for episodes in rollouts.inner]
        obs, actions, old_log_probs = valid.flat("obs"), valid.flat("actions"), valid.flat("log_probs")
        for _ in range(c.promp_steps):
            stages = self.adapted(self.params, rollouts)
            out = batched_forward(self.model, stages[-1], obs)
            ratio = torch.exp(gaussian_log_prob(out, actions) - old_log_probs)
            clipped = torch.min(ratio * advantages, ratio.clamp(1 - c.promp_clip, 1 + c.promp_clip) * advantages)
            kl_pre = torch.stack([(gaussian_kl(episodes.flat("outputs"),
                                               batched_forward(self.model, params, episodes.flat("obs"))) * w).mean()
                                  for params, episodes, w in zip(stages, rollouts.inner, inner_weights)]).mean()
            loss = -(clipped * weights).mean() + c.promp_kl_penalty * kl_pre
            if not torch.isfinite(loss):
                raise FloatingPointError("ProMP's loss became non-finite; try a smaller promp_lr or inner_lr")
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return {"losses/promp": loss.item(), "promp/kl_pre": kl_pre.item()}

    # -- evaluation -----------------------------------------------------------------------------
    def adaptation_returns(self, tasks: list[NavigationTask] | None = None, num_steps: int | None = None,
                           seed: int = 0, first_lr: float | None = None, later_lr: float | None = None) -> torch.Tensor:
        """Average return per task after 0..num_steps policy-gradient steps: (num_tasks, num_steps + 1)."""
        return adaptation_returns(self.model, self.config, tasks or self.heldout,
                                  self.eval_steps if num_steps is None else num_steps, seed, first_lr, later_lr)

    def evaluate_heldout(self) -> dict[str, float]:
        curve = self.adaptation_returns(seed=self.config.eval_seed).mean(dim=0)
        return {f"eval/return_step{i}": v.item() for i, v in enumerate(curve)}


def choose_later_lr(policy: GaussianMLPPolicy, config: MAMLRLConfig, candidates: tuple[float, ...] = (0.25, 0.15, 0.1, 0.05),
                    tasks: list[NavigationTask] | None = None, num_steps: int = 3,
                    seeds: tuple[int, ...] = (0, 1)) -> tuple[float, dict[float, float]]:
    """The step size for the second and later steps with the best return after ``num_steps`` on validation goals.

    Finn et al. chose their test schedule (halving the step size after the first step) by trying it; this
    makes the same choice for a given policy, on goals other than the held-out ones, so the held-out score
    stays an honest estimate.

    Returns:
        ``(best, scores)``: the chosen step size and the mean return after ``num_steps`` for each candidate.
    """
    if not candidates or any(not (math.isfinite(c) and c > 0) for c in candidates):
        raise ValueError(f"candidates must be step sizes > 0, got {candidates!r}")
    tasks = tasks if tasks is not None else validation_goals()
    scores = {lr: float(np.mean([adaptation_returns(policy, config, tasks, num_steps, seed, later_lr=lr)[:, -1].mean().item()
                                 for seed in seeds]))
              for lr in candidates}
    return max(scores, key=scores.__getitem__), scores


def adaptation_returns(policy: GaussianMLPPolicy, config: MAMLRLConfig, tasks: list[NavigationTask], num_steps: int,
                       seed: int = 0, first_lr: float | None = None, later_lr: float | None = None) -> torch.Tensor:
    """Return after 0..num_steps inner steps, each step on fresh trajectories of the current policy.

    Args:
        first_lr, later_lr: step sizes of the first and of later steps (default: ``config.step_size``:
            ``config.inner_lr`` for the first and ``config.later_inner_lr``, or half of ``inner_lr``, after,
            as in Finn et al.'s evaluation; with only ``first_lr`` given, later steps take half of it).

    Returns:
        (num_tasks, num_steps + 1): mean undiscounted return of the episodes each step adapted on (whole
        episodes for ``config.eval_budget`` times the training batch's environment steps, see
        :class:`MAMLRLConfig`), i.e. the return of the policy before each step.
    """
    step_sizes = config.test_step_sizes(num_steps, first_lr, later_lr)
    generator = cpu_generator(seed)
    params = expand_params({k: v.detach() for k, v in parameters_of(policy).items()}, len(tasks))
    curve = []
    budget = round(config.eval_budget * config.num_trajectories * config.horizon)
    for step in range(num_steps + 1):
        if budget:
            episodes = sample_env_steps(policy, params, tasks, budget, config.num_trajectories, generator,
                                        config.horizon)
        else:
            episodes = sample_episodes(policy, params, tasks, config.num_trajectories, generator, config.horizon)
        curve.append(episodes.task_returns)
        if step < num_steps:
            with torch.no_grad():
                params = adapt_policy(policy, params, episodes, step_sizes[step], config.gamma,
                                      lvc=False, per_task_params=True, real_steps_only=config.real_steps_only)
    return torch.stack(curve, dim=1)


def adaptation_paths(policy: GaussianMLPPolicy, config: MAMLRLConfig, tasks: list[NavigationTask], num_steps: int,
                     seed: int = 0, first_lr: float | None = None, later_lr: float | None = None) -> list[np.ndarray]:
    """Where the policy goes on each goal after 0..num_steps inner steps: ``num_steps + 1`` arrays (T, H, 2).

    Each path follows the policy's mean action (no noise) from (0, 0); between paths, an inner step on
    ``config.num_trajectories`` sampled episodes per goal with the step sizes of
    :meth:`MAMLRLConfig.test_step_sizes`, as :func:`adaptation_returns` takes them.
    """
    step_sizes = config.test_step_sizes(num_steps, first_lr, later_lr)
    generator = cpu_generator(seed)
    params = expand_params({k: v.detach() for k, v in parameters_of(policy).items()}, len(tasks))
    paths = []
    for step in range(num_steps + 1):
        greedy = sample_episodes(policy, params, tasks, 1, generator, config.horizon, deterministic=True)
        paths.append(greedy.obs[:, 0].cpu().numpy())  # (T, H, 2): the positions visited
        if step < num_steps:
            episodes = sample_episodes(policy, params, tasks, config.num_trajectories, generator, config.horizon)
            with torch.no_grad():
                params = adapt_policy(policy, params, episodes, step_sizes[step], config.gamma, per_task_params=True,
                                      real_steps_only=config.real_steps_only)
    return paths
