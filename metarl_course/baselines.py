"""Non-meta-learned references to compare meta-learning against.

* **from scratch**: a freshly initialised network, fine-tuned on the K support points;
* **pretrained**: a network trained on data pooled from many tasks (it learns the
  *average* task), then fine-tuned on the K support points of a new task;
  Finn et al. (2017)'s main baseline;
* **oracle**: a network that is *told* the task (amplitude and phase) as extra
  inputs: the error a network of this size reaches when nothing is left to infer.

Both trained baselines are meta-learners in the sense of
:func:`metarl_course.training.train` (their "adaptation" is empty), so they
train through the course's one training loop.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from metarl_course.adaptation import adaptation_curve, mse, parameters_of
from metarl_course.evaluation import curve_metrics
from metarl_course.tasks.sinusoid import SinusoidBatch, SinusoidTaskDistribution
from metarl_course.training import History, ModelOptimizerState, train


def with_task_inputs(x: torch.Tensor, batch: SinusoidBatch) -> torch.Tensor:
    """Append each task's (amplitude, phase) to its inputs: (T, N, 1) -> (T, N, 3), the oracle's input."""
    params = torch.stack([batch.amplitude, batch.phase], dim=-1)[:, None, :]  # (T, 1, 2)
    return torch.cat([x, params.expand(-1, x.shape[1], -1)], dim=-1)


class PooledLearner(ModelOptimizerState):
    """Plain regression on points pooled across tasks (``oracle=True``: with the task as input).

    One iteration draws ``tasks_per_batch`` new tasks with ``points_per_task``
    points each and takes one Adam step on the MSE over all points.
    """

    def __init__(self, model: nn.Module, distribution: SinusoidTaskDistribution, heldout: SinusoidBatch,
                 lr: float = 1e-3, tasks_per_batch: int = 25, points_per_task: int = 10,
                 oracle: bool = False, finetune_lr: float = 0.01, eval_steps: int = 10) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.model, self.distribution, self.heldout, self.oracle = model, distribution, heldout, oracle
        self.tasks_per_batch, self.points_per_task = tasks_per_batch, points_per_task
        self.finetune_lr, self.eval_steps = finetune_lr, eval_steps
        self.device = next(model.parameters()).device
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def sample_tasks(self, rng: np.random.Generator) -> SinusoidBatch:
        return self.distribution.sample_batch(self.tasks_per_batch, self.points_per_task, 1, rng, device=self.device)

    def adapt(self, tasks: SinusoidBatch) -> None:
        return None  # no inner loop: one network for every task

    def inputs(self, x: torch.Tensor, batch: SinusoidBatch) -> torch.Tensor:
        return with_task_inputs(x, batch) if self.oracle else x

    def evaluate(self, tasks: SinusoidBatch, adapted: None) -> tuple[torch.Tensor, dict[str, float]]:
        loss = mse(self.model(self.inputs(tasks.support_x, tasks)), tasks.support_y).mean()
        return loss, {"losses/train_mse": loss.item()}

    def meta_update(self, tasks: SinusoidBatch, adapted: None, meta_loss: torch.Tensor) -> dict[str, float]:
        self.optimizer.zero_grad()
        meta_loss.backward()
        self.optimizer.step()
        return {}

    def adaptation_curve(self, num_steps: int | None = None) -> torch.Tensor:
        """Held-out query MSE after 0..num_steps fine-tuning steps (the oracle does not need any)."""
        h, steps = self.heldout, self.eval_steps if num_steps is None else num_steps
        if self.oracle:
            with torch.no_grad():
                err = mse(self.model(with_task_inputs(h.query_x, h)), h.query_y)  # (T,)
            return err[:, None].expand(-1, steps + 1).clone()
        return adaptation_curve(self.model, parameters_of(self.model), h.support_x, h.support_y,
                                h.query_x, h.query_y, self.finetune_lr, steps)

    def evaluate_heldout(self) -> dict[str, float]:
        return curve_metrics(self.adaptation_curve())


def pretrain_on_pooled_tasks(model: nn.Module, distribution: SinusoidTaskDistribution, num_iterations: int,
                             heldout: SinusoidBatch, seed: int = 0, lr: float = 1e-3, tasks_per_batch: int = 25,
                             points_per_task: int = 10, progress: bool = True) -> tuple[nn.Module, History]:
    """Train a copy of ``model`` on pooled tasks; the input ``model`` is not modified.

    Returns:
        ``(trained_copy, history)``; ``history["losses/train_mse"]`` has the pooled loss per iteration.
    """
    learner = PooledLearner(copy.deepcopy(model), distribution, heldout, lr, tasks_per_batch, points_per_task)
    history = train(learner, num_iterations, seed=seed, progress=progress, desc="pretraining")
    return learner.model, history
