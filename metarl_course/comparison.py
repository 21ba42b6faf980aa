"""Chapter 06's comparison: the tutorial's algorithm table, measured on the same 2D navigation goals.

Every method is scored on the same held-out goals (:func:`metarl_course.rl.maml_rl.heldout_goals`) with the
same kind of number, the average undiscounted return of an episode, after it has spent some *experience* on
the new task:

* MAML-TRPO, ProMP and the pretrained policy adapt with policy-gradient steps; each step uses
  ``num_trajectories`` (20) fresh episodes, so after k steps they have used 20 k episodes of the task;
* RL² adapts inside its hidden state: its second episode comes after one episode of the task;
* the oracle knows the goal and needs no experience.

What each method cost to meta-train (environment steps, wall time) comes from the history stored in its
result file (``charts/env_steps``, ``charts/wall_seconds``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from metarl_course.evaluation import mean_ci
from metarl_course.experiments import load_result
from metarl_course.tasks.navigation import NavigationTask

FINN_2017_MAML = (-40.41, -11.68, -3.33, -3.23)
"""Finn et al. 2017: MAML on 2D navigation, average return after 0-3 policy-gradient steps (40 goals)."""


@dataclass(frozen=True)
class NavigationScores:
    """How one method does on the held-out goals, and what it cost."""

    method: str
    returns: np.ndarray
    """(num_goals, num_points): average episode return on each goal at each point of its adaptation."""
    experience: np.ndarray
    """(num_points,): episodes of the new task the method had used before each point."""
    adapts_by: str
    """How it adapts: "gradient steps", "hidden state" or "knows the goal"."""
    meta_env_steps: float = math.nan
    """Environment steps of meta-training (NaN: none)."""
    wall_seconds: float = math.nan
    """Wall time of meta-training on the machine that produced the result file (NaN: none)."""

    @property
    def final(self) -> tuple[float, float]:
        """Mean return at the last point, with its 95% confidence half-width over goals."""
        mean, half_width = mean_ci(self.returns[:, -1])
        return float(mean), float(half_width)


def training_cost(data: dict[str, Any]) -> tuple[float, float]:
    """``(environment steps, wall seconds)`` of the meta-training that wrote a result file's ``data``."""
    history = data["history"]
    if "charts/env_steps" not in history:
        raise KeyError(f"the result file of {data['experiment']} records no environment steps (an older file); "
                       f"retrain it with: python -m metarl_course train {data['experiment']}")
    wall = sum(value for _, value in history.get("charts/wall_seconds", []))  # one entry per training session
    return float(history["charts/env_steps"][-1][1]), float(wall)


def maml_rl_scores(name: str, goals: list[NavigationTask], num_steps: int = 3, seed: int = 0,
                   label: str | None = None) -> NavigationScores:
    """A shipped MAML-RL result (``maml-trpo-navigation``, ``promp-navigation``, ``pretrained-navigation``)."""
    learner, data = load_result(name)
    returns = learner.adaptation_returns(goals, num_steps, seed=seed).cpu().double().numpy()
    experience = np.arange(num_steps + 1) * learner.config.num_trajectories
    env_steps, wall = training_cost(data)
    return NavigationScores(label or name, returns, experience, "gradient steps", env_steps, wall)


def rl2_scores(name: str, goals: list[NavigationTask], trials_per_goal: int = 20, seed: int = 0,
               label: str | None = None) -> NavigationScores:
    """A shipped RL² navigation result: the return of episode 1, 2, ... of trials on each goal."""
    from metarl_course.rl.rl2 import navigation_goal_returns

    learner, data = load_result(name)
    returns = navigation_goal_returns(learner.model, goals, trials_per_goal, learner.config.goal_tolerance,
                                      seed)  # (goals, episodes)
    env_steps, wall = training_cost(data)
    experience = np.arange(returns.shape[1])
    return NavigationScores(label or name, np.asarray(returns, dtype=float), experience, "hidden state",
                            env_steps, wall)


def oracle_scores(goals: list[NavigationTask]) -> NavigationScores:
    """The controller that knows the goal (an upper bound; no meta-training)."""
    from metarl_course.rl.maml_rl import oracle_returns

    returns = oracle_returns(goals).cpu().double().numpy()[:, None]
    return NavigationScores("oracle (knows the goal)", returns, np.zeros(1, dtype=int), "knows the goal")


def comparison_table(scores: list[NavigationScores]) -> str:
    """A text table: return with no experience of the task and after adaptation, experience used, meta-training cost."""
    header = (f"{'method':<26}{'adapts by':<16}{'with 0 episodes':>16}{'after':>17}{'episodes used':>15}"
              f"{'meta-train env steps':>22}{'wall time':>11}")
    lines = [header, "-" * len(header)]
    for s in scores:
        mean, half_width = s.final
        before = f"{s.returns[:, 0].mean():.1f}" if s.returns.shape[1] > 1 else ""
        steps = "" if math.isnan(s.meta_env_steps) else f"{s.meta_env_steps / 1e6:.1f} M"
        wall = "" if math.isnan(s.wall_seconds) else f"{s.wall_seconds / 60:.1f} min"
        lines.append(f"{s.method:<26}{s.adapts_by:<16}{before:>16}{f'{mean:.2f} +/- {half_width:.2f}':>17}"
                     f"{int(s.experience[-1]):>15}{steps:>22}{wall:>11}")
    return "\n".join(lines)
