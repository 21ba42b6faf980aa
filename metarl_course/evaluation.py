"""Evaluation helpers: means with confidence intervals over held-out tasks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class TrialEvaluation:
    """Scores of a policy on held-out trials (RL² and the baselines it is compared with)."""

    trial_returns: np.ndarray
    """(num_trials,) total reward of each trial."""
    episode_returns: np.ndarray
    """(num_trials, episodes_per_trial) total reward of each episode."""

    @property
    def mean(self) -> float:
        return float(self.trial_returns.mean())

    @property
    def ci95(self) -> float:
        """Half-width of the 95% confidence interval of the mean (Student's t)."""
        return float(mean_ci(self.trial_returns)[1])


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


# ---------------------------------------------------------------------------------------------------------------
# Re-scoring a shipped result on another machine
# ---------------------------------------------------------------------------------------------------------------

SPREAD_FILE = Path(__file__).resolve().parent / "checkpoints" / "rescore_spread.json"
"""Per result, what floating point alone moves in a re-score: written by ``tools/rescore_spread.py --write``.
``{name: {metric: largest deviation, ..., "trials_moved": largest fraction}}``, each the largest over 8
perturbations of every weight of the shipped model by a relative 1e-6."""
SPREAD_FACTOR = 4.0
"""A metric's tolerance is this many times its measured spread (see :func:`rescore_tolerance`)."""
TRIAL_MOVE = 0.5
"""A trial has "moved" when its return differs from the stored one by more than this (a bandit pays 0 or 1)."""


def perturb_weights(model: torch.nn.Module, relative: float, seed: int = 0) -> None:
    """Multiply every floating-point weight of ``model`` in place by (1 + relative * N(0, 1)), noise from ``seed``.

    Relative 1e-6 stands in for another machine's rounding (:data:`SPREAD_FILE`); 1e-2 or 1e-1 for a changed model.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.mul_(1 + relative * torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device))


def load_spreads() -> dict[str, dict[str, float]]:
    """The measured spreads of :data:`SPREAD_FILE`."""
    return json.loads(SPREAD_FILE.read_text())


def rescore_tolerance(name: str, key: str, stored: float, spreads: dict[str, dict[str, float]] | None = None
                      ) -> float:
    """How far a re-score of result ``name``'s metric ``key`` may legitimately move from its ``stored`` value.

    A re-score plays the same tasks with the same random numbers (drawn on the CPU, see
    :mod:`metarl_course.seeding`), so on another CPU or a GPU it differs only by floating point. Rounding
    differences between machines are below float32's unit roundoff (6e-8) per operation; we stand in for them
    by perturbing every weight by a relative 1e-6, over ten times more, and measure the largest deviation of
    the re-score over 8 such perturbations (:data:`SPREAD_FILE`). Smooth evaluations (sinusoid MSE) move by
    about 1e-6; rollouts where a threshold decides an event (an episode ending at the goal, a sampled action)
    amplify it into trials that play differently: up to 0.12 on RL²'s navigation trial return. The tolerance
    is :data:`SPREAD_FACTOR` (4) times that spread, and at least 1e-5 relative (float32 sums over thousands of
    terms). Where the spread is that large, the mean alone cannot tell a changed model from rounding: RL²'s
    results are also compared trial by trial (:func:`trial_tolerance`).
    """
    spreads = spreads if spreads is not None else load_spreads()
    if key not in spreads.get(name, {}):
        raise KeyError(f"no measured spread for {name} {key}; run: python tools/rescore_spread.py {name} --write")
    return max(SPREAD_FACTOR * spreads[name][key], 1e-5 * max(1.0, abs(stored)))


def trial_tolerance(name: str, spreads: dict[str, dict[str, float]] | None = None) -> float:
    """The largest fraction of held-out trials whose return may move by more than :data:`TRIAL_MOVE` in a re-score.

    Twice the largest fraction measured under 1e-6 perturbations (:data:`SPREAD_FILE`), and at least 1%: on
    the bandits and MDPs rounding moves at most 0.1% of the trials, on navigation up to about 28% (a trial that
    ends at the goal one step earlier plays its second episode from another hidden state); a model perturbed
    by a relative 1e-2 moves 6% to 80% of them, one perturbed by 1e-1 1% to 99% (``tools/rescore_spread.py``).
    """
    spreads = spreads if spreads is not None else load_spreads()
    if "trials_moved" not in spreads.get(name, {}):
        raise KeyError(f"no measured trial spread for {name}; run: python tools/rescore_spread.py {name} --write")
    return max(2 * spreads[name]["trials_moved"], 0.01)


def rescore_problems(name: str, stored: dict[str, Any], now: dict[str, float],
                     trial_returns: np.ndarray | torch.Tensor | None = None,
                     spreads: dict[str, dict[str, float]] | None = None) -> list[str]:
    """Why a re-score ``now`` of result ``name`` does not reproduce the result file's data ``stored`` (empty: it does).

    Every stored metric (not its ``_ci95``) must lie within :func:`rescore_tolerance`; where the file holds
    each held-out trial's return (``"trial_returns"``, RL²) and ``trial_returns`` is given, at most
    :func:`trial_tolerance` of the trials may have moved by more than :data:`TRIAL_MOVE`.
    """
    spreads = spreads if spreads is not None else load_spreads()
    problems = []
    for key, value in stored["results"].items():
        if key.endswith("_ci95"):
            continue
        tolerance = rescore_tolerance(name, key, value, spreads)
        if not abs(now[key] - value) <= tolerance:
            problems.append(f"{name} {key}: {now[key]:.5f} now, {value:.5f} stored (tolerance {tolerance:.2g})")
    if trial_returns is not None and "trial_returns" in stored:
        before = np.asarray(stored["trial_returns"], dtype=float)
        after = np.asarray(torch.as_tensor(trial_returns).cpu(), dtype=float)
        if before.shape != after.shape:
            problems.append(f"{name}: {after.shape} trials now, {before.shape} stored")
        else:
            moved, tolerance = float(np.mean(np.abs(after - before) > TRIAL_MOVE)), trial_tolerance(name, spreads)
            if moved > tolerance:
                problems.append(f"{name}: {moved:.1%} of the held-out trials play differently (tolerance "
                                f"{tolerance:.1%})")
    return problems
