"""Every published number the course compares its own results with, each with its citation.

Chapters, tests and tables read these constants instead of retyping the
numbers, so a figure quoted beside a measurement has one source that says
where it comes from. Only numbers the papers print are here; the course's own
measurements live in the result files and are printed by the cells that make
them.

Example:
    >>> DUAN_2016_BANDITS[(10, 5)]["gittins"]
    6.6
    >>> FINN_2017_NAVIGATION["maml"][1]  # MAML on 2D navigation after one policy-gradient step
    -11.68
"""

from __future__ import annotations

DUAN_2016 = (
    "Duan, Schulman, Chen, Bartlett, Sutskever, Abbeel (2016), RL²: Fast Reinforcement Learning via Slow "
    "Reinforcement Learning, arXiv:1611.02779"
)
FINN_2017 = (
    "Finn, Abbeel, Levine (2017), Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks, ICML 2017, "
    "arXiv:1703.03400"
)
LI_2017 = "Li, Zhou, Chen, Li (2017), Meta-SGD: Learning to Learn Quickly for Few-Shot Learning, arXiv:1707.09835"
ZINTGRAF_2020 = ("Zintgraf, Shiarlis, Igl, Schulze, Gal, Hofmann, Whiteson (2020), VariBAD: A Very Good Method for "
                 "Bayes-Adaptive Deep RL via Meta-Learning, ICLR 2020, arXiv:1910.08348")
"""The gridworld's rules and VariBAD's settings come from the authors' code, lmzintgraf/varibad (no number of
the paper is compared with here: the gridworld's references are computed exactly by the course)."""

# --- Duan et al. 2016: RL² ---------------------------------------------------

DUAN_2016_BANDITS_CITATION = f"{DUAN_2016}, Table 1 (k = 5 rows)"
DUAN_2016_BANDITS: dict[tuple[int, int], dict[str, float]] = {
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
"""Bernoulli bandits, arm means U[0, 1]: total reward per trial, ``(num_pulls n, num_arms k) -> policy -> value``.

Policy names are those of :data:`metarl_course.rl.bandit_baselines.POLICY_NAMES`, plus ``"rl2"``. The table
gives no error bars; it rounds to 0.1."""

DUAN_2016_MDPS_CITATION = f"{DUAN_2016}, section 4.2 (random tabular MDPs)"
DUAN_2016_MDPS: dict[int, dict[str, float]] = {
    10: {"random": 100.1, "psrl": 138.1, "rl2": 156.2},
    25: {"random": 250.2, "psrl": 408.8, "rl2": 445.7},
}
"""Random tabular MDPs (10 states, 5 actions, episodes of 10 steps): total reward per trial,
``episodes per trial n -> policy -> value``; policy names as in :data:`metarl_course.rl.psrl.MDP_BASELINES`,
plus ``"rl2"``."""

# --- Finn et al. 2017: MAML ----------------------------------------------------

FINN_2017_NAVIGATION_CITATION = f"{FINN_2017}, 2D navigation (point robot), 40 test goals"
FINN_2017_NAVIGATION: dict[str, tuple[float, float, float, float]] = {
    "maml": (-40.41, -11.68, -3.33, -3.23),
    "pretrained": (-40.81, -19.73, -11.72, -8.47),
    "random_init": (-82.66, -57.96, -53.84, -46.81),
}
"""2D navigation, goals U[-0.5, 0.5]^2: average return after 0, 1, 2, 3 policy-gradient steps on the new goal,
for MAML, a policy pretrained on all goals, and a randomly initialised policy, each adapted the same way."""

FINN_2017_NAVIGATION_ORACLE = -2.29
"""The same task: average return of Finn et al.'s oracle, a *learned* policy that is given the goal."""

# --- Li et al. 2017: Meta-SGD ----------------------------------------------------

LI_2017_SINUSOID_CITATION = f"{LI_2017}, Table 1 (sinusoid regression)"
LI_2017_SINUSOID: dict[int, tuple[float, float]] = {5: (1.13, 0.90), 10: (0.77, 0.53), 20: (0.48, 0.31)}
"""Few-shot sinusoid regression (Finn et al.'s task distribution): query MSE after one inner step,
``K support points -> (MAML, Meta-SGD)``."""

__all__ = [
    "DUAN_2016", "DUAN_2016_BANDITS", "DUAN_2016_BANDITS_CITATION", "DUAN_2016_MDPS", "DUAN_2016_MDPS_CITATION",
    "FINN_2017", "FINN_2017_NAVIGATION", "FINN_2017_NAVIGATION_CITATION", "FINN_2017_NAVIGATION_ORACLE",
    "LI_2017", "LI_2017_SINUSOID", "LI_2017_SINUSOID_CITATION",
]
