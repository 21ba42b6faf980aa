"""Few-shot sinusoid regression (Finn et al. 2017, section 5.1).

A task is a sine wave ``y = amplitude * sin(x - phase)``; the task
distribution p(T) draws amplitude ~ U[0.1, 5] and phase ~ U[0, pi], and a
task's data points draw x ~ U[-5, 5]. A learner sees K support points of a
new task and must predict the wave everywhere (the query points).

:class:`SinusoidTaskDistribution` is a
:class:`~metarl_course.tasks.distribution.TaskDistribution` like every other
family of the course (``sample``, ``split``, ``out_of_distribution``); it also
draws the support and query points that regression needs
(``support_query_for`` for given tasks, ``sample_support_query`` for new ones).
:func:`heldout_batch` is the course's fixed meta-test set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from metarl_course.device import get_device
from metarl_course.tasks.distribution import TaskDistribution, check_count, check_rng
from metarl_course.tasks.heldout import SINUSOID_HELDOUT_SEED


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
class SinusoidTaskDistribution(TaskDistribution[SinusoidTask]):
    """p(T) for sinusoid regression; defaults are Finn et al. (2017).

    Like every task distribution of the course, :meth:`sample` draws tasks,
    :meth:`split` makes disjoint meta-train and meta-test sets and
    :meth:`out_of_distribution` gives tasks it never draws. A regression task
    also needs data: :meth:`support_query_for` draws the support and query
    points of given tasks, and :meth:`sample_support_query` draws new tasks
    *and* their points, the meta-batch of one meta-training iteration.

    Example:
        >>> dist = SinusoidTaskDistribution()
        >>> tasks = dist.sample(3, np.random.default_rng(0))
        >>> len(tasks), round(tasks[0].amplitude, 3)
        (3, 3.221)
        >>> batch = dist.sample_support_query(25, num_support=10, num_query=10, rng=np.random.default_rng(0))
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

    def sample(self, num_tasks: int, rng: np.random.Generator) -> list[SinusoidTask]:
        """Draw ``num_tasks`` tasks from p(T): all amplitudes first, then all phases, from ``rng``."""
        num_tasks, rng = check_count("num_tasks", num_tasks), check_rng(rng)
        amplitude = rng.uniform(*self.amplitude_range, size=num_tasks)  # (num_tasks,)
        phase = rng.uniform(*self.phase_range, size=num_tasks)  # (num_tasks,)
        return [SinusoidTask(float(a), float(p)) for a, p in zip(amplitude, phase)]

    def out_of_distribution(self) -> SinusoidTaskDistribution:
        """The same amplitudes with the phases on the rest of the circle: [pi, 2 pi] for the default [0, pi].

        ``A sin(x - phase - pi) = -A sin(x - phase)``: the default's OOD tasks are its
        waves upside down, whose average is ``+1.6 cos x`` instead of ``-1.6 cos x``.
        """
        low, high = self.phase_range
        if high - low >= 2 * math.pi:
            raise ValueError(
                f"phase_range={self.phase_range} covers every phase (sin has period 2 pi), so no sinusoid is out "
                "of distribution; use a range shorter than 2 pi, e.g. phase_range=(0.0, math.pi)."
            )
        return SinusoidTaskDistribution(self.amplitude_range, (high, low + 2 * math.pi), self.x_range)

    def sample_support_query(self, num_tasks: int, num_support: int, num_query: int,
                             rng: np.random.Generator, device: torch.device | str | None = None,
                             dtype: torch.dtype = torch.float32) -> SinusoidBatch:
        """Draw ``num_tasks`` new tasks and, for each, ``num_support`` + ``num_query`` points.

        One call of :meth:`sample`, then one of :meth:`support_query_for`, both from ``rng``.

        Returns:
            A :class:`SinusoidBatch`: support (num_tasks, num_support, 1), query (num_tasks, num_query, 1).
        """
        return self.support_query_for(self.sample(num_tasks, rng), num_support, num_query, rng,
                                      device=device, dtype=dtype)

    def support_query_for(self, tasks: Sequence[SinusoidTask], num_support: int, num_query: int,
                          rng: np.random.Generator, device: torch.device | str | None = None,
                          dtype: torch.dtype = torch.float32) -> SinusoidBatch:
        """Support and query points of given tasks (e.g. a fixed meta-test set).

        Every x is drawn with one call ``rng.uniform(*x_range, size=(num_tasks, num_support + num_query, 1))``;
        the first ``num_support`` points of each task are its support set, the others its query set.

        Returns:
            A :class:`SinusoidBatch` on ``device`` (default: the course's device) with ``dtype``.
        """
        num_support = check_count("num_support (K)", num_support)
        num_query = check_count("num_query", num_query)
        rng = check_rng(rng)
        if len(tasks) == 0:
            raise ValueError("tasks is empty: pass at least one SinusoidTask")
        amplitude = np.array([t.amplitude for t in tasks])[:, None, None]  # (T, 1, 1)
        phase = np.array([t.phase for t in tasks])[:, None, None]  # (T, 1, 1)
        x = rng.uniform(*self.x_range, size=(len(tasks), num_support + num_query, 1))  # (T, K + Q, 1)
        y = amplitude * np.sin(x - phase)  # (T, K + Q, 1)
        device = get_device() if device is None else device

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=dtype, device=device)

        return SinusoidBatch(
            support_x=tensor(x[:, :num_support]), support_y=tensor(y[:, :num_support]),
            query_x=tensor(x[:, num_support:]), query_y=tensor(y[:, num_support:]),
            amplitude=tensor(amplitude[:, 0, 0]), phase=tensor(phase[:, 0, 0]),
        )


def heldout_batch(num_support: int = 10, num_tasks: int = 100, num_query: int = 100,
                  seed: int = SINUSOID_HELDOUT_SEED, distribution: SinusoidTaskDistribution | None = None,
                  device: torch.device | str | None = None) -> SinusoidBatch:
    """The course's fixed meta-test set: the same tasks and points for every method and every run.

    ``num_tasks`` tasks and then their points are drawn from one generator seeded with
    :data:`~metarl_course.tasks.heldout.SINUSOID_HELDOUT_SEED` (2017). That seed keeps it apart from the
    task streams of training (drawn with the training seed); with continuous task parameters the two never
    share a task.

    Returns:
        A :class:`SinusoidBatch`: support (num_tasks, num_support, 1), query (num_tasks, num_query, 1).
    """
    distribution = distribution or SinusoidTaskDistribution()
    rng = np.random.default_rng(seed)
    tasks = distribution.sample(num_tasks, rng)
    return distribution.support_query_for(tasks, num_support, num_query, rng, device=device)
