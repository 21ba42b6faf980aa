"""Few-shot sinusoid regression (Finn et al. 2017, section 5.1).

A task is a sine wave ``y = amplitude * sin(x - phase)``; the task
distribution p(T) draws amplitude ~ U[0.1, 5] and phase ~ U[0, pi], and a
task's data points draw x ~ U[-5, 5]. A learner sees K support points of a
new task and must predict the wave everywhere (the query points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from metarl_course.device import get_device


@dataclass(frozen=True)
class SinusoidTask:
    """One task: ``y = amplitude * sin(x - phase)``."""

    amplitude: float
    phase: float

    def __call__(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """The true function of this task, elementwise."""
        sin = torch.sin if isinstance(x, torch.Tensor) else np.sin
        return self.amplitude * sin(x - self.phase)


@dataclass(frozen=True)
class SinusoidBatch:
    """Support and query sets of several tasks, stacked along dim 0.

    Attributes:
        support_x, support_y: (num_tasks, num_support, 1)
        query_x, query_y:     (num_tasks, num_query, 1)
        amplitude, phase:     (num_tasks,) the tasks' true parameters
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    amplitude: torch.Tensor
    phase: torch.Tensor

    @property
    def num_tasks(self) -> int:
        return self.support_x.shape[0]

    def to(self, device: torch.device | str) -> "SinusoidBatch":
        """The same batch on another device."""
        return SinusoidBatch(*(t.to(device) for t in (
            self.support_x, self.support_y, self.query_x, self.query_y, self.amplitude, self.phase)))

    def task(self, i: int) -> SinusoidTask:
        """The i-th task of the batch as a :class:`SinusoidTask`."""
        return SinusoidTask(float(self.amplitude[i]), float(self.phase[i]))


def _check_range(name: str, bounds: tuple[float, float]) -> None:
    if len(bounds) != 2 or not all(math.isfinite(b) for b in bounds) or not bounds[0] < bounds[1]:
        raise ValueError(f"{name} must be a (low, high) pair of finite numbers with low < high, got {bounds!r}")


@dataclass(frozen=True)
class SinusoidTaskDistribution:
    """p(T) for sinusoid regression; defaults are Finn et al. (2017).

    Example:
        >>> dist = SinusoidTaskDistribution()
        >>> rng = np.random.default_rng(0)
        >>> batch = dist.sample_batch(25, num_support=10, num_query=10, rng=rng)
        >>> batch.support_x.shape
        torch.Size([25, 10, 1])
    """

    amplitude_range: tuple[float, float] = (0.1, 5.0)
    """Amplitudes are drawn uniformly from this range."""
    phase_range: tuple[float, float] = (0.0, math.pi)
    """Phases are drawn uniformly from this range (radians)."""
    x_range: tuple[float, float] = (-5.0, 5.0)
    """Inputs x of support and query points are drawn uniformly from this range."""

    def __post_init__(self) -> None:
        _check_range("amplitude_range", self.amplitude_range)
        _check_range("phase_range", self.phase_range)
        _check_range("x_range", self.x_range)

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> list[SinusoidTask]:
        """Draw ``num_tasks`` tasks from p(T)."""
        _check_positive("num_tasks", num_tasks)
        amplitude = rng.uniform(*self.amplitude_range, size=num_tasks)
        phase = rng.uniform(*self.phase_range, size=num_tasks)
        return [SinusoidTask(float(a), float(p)) for a, p in zip(amplitude, phase)]

    def sample_batch(self, num_tasks: int, num_support: int, num_query: int,
                     rng: np.random.Generator, device: torch.device | str | None = None,
                     dtype: torch.dtype = torch.float32) -> SinusoidBatch:
        """Draw tasks and, for each, ``num_support`` + ``num_query`` points."""
        tasks = self.sample_tasks(num_tasks, rng)
        return self.make_batch(tasks, num_support, num_query, rng, device=device, dtype=dtype)

    def make_batch(self, tasks: list[SinusoidTask], num_support: int, num_query: int,
                   rng: np.random.Generator, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> SinusoidBatch:
        """Draw support and query points for given tasks (e.g. a fixed meta-test set)."""
        _check_positive("num_support (K)", num_support)
        _check_positive("num_query", num_query)
        if len(tasks) == 0:
            raise ValueError("tasks is empty: pass at least one SinusoidTask")
        amplitude = np.array([t.amplitude for t in tasks])[:, None, None]  # (T, 1, 1)
        phase = np.array([t.phase for t in tasks])[:, None, None]
        x = rng.uniform(*self.x_range, size=(len(tasks), num_support + num_query, 1))
        y = amplitude * np.sin(x - phase)
        device = get_device() if device is None else device

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=dtype, device=device)

        return SinusoidBatch(
            support_x=tensor(x[:, :num_support]), support_y=tensor(y[:, :num_support]),
            query_x=tensor(x[:, num_support:]), query_y=tensor(y[:, num_support:]),
            amplitude=tensor(amplitude[:, 0, 0]), phase=tensor(phase[:, 0, 0]),
        )


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def meta_train_test_split(distribution: SinusoidTaskDistribution, num_train: int, num_test: int,
                          seed: int = 0) -> tuple[list[SinusoidTask], list[SinusoidTask]]:
    """Fixed, disjoint meta-train and meta-test task sets drawn from one p(T).

    Meta-training only ever sees the first list; the second is kept for
    measuring how well the learner adapts to tasks it has never seen.
    """
    tasks = distribution.sample_tasks(num_train + num_test, np.random.default_rng(seed))
    return tasks[:num_train], tasks[num_train:]


def heldout_batch(num_support: int = 10, num_tasks: int = 100, num_query: int = 100, seed: int = 2017,
                  distribution: SinusoidTaskDistribution | None = None,
                  device: torch.device | str | None = None) -> SinusoidBatch:
    """The course's fixed meta-test set: the same tasks and points for every method and every run.

    Its own seed keeps it apart from the task streams used in training (those
    are drawn with the training seed); with continuous task parameters the two
    never share a task.
    """
    distribution = distribution or SinusoidTaskDistribution()
    rng = np.random.default_rng(seed)
    tasks = distribution.sample_tasks(num_tasks, rng)
    return distribution.make_batch(tasks, num_support, num_query, rng, device=device)
