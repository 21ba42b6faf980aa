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
  computed by the calibration (retirement-option) method in
  :func:`gittins_index_table`.

Every policy scores the arms and the pulled arm is the argmax; ties are broken
uniformly at random (:func:`argmax_random_ties`). Greedy, epsilon-greedy and
UCB1 start each arm's statistics at one success and one failure (the Beta(1, 1)
posterior mean; ``pseudo_counts=0`` gives the textbook "try every arm once"
versions, which score 5.94 instead of 6.62 at n = 10, k = 5).

For tiny problems, :func:`bayes_optimal_value` and :func:`index_policy_value`
give exact expected scores by dynamic programming, e.g. the Bayes-optimal
policy scores 6.660 at n = 10, k = 5 and the Gittins policy 6.645.

References:
    Duan, Schulman, Chen, Bartlett, Sutskever, Abbeel (2016), "RL²: Fast
    Reinforcement Learning via Slow Reinforcement Learning", arXiv:1611.02779.
    Gittins, Glazebrook, Weber (2011), "Multi-armed Bandit Allocation
    Indices", 2nd ed., Wiley.

Example:
    >>> result = evaluate_bandit_policy("ucb1", num_arms=5, num_pulls=10, num_trials=200, seed=0, device="cpu")
    >>> 4.0 < result.mean < 8.0
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Protocol

import numpy as np
import torch

from metarl_course.device import get_device
from metarl_course.seeding import cpu_generator, generator_device, uniform

POLICY_NAMES = (
    "random",
    "greedy",
    "epsilon_greedy",
    "ucb1",
    "ucb1_textbook",
    "thompson",
    "optimistic_thompson",
    "gittins",
)

PAPER_CITATION = (
    "Duan, Schulman, Chen, Bartlett, Sutskever, Abbeel (2016), RL²: Fast Reinforcement "
    "Learning via Slow Reinforcement Learning, arXiv:1611.02779, Table 1 (k = 5 rows)"
)
# Total reward per trial, (num_pulls, num_arms) -> policy -> value, from PAPER_CITATION.
PAPER_TABLE1: dict[tuple[int, int], dict[str, float]] = {
    (10, 5): {
        "random": 5.0, "gittins": 6.6, "thompson": 5.7, "optimistic_thompson": 6.5,
        "ucb1": 6.7, "epsilon_greedy": 6.6, "greedy": 6.6, "rl2": 6.7,
    },
    (100, 5): {
        "random": 49.9, "gittins": 78.3, "thompson": 74.7, "optimistic_thompson": 77.9,
        "ucb1": 78.0, "epsilon_greedy": 75.4, "greedy": 74.8, "rl2": 78.7,
    },
    (500, 5): {
        "random": 249.8, "gittins": 405.8, "thompson": 402.0, "optimistic_thompson": 406.7,
        "ucb1": 405.8, "epsilon_greedy": 388.2, "greedy": 380.6, "rl2": 401.6,
    },
}


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
    """gittins: discount in (0, 1); None picks :func:`default_gittins_discount` (num_pulls)."""
    gittins_num_lambdas: int = 400
    """gittins: size of the retirement-reward grid of :func:`gittins_index_table`."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.pseudo_counts < 0:
            raise ValueError(f"pseudo_counts must be >= 0, got {self.pseudo_counts}")
        if not self.ucb_c >= 0.0:
            raise ValueError(f"ucb_c must be >= 0, got {self.ucb_c}")
        if self.gittins_gamma is not None and not 0.0 < self.gittins_gamma < 1.0:
            raise ValueError(f"gittins_gamma must be in (0, 1) or None, got {self.gittins_gamma}")
        if self.gittins_num_lambdas < 10:
            raise ValueError(f"gittins_num_lambdas must be >= 10, got {self.gittins_num_lambdas}")


def _check_problem(num_arms: int, num_pulls: int) -> None:
    if not isinstance(num_arms, (int, np.integer)) or num_arms < 2:
        raise ValueError(f"num_arms must be an integer >= 2, got {num_arms!r}")
    if not isinstance(num_pulls, (int, np.integer)) or num_pulls < 1:
        raise ValueError(f"num_pulls must be an integer >= 1, got {num_pulls!r}")


# ---------------------------------------------------------------------------
# Gittins index of a Bernoulli arm with a Beta(a, b) posterior
# ---------------------------------------------------------------------------


def default_gittins_discount(num_pulls: int) -> float:
    """The discount used for a trial of ``num_pulls`` pulls: ``1 - 1 / num_pulls`` (at least 0.5).

    The trial is finite-horizon and undiscounted, but the Gittins index is
    optimal for an infinite discounted horizon. A discount gamma weighs the
    future like an effective horizon of 1 / (1 - gamma) pulls, so we match the
    effective horizon to the trial length. Measured (k = 5, 4000 trials, CI
    about 0.07 / 0.5 / 2.2): n = 10 scores 6.69 for any gamma in [0.7, 0.9];
    n = 100: 78.59 / 78.93 / 78.94 / 78.77 for gamma = 0.95 / 0.98 / 0.99 /
    0.995; n = 500: 409.1 / 409.7 / 409.7 for 0.99 / 0.995 / 0.998. The rule
    sits on the flat top; it is not tuned to Duan et al.'s numbers.
    """
    return max(0.5, 1.0 - 1.0 / num_pulls)


@lru_cache(maxsize=16)
def gittins_index_table(
    gamma: float, max_total: int, depth: int | None = None, num_lambdas: int = 400
) -> np.ndarray:
    """Gittins indices of Bernoulli arms: ``table[a, b]`` for a Beta(a, b) posterior.

    Calibration (retirement-option) method: for a retirement reward lambda per
    step, backward induction over the (a, b) lattice gives the optimal
    stopping rule for "pull the arm or retire for good". For each state and
    each lambda on a grid we track R, the expected discounted reward until
    retirement, and W, the expected discounted number of pulls, of the rule
    "pull now, then act optimally for lambda". The Gittins index is the
    supremum over stopping rules of R / W, so ``max over the grid of R / W``
    is a lower bound whose error is second-order in the grid spacing. The
    lattice is truncated at a + b = ``depth``, where the arm is treated as
    known (pull forever or retire), the usual approximation.

    Accuracy of the defaults: matches the published indices of Gittins,
    Glazebrook & Weber (2011) to their 4 decimals (Beta(1, 1): 0.7029 at
    gamma = 0.9, 0.8699 at 0.99) and a brute-force search over stopping rules
    to 1e-15; against a finer computation (800 rewards, 3000 extra depth) the
    largest error is 3e-6 at gamma = 0.9 (a + b <= 11), 1.4e-4 at 0.99
    (a + b <= 101, mean 1.3e-5) and 8e-4 at 0.998 (a + b <= 501, mean 1.4e-4).
    Time: under 0.1 s for n = 10, about 2.5 s for n = 100, 3.5 s for n = 500.

    Arguments:
        gamma: discount in (0, 1).
        max_total: table covers 1 <= a, b with a + b <= max_total.
        depth: truncation depth (>= max_total); default max_total + a
            lookahead of 10 / (1 - gamma) pulls, capped at 1000 extra.
        num_lambdas: retirement rewards (i + 0.5) / num_lambdas, i < num_lambdas.

    Returns:
        ``(max_total + 1, max_total + 1)`` float64 array, NaN outside the
        covered states; read-only (the result is cached).

    Example:
        >>> round(float(gittins_index_table(0.9, 4)[1, 1]), 4)  # uniform prior
        0.7029
    """
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma must be in (0, 1), got {gamma}")
    if max_total < 2:
        raise ValueError(f"max_total must be >= 2, got {max_total}")
    if depth is None:
        depth = max_total + min(1000, int(math.ceil(10.0 / (1.0 - gamma))))
    if depth < max_total:
        raise ValueError(f"depth must be >= max_total = {max_total}, got {depth}")
    lambdas = (np.arange(num_lambdas) + 0.5) / num_lambdas  # (M,)
    table = np.full((max_total + 1, max_total + 1), np.nan)
    # At the truncation depth the arm is "known": pulling forever is worth mean / (1 - gamma).
    a = np.arange(1, depth)
    mean = (a / depth)[:, None]  # (depth - 1, 1)
    reward = np.broadcast_to(mean / (1.0 - gamma), (depth - 1, num_lambdas))  # R, (states, M)
    time = np.full((depth - 1, num_lambdas), 1.0 / (1.0 - gamma))  # W, (states, M)
    for total in range(depth, 1, -1):
        a = np.arange(1, total)
        mean = (a / total)[:, None]
        if total < depth:  # children of (a, b) are (a + 1, b) at row a and (a, b + 1) at row a - 1
            reward = mean + gamma * (mean * reward_opt[1:] + (1 - mean) * reward_opt[:-1])
            time = 1.0 + gamma * (mean * time_opt[1:] + (1 - mean) * time_opt[:-1])
        if total <= max_total:
            table[a, total - a] = (reward / time).max(axis=1)
        keep_pulling = reward - lambdas * time > 0  # else retire: R = W = 0 from here
        reward_opt = np.where(keep_pulling, reward, 0.0)
        time_opt = np.where(keep_pulling, time, 0.0)
    table.flags.writeable = False
    return table


def gittins_index(a: int, b: int, gamma: float, num_lambdas: int = 400) -> float:
    """Gittins index of one Bernoulli arm with a Beta(a, b) posterior (a, b >= 1)."""
    if a < 1 or b < 1:
        raise ValueError(f"a and b must be >= 1 (Beta parameters), got a={a}, b={b}")
    return float(gittins_index_table(gamma, max(a + b, 2), num_lambdas=num_lambdas)[a, b])


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

    def draw(self, successes, failures, generator):
        return None

    def scores(self, successes, failures, step, noise):
        return torch.zeros(successes.shape, dtype=torch.float64, device=successes.device)


@dataclass(frozen=True)
class EpsilonGreedyPolicy:
    """With probability epsilon a random arm, else the best empirical mean (see ``_empirical_means``)."""

    epsilon: float = 0.1
    pseudo_counts: int = 1
    name: str = "epsilon_greedy"

    def draw(self, successes, failures, generator):
        if self.epsilon == 0.0:  # plain greedy draws nothing
            return None
        batch = successes.shape[0]
        return uniform((batch,), generator, successes.device, torch.float64)  # (B,)

    def scores(self, successes, failures, step, noise):
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

    def draw(self, successes, failures, generator):
        return None

    def scores(self, successes, failures, step, noise):
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

    def draw(self, successes, failures, generator):
        return sample_beta(1.0 + successes.double(), 1.0 + failures.double(), generator)  # (B, k)

    def scores(self, successes, failures, step, noise):
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

    def draw(self, successes, failures, generator):
        return None

    def scores(self, successes, failures, step, noise):
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
    """Mean total reward per trial of one policy, with a 95% confidence interval."""

    policy: str
    num_arms: int
    num_pulls: int
    num_trials: int
    mean: float
    """Mean total reward per trial."""
    ci95: float
    """Half-width of the normal-approximation 95% CI: 1.96 * std / sqrt(num_trials)."""
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
    if num_trials < 2:
        raise ValueError(f"num_trials must be >= 2 to estimate a confidence interval, got {num_trials}")
    device = torch.device(device) if device is not None else get_device()
    if isinstance(policy, str):
        policy = make_policy(policy, num_pulls, config, device)
    generator = cpu_generator(int(seed))
    arm_means = sample_arm_means(num_trials, num_arms, generator).to(device)  # (num_trials, k)
    totals = run_bandit(policy, arm_means, num_pulls, generator).total_rewards
    std = float(totals.std())
    return BanditEvaluation(
        policy=policy.name, num_arms=num_arms, num_pulls=num_pulls, num_trials=num_trials,
        mean=float(totals.mean()), ci95=1.96 * std / math.sqrt(num_trials), std=std,
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
    """A markdown table: measured mean +/- 95% CI beside Duan et al.'s Table 1 where it has the setting.

    Example:
        >>> print(format_baseline_table(baseline_table(10, 5, num_trials=1000, device="cpu")))  # doctest: +SKIP
    """
    lines = [
        "| n, k | policy | trials | measured (mean +/- 95% CI) | Duan et al. 2016 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        paper = PAPER_TABLE1.get((r.num_pulls, r.num_arms), {}).get(r.policy)
        paper_text = f"{paper:.1f}" if paper is not None else "-"
        lines.append(
            f"| {r.num_pulls}, {r.num_arms} | {r.policy} | {r.num_trials} | {r.mean:.2f} +/- {r.ci95:.2f} | {paper_text} |"
        )
    lines.append(f"\nPaper column: {PAPER_CITATION}.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Exact values for tiny problems (references for the tests)
# ---------------------------------------------------------------------------

ArmState = tuple[tuple[int, int], ...]  # sorted (successes, failures) of each arm


def _children(state: ArmState, i: int) -> tuple[float, ArmState, ArmState]:
    """Posterior success probability of arm i, and the states after a success and a failure."""
    s, f = state[i]
    win = tuple(sorted(state[:i] + ((s + 1, f),) + state[i + 1 :]))
    loss = tuple(sorted(state[:i] + ((s, f + 1),) + state[i + 1 :]))
    return (1.0 + s) / (2.0 + s + f), win, loss


def bayes_optimal_value(num_arms: int, num_pulls: int) -> float:
    """Expected total reward of the Bayes-optimal policy (arm means U[0, 1]), by dynamic programming.

    The state is the multiset of (successes, failures) per arm; the cost grows
    fast, so keep num_pulls * num_arms small (e.g. k = 2, n <= 30).
    """
    _check_problem(num_arms, num_pulls)

    @lru_cache(maxsize=None)
    def value(state: ArmState, pulls_left: int) -> float:
        if pulls_left == 0:
            return 0.0
        best = 0.0
        for i in range(num_arms):
            p, win, loss = _children(state, i)
            best = max(best, p * (1.0 + value(win, pulls_left - 1)) + (1 - p) * value(loss, pulls_left - 1))
        return best

    return value(((0, 0),) * num_arms, num_pulls)


BAYES_OPTIMAL_MAX_PULLS = 20
""":func:`bayes_optimal_value` is computed up to this many pulls (k = 5, n = 20: about 3 s; it grows fast)."""

POLICY_LABELS = {
    "random": "random", "greedy": "greedy", "epsilon_greedy": "epsilon-greedy (0.05)",
    "ucb1": "UCB1, tuned (c = 0.2, Beta(1, 1) counts)", "ucb1_textbook": "UCB1, textbook (Auer et al. 2002)",
    "thompson": "Thompson sampling", "optimistic_thompson": "optimistic Thompson sampling",
    "gittins": "Gittins index", "rl2": "RL²",
}
"""How the tables name each policy (two UCB1s: the tuned one of :class:`BanditBaselineConfig` and Auer et al.'s)."""


def bayes_optimal_ceiling(num_arms: int, num_pulls: int) -> tuple[float, bool]:
    """The best expected total any policy can reach on bandits with arm means U[0, 1], and whether it is exact.

    Up to :data:`BAYES_OPTIMAL_MAX_PULLS` pulls: the exact Bayes-optimal value (:func:`bayes_optimal_value`),
    e.g. 6.660 for k = 5, n = 10. Beyond: an upper bound, the expected total of an agent told the arm means,
    ``n * k / (k + 1)`` (the mean of the largest of k uniforms); a policy's measured score is a lower bound.
    """
    if num_pulls <= BAYES_OPTIMAL_MAX_PULLS:
        return bayes_optimal_value(num_arms, num_pulls), True
    return num_pulls * num_arms / (num_arms + 1), False


def index_policy_value(
    index: Callable[[int, int, int], float], num_arms: int, num_pulls: int
) -> float:
    """Exact expected total reward of a deterministic index policy with uniform tie-breaking.

    ``index(successes, failures, step)`` scores one arm; the policy pulls an
    arm of highest score, each tied arm with equal probability.
    """
    _check_problem(num_arms, num_pulls)

    @lru_cache(maxsize=None)
    def value(state: ArmState, step: int) -> float:
        if step == num_pulls:
            return 0.0
        scores = [index(s, f, step) for s, f in state]
        tied = [i for i, score in enumerate(scores) if score == max(scores)]
        total = 0.0
        for i in tied:
            p, win, loss = _children(state, i)
            total += p * (1.0 + value(win, step + 1)) + (1 - p) * value(loss, step + 1)
        return total / len(tied)

    return value(((0, 0),) * num_arms, 0)
