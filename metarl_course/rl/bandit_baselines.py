"""Classic Bernoulli-bandit baselines that RL² is compared with (Duan et al. 2016, Table 1).

The setting: a task is a k-armed Bernoulli bandit whose arm means are drawn
i.i.d. from U[0, 1]; a *trial* is ``num_pulls`` pulls on one task, and the
score is the total reward of the trial (higher is better). Every policy here
runs on a batch of B tasks at once: the arm means are a ``(B, k)`` tensor, the
statistics of each arm are success and failure counts of shape ``(B, k)``,
and one pull of every task is one tensor operation, not a Python loop over
tasks. All randomness comes from an explicit ``torch.Generator``.

Policies (names accepted by :func:`make_policy`):

* ``random``: a uniformly random arm;
* ``greedy``: untried arms first, then the highest empirical mean;
* ``epsilon_greedy``: a random arm with probability epsilon, else greedy;
* ``ucb1``: Auer, Cesa-Bianchi & Fischer (2002), mean + c * sqrt(2 ln t / n_i);
* ``thompson``: Thompson sampling with Beta(1, 1) priors (Thompson 1933);
* ``optimistic_thompson``: max(posterior sample, posterior mean)
  (Chapelle & Li 2011), as Duan et al. (2016) describe it. Their Table 1
  value is not reproduced (5.97 +/- 0.03 here vs 6.5 at n = 10, k = 5;
  75.8 +/- 0.2 vs 77.9 at n = 100): their variant must differ in a detail
  the table does not show, so the tests leave it out of the comparison;
* ``gittins``: the Gittins index of each arm's Beta posterior (Gittins 1979),
  from :mod:`metarl_course.rl.gittins`.

Every policy scores the arms and the pulled arm is the argmax; ties are broken
uniformly at random (:func:`argmax_random_ties`). Greedy, epsilon-greedy and
UCB1 start each arm's statistics at one success and one failure (the Beta(1, 1)
posterior mean; ``pseudo_counts=0`` gives the textbook "try every arm once"
versions, which score 5.94 instead of 6.62 at n = 10, k = 5).

:func:`evaluate_bandit_policy` scores a policy with a 95% Student-t
interval; :func:`format_baseline_table` puts the scores beside Duan et al.'s
Table 1 (:data:`metarl_course.papers.DUAN_2016_BANDITS`). The best any policy
can do, exactly for short trials (6.660 at n = 10, k = 5; the Gittins policy
scores 6.645 there), is in :mod:`metarl_course.rl.bayes_optimal`.

References:
    Duan, Schulman, Chen, Bartlett, Sutskever, Abbeel (2016), "RL²: Fast
    Reinforcement Learning via Slow Reinforcement Learning", arXiv:1611.02779.
    Auer, Cesa-Bianchi, Fischer (2002), "Finite-time Analysis of the
    Multiarmed Bandit Problem", Machine Learning 47.
    Chapelle, Li (2011), "An Empirical Evaluation of Thompson Sampling", NeurIPS.

Example:
    >>> result = evaluate_bandit_policy("ucb1", num_arms=5, num_pulls=10, num_trials=200, seed=0, device="cpu")
    >>> 4.0 < result.mean < 8.0
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from metarl_course.device import get_device
from metarl_course.evaluation import mean_ci
from metarl_course.papers import DUAN_2016_BANDITS, DUAN_2016_BANDITS_CITATION
from metarl_course.rl.gittins import default_gittins_discount, gittins_index_table
from metarl_course.seeding import cpu_generator, generator_device, uniform
from metarl_course.tasks.distribution import check_count

POLICY_NAMES = (
    "random", "greedy", "epsilon_greedy", "ucb1", "ucb1_textbook", "thompson", "optimistic_thompson", "gittins",
)
"""The baselines :func:`make_policy` builds, in the order the tables list them."""

POLICY_LABELS = {
    "random": "random", "greedy": "greedy", "epsilon_greedy": "epsilon-greedy (0.05)",
    "ucb1": "UCB1, tuned (c = 0.2, Beta(1, 1) counts)", "ucb1_textbook": "UCB1, textbook (Auer et al. 2002)",
    "thompson": "Thompson sampling", "optimistic_thompson": "optimistic Thompson sampling",
    "gittins": "Gittins index", "rl2": "RL²",
}
"""How the tables name each policy (two UCB1s: the tuned one of :class:`BanditBaselineConfig` and Auer et al.'s)."""


# ---------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BanditBaselineConfig:
    """Hyperparameters of the bandit baselines (policies without one ignore it).

    epsilon, ucb_c and pseudo_counts were picked by a coarse grid search
    (epsilon in {0.01, 0.02, 0.05, 0.1}, c in {0.05, 0.1, 0.2, 0.3, 0.5, 1},
    pseudo_counts in {0, 1}; k = 5, n in {10, 100, 500}); one value serves all
    three n. Duan et al. (2016) Table 1 is the reference for the scores.
    """

    epsilon: float = 0.05
    """epsilon_greedy: probability of pulling a uniformly random arm, in [0, 1]."""
    ucb_c: float = 0.2
    """ucb1: exploration scale c in mean + c * sqrt(2 ln t / n_i); c = 1 is Auer et al.'s UCB1,
    which explores far too much for these short trials (66 instead of 78 at n = 100, k = 5)."""
    pseudo_counts: int = 1
    """greedy, epsilon_greedy, ucb1: each arm's statistics start with this many successes and as
    many failures. 1 (Duan et al. 2016) makes the empirical mean the Beta(1, 1) posterior mean;
    0 gives the textbook versions, which pull every untried arm once first."""
    gittins_gamma: float | None = None
    """gittins: discount in (0, 1); None picks :func:`~metarl_course.rl.gittins.default_gittins_discount`
    (num_pulls)."""
    gittins_num_lambdas: int = 400
    """gittins: size of the retirement-reward grid of :func:`~metarl_course.rl.gittins.gittins_index_table`."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        check_count("pseudo_counts", self.pseudo_counts, minimum=0)
        if not self.ucb_c >= 0.0:
            raise ValueError(f"ucb_c must be >= 0, got {self.ucb_c}")
        if self.gittins_gamma is not None and not 0.0 < self.gittins_gamma < 1.0:
            raise ValueError(f"gittins_gamma must be in (0, 1) or None, got {self.gittins_gamma}")
        check_count("gittins_num_lambdas", self.gittins_num_lambdas, minimum=10)


def _check_problem(num_arms: int, num_pulls: int) -> None:
    """A bandit needs at least 2 arms and a trial at least 1 pull (ValueError naming the argument otherwise)."""
    check_count("num_arms", num_arms, minimum=2)
    check_count("num_pulls", num_pulls)


# ---------------------------------------------------------------------------
# Policies: scores of shape (B, k); the pulled arm is the argmax
# ---------------------------------------------------------------------------


class BanditPolicy(Protocol):
    """What the simulator needs from a policy.

    ``successes`` and ``failures`` are int64 counts of shape ``(B, k)``;
    ``step`` is the number of pulls already made in the trial. ``draw`` makes
    the policy's random numbers for this step (or returns None) and
    ``scores`` is a deterministic function of its arguments, so a reference
    implementation can replay the same draws.
    """

    name: str

    def draw(
        self, successes: torch.Tensor, failures: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor | None:
        """This step's random numbers (e.g. posterior samples, (B, k)), or None."""

    def scores(
        self, successes: torch.Tensor, failures: torch.Tensor, step: int, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """Score of every arm, (B, k) float64; the arm pulled is the argmax."""


def _empirical_means(successes: torch.Tensor, failures: torch.Tensor, pseudo_counts: int) -> torch.Tensor:
    """(successes + c) / (pulls + 2c) per arm, c = pseudo_counts; (B, k).

    An arm with no data (pulls + 2c = 0) scores +inf, so it is tried first.
    """
    pulls = (successes + failures + 2 * pseudo_counts).double()
    means = (successes + pseudo_counts).double() / pulls.clamp(min=1.0)
    return torch.where(pulls > 0, means, torch.full_like(means, math.inf))


@dataclass(frozen=True)
class RandomPolicy:
    """A uniformly random arm: all scores tie, and the tie-break picks the arm."""

    name: str = "random"

    def draw(self, successes: Tensor, failures: Tensor, generator: torch.Generator) -> Tensor | None:
        return None

    def scores(self, successes: Tensor, failures: Tensor, step: int, noise: Tensor | None) -> Tensor:
        return torch.zeros(successes.shape, dtype=torch.float64, device=successes.device)


@dataclass(frozen=True)
class EpsilonGreedyPolicy:
    """With probability epsilon a random arm, else the best empirical mean (see ``_empirical_means``)."""

    epsilon: float = 0.1
    pseudo_counts: int = 1
    name: str = "epsilon_greedy"

    def draw(self, successes: Tensor, failures: Tensor, generator: torch.Generator) -> Tensor | None:
        if self.epsilon == 0.0:  # plain greedy draws nothing
            return None
        batch = successes.shape[0]
        return uniform((batch,), generator, successes.device, torch.float64)  # (B,)

    def scores(self, successes: Tensor, failures: Tensor, step: int, noise: Tensor | None) -> Tensor:
        greedy = _empirical_means(successes, failures, self.pseudo_counts)  # (B, k)
        if noise is None:
            return greedy
        explore = (noise < self.epsilon)[:, None]  # (B, 1)
        return torch.where(explore, torch.zeros_like(greedy), greedy)


@dataclass(frozen=True)
class UCB1Policy:
    """UCB1 (Auer et al. 2002): mean + c * sqrt(2 ln t / n_i), t = pulls so far, n_i = pulls of arm i.

    Means and counts include ``pseudo_counts`` successes and failures per arm;
    with 0, untried arms are pulled first (score +inf).
    """

    c: float = 1.0
    pseudo_counts: int = 1
    name: str = "ucb1"

    def draw(self, successes: Tensor, failures: Tensor, generator: torch.Generator) -> Tensor | None:
        return None

    def scores(self, successes: Tensor, failures: Tensor, step: int, noise: Tensor | None) -> Tensor:
        pulls = (successes + failures + 2 * self.pseudo_counts).double()  # (B, k)
        t = step + 2 * self.pseudo_counts * successes.shape[1]  # pulls so far, pseudo-pulls included
        bonus = self.c * torch.sqrt(2.0 * math.log(max(t, 1)) / pulls.clamp(min=1.0))
        return _empirical_means(successes, failures, self.pseudo_counts) + bonus  # inf stays inf


def sample_beta(alpha: torch.Tensor, beta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Beta(alpha, beta) samples, elementwise, from an explicit generator (ratio of two Gammas)."""
    # torch.distributions takes no generator; torch._standard_gamma does. Drawn on the generator's device (the
    # CPU for the course) so a seed gives the same samples on any device.
    source = generator_device(generator)
    x = torch._standard_gamma(alpha.to(source), generator=generator)
    y = torch._standard_gamma(beta.to(source), generator=generator)
    return (x / (x + y)).to(alpha.device)


@dataclass(frozen=True)
class ThompsonPolicy:
    """Thompson sampling with Beta(1, 1) priors; optimistic: max(sample, posterior mean)."""

    optimistic: bool = False
    name: str = "thompson"

    def draw(self, successes: Tensor, failures: Tensor, generator: torch.Generator) -> Tensor | None:
        return sample_beta(1.0 + successes.double(), 1.0 + failures.double(), generator)  # (B, k)

    def scores(self, successes: Tensor, failures: Tensor, step: int, noise: Tensor | None) -> Tensor:
        if not self.optimistic:
            return noise
        posterior_mean = (1.0 + successes.double()) / (2.0 + (successes + failures).double())
        return torch.maximum(noise, posterior_mean)


@dataclass(frozen=True)
class GittinsPolicy:
    """The arm whose Beta(1 + successes, 1 + failures) posterior has the highest Gittins index."""

    gamma: float
    table: torch.Tensor  # (T, T) float64, table[a, b] = index of Beta(a, b)
    name: str = "gittins"

    def draw(self, successes: Tensor, failures: Tensor, generator: torch.Generator) -> Tensor | None:
        return None

    def scores(self, successes: Tensor, failures: Tensor, step: int, noise: Tensor | None) -> Tensor:
        return self.table[1 + successes, 1 + failures]  # (B, k)


def make_policy(
    name: str,
    num_pulls: int,
    config: BanditBaselineConfig | None = None,
    device: torch.device | str | None = None,
) -> BanditPolicy:
    """The baseline called ``name`` (one of :data:`POLICY_NAMES`) for trials of ``num_pulls`` pulls."""
    config = config or BanditBaselineConfig()
    if name == "random":
        return RandomPolicy()
    if name == "greedy":
        return EpsilonGreedyPolicy(epsilon=0.0, pseudo_counts=config.pseudo_counts, name="greedy")
    if name == "epsilon_greedy":
        return EpsilonGreedyPolicy(epsilon=config.epsilon, pseudo_counts=config.pseudo_counts)
    if name == "ucb1":
        return UCB1Policy(c=config.ucb_c, pseudo_counts=config.pseudo_counts)
    if name == "ucb1_textbook":  # Auer et al. (2002) as published: c = 1, every arm pulled once first
        return UCB1Policy(c=1.0, pseudo_counts=0, name="ucb1_textbook")
    if name in ("thompson", "optimistic_thompson"):
        return ThompsonPolicy(optimistic=name == "optimistic_thompson", name=name)
    if name == "gittins":
        gamma = config.gittins_gamma or default_gittins_discount(num_pulls)
        # a + b <= num_pulls + 1 before the last pull (Beta(1, 1) prior plus num_pulls - 1 outcomes)
        table = gittins_index_table(gamma, max(num_pulls + 1, 2), num_lambdas=config.gittins_num_lambdas)
        device = torch.device(device) if device is not None else get_device()
        return GittinsPolicy(gamma=gamma, table=torch.as_tensor(np.nan_to_num(table, nan=-1.0), device=device))
    raise ValueError(f"unknown bandit policy {name!r}; valid names: {', '.join(POLICY_NAMES)}")


# ---------------------------------------------------------------------------
# The batched simulator
# ---------------------------------------------------------------------------


def argmax_random_ties(scores: torch.Tensor, tie_break: torch.Tensor) -> torch.Tensor:
    """Index of the largest score per row; among equal scores, the one with the largest ``tie_break``.

    With ``tie_break`` uniform on [0, 1), ties are broken uniformly at random.
    scores, tie_break: (B, k) -> (B,) int64.
    """
    is_best = scores == scores.max(dim=1, keepdim=True).values  # (B, k)
    return torch.where(is_best, tie_break, torch.full_like(tie_break, -1.0)).argmax(dim=1)


@dataclass(frozen=True)
class BanditRollout:
    """What happened in a batch of trials."""

    arms: torch.Tensor
    """Pulled arm at each step, (B, num_pulls) int64."""
    rewards: torch.Tensor
    """Reward (0 or 1) at each step, (B, num_pulls) float64."""

    @property
    def total_rewards(self) -> torch.Tensor:
        """Score of each trial, (B,)."""
        return self.rewards.sum(dim=1)


def sample_arm_means(num_tasks: int, num_arms: int, generator: torch.Generator) -> torch.Tensor:
    """Arm means of ``num_tasks`` bandit tasks, i.i.d. U[0, 1]: (num_tasks, num_arms) float64."""
    check_count("num_tasks", num_tasks)
    return torch.rand((num_tasks, num_arms), generator=generator, dtype=torch.float64, device=generator.device)


def run_bandit(
    policy: BanditPolicy, arm_means: torch.Tensor, num_pulls: int, generator: torch.Generator
) -> BanditRollout:
    """Play one trial of ``num_pulls`` pulls on every task of the batch at once.

    Random numbers are drawn in this order at every step, all from
    ``generator`` (a reference implementation replays them): the policy's
    ``draw``, then tie-break uniforms ``(B, k)``, then reward uniforms ``(B,)``;
    the reward is 1 when the reward uniform is below the pulled arm's mean.

    Arguments:
        policy: a :class:`BanditPolicy`, e.g. from :func:`make_policy`.
        arm_means: (B, k) float64, on the device to play on.
        num_pulls: pulls per trial.
        generator: the source of all randomness (a CPU generator gives the same game on any device).
    """
    num_tasks, num_arms = arm_means.shape
    _check_problem(num_arms, num_pulls)
    successes = torch.zeros((num_tasks, num_arms), dtype=torch.int64, device=arm_means.device)  # (B, k)
    failures = torch.zeros_like(successes)
    arms = torch.empty((num_tasks, num_pulls), dtype=torch.int64, device=arm_means.device)
    rewards = torch.empty((num_tasks, num_pulls), dtype=torch.float64, device=arm_means.device)
    for step in range(num_pulls):
        noise = policy.draw(successes, failures, generator)
        scores = policy.scores(successes, failures, step, noise)  # (B, k)
        tie_break = uniform(scores.shape, generator, arm_means.device, torch.float64)
        arm = argmax_random_ties(scores, tie_break)[:, None]  # (B, 1)
        reward_u = uniform((num_tasks, 1), generator, arm_means.device, torch.float64)
        reward = (reward_u < arm_means.gather(1, arm)).long()  # (B, 1)
        successes.scatter_add_(1, arm, reward)
        failures.scatter_add_(1, arm, 1 - reward)
        arms[:, step], rewards[:, step] = arm[:, 0], reward[:, 0].double()
    return BanditRollout(arms=arms, rewards=rewards)


# ---------------------------------------------------------------------------
# Evaluation and the side-by-side table
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BanditEvaluation:
    """Mean total reward per trial of one policy, with a 95% confidence interval (Student t)."""

    policy: str
    num_arms: int
    num_pulls: int
    num_trials: int
    mean: float
    """Mean total reward per trial."""
    ci95: float
    """Half-width of the 95% confidence interval of the mean, Student t
    (:func:`metarl_course.evaluation.mean_ci`, the course's one convention)."""
    std: float
    """Sample standard deviation of the total reward per trial."""


def evaluate_bandit_policy(
    policy: str | BanditPolicy,
    num_arms: int,
    num_pulls: int,
    num_trials: int = 1000,
    seed: int = 0,
    config: BanditBaselineConfig | None = None,
    device: torch.device | str | None = None,
) -> BanditEvaluation:
    """Mean total reward of a policy over ``num_trials`` fresh tasks (arm means U[0, 1]).

    The same seed gives the same tasks for every policy (common random
    numbers), so differences between policies are less noisy than their CIs.

    Example:
        >>> evaluate_bandit_policy("random", 5, 10, num_trials=100, device="cpu").num_trials
        100
    """
    _check_problem(num_arms, num_pulls)
    check_count("num_trials", num_trials, minimum=2)  # two trials at least for a confidence interval
    device = torch.device(device) if device is not None else get_device()
    if isinstance(policy, str):
        policy = make_policy(policy, num_pulls, config, device)
    generator = cpu_generator(int(seed))
    arm_means = sample_arm_means(num_trials, num_arms, generator).to(device)  # (num_trials, k)
    totals = run_bandit(policy, arm_means, num_pulls, generator).total_rewards  # (num_trials,)
    _, half_width = mean_ci(totals)
    return BanditEvaluation(
        policy=policy.name, num_arms=num_arms, num_pulls=num_pulls, num_trials=num_trials,
        mean=float(totals.mean()), ci95=float(half_width), std=float(totals.std()),
    )


def baseline_table(
    num_pulls: int,
    num_arms: int,
    num_trials: int = 1000,
    seed: int = 0,
    config: BanditBaselineConfig | None = None,
    device: torch.device | str | None = None,
) -> list[BanditEvaluation]:
    """Evaluate every policy of :data:`POLICY_NAMES` on the same tasks."""
    return [
        evaluate_bandit_policy(name, num_arms, num_pulls, num_trials, seed, config, device)
        for name in POLICY_NAMES
    ]


def format_baseline_table(results: list[BanditEvaluation]) -> str:
    """A markdown table: measured mean +/- 95% CI (Student t) beside Duan et al.'s Table 1 where it has the setting.

    Example:
        >>> print(format_baseline_table(baseline_table(10, 5, num_trials=1000, device="cpu")))  # doctest: +SKIP
    """
    lines = [
        "| n, k | policy | trials | measured (mean +/- 95% CI, Student t) | Duan et al. 2016 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        paper = DUAN_2016_BANDITS.get((r.num_pulls, r.num_arms), {}).get(r.policy)
        paper_text = f"{paper:.1f}" if paper is not None else "-"
        lines.append(f"| {r.num_pulls}, {r.num_arms} | {r.policy} | {r.num_trials} | {r.mean:.2f} +/- {r.ci95:.2f} | "
                     f"{paper_text} |")
    lines.append(f"\nPaper column: {DUAN_2016_BANDITS_CITATION}.")
    return "\n".join(lines)
