"""Batched tensor environments: one tensor operation steps every task at once.

A meta-RL learner needs experience from many tasks at every update. Stepping
a Python list of environments costs a Python call per task and step; a
batched environment keeps the state of all ``num_envs`` tasks in tensors on
the course's device, so a step is a handful of tensor operations whatever
the number of tasks (``benchmarks/bench_envs.py`` measures 20-100x).

Each batched env has a gymnasium twin that runs one task (a subclass of
:class:`metarl_course.tasks.gym_env.TaskEnv`); the tests step both and
require the same numbers.

The API follows gymnasium's vector environments (``gymnasium.vector.VectorEnv``):
``reset(seed=..., options=...) -> (obs, info)`` and
``step(actions) -> (obs, rewards, terminated, truncated, info)``, batch first.
The differences, all deliberate:

* Everything is a torch tensor on ``env.device``, not a NumPy array.
* **Trials.** Meta-RL (RL², Duan et al. 2016) runs a *trial*: several
  episodes of the same task. ``episodes_per_trial`` episodes of exactly
  ``horizon`` steps each run in lock-step for every task.
* **When the task changes: only in reset().** ``reset()`` starts a new trial;
  it keeps the current tasks unless you pass ``options={"tasks": [...]}``
  (or call :meth:`set_tasks` first). Nothing inside a trial changes a task.
* **Autoreset inside a trial is same-step** (gymnasium's
  ``AutoresetMode.SAME_STEP``): on the step that ends an episode,
  ``truncated`` is True for every task, ``info["final_obs"]`` holds the
  episode's last observation and the returned ``obs`` is already the first
  observation of the next episode of the *same* task. On the last step of the
  trial there is no next episode: ``obs`` is the final observation,
  ``info["trial_over"]`` is True, and :meth:`step` raises until you call
  :meth:`reset`.
* Every episode of a trial lasts exactly ``horizon`` steps in the batch, and
  ``truncated`` marks the horizon (the observations do not include time). An
  environment whose episodes can end earlier (navigation, when the goal is
  reached) reports ``terminated`` on that step and then holds that task still,
  with reward 0, until the horizon: the tasks stay in lock-step.
  For speed the flag tensors are shared between steps: read them, copy them
  (``truncated.clone()``), but do not modify them in place.

Random numbers come from ``env.generator``, an explicit ``torch.Generator``
on the env's device: ``reset(seed=s)`` reseeds it, ``reset()`` continues its
stream. Random environments draw the noise of a whole trial at reset and
return it as ``info["noise"]``, so a test can replay it into a gymnasium env.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic

import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from metarl_course.device import get_device
from metarl_course.tasks.distribution import TaskT, check_count, reset_options

_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


class BatchedEnv(ABC, Generic[TaskT]):
    """Base class: trial bookkeeping, seeding and input checks shared by the course's batched envs.

    Subclasses set ``task_type``, ``single_observation_space`` and
    ``single_action_space`` and implement the four ``_``-prefixed hooks.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}
    task_type: type
    single_observation_space: gym.Space
    single_action_space: gym.Space

    def __init__(
        self,
        tasks: Sequence[TaskT],
        *,
        horizon: int,
        episodes_per_trial: int = 1,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        self.horizon = check_count("horizon", horizon)
        self.episodes_per_trial = check_count("episodes_per_trial", episodes_per_trial)
        self.device = torch.device(device) if device is not None else get_device()
        self.generator = torch.Generator()  # on the CPU whatever the device: see seeding.uniform
        self.generator.manual_seed(check_count("seed", seed, minimum=0))
        self.tasks: tuple[TaskT, ...] = ()
        self.set_tasks(tasks)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    # ------------------------------------------------------------------ public API
    @property
    def trial_length(self) -> int:
        """Steps in one trial: ``episodes_per_trial * horizon``."""
        return self.episodes_per_trial * self.horizon

    def set_tasks(self, tasks: Sequence[TaskT]) -> None:
        """Give the envs new tasks; they take effect now and a :meth:`reset` is needed before stepping.

        The number of tasks is fixed once the env exists (it is ``num_envs``).
        """
        tasks = tuple(tasks)
        if not tasks:
            raise ValueError("tasks is empty; pass at least one task, e.g. distribution.sample(8, rng)")
        bad = [type(t).__name__ for t in tasks if not isinstance(t, self.task_type)]
        if bad:
            raise TypeError(f"every task must be a {self.task_type.__name__}, got {bad[0]}")
        if self.tasks and len(tasks) != self.num_envs:
            raise ValueError(
                f"this env steps {self.num_envs} tasks, got {len(tasks)}; "
                "make a new env to change the number of tasks."
            )
        self.tasks = tasks
        self.num_envs = len(tasks)
        self._load_tasks(tasks)
        self._t: int | None = None  # step within the trial; None = reset needed
        self._no = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self._yes = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Start a new trial (the first episode of each task).

        Args:
            seed: reseeds ``self.generator`` (same seed, same noise); None continues its stream.
            options: ``{"tasks": [...]}`` switches to new tasks (as many as before).

        Returns:
            ``(obs, info)``: obs is batch-first, ``(num_envs, *obs_shape)``; for random
            envs ``info["noise"]`` is the trial's noise (see the subclass).
        """
        tasks = reset_options(options, ("tasks",)).get("tasks")
        if tasks is not None:
            self.set_tasks(tasks)
        if seed is not None:
            self.generator.manual_seed(check_count("seed", seed, minimum=0))
        self._t = 0
        obs, info = self._start_trial()
        return obs, info

    def step(
        self, actions: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every task once.

        Args:
            actions: ``(num_envs, *action_shape)`` tensor (or array-like).

        Returns:
            ``(obs, rewards, terminated, truncated, info)``: obs ``(num_envs, *obs_shape)``,
            rewards ``(num_envs,)`` float32, terminated/truncated ``(num_envs,)`` bool.
        """
        if self._t is None:
            raise RuntimeError("step() called before reset(); call env.reset(seed=...) first.")
        if self._t >= self.trial_length:
            raise RuntimeError(
                f"the trial is over ({self.episodes_per_trial} episode(s) of {self.horizon} steps); "
                "call env.reset() to start a new trial (pass options={'tasks': ...} to change tasks)."
            )
        actions = self._check_actions(actions)
        obs, rewards = self._transition(actions, self._t)
        terminated = self._terminated()
        self._t += 1
        if self._t % self.horizon:
            return obs, rewards, terminated, self._no, {}
        info: dict[str, Any] = {"final_obs": obs, "trial_over": self._t == self.trial_length}
        if not info["trial_over"]:
            obs = self._start_episode()  # same-step autoreset, same task
        return obs, rewards, terminated, self._yes, info

    def close(self) -> None:
        """Nothing to release (kept for gymnasium API compatibility)."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_envs={self.num_envs}, horizon={self.horizon}, "
            f"episodes_per_trial={self.episodes_per_trial}, device={self.device})"
        )

    # ------------------------------------------------------------------ hooks
    def _terminated(self) -> torch.Tensor:
        """Which tasks' episodes ended on the step just taken (before the horizon); none by default."""
        return self._no

    @abstractmethod
    def _load_tasks(self, tasks: tuple[TaskT, ...]) -> None:
        """Store the tasks' parameters as tensors on ``self.device``."""

    @abstractmethod
    def _start_trial(self) -> tuple[torch.Tensor, dict[str, Any]]:
        """Draw the trial's noise (if any) and return the first observation and the info dict."""

    @abstractmethod
    def _start_episode(self) -> torch.Tensor:
        """Put every task back in its start state; return the observations."""

    @abstractmethod
    def _check_actions(self, actions: Any) -> torch.Tensor:
        """Return ``actions`` as a tensor on ``self.device``; raise ValueError if they are malformed."""

    @abstractmethod
    def _transition(self, actions: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply ``actions`` at step ``t`` of the trial; return ``(obs, rewards)``."""

    # ------------------------------------------------------------------ helpers for subclasses
    def _as_index_actions(self, actions: Any, num_actions: int) -> torch.Tensor:
        """Check integer actions of shape ``(num_envs,)`` in ``[0, num_actions)``."""
        if not (isinstance(actions, torch.Tensor) and actions.device == self.device):
            actions = torch.as_tensor(actions, device=self.device)
        if actions.shape != (self.num_envs,):
            raise ValueError(
                f"actions must have shape ({self.num_envs},), one index per task, got {tuple(actions.shape)}"
            )
        if actions.dtype not in _INDEX_DTYPES:
            raise ValueError(
                f"actions must be integer indices (torch.long), got {actions.dtype}; "
                "use e.g. dist.sample() from a Categorical, or actions.long()."
            )
        low, high = torch.aminmax(actions)  # one pass over the actions, then one sync
        if low.item() < 0 or high.item() >= num_actions:
            raise ValueError(
                f"actions must lie in [0, {num_actions - 1}], got values from {low.item()} to {high.item()}"
            )
        return actions if actions.dtype == torch.long else actions.long()
