"""Evaluation helpers: means with confidence intervals over held-out tasks."""

from __future__ import annotations

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
