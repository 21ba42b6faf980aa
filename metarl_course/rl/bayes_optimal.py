"""The best any policy can do on Bernoulli bandits with arm means U[0, 1]: the exact Bayes-optimal value.

A trial is ``num_pulls`` pulls on a k-armed bandit whose arm means were drawn
i.i.d. from U[0, 1], the task distribution of Duan et al. (2016). Before each
pull, everything a policy can know about arm i is its count of successes s_i
and failures f_i, and the arm's posterior is Beta(1 + s_i, 1 + f_i): the next
pull of arm i pays 1 with probability (1 + s_i) / (2 + s_i + f_i). Dynamic
programming over these counts gives the expected total reward of the
Bayes-optimal policy, the highest expected total any policy can reach:

    V(state, pulls_left) = max_i [ p_i (1 + V(win_i, pulls_left - 1)) + (1 - p_i) V(loss_i, pulls_left - 1) ]

The arms are exchangeable, so a state is the *sorted* tuple of (s_i, f_i);
even so the number of states grows fast with n and k, and chapter 05 stops at
:data:`BAYES_OPTIMAL_MAX_PULLS` pulls. Beyond it, :func:`bayes_optimal_ceiling`
gives an upper bound instead.

Example:
    >>> round(bayes_optimal_value(num_arms=2, num_pulls=2), 4)  # 1/2, then stay on a win (2/3), switch on a loss (1/2)
    1.0833
"""

from __future__ import annotations

from functools import lru_cache

from metarl_course.tasks.distribution import check_count

ArmState = tuple[tuple[int, int], ...]
"""(successes, failures) of every arm, sorted (the arms are exchangeable)."""

BAYES_OPTIMAL_MAX_PULLS = 20
""":func:`bayes_optimal_value` is computed up to this many pulls (k = 5, n = 20: about 3 s; it grows fast)."""


def _pull_outcomes(state: ArmState, arm: int) -> tuple[float, ArmState, ArmState]:
    """Pulling ``arm`` in ``state``: its posterior success probability, and the states after a success and a failure."""
    s, f = state[arm]
    win = tuple(sorted(state[:arm] + ((s + 1, f),) + state[arm + 1 :]))
    loss = tuple(sorted(state[:arm] + ((s, f + 1),) + state[arm + 1 :]))
    return (1.0 + s) / (2.0 + s + f), win, loss


def bayes_optimal_value(num_arms: int, num_pulls: int) -> float:
    """Expected total reward of the Bayes-optimal policy on k = ``num_arms`` arms, n = ``num_pulls`` pulls.

    Exact, by dynamic programming (module docstring). The cost grows fast, so
    keep num_pulls * num_arms small (e.g. k = 5, n <= 20; k = 2, n <= 30).

    Example:
        >>> round(bayes_optimal_value(5, 10), 3)
        6.66
    """
    check_count("num_arms", num_arms, minimum=2)
    check_count("num_pulls", num_pulls)

    @lru_cache(maxsize=None)
    def value(state: ArmState, pulls_left: int) -> float:
        if pulls_left == 0:
            return 0.0
        best = 0.0
        for arm in range(num_arms):
            p, win, loss = _pull_outcomes(state, arm)
            best = max(best, p * (1.0 + value(win, pulls_left - 1)) + (1 - p) * value(loss, pulls_left - 1))
        return best

    return value(((0, 0),) * num_arms, num_pulls)


def bayes_optimal_ceiling(num_arms: int, num_pulls: int) -> tuple[float, bool]:
    """The best expected total any policy can reach on bandits with arm means U[0, 1], and whether it is exact.

    Up to :data:`BAYES_OPTIMAL_MAX_PULLS` pulls: the exact Bayes-optimal value (:func:`bayes_optimal_value`),
    e.g. 6.660 for k = 5, n = 10. Beyond: an upper bound, the expected total of an agent told the arm means,
    ``n * k / (k + 1)`` (the mean of the largest of k uniforms); a policy's measured score is a lower bound.

    Returns:
        ``(value, exact)``: ``exact`` is False where ``value`` is the told-the-arm-means bound.
    """
    check_count("num_arms", num_arms, minimum=2)
    if check_count("num_pulls", num_pulls) <= BAYES_OPTIMAL_MAX_PULLS:
        return bayes_optimal_value(num_arms, num_pulls), True
    return num_pulls * num_arms / (num_arms + 1), False


__all__ = ["BAYES_OPTIMAL_MAX_PULLS", "ArmState", "bayes_optimal_ceiling", "bayes_optimal_value"]
