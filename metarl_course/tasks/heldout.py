"""The course's fixed held-out task sets, one named seed each.

A held-out (meta-test) set is drawn once from its distribution with a fixed
seed, so every chapter, test and result file scores a learner on the very same
tasks. Settings (a step size, a number of inner steps) are chosen on a
separate validation set, never on the held-out one.

The sinusoid set is :func:`metarl_course.tasks.sinusoid.heldout_batch`; the
navigation goal sets are here.
"""

from __future__ import annotations

import numpy as np

from metarl_course.tasks.navigation import NavigationDistribution, NavigationTask

SINUSOID_HELDOUT_SEED = 2017
"""Sinusoid regression: the 100 held-out tasks of :func:`metarl_course.tasks.sinusoid.heldout_batch`."""

NAVIGATION_HELDOUT_SEED = 2017
"""2D navigation: the 40 held-out goals MAML-RL, ProMP and RL² are compared on
(:func:`heldout_goals`)."""

NAVIGATION_VALIDATION_SEED = 7
"""2D navigation: 40 goals for choosing evaluation settings (:func:`validation_goals`)."""

GRIDWORLD_VALIDATION_SEED = 7
"""Gridworld: VariBAD's validation trials (model selection during training; never the held-out ones)."""

RL2_HELDOUT_SEED = 12345
"""RL²'s held-out trials (bandits, tabular MDPs, navigation: ``RL2Config.eval_seed``) and the MDP baselines
scored on the same MDPs (:func:`metarl_course.rl.psrl.evaluate_mdp_baseline`)."""


def heldout_goals(num_tasks: int = 40, seed: int = NAVIGATION_HELDOUT_SEED,
                  distribution: NavigationDistribution | None = None) -> list[NavigationTask]:
    """The course's fixed meta-test goals for 2D navigation (40 goals, as in Finn et al. 2017).

    Example:
        >>> heldout_goals()[0] == heldout_goals()[0]  # the same goals every call
        True
    """
    return (distribution or NavigationDistribution()).sample(num_tasks, np.random.default_rng(seed))


def validation_goals(num_tasks: int = 40, seed: int = NAVIGATION_VALIDATION_SEED,
                     distribution: NavigationDistribution | None = None) -> list[NavigationTask]:
    """Goals for choosing evaluation settings (e.g. a step size), drawn apart from :func:`heldout_goals`."""
    if seed == NAVIGATION_HELDOUT_SEED:
        raise ValueError(f"seed {seed} draws the held-out goals; choose settings on other goals")
    return (distribution or NavigationDistribution()).sample(num_tasks, np.random.default_rng(seed))
