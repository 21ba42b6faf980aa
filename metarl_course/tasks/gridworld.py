"""GridNavi: find a hidden goal cell on a 5x5 grid (Zintgraf et al. 2020, VariBAD, section 5.1).

The gridworld on which VariBAD is compared with the Bayes-optimal agent. The
rules are those of the authors' code, ``lmzintgraf/varibad``, file
``environments/navigation/gridworld.py`` (class ``GridNavi``, registered as
``GridNavi-v0`` with ``num_cells=5, num_steps=15`` in ``environments/__init__.py``),
and its multi-episode wrapper ``environments/wrappers.py`` (``VariBadWrapper``):

* the grid has ``num_cells x num_cells`` cells ``(x, y)``, ``0 <= x, y < num_cells``;
  every episode starts in the corner ``(0, 0)`` (gridworld.py, ``starting_state``);
* the goal is drawn uniformly from every cell except the start and its three
  neighbours ``(0, 1), (1, 0), (1, 1)``: 21 cells on 5x5 (``possible_goals``);
* five actions (``Discrete(5)``): 0 stay, 1 up (y + 1), 2 right (x + 1),
  3 down (y - 1), 4 left (x - 1); a move into a wall leaves the agent where it
  is (``state_transition`` clips the coordinate to the grid);
* the reward, computed after the move, is +1 if the agent is on the goal and
  -0.1 otherwise (``step``). The goal does not end the episode: the agent can
  stay on it (action 0) and collect +1 on every remaining step;
* an episode lasts exactly 15 steps (``_max_episode_steps``);
* a trial (VariBAD's BAMDP) is 4 episodes of the same goal
  (``max_rollouts_per_task=4`` in ``config/gridworld/args_grid_varibad.py``);
  between episodes the agent is put back on ``(0, 0)``, the goal stays
  (``VariBadWrapper.reset_mdp`` resets the MDP, not the task). The BAMDP
  horizon is 4 x 15 = 60 steps.

Observations are the agent's cell ``(x, y)`` as float32 numbers with integer
values in ``[0, num_cells - 1]``, not normalised, as varibad's
``observation_space = Box(low=0, high=num_cells - 1, shape=(2,))`` (varibad's
wrapper appends an "episode done" flag when a trial has several episodes;
here the batched env marks episode ends with ``truncated`` instead, as the
course's other envs do). The goal is never observed: the agent must find it.

What varibad adds and this module leaves out: its ``update_belief`` keeps a
"ground-truth" belief for a belief-oracle agent, and on reaching the goal it
spreads that belief over the goal and one random *wrong* cell (a "hint"), so
it is not the exact posterior. The exact posterior (uniform over the goal
cells not yet visited, a point mass once the goal is found) is
:func:`metarl_course.rl.gridworld_bayes.goal_posterior`.

Cells are also numbered ``x * num_cells + y``, varibad's ``task_to_id``
(:func:`cell_index`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from metarl_course.tasks.batched import BatchedEnv
from metarl_course.tasks.distribution import TaskDistribution, check_count, check_rng
from metarl_course.tasks.gym_env import TaskEnv, check_index_action

NUM_CELLS = 5
"""Side of the grid (varibad's ``GridNavi-v0``: 5)."""
HORIZON = 15
"""Steps per episode (varibad: ``num_steps=15``)."""
EPISODES_PER_TRIAL = 4
"""Episodes per trial, all with the same goal (varibad: ``max_rollouts_per_task=4``): a BAMDP of 60 steps."""
START = (0, 0)
"""Every episode starts in this cell."""
START_BLOCK = 2
"""Default goal set: every cell outside the ``START_BLOCK x START_BLOCK`` block at the start corner (varibad)."""
GOAL_REWARD = 1.0
"""Reward of a step that ends on the goal."""
STEP_REWARD = -0.1
"""Reward of every other step."""
NUM_ACTIONS = 5
ACTION_NAMES = ("stay", "up", "right", "down", "left")
"""Action ``a`` is ``ACTION_NAMES[a]`` (varibad's order: noop, up, right, down, left)."""
MOVES = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0))
"""``(dx, dy)`` of each action; a move that would leave the grid leaves the agent in place."""

Cell = tuple[int, int]


def cell_index(cell: Cell, num_cells: int = NUM_CELLS) -> int:
    """The number of cell ``(x, y)``: ``x * num_cells + y`` (varibad's ``task_to_id``)."""
    return cell[0] * num_cells + cell[1]


def move(cell: Cell, action: int, num_cells: int = NUM_CELLS) -> Cell:
    """The cell reached from ``cell`` with ``action`` (walls keep the agent in place).

    Example:
        >>> move((0, 0), 1), move((0, 0), 4)  # up; left into the wall
        ((0, 1), (0, 0))
    """
    dx, dy = MOVES[action]
    return min(max(cell[0] + dx, 0), num_cells - 1), min(max(cell[1] + dy, 0), num_cells - 1)


def _check_num_cells(num_cells: object) -> int:
    return check_count("num_cells", num_cells, minimum=2)


def _as_cell(name: str, cell: object, num_cells: int) -> Cell:
    """``cell`` as a tuple of two Python ints inside the grid, or a ValueError naming the fix."""
    try:
        values = np.asarray(cell, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = np.zeros(0)
    if values.shape != (2,) or not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        raise ValueError(f"{name} must be two whole numbers (x, y), got {cell!r}")
    x, y = (int(v) for v in values)
    if not (0 <= x < num_cells and 0 <= y < num_cells):
        raise ValueError(
            f"{name} {(x, y)} lies outside the {num_cells}x{num_cells} grid (cells 0..{num_cells - 1}); "
            f"use num_cells >= {max(x, y) + 1} or pick a cell inside the grid."
        )
    return x, y


@dataclass(frozen=True)
class GridNaviTask:
    """One GridNavi task: where the goal is, on a grid of ``num_cells x num_cells``.

    Any cell but the start may be a goal here; which cells a distribution draws
    is the distribution's business (:class:`GridNaviDistribution`).

    Example:
        >>> GridNaviTask(goal=(3, 4))
        GridNaviTask(goal=(3, 4), num_cells=5)
    """

    goal: Cell
    """The goal cell (x, y)."""
    num_cells: int = NUM_CELLS
    """Side of the grid (>= 2)."""

    def __post_init__(self) -> None:
        n = _check_num_cells(self.num_cells)
        goal = _as_cell("goal", self.goal, n)
        if goal == START:
            raise ValueError(f"the goal cannot be the start cell {START}: every episode begins there; "
                             "pick another cell.")
        object.__setattr__(self, "goal", goal)
        object.__setattr__(self, "num_cells", n)


def default_goal_cells(num_cells: int = NUM_CELLS) -> tuple[Cell, ...]:
    """Varibad's goal cells: every cell outside the 2x2 block at the start corner (21 on 5x5), sorted."""
    return tuple((x, y) for x in range(num_cells) for y in range(num_cells)
                 if not (x < START_BLOCK and y < START_BLOCK))


@dataclass(frozen=True)
class GridNaviDistribution(TaskDistribution[GridNaviTask]):
    """Goals uniform over a set of cells of the grid (varibad's GridNavi: 21 cells of 5x5).

    With ``goals=None`` the goal cells are varibad's: all but the start corner's
    2x2 block. Pass ``goals`` (a sequence of cells) for any other set; it is
    stored sorted and without duplicates. Only 21 distinct tasks exist by
    default, so :meth:`split` can hand out at most 21 (and :meth:`all_tasks`
    lists them: averaging over them gives exact expectations over the prior).

    Example:
        >>> dist = GridNaviDistribution()
        >>> len(dist.goal_cells), dist.sample(2, np.random.default_rng(0))[0].num_cells
        (21, 5)
    """

    num_cells: int = NUM_CELLS
    """Side of the grid."""
    goals: tuple[Cell, ...] | None = None
    """The cells the goal is drawn from, uniformly; None: varibad's 21 (all but the start's 2x2 block)."""

    def __post_init__(self) -> None:
        n = _check_num_cells(self.num_cells)
        if self.goals is None:
            if not default_goal_cells(n):
                raise ValueError(
                    f"a {n}x{n} grid is too small for varibad's goal set (every cell outside the "
                    f"{START_BLOCK}x{START_BLOCK} block at the start); use num_cells >= {START_BLOCK + 1} "
                    "or list the goal cells with goals=[...]."
                )
            return
        cells = [_as_cell("goal cell", c, n) for c in self.goals]
        if not cells:
            raise ValueError("goals is empty; list at least one goal cell, or pass goals=None for varibad's set.")
        if START in cells:
            raise ValueError(f"the start cell {START} cannot be a goal (every episode begins there); remove it.")
        object.__setattr__(self, "goals", tuple(sorted(set(cells))))
        object.__setattr__(self, "num_cells", n)

    @property
    def goal_cells(self) -> tuple[Cell, ...]:
        """The goal cells, sorted by (x, y); each is drawn with probability 1 / len(goal_cells)."""
        return self.goals if self.goals is not None else default_goal_cells(self.num_cells)

    def all_tasks(self) -> list[GridNaviTask]:
        """Every task of the distribution once (each is equally likely): evaluating on all is an exact average."""
        return [GridNaviTask(goal=g, num_cells=self.num_cells) for g in self.goal_cells]

    def check_task(self, task: GridNaviTask) -> GridNaviTask:
        """Return ``task`` if this distribution can draw it; raise a ValueError saying why not otherwise."""
        if not isinstance(task, GridNaviTask):
            raise TypeError(f"task must be a GridNaviTask, got {type(task).__name__}")
        if task.num_cells != self.num_cells:
            raise ValueError(f"the task's grid is {task.num_cells}x{task.num_cells}, the distribution's "
                             f"{self.num_cells}x{self.num_cells}; use tasks of the same grid.")
        if task.goal not in self.goal_cells:
            raise ValueError(f"goal {task.goal} is not one of the distribution's goal cells (the prior gives it "
                             "probability 0); pick a goal from distribution.goal_cells.")
        return task

    def sample(self, num_tasks: int, rng: np.random.Generator) -> list[GridNaviTask]:
        """Draw ``num_tasks`` goals uniformly from :attr:`goal_cells` (with replacement) using only ``rng``."""
        num_tasks, rng = check_count("num_tasks", num_tasks), check_rng(rng)
        cells = self.goal_cells
        return [GridNaviTask(goal=cells[i], num_cells=self.num_cells) for i in rng.integers(len(cells), size=num_tasks)]

    def out_of_distribution(self) -> GridNaviDistribution:
        """Goals on every other cell of the grid but the start (for varibad's set: the start's 3 neighbours)."""
        rest = tuple(c for c in ((x, y) for x in range(self.num_cells) for y in range(self.num_cells))
                     if c != START and c not in self.goal_cells)
        if not rest:
            raise ValueError("every cell but the start is a goal cell already; no out-of-distribution goal is left.")
        return GridNaviDistribution(num_cells=self.num_cells, goals=rest)


def observation_space(num_cells: int) -> gym.spaces.Box:
    """The agent's cell (x, y) as float32, each in [0, num_cells - 1] (varibad's space)."""
    return gym.spaces.Box(0.0, float(num_cells - 1), shape=(2,), dtype=np.float32)


class GridNaviEnv(TaskEnv[GridNaviTask, np.ndarray, int]):
    """GridNavi as a gymnasium env: one episode of ``horizon`` steps looking for a hidden goal.

    Observation: the agent's cell ``(x, y)``, ``(2,)`` float32 with integer values.
    Action: ``Discrete(5)``: 0 stay, 1 up, 2 right, 3 down, 4 left (walls block).
    Reward: +1 if the agent ends the step on the goal, -0.1 otherwise (as float32, the
    batched env's numbers). ``terminated`` is always False (the goal does not end
    the episode); ``truncated`` is True on step ``horizon``.

    The task is kept across resets (a trial is several episodes of one goal:
    call ``reset()`` between them) until changed with ``reset(options={"task": task})``
    or :meth:`set_task` (same grid size). Without a task, the env uses one drawn from
    ``GridNaviDistribution()`` with ``task_seed``.

    Example:
        >>> env = GridNaviEnv(task=GridNaviTask(goal=(2, 0)))
        >>> obs, info = env.reset(seed=0)
        >>> [env.step(2)[1] == GOAL_REWARD for _ in range(3)]  # right, right (goal), right (past it)
        [False, True, False]
    """

    task_type = GridNaviTask
    task_example = "GridNaviTask(goal=(3, 4)) or GridNaviDistribution().sample(1, rng)[0]"
    default_tasks = GridNaviDistribution()

    def __init__(self, task: GridNaviTask | None = None, horizon: int = HORIZON, task_seed: int = 0) -> None:
        self.horizon = check_count("horizon", horizon)
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        super().__init__(task, task_seed)

    @property
    def position(self) -> Cell:
        """The agent's cell (x, y)."""
        return self._cell

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode on (0, 0); ``options={"task": task}`` switches task first."""
        self._reset_task(seed, options)
        self._cell: Cell = START
        self._t = 0
        return np.asarray(self._cell, dtype=np.float32), {"task": self._task}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move (walls block), then reward +1 on the goal, -0.1 elsewhere."""
        t = self._check_running()
        a = check_index_action(action, NUM_ACTIONS, "action")
        self._cell = move(self._cell, a, self._num_cells)
        reward = self._goal_reward if self._cell == self._goal else self._step_reward
        self._t = t + 1
        return np.asarray(self._cell, dtype=np.float32), float(reward), False, self._t >= self.horizon, {}

    def _load_task(self, task: GridNaviTask) -> None:
        self._goal, self._num_cells = task.goal, task.num_cells
        self._goal_reward, self._step_reward = np.float32(GOAL_REWARD), np.float32(STEP_REWARD)
        self.observation_space = observation_space(task.num_cells)

    def _check_replacement(self, task: GridNaviTask) -> None:
        if task.num_cells != self._num_cells:
            raise ValueError(f"this env's grid is {self._num_cells}x{self._num_cells}, the new task's "
                             f"{task.num_cells}x{task.num_cells}; make a new env.")

    def _episode_over(self, t: int) -> str | None:
        return f"the episode ended after {self.horizon} steps" if t >= self.horizon else None


class BatchedGridNaviEnv(BatchedEnv[GridNaviTask]):
    """Many GridNavi tasks stepped in one tensor operation (see :mod:`metarl_course.tasks.batched`).

    Same rules and numbers as :class:`GridNaviEnv`. Observations ``(num_envs, 2)``
    float32 cells, actions ``(num_envs,)`` integer indices, rewards
    ``(num_envs,)`` float32. A trial is ``episodes_per_trial`` episodes (varibad's
    4 by default) of ``horizon`` steps; each episode starts on (0, 0) with the same
    goal. The env is deterministic: its generator is unused.

    Example:
        >>> env = BatchedGridNaviEnv(GridNaviDistribution().all_tasks(), device="cpu")
        >>> obs, _ = env.reset(seed=0)
        >>> obs, rewards, terminated, truncated, info = env.step(torch.full((21,), 2))
        >>> obs[0].tolist(), round(rewards[0].item(), 4), env.trial_length
        ([1.0, 0.0], -0.1, 60)
    """

    task_type = GridNaviTask
    single_action_space = gym.spaces.Discrete(NUM_ACTIONS)

    def __init__(
        self,
        tasks: Sequence[GridNaviTask],
        *,
        horizon: int = HORIZON,
        episodes_per_trial: int = EPISODES_PER_TRIAL,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        tasks = tuple(tasks)
        sizes = {t.num_cells for t in tasks if isinstance(t, GridNaviTask)}
        if len(sizes) > 1:
            raise ValueError(f"all tasks must have the same grid size, got num_cells {sorted(sizes)}")
        self.num_cells = sizes.pop() if sizes else NUM_CELLS
        self.single_observation_space = observation_space(self.num_cells)
        super().__init__(tasks, horizon=horizon, episodes_per_trial=episodes_per_trial, seed=seed, device=device)

    @property
    def goals(self) -> torch.Tensor:
        """The tasks' goal cells, ``(num_envs, 2)`` long (what the agent must find)."""
        return self._goals

    @property
    def positions(self) -> torch.Tensor:
        """The agents' cells, ``(num_envs, 2)`` long."""
        return self._cells

    def _load_tasks(self, tasks: tuple[GridNaviTask, ...]) -> None:
        if any(t.num_cells != self.num_cells for t in tasks):
            raise ValueError(f"every task must be on a {self.num_cells}x{self.num_cells} grid; make a new env.")
        self._goals = torch.tensor([t.goal for t in tasks], dtype=torch.long, device=self.device)  # (N, 2)
        self._moves = torch.tensor(MOVES, dtype=torch.long, device=self.device)  # (5, 2)
        self._rewards = torch.tensor([STEP_REWARD, GOAL_REWARD], dtype=torch.float32, device=self.device)

    def _start_trial(self) -> tuple[torch.Tensor, dict[str, Any]]:
        return self._start_episode(), {}

    def _start_episode(self) -> torch.Tensor:
        self._cells = torch.zeros(self.num_envs, 2, dtype=torch.long, device=self.device)
        return self._cells.float()

    def _check_actions(self, actions: Any) -> torch.Tensor:
        return self._as_index_actions(actions, NUM_ACTIONS)

    def _transition(self, actions: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._cells = (self._cells + self._moves[actions]).clamp(0, self.num_cells - 1)  # (N, 2), a new tensor
        on_goal = (self._cells == self._goals).all(dim=1)  # (N,)
        return self._cells.float(), self._rewards[on_goal.long()]


__all__ = [
    "ACTION_NAMES", "EPISODES_PER_TRIAL", "GOAL_REWARD", "HORIZON", "MOVES", "NUM_ACTIONS", "NUM_CELLS", "START",
    "STEP_REWARD", "BatchedGridNaviEnv", "GridNaviDistribution", "GridNaviEnv", "GridNaviTask", "cell_index",
    "default_goal_cells", "move", "observation_space",
]
