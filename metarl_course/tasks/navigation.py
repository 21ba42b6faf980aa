"""2D navigation: a point agent must find a goal it cannot see (Finn et al. 2017, section 5.3).

The task distribution of MAML's 2D navigation experiment, done right:

* the agent is a point whose float position starts at (0, 0) every episode;
* the goal is drawn from U[-0.5, 0.5]^2 and is **not** observed: the
  observation is the position only, so the agent must infer the goal from
  its rewards -- that inference is the meta-learning problem;
* an action is a 2D velocity, clipped to [-0.1, 0.1]^2, then scaled by the
  task's ``dynamics`` (1.0 in the paper): ``position += dynamics * clip(action)``;
* the reward is minus the distance to the goal after the move;
* an episode ends on the step that brings the agent within ``goal_tolerance =
  0.01`` of the goal in both coordinates (``terminated=True``; the authors'
  rllab code does this, and returns in Finn et al.'s table are measured with
  it), and at the latest after ``horizon = 100`` steps (a time limit:
  ``truncated=True`` on step 100). With ``goal_tolerance=None`` no episode
  terminates: every one runs the full horizon. (The batched env keeps its
  tasks in lock-step: a task that reaches its goal reports ``terminated`` on
  that step, then holds still with reward 0 until the horizon.)

The arena is the square [-1, 1]^2 (``GOAL_LIMIT``): goals of every
distribution, including the out-of-distribution one, lie inside it.

The tutorial's ``NavigationTask`` has four bugs this module fixes: an
integer position array (``UFuncTypeError`` on the first step), no time limit
(an episode may never end), unclipped actions, and a ``dynamics`` parameter
that is sampled but never used. It also shows the goal in the observation,
which removes the need to infer it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from metarl_course.tasks.batched import BatchedEnv
from metarl_course.tasks.distribution import TaskDistribution, check_count, check_rng
from metarl_course.tasks.gym_env import TaskEnv

GOAL_LIMIT = 1.0
"""Every goal lies in the arena [-GOAL_LIMIT, GOAL_LIMIT]^2."""
MAX_ACTION = 0.1
"""Actions are clipped to [-MAX_ACTION, MAX_ACTION]^2 (Finn et al. 2017)."""
HORIZON = 100
"""Time limit: the most steps an episode lasts (Finn et al. 2017)."""
GOAL_TOLERANCE = 0.01
"""Default ``goal_tolerance``: an episode terminates once |x - goal_x| < 0.01 and |y - goal_y| < 0.01 (rllab's rule)."""
MAX_DYNAMICS = 5.0
"""Largest allowed dynamics scale; with it, positions stay within +-horizon * 0.1 * 5."""


def observation_space(horizon: int) -> gym.spaces.Box:
    """The positions reachable in ``horizon`` steps: [-b, b]^2 with b = horizon * MAX_ACTION * MAX_DYNAMICS."""
    bound = horizon * MAX_ACTION * MAX_DYNAMICS
    return gym.spaces.Box(-bound, bound, shape=(2,), dtype=np.float32)


def _check_finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


@dataclass(frozen=True)
class NavigationTask:
    """One navigation task: where the goal is and how strongly actions move the agent.

    Example:
        >>> NavigationTask(goal=(0.3, -0.2), dynamics=1.0)
        NavigationTask(goal=(0.3, -0.2), dynamics=1.0)
    """

    goal: tuple[float, float]
    """Goal position (x, y), inside the arena [-1, 1]^2."""
    dynamics: float = 1.0
    """Scale applied to the clipped action, in (0, 5]; 1.0 in Finn et al. 2017."""

    def __post_init__(self) -> None:
        goal = tuple(np.asarray(self.goal, dtype=np.float64).reshape(-1).tolist())
        if len(goal) != 2:
            raise ValueError(f"goal must be two numbers (x, y), got {self.goal!r}")
        goal = tuple(_check_finite("goal", g) for g in goal)
        if max(abs(g) for g in goal) > GOAL_LIMIT:
            raise ValueError(
                f"goal {goal} is outside the arena [-{GOAL_LIMIT}, {GOAL_LIMIT}]^2; "
                f"pick coordinates with |x|, |y| <= {GOAL_LIMIT}."
            )
        dynamics = _check_finite("dynamics", self.dynamics)
        if not 0 < dynamics <= MAX_DYNAMICS:
            raise ValueError(
                f"dynamics must be in (0, {MAX_DYNAMICS}] (it scales the action; 1.0 is the paper's), got {dynamics}"
            )
        object.__setattr__(self, "goal", goal)
        object.__setattr__(self, "dynamics", dynamics)


@dataclass(frozen=True)
class NavigationDistribution(TaskDistribution[NavigationTask]):
    """Goals uniform in a square (minus an optional excluded square), dynamics uniform in a range.

    The defaults are Finn et al. 2017's: goals U[-0.5, 0.5]^2, dynamics 1.
    Set ``dynamics_low < dynamics_high`` for a distribution over dynamics too.

    Example:
        >>> tasks = NavigationDistribution().sample(3, np.random.default_rng(0))
        >>> len(tasks), tasks[0].dynamics
        (3, 1.0)
    """

    goal_low: float = -0.5
    """Lower bound of each goal coordinate."""
    goal_high: float = 0.5
    """Upper bound of each goal coordinate."""
    dynamics_low: float = 1.0
    """Lower bound of the dynamics scale (> 0)."""
    dynamics_high: float = 1.0
    """Upper bound of the dynamics scale."""
    exclude: tuple[float, float] | None = None
    """``(low, high)``: goals inside the square [low, high]^2 are never drawn (None: none excluded)."""

    def __post_init__(self) -> None:
        low, high = _check_finite("goal_low", self.goal_low), _check_finite("goal_high", self.goal_high)
        if not -GOAL_LIMIT <= low <= high <= GOAL_LIMIT:
            raise ValueError(
                f"need -{GOAL_LIMIT} <= goal_low <= goal_high <= {GOAL_LIMIT}, got {low}, {high}"
            )
        d_low, d_high = self.dynamics_low, self.dynamics_high
        if not 0 < _check_finite("dynamics_low", d_low) <= _check_finite("dynamics_high", d_high) <= MAX_DYNAMICS:
            raise ValueError(
                f"need 0 < dynamics_low <= dynamics_high <= {MAX_DYNAMICS}, got {d_low}, {d_high}"
            )
        if self.exclude is not None:
            ex_low, ex_high = self.exclude
            if ex_low <= low and ex_high >= high:
                raise ValueError(
                    f"exclude={self.exclude} covers the whole goal square [{low}, {high}]^2; "
                    "no goal is left to sample."
                )

    def sample(self, num_tasks: int, rng: np.random.Generator) -> list[NavigationTask]:
        """Draw ``num_tasks`` tasks using only ``rng``; goals inside ``exclude`` are rejected and redrawn."""
        num_tasks, rng = check_count("num_tasks", num_tasks), check_rng(rng)
        goals = np.empty((0, 2))
        while len(goals) < num_tasks:
            draw = rng.uniform(self.goal_low, self.goal_high, size=(num_tasks, 2))  # (num_tasks, 2)
            if self.exclude is not None:
                inside = np.all((draw >= self.exclude[0]) & (draw <= self.exclude[1]), axis=1)
                draw = draw[~inside]
            goals = np.concatenate([goals, draw])[:num_tasks]
        dynamics = rng.uniform(self.dynamics_low, self.dynamics_high, size=num_tasks)
        return [NavigationTask(goal=tuple(g), dynamics=float(d)) for g, d in zip(goals, dynamics)]

    def out_of_distribution(self) -> NavigationDistribution:
        """Goals in the whole arena [-1, 1]^2 *outside* this distribution's goal square; same dynamics."""
        return NavigationDistribution(
            goal_low=-GOAL_LIMIT,
            goal_high=GOAL_LIMIT,
            dynamics_low=self.dynamics_low,
            dynamics_high=self.dynamics_high,
            exclude=(self.goal_low, self.goal_high),
        )


def _check_tolerance(tolerance: float | None) -> float | None:
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"goal_tolerance must be >= 0 (or None: never end early), got {tolerance}")
    return tolerance


class Navigation2DEnv(TaskEnv[NavigationTask, np.ndarray, np.ndarray]):
    """2D navigation as a standard gymnasium env (id ``metarl_course/Navigation2D-v0``).

    Observation: the position, ``(2,)`` float32 (the goal is hidden).
    Action: a velocity ``(2,)``, clipped to [-0.1, 0.1]^2 and scaled by the
    task's ``dynamics``. Reward: minus the distance to the goal after the move.
    ``terminated`` is True on the step that brings the agent within
    ``goal_tolerance`` of the goal in both coordinates; ``truncated`` is True
    on step ``horizon``. Either ends the episode. With ``goal_tolerance=None``
    the episode never terminates: it always runs ``horizon`` steps.

    The task is kept across resets (a trial is several episodes of one task)
    until you change it with ``reset(options={"task": task})`` or
    :meth:`set_task`. Without a task, the env uses one drawn from
    ``NavigationDistribution()`` with ``task_seed`` (see
    :class:`~metarl_course.tasks.gym_env.TaskEnv`).

    Example:
        >>> env = Navigation2DEnv(task=NavigationTask(goal=(0.3, 0.0)))
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(np.array([0.5, 0.0]))
        >>> obs.tolist(), round(reward, 4)  # the action was clipped to 0.1
        ([0.10000000149011612, 0.0], -0.2)
    """

    task_type = NavigationTask
    task_example = "NavigationTask(goal=(0.3, -0.2)) or NavigationDistribution().sample(1, rng)[0]"
    default_tasks = NavigationDistribution()

    def __init__(self, task: NavigationTask | None = None, horizon: int = HORIZON, task_seed: int = 0,
                 goal_tolerance: float | None = GOAL_TOLERANCE) -> None:
        self.horizon = check_count("horizon", horizon)
        self.goal_tolerance = _check_tolerance(goal_tolerance)
        self.observation_space = observation_space(self.horizon)
        self.action_space = gym.spaces.Box(-MAX_ACTION, MAX_ACTION, shape=(2,), dtype=np.float32)
        super().__init__(task, task_seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode at (0, 0); ``options={"task": task}`` switches task first."""
        self._reset_task(seed, options)
        self._position = np.zeros(2, dtype=np.float32)
        self._terminated = False
        self._t = 0
        return self._position.copy(), {"task": self._task}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move by ``dynamics * clip(action)``; reward = -distance to the goal after the move."""
        t = self._check_running()
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (2,):
            raise ValueError(f"action must have shape (2,), a velocity (dx, dy), got shape {action.shape}")
        if np.isnan(action).any():
            raise ValueError(f"action contains NaN: {action}; check the policy's output.")
        move = self._dynamics * np.clip(action, -MAX_ACTION, MAX_ACTION)
        self._position = self._position + move
        offset = self._position - self._goal
        distance = np.sqrt(offset[0] * offset[0] + offset[1] * offset[1])  # float32, as the batched env
        self._t = t + 1
        tol = self.goal_tolerance
        self._terminated = tol is not None and bool(abs(offset[0]) < tol and abs(offset[1]) < tol)
        return self._position.copy(), -float(distance), self._terminated, self._t >= self.horizon, {}

    def _load_task(self, task: NavigationTask) -> None:
        self._goal = np.asarray(task.goal, dtype=np.float32)  # (2,)
        self._dynamics = np.float32(task.dynamics)

    def _episode_over(self, t: int) -> str | None:
        if t >= self.horizon or self._terminated:
            return "the episode has ended (goal reached or time limit)"
        return None


class BatchedNavigationEnv(BatchedEnv[NavigationTask]):
    """Many navigation tasks stepped in one tensor operation (see :mod:`metarl_course.tasks.batched`).

    Same dynamics, observations and rewards as :class:`Navigation2DEnv`
    (float32). Observations ``(num_envs, 2)``, actions ``(num_envs, 2)``,
    rewards ``(num_envs,)``. The environment is deterministic: the generator is unused.
    A task whose agent reaches the goal reports ``terminated`` on that step, then
    stays where it is with reward 0 until the horizon (all tasks stay in lock-step).

    Example:
        >>> tasks = NavigationDistribution().sample(256, np.random.default_rng(0))
        >>> env = BatchedNavigationEnv(tasks, device="cpu")
        >>> obs, info = env.reset(seed=0)
        >>> obs, rewards, terminated, truncated, info = env.step(torch.zeros(256, 2))
        >>> obs.shape, rewards.shape
        (torch.Size([256, 2]), torch.Size([256]))
    """

    task_type = NavigationTask
    single_action_space = gym.spaces.Box(-MAX_ACTION, MAX_ACTION, shape=(2,), dtype=np.float32)

    def __init__(
        self,
        tasks: Sequence[NavigationTask],
        *,
        horizon: int = HORIZON,
        episodes_per_trial: int = 1,
        seed: int = 0,
        device: torch.device | str | None = None,
        goal_tolerance: float | None = GOAL_TOLERANCE,
    ) -> None:
        self.single_observation_space = observation_space(check_count("horizon", horizon))
        self.goal_tolerance = _check_tolerance(goal_tolerance)
        super().__init__(tasks, horizon=horizon, episodes_per_trial=episodes_per_trial, seed=seed, device=device)

    @property
    def goals(self) -> torch.Tensor:
        """The tasks' goals, ``(num_envs, 2)`` (what the agent must discover)."""
        return self._goals

    def _load_tasks(self, tasks: tuple[NavigationTask, ...]) -> None:
        as_tensor = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device)  # noqa: E731
        self._goals = as_tensor([t.goal for t in tasks])  # (N, 2)
        self._dynamics = as_tensor([t.dynamics for t in tasks])[:, None]  # (N, 1)

    def _start_trial(self) -> tuple[torch.Tensor, dict[str, Any]]:
        return self._start_episode(), {}

    def _start_episode(self) -> torch.Tensor:
        self._position = torch.zeros(self.num_envs, 2, device=self.device)
        self._done = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)  # goal reached earlier
        self._just_done = self._done
        return self._position

    def _terminated(self) -> torch.Tensor:
        return self._just_done

    def _check_actions(self, actions: Any) -> torch.Tensor:
        actions = torch.as_tensor(actions, dtype=torch.float32, device=self.device)
        if actions.shape != (self.num_envs, 2):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, 2), one velocity per task, got {tuple(actions.shape)}"
            )
        if torch.isnan(actions).any():
            raise ValueError("actions contain NaN; check the policy's output (e.g. a log-std that blew up).")
        return actions

    def _transition(self, actions: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        running = ~self._done  # (N,) episodes that have not reached the goal yet
        move = self._dynamics * actions.clamp(-MAX_ACTION, MAX_ACTION) * running[:, None]  # (N, 2); 0 once done
        self._position = self._position + move  # a new tensor: returned observations are never overwritten
        offset = self._position - self._goals
        squared = offset[:, 0] * offset[:, 0] + offset[:, 1] * offset[:, 1]  # (N,) float32
        # torch's vectorised float32 sqrt on CPU (AVX512) is not always correctly rounded; the
        # float64 square root rounded to float32 is, so it matches NumPy (and the gymnasium env) exactly.
        distance = squared.double().sqrt().float()  # (N,)
        if self.goal_tolerance is not None:
            self._just_done = running & (offset.abs() < self.goal_tolerance).all(dim=1)
            self._done = self._done | self._just_done
        return self._position, -distance * running  # no reward after the episode has ended


@torch.no_grad()
def oracle_returns(tasks: list[NavigationTask], horizon: int = 100, device: torch.device | str = "cpu") -> torch.Tensor:
    """Return of a controller that *knows* the goal and heads straight for it: (num_tasks,).

    It moves by ``clip((goal - position) / dynamics, -0.1, 0.1)`` each step, the
    largest allowed step towards the goal. Finn et al.'s oracle is instead a
    learned policy given the goal as input (-2.29 in their table); this one is the
    best any policy can do, so it is an upper bound.
    """
    env = BatchedNavigationEnv(tasks, horizon=horizon, device=device)  # (the env's default goal tolerance)
    dynamics = torch.tensor([t.dynamics for t in tasks], device=env.device)[:, None]
    position, _ = env.reset()
    total = torch.zeros(len(tasks), device=env.device)
    for _ in range(horizon):
        position, reward, _, _, _ = env.step(((env.goals - position) / dynamics).clamp(-0.1, 0.1))
        total += reward
    return total
