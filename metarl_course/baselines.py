"""Non-meta-learned references to compare meta-learning against.

* **from scratch**: a freshly initialised network, fine-tuned on the K support points;
* **pretrained**: a network trained on data pooled from many tasks (it learns the
  *average* task), then fine-tuned on the K support points of a new task;
  Finn et al. (2017)'s main baseline;
* **oracle**: a network that is *told* the task (amplitude and phase) as extra
  inputs: the error a network of this size reaches when nothing is left to infer.

Both trained baselines are meta-learners in the sense of
:func:`metarl_course.training.train` (their "adaptation" is empty), so they
train through the course's one training loop; :class:`PooledConfig` holds
their hyperparameters.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from metarl_course.adaptation import adaptation_curve, mse, parameters_of
from metarl_course.device import get_device
from metarl_course.evaluation import curve_metrics
from metarl_course.nets import MLP
from metarl_course.tasks.distribution import check_count
from metarl_course.tasks.sinusoid import SinusoidBatch, SinusoidTaskDistribution, heldout_batch
from metarl_course.training import History, ModelOptimizerState, train


def with_task_inputs(x: torch.Tensor, batch: SinusoidBatch) -> torch.Tensor:
    """Append each task's (amplitude, phase) to its inputs: (T, N, 1) -> (T, N, 3), the oracle's input."""
    params = torch.stack([batch.amplitude, batch.phase], dim=-1)[:, None, :]  # (T, 1, 2)
    return torch.cat([x, params.expand(-1, x.shape[1], -1)], dim=-1)


@dataclass(frozen=True)
class PooledConfig:
    """Hyperparameters of the pooled-task baselines: Finn et al. (2017)'s "pretrained" baseline and the oracle.

    The pretrained network is trained on data pooled from all tasks, then fine-tuned on K points of a new task
    with the step size of MAML's inner loop. The defaults match :class:`~metarl_course.maml.MAMLConfig`'s, so
    that both learners see as many tasks and points per iteration.
    """

    oracle: bool = False
    """Give the network each task's amplitude and phase as two extra inputs (the oracle); no fine-tuning then."""
    lr: float = 1e-3
    """Step size of Adam on the pooled loss."""
    tasks_per_batch: int = 25
    """New tasks drawn per iteration (MAML's meta-batch size, so both see as many tasks)."""
    points_per_task: int = 10
    """Points drawn per task and iteration (MAML's K)."""
    num_support: int = 10
    """K of the held-out tasks (:func:`~metarl_course.tasks.sinusoid.heldout_batch`) that fine-tuning learns from."""
    finetune_lr: float = 0.01
    """Step size of the fine-tuning steps at evaluation (MAML's inner step size)."""
    eval_steps: int = 10
    """``evaluate_heldout`` reports the query MSE after 0, 1 and this many fine-tuning steps."""

    def __post_init__(self) -> None:
        for name in ("lr", "finetune_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in ("tasks_per_batch", "points_per_task", "num_support", "eval_steps"):
            check_count(name, getattr(self, name))


class PooledLearner(ModelOptimizerState):
    """Plain regression on points pooled across tasks (``config.oracle``: with the task as input).

    One iteration draws ``tasks_per_batch`` new tasks with ``points_per_task``
    points each and takes one Adam step on the MSE over all points.

    Example:
        >>> learner = PooledLearner.from_config(PooledConfig(), seed=0)  # doctest: +SKIP
        >>> history = train(learner, num_iterations=20_000)               # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, config: PooledConfig, distribution: SinusoidTaskDistribution,
                 heldout: SinusoidBatch) -> None:
        self.model, self.config, self.distribution, self.heldout = model, config, distribution, heldout
        self.device = next(model.parameters()).device
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    @classmethod
    def from_config(cls, config: PooledConfig, seed: int = 0) -> PooledLearner:
        """A fresh 1-40-40-1 network (3 inputs for the oracle) initialised from ``seed``, on the course's device,
        with Finn et al.'s p(T) and the course's held-out tasks."""
        torch.manual_seed(seed)  # as sinusoid_regressor does
        model = MLP(3 if config.oracle else 1, 1, hidden=(40, 40)).to(get_device())
        return cls(model, config, SinusoidTaskDistribution(), heldout_batch(config.num_support))

    @property
    def oracle(self) -> bool:
        return self.config.oracle

    def sample_tasks(self, rng: np.random.Generator) -> SinusoidBatch:
        c = self.config
        return self.distribution.sample_support_query(c.tasks_per_batch, c.points_per_task, 1, rng, device=self.device)

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
        """Held-out query MSE after 0..num_steps fine-tuning steps (the oracle needs none): (tasks, steps + 1)."""
        h, steps = self.heldout, self.config.eval_steps if num_steps is None else num_steps
        if self.oracle:
            with torch.no_grad():
                err = mse(self.model(with_task_inputs(h.query_x, h)), h.query_y)  # (T,)
            return err[:, None].expand(-1, steps + 1).clone()
        return adaptation_curve(self.model, parameters_of(self.model), h.support_x, h.support_y,
                                h.query_x, h.query_y, self.config.finetune_lr, steps)

    def evaluate_heldout(self) -> dict[str, float]:
        return curve_metrics(self.adaptation_curve())


def pretrain_on_pooled_tasks(model: nn.Module, distribution: SinusoidTaskDistribution, num_iterations: int,
                             heldout: SinusoidBatch, seed: int = 0, lr: float = 1e-3, tasks_per_batch: int = 25,
                             points_per_task: int = 10, progress: bool = True) -> tuple[nn.Module, History]:
    """Train a copy of ``model`` on pooled tasks; the input ``model`` is not modified.

    Returns:
        ``(trained_copy, history)``; ``history["losses/train_mse"]`` has the pooled loss per iteration.
    """
    config = PooledConfig(lr=lr, tasks_per_batch=tasks_per_batch, points_per_task=points_per_task)
    learner = PooledLearner(copy.deepcopy(model), config, distribution, heldout)
    history = train(learner, num_iterations, seed=seed, progress=progress, desc="pretraining")
    return learner.model, history
