"""The Gittins index of a Bernoulli arm with a Beta(a, b) posterior, by the calibration method.

For discounted bandits whose arms are independent, the Bayes-optimal policy is
an *index* policy (Gittins 1979): give every arm a number that depends on that
arm alone, its Gittins index, and pull the arm with the highest one. The index
of an arm is the constant reward per pull that would make us indifferent
between pulling the arm (and going on optimally) and retiring for good.

Calibration (the retirement-option method of Gittins, Glazebrook & Weber
2011): fix a retirement reward lambda per pull and solve the one-armed
problem "pull the arm, or retire and earn lambda forever" by backward
induction over the arm's Beta posteriors, the (a, b) lattice. The index is
the lambda at which pulling once more and retiring tie. For every state and
every lambda on a grid we track R, the expected discounted reward until
retirement, and W, the expected discounted number of pulls, of the rule "pull
now, then act optimally for lambda"; the index is the supremum over stopping
rules of R / W, so the maximum of R / W over the grid is a lower bound whose
error is second-order in the grid spacing.

Accuracy of :func:`gittins_index_table`'s defaults: it matches the published
indices of Gittins, Glazebrook & Weber (2011) to their 4 decimals (Beta(1, 1):
0.7029 at gamma = 0.9, 0.8699 at 0.99) and a brute-force search over stopping
rules to 1e-15; against a finer computation (800 rewards, 3000 extra depth)
the largest error is 3e-6 at gamma = 0.9 (a + b <= 11), 1.4e-4 at 0.99
(a + b <= 101, mean 1.3e-5) and 8e-4 at 0.998 (a + b <= 501, mean 1.4e-4).
Time: under 0.1 s for n = 10, about 2.5 s for n = 100, 3.5 s for n = 500.

Chapter 05 scores the ``gittins`` policy of
:mod:`metarl_course.rl.bandit_baselines` with these indices; the trial there is
finite and undiscounted, so :func:`default_gittins_discount` matches the
discount to the trial's length.

References:
    Gittins (1979), "Bandit processes and dynamic allocation indices", Journal
    of the Royal Statistical Society B 41(2), 148-177.
    Gittins, Glazebrook, Weber (2011), "Multi-armed Bandit Allocation
    Indices", 2nd ed., Wiley (the published tables the tests compare with).

Example:
    >>> round(gittins_index(1, 1, gamma=0.9), 4)  # Beta(1, 1): the uniform prior
    0.7029
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from metarl_course.tasks.distribution import check_count


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
    return max(0.5, 1.0 - 1.0 / check_count("num_pulls", num_pulls))


@lru_cache(maxsize=16)
def gittins_index_table(
    gamma: float, max_total: int, depth: int | None = None, num_lambdas: int = 400
) -> np.ndarray:
    """Gittins indices of Bernoulli arms: ``table[a, b]`` for a Beta(a, b) posterior (module docstring: the method).

    The lattice is truncated at a + b = ``depth``, where the arm is treated as
    known (pull forever or retire), the usual approximation.

    The accuracy of the defaults is in the module docstring.

    Arguments:
        gamma: discount in (0, 1).
        max_total: table covers 1 <= a, b with a + b <= max_total (>= 2).
        depth: truncation depth (>= max_total); default max_total + a
            lookahead of 10 / (1 - gamma) pulls, capped at 1000 extra.
        num_lambdas: M, retirement rewards (i + 0.5) / M for i < M.

    Returns:
        ``(max_total + 1, max_total + 1)`` float64 array, NaN outside the
        covered states; read-only (the result is cached).

    Example:
        >>> round(float(gittins_index_table(0.9, 4)[1, 1]), 4)  # uniform prior
        0.7029
    """
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma must be in (0, 1), got {gamma}")
    check_count("max_total", max_total, minimum=2)
    check_count("num_lambdas", num_lambdas)
    if depth is None:
        depth = max_total + min(1000, int(math.ceil(10.0 / (1.0 - gamma))))
    if depth < max_total:
        raise ValueError(f"depth must be >= max_total = {max_total}, got {depth}")
    lambdas = (np.arange(num_lambdas) + 0.5) / num_lambdas  # (M,)
    table = np.full((max_total + 1, max_total + 1), np.nan)
    # At the truncation depth the arm is "known": pulling forever is worth mean / (1 - gamma).
    mean = (np.arange(1, depth) / depth)[:, None]  # (depth - 1, 1)
    reward = np.broadcast_to(mean / (1.0 - gamma), (depth - 1, num_lambdas))  # R, (states, M)
    time = np.full((depth - 1, num_lambdas), 1.0 / (1.0 - gamma))  # W, (states, M)
    for total in range(depth, 1, -1):  # the states with a + b = total: a = 1 .. total - 1
        a = np.arange(1, total)
        if total < depth:  # a pull leads from (a, b) to (a + 1, b) or (a, b + 1): rows a and a - 1 at total + 1
            mean = (a / total)[:, None]  # (total - 1, 1) posterior mean of each state
            keep_pulling = reward - lambdas * time > 0  # at total + 1; else retire there: R = W = 0
            reward_next, time_next = np.where(keep_pulling, reward, 0.0), np.where(keep_pulling, time, 0.0)
            reward = mean + gamma * (mean * reward_next[1:] + (1 - mean) * reward_next[:-1])
            time = 1.0 + gamma * (mean * time_next[1:] + (1 - mean) * time_next[:-1])
        if total <= max_total:
            table[a, total - a] = (reward / time).max(axis=1)
    table.flags.writeable = False
    return table


def gittins_index(a: int, b: int, gamma: float, num_lambdas: int = 400) -> float:
    """Gittins index of one Bernoulli arm with a Beta(a, b) posterior (a, b >= 1), discount ``gamma``."""
    if a < 1 or b < 1:
        raise ValueError(f"a and b must be >= 1 (Beta parameters), got a={a}, b={b}")
    return float(gittins_index_table(gamma, max(a + b, 2), num_lambdas=num_lambdas)[a, b])


__all__ = ["default_gittins_discount", "gittins_index", "gittins_index_table"]
