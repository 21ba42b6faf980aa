"""Gymnasium environments that run one task: what the course's three gymnasium envs share.

Each environment of the course exists twice: as a gymnasium env that runs
one task (a subclass of :class:`TaskEnv`: ``Navigation2DEnv``,
``BernoulliBanditEnv``, ``TabularMDPEnv``) and as a batched tensor env that
runs many (:class:`metarl_course.tasks.batched.BatchedEnv`). The gymnasium
envs follow gymnasium's ``Env`` API; what :class:`TaskEnv` adds is the
meta-RL part, the task:

* **The task is kept across resets.** A trial is several episodes of one
  task, so ``reset()`` keeps the current task; ``reset(options={"task": task})``
  or :meth:`TaskEnv.set_task` switches to another one that fits the env's
  spaces (as many arms, states and actions). ``env.task`` is the current task.
* **A default task.** ``Env(task=None, task_seed=s)`` draws one task from the
  env's ``default_tasks`` distribution with ``np.random.default_rng(s)``.
* **step() needs a running episode.** It raises before the first
  ``reset()``, after ``set_task()`` and once the episode is over, each time
  with a message saying to call ``env.reset()``.

Random numbers come from gymnasium's ``env.np_random`` (seeded by
``reset(seed=...)``). The random envs can instead replay the noise a batched
env drew (``reset(options={"noise": ...})``, read with :func:`replay_noise`),
which is how the tests prove both implementations equal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic

import gymnasium as gym
import numpy as np
import torch
from gymnasium.core import ActType, ObsType

from metarl_course.tasks.distribution import TaskDistribution, TaskT, reset_options


class TaskEnv(gym.Env[ObsType, ActType], ABC, Generic[TaskT, ObsType, ActType]):
    """Base class: the task, its checks and the reset-before-step guard of the course's gymnasium envs.

    A subclass sets ``task_type``, ``task_example`` and ``default_tasks``, its
    spaces, and implements :meth:`_load_task`, :meth:`_episode_over`,
    ``reset`` and ``step`` (and :meth:`_check_replacement` if not every task
    fits every env). Its ``reset`` starts with
    ``options = self._reset_task(seed, options)`` and ends with ``self._t = 0``;
    its ``step`` starts with ``t = self._check_running()`` and ends with
    ``self._t = t + 1``.
    """

    metadata: dict[str, Any] = {"render_modes": []}
    task_type: ClassVar[type]
    """The task dataclass this env runs."""
    task_example: ClassVar[str]
    """How to make a task, quoted in the TypeError a wrong task raises."""
    default_tasks: ClassVar[TaskDistribution]
    """The distribution the task is drawn from when the env is made without one."""

    def __init__(self, task: TaskT | None = None, task_seed: int = 0) -> None:
        if task is None:
            task = self.default_tasks.sample(1, np.random.default_rng(task_seed))[0]
        self._use(self._checked(task))

    @property
    def task(self) -> TaskT:
        """The current task (kept across resets until changed)."""
        return self._task

    def set_task(self, task: TaskT) -> None:
        """Switch to ``task`` (it must fit the env's spaces); call :meth:`reset` before the next step."""
        task = self._checked(task)
        self._check_replacement(task)
        self._use(task)

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _load_task(self, task: TaskT) -> None:
        """Store what :meth:`step` needs of ``task`` (as float32 arrays) and the task-dependent spaces."""

    @abstractmethod
    def _episode_over(self, t: int) -> str | None:
        """Why the episode is over after ``t`` steps (said to the learner), or None while it runs."""

    def _check_replacement(self, task: TaskT) -> None:
        """Raise ValueError if ``task`` does not fit this env's spaces; every task fits by default."""

    # ------------------------------------------------------------------ helpers for subclasses
    def _reset_task(
        self, seed: int | None, options: dict[str, Any] | None, extra_options: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The start of every ``reset``: reseed ``np_random``, check ``options``, switch task if one is given.

        Args:
            seed: gymnasium's seed for ``self.np_random``; None continues its stream.
            options: ``{"task": task}`` and the subclass's ``extra_options``; any other key is an error.

        Returns:
            The checked options, for the subclass to read its own (e.g. ``"noise"``).
        """
        super().reset(seed=seed)
        options = reset_options(options, ("task", *extra_options))
        if "task" in options:
            self.set_task(options["task"])
        return options

    def _check_running(self) -> int:
        """The guard at the top of every ``step``: return the steps taken so far, or raise if none may follow."""
        if self._t is None:
            raise RuntimeError("step() called before reset(); call env.reset() first.")
        over = self._episode_over(self._t)
        if over is not None:
            raise RuntimeError(f"{over}; call env.reset().")
        return self._t

    def _checked(self, task: object) -> TaskT:
        if not isinstance(task, self.task_type):
            raise TypeError(
                f"task must be a {self.task_type.__name__}, got {type(task).__name__}; e.g. {self.task_example}"
            )
        return task  # type: ignore[return-value]  # isinstance on a ClassVar type does not narrow to TaskT

    def _use(self, task: TaskT) -> None:
        self._task = task
        self._load_task(task)
        self._t: int | None = None  # steps taken in the episode; None = reset() needed


def check_index_action(action: Any, num_actions: int, kind: str) -> int:
    """An integer ``action`` in [0, num_actions), or a ValueError saying what is wrong.

    ``kind`` names the index in the message ("arm", "action"). Python and
    NumPy integers (also 0-d arrays) pass; floats, bools and arrays do not.
    """
    if isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu":
        action = action.item()
    if isinstance(action, bool) or not isinstance(action, (int, np.integer)):
        raise ValueError(f"action must be an integer {kind} index, got {action!r} ({type(action).__name__})")
    if not 0 <= action < num_actions:
        raise ValueError(f"action must be an {kind} index in [0, {num_actions - 1}], got {action}")
    return int(action)


def replay_noise(options: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray | None:
    """``options["noise"]`` as a float32 array of ``shape`` (a batched env's tensor is fine); None if absent."""
    noise = options.get("noise")
    if noise is None:
        return None
    noise = np.asarray(noise.cpu() if isinstance(noise, torch.Tensor) else noise, dtype=np.float32)
    if noise.shape != shape:
        raise ValueError(f"noise must have shape {shape}, got {noise.shape}")
    return noise
