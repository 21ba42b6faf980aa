"""Scoring the navigation learners side by side (chapter 06's comparison of the tutorial's algorithm table).

Every method is scored on the same held-out goals (:func:`metarl_course.tasks.heldout.heldout_goals`) with the
same kind of number, the average undiscounted return of an episode, after it has spent some *experience* on
the new task:

* MAML-TRPO, ProMP and the pretrained policy adapt with policy-gradient steps; each step uses
  ``num_trajectories`` (20) fresh episodes, so after k steps they have used 20 k episodes of the task;
* RL² adapts inside its hidden state: its second episode comes after one episode of the task;
* the oracle knows the goal and needs no experience.

What each method cost to meta-train (environment steps, wall time) comes from the history stored in its
result file (``charts/env_steps``, ``charts/wall_seconds``). Environment steps are counted the same way for every
method: the steps the env really simulated, not the steps a batched env holds an agent at its goal.

Intervals are 95% confidence intervals over goals (Student t, :func:`metarl_course.evaluation.mean_ci`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from metarl_course.evaluation import mean_ci
from metarl_course.experiments import load_result
from metarl_course.rl.policies import RL2ActorCritic
from metarl_course.rl.sampling import rollout
from metarl_course.seeding import cpu_generator
from metarl_course.tasks.distribution import check_count
from metarl_course.tasks.navigation import GOAL_TOLERANCE, BatchedNavigationEnv, NavigationTask, oracle_returns

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


def navigation_goal_returns(model: RL2ActorCritic, goals: Sequence[NavigationTask], trials_per_goal: int = 20,
                            goal_tolerance: float | None = GOAL_TOLERANCE, seed: int = 0, greedy: bool = False,
                            episodes_per_trial: int | None = None,
                            reset_hidden_every_episode: bool = False) -> np.ndarray:
    """Returns of an RL² navigation agent on given goals, episode by episode: ``(num_goals, episodes_per_trial)``.

    Each goal is played for ``trials_per_goal`` trials of ``episodes_per_trial`` episodes (default: the
    model's own) of ``horizon`` steps (from the model's setting), with the hidden state reset once per trial
    (with ``reset_hidden_every_episode``, at every episode: the tutorial's mistake); entry
    ``[g, e]`` is the mean undiscounted return of episode ``e`` over those trials. The env is the one
    MAML-RL is evaluated in (:func:`metarl_course.rl.maml_rl.adaptation_returns`): reward minus the
    distance to the goal, and with the default ``goal_tolerance`` (0.01, the env's default) an episode
    ends when the agent is within 0.01 of the goal in both coordinates. Pass the tolerance the agent was
    trained with (``RL2Config.goal_tolerance``) to score it in its own setting.

    Example:
        >>> from metarl_course.tasks.heldout import heldout_goals
        >>> learner, _ = load_result("rl2-nav-2ep")  # doctest: +SKIP
        >>> returns = navigation_goal_returns(learner.model, heldout_goals())  # doctest: +SKIP
        >>> returns.shape  # doctest: +SKIP
        (40, 2)
    """
    if model.setting.get("task") != "navigation":
        raise ValueError(f"the model was trained for {model.setting}, not navigation; load an RL² navigation "
                         "checkpoint, e.g. load_result('rl2-nav-2ep')[0].model")
    goals = list(goals)
    if not goals or not all(isinstance(g, NavigationTask) for g in goals):
        raise TypeError("goals must be a non-empty list of NavigationTask, e.g. metarl_course.tasks.heldout.heldout_goals()")
    check_count("trials_per_goal", trials_per_goal)
    horizon = model.setting["horizon"]
    episodes = model.setting["episodes_per_trial"] if episodes_per_trial is None else episodes_per_trial
    env = BatchedNavigationEnv([g for g in goals for _ in range(trials_per_goal)], horizon=horizon,
                               episodes_per_trial=check_count("episodes_per_trial", episodes), device=model.device,
                               goal_tolerance=goal_tolerance)
    generator = cpu_generator(int(seed))  # on the CPU: the same numbers on any device
    trials = rollout(model, env, generator, seed=seed, greedy=greedy,
                     reset_hidden_every_episode=reset_hidden_every_episode)
    per_trial = trials.episode_returns().cpu().double().numpy()  # (goals * trials_per_goal, episodes)
    return per_trial.reshape(len(goals), trials_per_goal, episodes).mean(1)


def rl2_scores(name: str, goals: list[NavigationTask], trials_per_goal: int = 20, seed: int = 0,
               label: str | None = None) -> NavigationScores:
    """A shipped RL² navigation result: the return of episode 1, 2, ... of trials on each goal."""
    learner, data = load_result(name)
    returns = navigation_goal_returns(learner.model, goals, trials_per_goal, learner.config.goal_tolerance,
                                      seed)  # (goals, episodes)
    env_steps, wall = training_cost(data)
    experience = np.arange(returns.shape[1])
    return NavigationScores(label or name, np.asarray(returns, dtype=float), experience, "hidden state",
                            env_steps, wall)


def oracle_scores(goals: list[NavigationTask]) -> NavigationScores:
    """The controller that knows the goal (an upper bound; no meta-training)."""
    returns = oracle_returns(goals).cpu().double().numpy()[:, None]
    return NavigationScores("oracle (knows the goal)", returns, np.zeros(1, dtype=int), "knows the goal")


def navigation_comparison_table(scores: list[NavigationScores]) -> str:
    """A text table: return with no experience of the task and after adaptation, experience used, meta-training cost."""
    header = (f"{'method':<26}{'adapts by':<16}{'with 0 episodes':>16}{'after (95% CI)':>17}{'episodes used':>15}"
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
