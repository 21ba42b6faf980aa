"""Chapter 06's evaluation protocol: confidence intervals over seeds, paired differences, the comparison table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from metarl_course.comparison import NavigationScores, navigation_comparison_table, training_cost
from metarl_course.evaluation import across_seeds, paired_difference


def test_across_seeds_treats_each_training_run_as_one_sample():
    rng = np.random.default_rng(0)
    curves = [rng.normal(loc, 1.0, size=(40, 3)) for loc in (0.0, 1.0, 5.0)]
    mean, half_width = across_seeds(curves)
    per_seed = np.array([c.mean(0) for c in curves])  # (3 seeds, 3 points)
    np.testing.assert_allclose(mean, per_seed.mean(0))
    expected = per_seed.std(0, ddof=1) / np.sqrt(3) * stats.t.ppf(0.975, df=2)
    np.testing.assert_allclose(half_width, expected)
    # pooling all 120 task scores as independent samples would claim far more precision than 3 runs give
    pooled = np.concatenate(curves).std(0, ddof=1) / np.sqrt(120) * 1.98
    assert np.all(half_width > 5 * pooled)


def test_across_seeds_refuses_one_seed_and_mismatched_curves():
    with pytest.raises(ValueError, match="at least 2 training seeds"):
        across_seeds([np.zeros((5, 3))])
    with pytest.raises(ValueError, match="same number of points"):
        across_seeds([np.zeros((5, 3)), np.zeros((5, 4))])


def test_paired_difference_is_tighter_than_the_scores_it_compares():
    rng = np.random.default_rng(1)
    difficulty = rng.normal(0, 10, size=50)  # what the tasks share: some are hard for every method
    a, b = difficulty + rng.normal(1.0, 0.5, 50), difficulty + rng.normal(0.0, 0.5, 50)
    diff = paired_difference(a, b)
    assert diff.mean == pytest.approx((a - b).mean())
    assert diff.mean - diff.half_width > 0  # a really is better ...
    unpaired = 1.96 * np.sqrt(a.var(ddof=1) / 50 + b.var(ddof=1) / 50)
    assert diff.half_width < unpaired / 5  # ... which the unpaired intervals could not tell
    with pytest.raises(ValueError, match="same tasks"):
        paired_difference(a, b[:10])


def test_training_cost_reads_the_history_and_names_the_fix_for_old_files():
    data = {"experiment": "x", "history": {"charts/env_steps": [(1, 10.0), (2, 20.0)],
                                           "charts/wall_seconds": [(1, 3.0), (2, 4.0)]}}
    assert training_cost(data) == (20.0, 7.0)  # two training sessions: their wall times add up
    with pytest.raises(KeyError, match="python -m metarl_course train x"):
        training_cost({"experiment": "x", "history": {}})


def test_navigation_comparison_table_shows_each_method_once_with_its_final_score():
    returns = np.array([[-40.0, -10.0], [-30.0, -8.0], [-50.0, -12.0]])
    rows = [NavigationScores("method A", returns, np.array([0, 20]), "gradient steps", 2e6, 600.0),
            NavigationScores("oracle", np.array([[-1.0], [-2.0], [-3.0]]), np.array([0]), "knows the goal")]
    table = navigation_comparison_table(rows).splitlines()
    assert len(table) == 4 and table[2].startswith("method A") and table[3].startswith("oracle")
    half_width = np.std([-10, -8, -12], ddof=1) / math.sqrt(3) * stats.t.ppf(0.975, 2)
    assert f"-10.00 +/- {half_width:.2f}" in table[2] and "2.0 M" in table[2] and "10.0 min" in table[2]
    assert "-40.0" in table[2] and "-2.00" in table[3]
