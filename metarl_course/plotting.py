"""The course's plots. Each function draws on a given (or new) matplotlib Axes and returns it."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch

from metarl_course.evaluation import mean_ci


def plot_adaptation_curves(curves: Mapping[str, np.ndarray | torch.Tensor], ax: plt.Axes | None = None,
                           ylabel: str = "MSE on query points", xlabel: str = "gradient steps",
                           log_y: bool = False, title: str | None = None) -> plt.Axes:
    """Mean adaptation curve with a 95% confidence band (Student t, said in the legend), one line per method.

    Args:
        curves: name -> (num_tasks, num_steps + 1) losses, one row per held-out task.
    """
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for name, values in curves.items():
        mean, half_width = mean_ci(values)
        steps = np.arange(len(mean))
        line, = ax.plot(steps, mean, marker="o", ms=3, label=name)
        ax.fill_between(steps, mean - half_width, mean + half_width, color=line.get_color(), alpha=0.2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    num_tasks = {len(values) for values in curves.values()}
    over = f" over {num_tasks.pop()} tasks" if len(num_tasks) == 1 else ""
    ax.legend(title=f"mean, 95% CI (Student t){over}", title_fontsize=8)
    return ax


def plot_regression_fit(x_grid: np.ndarray, truth: np.ndarray, predictions: Mapping[str, np.ndarray],
                        support_x: np.ndarray, support_y: np.ndarray, ax: plt.Axes | None = None,
                        title: str | None = None) -> plt.Axes:
    """The true function, the K support points, and each method's prediction on ``x_grid``."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    ax.plot(x_grid, truth, color="black", lw=2, label="true function")
    for name, y in predictions.items():
        ax.plot(x_grid, y, lw=1.5, label=name)
    ax.scatter(support_x, support_y, color="red", zorder=5, label=f"K={len(support_x)} support points")
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
