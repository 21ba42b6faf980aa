"""Evaluation helpers: means with confidence intervals over held-out tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats


@dataclass(frozen=True)
class MeanCI:
    """A mean with the half-width of its confidence interval: ``mean +/- half_width``."""

    mean: float
    half_width: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} +/- {self.half_width:.3f}"


def mean_ci(values: np.ndarray | torch.Tensor, confidence: float = 0.95, axis: int = 0
            ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and confidence-interval half-width along ``axis`` (Student's t).

    Each entry along ``axis`` is one independent sample, e.g. one held-out
    task. Returns ``(mean, half_width)`` arrays with ``axis`` removed.

    Example:
        >>> mean, hw = mean_ci(np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> mean
        array([2., 3.])
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, e.g. 0.95; got {confidence!r}")
    a = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, float)
    n = a.shape[axis]
    if n < 2:
        raise ValueError(f"need at least 2 samples along axis {axis} for a confidence interval, got {n}")
    sem = a.std(axis=axis, ddof=1) / np.sqrt(n)
    return a.mean(axis=axis), sem * stats.t.ppf(0.5 + confidence / 2, df=n - 1)


def summarize(values: np.ndarray | torch.Tensor, confidence: float = 0.95) -> MeanCI:
    """A 1-D sample as a :class:`MeanCI`."""
    flat = values.reshape(-1)
    mean, hw = mean_ci(flat, confidence)
    return MeanCI(float(mean), float(hw), int(flat.shape[0]))


def curve_metrics(curve: torch.Tensor, prefix: str = "eval/mse") -> dict[str, float]:
    """Mean held-out loss after 0 steps, 1 step and the last step of an adaptation curve (tasks, steps + 1)."""
    mean = curve.mean(dim=0)
    last = mean.shape[0] - 1
    return {f"{prefix}_step0": mean[0].item(), f"{prefix}_step1": mean[min(1, last)].item(),
            f"{prefix}_step{last}": mean[last].item()}


def across_seeds(curves: Sequence[np.ndarray | torch.Tensor], confidence: float = 0.95
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean curve and confidence half-width over *training seeds*.

    Args:
        curves: one ``(num_tasks, num_points)`` array per training seed, all on the same held-out tasks.

    Each training run is one sample: a run's own average over tasks goes in, and
    the interval says how far another training run could land. Pooling the tasks
    of every seed as if they were independent samples would make it too narrow:
    tasks of one run share that run's luck.

    Returns:
        ``(mean, half_width)``, each ``(num_points,)``.
    """
    if len(curves) < 2:
        raise ValueError(f"need curves from at least 2 training seeds, got {len(curves)}")
    per_seed = [(c.detach().cpu().double().numpy() if isinstance(c, torch.Tensor) else np.asarray(c, float))
                for c in curves]
    shapes = {c.shape[1:] for c in per_seed}
    if len(shapes) != 1:
        raise ValueError(f"every seed's curve needs the same number of points, got shapes {[c.shape for c in per_seed]}")
    return mean_ci(np.stack([c.mean(axis=0) for c in per_seed]), confidence)


def paired_difference(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, confidence: float = 0.95) -> MeanCI:
    """Mean of ``a - b`` with its confidence interval, for two methods scored on the *same* tasks.

    Pairing removes what the two scores share task by task (an easy task is easy for
    both), so the more they move together, the more precisely the difference is known
    compared with either score: compare methods on the same tasks this way.
    """
    a_, b_ = (x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float) for x in (a, b))
    if a_.shape != b_.shape:
        raise ValueError(f"paired scores need the same tasks: shapes {a_.shape} and {b_.shape} differ")
    return summarize(a_ - b_, confidence)
