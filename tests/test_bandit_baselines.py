"""Tests of the classic bandit baselines, the Gittins index and the Bayes-optimal value against independent references.

References used: published Gittins indices, a brute-force search over stopping
rules, a naive per-task Python loop replaying the same random draws, exact
dynamic-programming values of index policies (written here, apart from the
package), closed forms for tiny problems, scipy's Student t, and Duan et al.
(2016) Table 1.
"""

import dataclasses
import itertools
import math
from functools import lru_cache
from typing import Callable

import numpy as np
import pytest
import torch
from scipy import stats

from metarl_course.papers import DUAN_2016_BANDITS
from metarl_course.rl.bandit_baselines import (
    POLICY_NAMES,
    BanditBaselineConfig,
    evaluate_bandit_policy,
    format_baseline_table,
    make_policy,
    run_bandit,
    sample_arm_means,
)
from metarl_course.rl.bayes_optimal import bayes_optimal_ceiling, bayes_optimal_value
from metarl_course.rl.gittins import default_gittins_discount, gittins_index, gittins_index_table
from metarl_course.rl.rl2 import RL2Config, RL2Learner
from metarl_course.rl.rl2_analysis import baseline_pulls, bandit_comparison_table, rl2_pulls

torch.set_num_threads(1)

# --- Gittins index ----------------------------------------------------------

# Gittins, Glazebrook & Weber (2011), tables of Bernoulli indices with a uniform
# prior, as reprinted in Christian & Griffiths, "Algorithms to Live By" (2016),
# ch. 2: (wins, losses) -> index; Beta(1 + wins, 1 + losses).
PUBLISHED_GITTINS = [
    (0.9, 0, 0, 0.7029),
    (0.9, 1, 1, 0.6346),
    (0.9, 2, 2, 0.6010),
    (0.9, 9, 1, 0.8695),
    (0.99, 0, 0, 0.8699),
]


@pytest.mark.parametrize("gamma, wins, losses, published", PUBLISHED_GITTINS)
def test_gittins_matches_published_tables(gamma, wins, losses, published):
    # published to 4 decimals: rounding error <= 5e-5
    assert abs(gittins_index(1 + wins, 1 + losses, gamma) - published) <= 6e-5


def _brute_force_index(a, b, gamma, depth):
    """sup over all stopping rules of E[discounted reward] / E[discounted pulls], by enumeration.

    The arm is pulled at (a, b); every state below may stop or go on; states at
    a + b = depth may stop or pull forever (the same truncation as the table).
    """
    inner = [(x, t - x) for t in range(a + b + 1, depth) for x in range(a, t - b + 1)]
    leaves = [(x, depth - x) for x in range(a, depth - b + 1)]
    best = 0.0
    for choice in itertools.product((False, True), repeat=len(inner) + len(leaves)):
        go_on = dict(zip(inner + leaves, choice))

        def reward_and_time(x, y):  # continue at (x, y) first
            mean = x / (x + y)
            if x + y == depth:
                return mean / (1 - gamma), 1 / (1 - gamma)
            out_r, out_w = mean, 1.0
            for child, prob in (((x + 1, y), mean), ((x, y + 1), 1 - mean)):
                if go_on[child]:
                    r, w = reward_and_time(*child)
                    out_r, out_w = out_r + gamma * prob * r, out_w + gamma * prob * w
            return out_r, out_w

        r, w = reward_and_time(a, b)
        best = max(best, r / w)
    return best


@pytest.mark.parametrize("a, b, gamma, depth", [(1, 1, 0.9, 6), (2, 1, 0.7, 6), (1, 2, 0.95, 6)])
def test_gittins_matches_brute_force_on_tiny_lattice(a, b, gamma, depth):
    table = gittins_index_table(gamma, a + b, depth=depth, num_lambdas=2000)
    assert abs(table[a, b] - _brute_force_index(a, b, gamma, depth)) < 1e-6


def test_gittins_default_accuracy_against_finer_computation():
    gamma, max_total = 0.95, 30
    default = gittins_index_table(gamma, max_total)
    finer = gittins_index_table(gamma, max_total, depth=max_total + 600, num_lambdas=1600)
    assert np.nanmax(np.abs(default - finer)) < 1e-4
    # known properties: index above the posterior mean, increasing in successes
    a, b = np.meshgrid(np.arange(1, 20), np.arange(1, 10), indexing="ij")
    assert np.all(default[a, b] >= a / (a + b) - 1e-12)
    assert np.all(np.diff(default[1:20, 1:10], axis=0) > 0)


# --- the batched simulator against a naive per-task loop --------------------


def _naive_score(name, s, f, step, noise_b, config, num_arms, table):
    """One arm's score, written independently of the batched code (pseudo-counts c)."""
    c = config.pseudo_counts
    mean = (s + c) / (s + f + 2 * c) if s + f + 2 * c > 0 else math.inf
    if name == "random":
        return 0.0
    if name == "greedy":
        return mean
    if name == "epsilon_greedy":
        return 0.0 if noise_b < config.epsilon else mean
    if name == "ucb1_textbook":  # c = 1, no pseudo-counts, whatever the config says
        if s + f == 0:
            return math.inf
        return s / (s + f) + math.sqrt(2.0 * math.log(max(step, 1)) / (s + f))
    if name == "ucb1":
        pulls = s + f + 2 * c
        t = step + 2 * c * num_arms
        return mean + config.ucb_c * math.sqrt(2.0 * math.log(max(t, 1)) / max(pulls, 1))
    if name == "thompson":
        return noise_b
    if name == "optimistic_thompson":
        return max(noise_b, (1 + s) / (2 + s + f))
    if name == "gittins":
        return table[1 + s, 1 + f]
    raise AssertionError(name)


def _naive_rollout(name, config, num_tasks, num_arms, num_pulls, seed):
    """Per-task Python loop that replays run_bandit's draws (policy draw, tie-break, reward)."""
    policy = make_policy(name, num_pulls, config, device="cpu")
    table = gittins_index_table(default_gittins_discount(num_pulls), num_pulls + 1)
    generator = torch.Generator().manual_seed(seed)
    means = sample_arm_means(num_tasks, num_arms, generator).tolist()
    succ = [[0] * num_arms for _ in range(num_tasks)]
    fail = [[0] * num_arms for _ in range(num_tasks)]
    arms = [[0] * num_pulls for _ in range(num_tasks)]
    for step in range(num_pulls):
        noise = policy.draw(torch.tensor(succ), torch.tensor(fail), generator)
        tie = torch.rand((num_tasks, num_arms), generator=generator, dtype=torch.float64).tolist()
        reward_u = torch.rand((num_tasks, 1), generator=generator, dtype=torch.float64).tolist()
        for b in range(num_tasks):
            noise_b = None if noise is None else noise[b].tolist()
            scores = [
                _naive_score(name, succ[b][i], fail[b][i], step,
                             noise_b[i] if isinstance(noise_b, list) else noise_b, config, num_arms, table)
                for i in range(num_arms)
            ]
            best = max(scores)
            arm = max((i for i in range(num_arms) if scores[i] == best), key=lambda i: tie[b][i])
            won = reward_u[b][0] < means[b][arm]
            succ[b][arm] += won
            fail[b][arm] += not won
            arms[b][step] = arm
    return arms


@pytest.mark.parametrize(
    "name, pseudo_counts",
    [(name, 1) for name in POLICY_NAMES] + [(name, 0) for name in ("greedy", "epsilon_greedy", "ucb1")],
)
def test_batched_policy_equals_naive_loop(name, pseudo_counts):
    config = BanditBaselineConfig(pseudo_counts=pseudo_counts, epsilon=0.2, ucb_c=0.5)
    num_tasks, num_arms, num_pulls, seed = 32, 3, 30, 11
    generator = torch.Generator().manual_seed(seed)
    means = sample_arm_means(num_tasks, num_arms, generator)
    rollout = run_bandit(make_policy(name, num_pulls, config, device="cpu"), means, num_pulls, generator)
    assert rollout.arms.tolist() == _naive_rollout(name, config, num_tasks, num_arms, num_pulls, seed)


def test_same_seed_same_numbers():
    a = evaluate_bandit_policy("thompson", 5, 20, num_trials=200, seed=3, device="cpu")
    b = evaluate_bandit_policy("thompson", 5, 20, num_trials=200, seed=3, device="cpu")
    assert a == b


# --- exact values on small problems -----------------------------------------


def index_policy_value(index: Callable[[int, int, int], float], num_arms: int, num_pulls: int) -> float:
    """Exact expected total reward of a deterministic index policy with uniform tie-breaking (arm means U[0, 1]).

    ``index(successes, failures, step)`` scores one arm; the policy pulls an arm of highest score, each tied arm
    with equal probability. Recursion over the (successes, failures) of every arm, sorted (the arms are
    exchangeable); a pull of an arm with counts (s, f) pays 1 with probability (1 + s) / (2 + s + f), its
    Beta(1 + s, 1 + f) posterior mean. Written apart from metarl_course.rl.bayes_optimal, as its reference.
    """

    @lru_cache(maxsize=None)
    def value(counts: tuple[tuple[int, int], ...], step: int) -> float:
        if step == num_pulls:
            return 0.0
        scores = [index(s, f, step) for s, f in counts]
        tied = [i for i, score in enumerate(scores) if score == max(scores)]
        total = 0.0
        for i in tied:
            (s, f), others = counts[i], counts[:i] + counts[i + 1 :]
            p = (1.0 + s) / (2.0 + s + f)
            win, loss = tuple(sorted(others + ((s + 1, f),))), tuple(sorted(others + ((s, f + 1),)))
            total += p * (1.0 + value(win, step + 1)) + (1 - p) * value(loss, step + 1)
        return total / len(tied)

    return value(((0, 0),) * num_arms, 0)


def test_bayes_optimal_closed_form():
    assert bayes_optimal_value(2, 1) == pytest.approx(0.5)
    # pull once (1/2); win -> stay (2/3), lose -> the other arm (1/2)
    assert bayes_optimal_value(2, 2) == pytest.approx(0.5 + 0.5 * 2 / 3 + 0.5 * 0.5)


@pytest.mark.parametrize("name", ["greedy", "gittins"])
def test_simulator_agrees_with_exact_policy_value(name):
    num_arms, num_pulls = 5, 10
    table = gittins_index_table(default_gittins_discount(num_pulls), num_pulls + 1)
    index = {"greedy": lambda s, f, t: (s + 1) / (s + f + 2), "gittins": lambda s, f, t: table[1 + s, 1 + f]}[name]
    exact = index_policy_value(index, num_arms, num_pulls)
    measured = evaluate_bandit_policy(name, num_arms, num_pulls, num_trials=20000, seed=5, device="cpu")
    assert abs(measured.mean - exact) < measured.ci95 * 1.3  # 1.3 x CI: a 1-in-10^4 false alarm


@pytest.mark.parametrize("num_arms, num_pulls", [(5, 10), (2, 30), (3, 20)])
def test_gittins_is_near_bayes_optimal(num_arms, num_pulls):
    table = gittins_index_table(default_gittins_discount(num_pulls), num_pulls + 1)
    gittins = index_policy_value(lambda s, f, t: table[1 + s, 1 + f], num_arms, num_pulls)
    optimal = bayes_optimal_value(num_arms, num_pulls)
    greedy = index_policy_value(lambda s, f, t: (s + 1) / (s + f + 2), num_arms, num_pulls)
    assert optimal - 0.005 * optimal <= gittins <= optimal + 1e-12
    assert greedy <= gittins


# --- Duan et al. (2016) Table 1 ---------------------------------------------

# The paper's OTS (6.5 at n = 10, far above its TS at 5.7) is not reproduced by
# Chapelle & Li's definition implemented here (5.97 +/- 0.03 at n = 10,
# 75.8 +/- 0.2 at n = 100, 20,000 trials): the paper's variant must differ.
NOT_COMPARABLE = {"optimistic_thompson", "ucb1_textbook"}  # the paper's table has one UCB1, tuned as ours


@pytest.fixture(scope="module")
def measured():
    trials = {10: 5000, 100: 2000}
    return {
        (n, 5): {name: evaluate_bandit_policy(name, 5, n, trials[n], seed=2024, device="cpu") for name in POLICY_NAMES}
        for n in (10, 100)
    }


@pytest.mark.parametrize("num_pulls", [10, 100])
@pytest.mark.parametrize("name", [p for p in POLICY_NAMES if p not in NOT_COMPARABLE])
def test_matches_paper_table1(measured, num_pulls, name):
    result = measured[(num_pulls, 5)][name]
    paper = DUAN_2016_BANDITS[(num_pulls, 5)][name]
    # Our 95% CI widened by the paper's own sampling error, taken as 1000 trials with
    # our standard deviation (the table gives no error bars), plus its rounding.
    tolerance = result.ci95 * math.sqrt(1 + result.num_trials / 1000) + 0.05
    assert abs(result.mean - paper) <= tolerance, format_baseline_table([result])


@pytest.mark.parametrize("num_pulls", [10, 100])
def test_ordering(measured, num_pulls):
    r = {name: res.mean for name, res in measured[(num_pulls, 5)].items()}
    assert r["gittins"] >= r["thompson"]
    assert r["optimistic_thompson"] >= r["thompson"] - 0.05
    assert r["random"] == min(r.values())


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_arms=1), "num_arms"),
        (dict(num_pulls=0), "num_pulls"),
        (dict(policy="softmax"), "random, greedy, epsilon_greedy"),
        (dict(num_trials=1), "num_trials"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(policy="random", num_arms=5, num_pulls=10, num_trials=10, device="cpu") | kwargs
    with pytest.raises(ValueError, match=match):
        evaluate_bandit_policy(**args)


@pytest.mark.parametrize(
    "kwargs", [dict(epsilon=-0.1), dict(epsilon=1.5), dict(ucb_c=-1.0), dict(gittins_gamma=1.0), dict(pseudo_counts=-1)]
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        BanditBaselineConfig(**kwargs)


def test_textbook_ucb1_explores_too_much_for_short_trials():
    """The tables show both UCB1s: Auer et al.'s (c = 1, no pseudo-counts) is far below the tuned one."""
    textbook = evaluate_bandit_policy("ucb1_textbook", 5, 100, num_trials=2000, seed=0, device="cpu")
    tuned = evaluate_bandit_policy("ucb1", 5, 100, num_trials=2000, seed=0, device="cpu")
    assert tuned.mean - textbook.mean > 5 * (tuned.ci95 + textbook.ci95) / 2


def test_the_ceiling_is_exact_where_computable_and_a_bound_beyond():
    value, exact = bayes_optimal_ceiling(5, 10)
    assert exact and value == pytest.approx(6.660, abs=5e-4)  # computed independently: 6.660
    bound, exact = bayes_optimal_ceiling(5, 100)
    assert not exact and bound == pytest.approx(500 / 6)
    gittins = evaluate_bandit_policy("gittins", 5, 100, num_trials=2000, seed=0, device="cpu")
    assert gittins.mean < bound  # a policy's score stays below the told-the-arms bound


# --- the interval convention and chapter 05's comparison table ----------------


def test_ci95_is_the_student_t_interval():
    result = evaluate_bandit_policy("thompson", 5, 10, num_trials=12, seed=1, device="cpu")
    assert result.ci95 == pytest.approx(stats.t.ppf(0.975, df=11) * result.std / math.sqrt(12), rel=1e-12)


def test_bandit_comparison_table_states_its_interval_the_paper_and_the_ceiling():
    gittins = baseline_pulls("gittins", 10, 5, num_trials=200, seed=0)
    stand_in = dataclasses.replace(baseline_pulls("ucb1", 10, 5, num_trials=200, seed=0), name="rl2")
    lines = bandit_comparison_table(stand_in, [gittins]).splitlines()
    assert "95% CI, Student t" in lines[0] and len(lines) == 5
    assert lines[2].startswith("| RL² |") and lines[2].endswith(f"| {DUAN_2016_BANDITS[(10, 5)]['rl2']} |")
    assert lines[3].startswith("| Gittins index |")
    assert lines[4].startswith("| Bayes-optimal (exact") and "| 6.660 |" in lines[4]


def test_rl2_pulls_plays_the_baselines_bandits_and_checks_the_setting():
    model = RL2Learner(RL2Config.bandit(num_pulls=6, num_arms=3, hidden_size=8, num_trials=4), seed=0,
                       device="cpu").model
    ours = rl2_pulls(model, 6, 3, num_trials=16, seed=4)
    theirs = baseline_pulls("random", 6, 3, num_trials=16, seed=4)
    np.testing.assert_array_equal(ours.arm_means, theirs.arm_means)
    assert ours.arms.shape == (16, 6) and set(np.unique(ours.rewards)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="load the checkpoint"):
        rl2_pulls(model, 10, 3, num_trials=16)
