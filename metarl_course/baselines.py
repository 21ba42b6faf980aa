"""Non-meta-learned starting points to compare meta-learning against.

* from scratch: a freshly initialised network, fine-tuned on the K support points;
* pretrained: a network trained on data pooled from many tasks (it learns the
  *average* task), then fine-tuned on the K support points of a new task.
  Finn et al. (2017) use this as their main baseline.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from metarl_course.adaptation import mse
from metarl_course.tasks.sinusoid import SinusoidTaskDistribution


def pretrain_on_pooled_tasks(model: nn.Module, distribution: SinusoidTaskDistribution, num_iterations: int,
                             rng: np.random.Generator, tasks_per_batch: int = 25, points_per_task: int = 10,
                             lr: float = 1e-3, progress: bool = True) -> tuple[nn.Module, dict[str, list[float]]]:
    """Train a copy of ``model`` by plain regression on points pooled across tasks.

    Each iteration draws ``tasks_per_batch`` new tasks with ``points_per_task``
    points each and takes one Adam step on the MSE over all of them, ignoring
    which task a point came from. The input ``model`` is not modified.

    Returns:
        ``(trained_copy, history)`` with ``history["losses/train_mse"]`` per iteration.
    """
    if num_iterations <= 0:
        raise ValueError(f"num_iterations must be > 0, got {num_iterations}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be > 0, got {lr}")
    model = copy.deepcopy(model)
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, list[float]] = {"losses/train_mse": []}
    for _ in tqdm(range(num_iterations), desc="pretraining", disable=not progress, leave=False):
        batch = distribution.sample_batch(tasks_per_batch, points_per_task, 1, rng, device=device)
        loss = mse(model(batch.support_x), batch.support_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history["losses/train_mse"].append(loss.item())
    return model, history
