"""The tutorial's MAML, kept once as a reference: a correct meta-gradient, one task at a time.

The tutorial chapter this course expands (section 2.3, a class ``MAML`` with
``inner_loop`` and ``outer_loop``) writes MAML the textbook way: for each task
of the meta-batch in turn, clone the meta-parameters, take gradient steps on
the support set with ``create_graph=True``, add up the query losses, then
average them and back-propagate once. This module is that code, method by
method, as functions of explicit arguments:

* :func:`tutorial_inner_loop` is ``MAML.inner_loop``;
* :func:`tutorial_maml_step` is ``MAML.outer_loop`` (an Adam step on the
  meta-loss); :func:`tutorial_meta_loss` is its loss, and
  :func:`tutorial_meta_gradient` the gradient of that loss without the step.

It changes one thing only: the network is run with ``torch.func.functional_call``
instead of the tutorial's ``model(x, params)``, so that it works with any
``nn.Module`` (the tutorial's ``SimpleModel`` needs a hand-written
``forward(x, params)``).

What the course fixes (:mod:`metarl_course.adaptation`, :mod:`metarl_course.maml`):

* **one task at a time.** The Python loop over tasks is correct but slow:
  the course adapts every task of the meta-batch at once (one batched forward
  pass, one ``autograd.grad`` for all tasks) and gets the same meta-gradient up
  to rounding (chapter 02 checks it in float64) several times faster
  (``benchmarks/bench_maml.py``).
* **the network.** The tutorial's ``SimpleModel`` has one hidden layer of 40
  units; Finn et al.'s sinusoid network has two
  (:func:`metarl_course.nets.sinusoid_regressor`), which this module's users pass in.

Chapter 02 shows this source and compares it with the course's MAML,
``tests/test_maml.py`` uses it as the independent reference for the batched
meta-gradient, and ``benchmarks/bench_maml.py`` times it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from metarl_course.tasks.sinusoid import SinusoidBatch

TaskData = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""One task as the tutorial passes it: ``(support_x, support_y, query_x, query_y)``, (K, 1), (K, 1), (Q, 1), (Q, 1)."""


def tutorial_tasks(batch: SinusoidBatch) -> list[TaskData]:
    """The course's batch as the tutorial's list of per-task tuples: ``num_tasks`` of them, no copies."""
    return [(batch.support_x[i], batch.support_y[i], batch.query_x[i], batch.query_y[i])
            for i in range(batch.num_tasks)]


def tutorial_inner_loop(model: nn.Module, task_data: TaskData, inner_lr: float = 0.01, num_inner_steps: int = 1,
                        create_graph: bool = False) -> dict[str, torch.Tensor]:
    """The tutorial's ``MAML.inner_loop``: adapt a clone of the model's parameters to one task.

    Args:
        model: the network; its parameters are the meta-parameters theta (not changed).
        task_data: one task, see :data:`TaskData`; only the support set is used.
        create_graph: keep the graph of the inner gradients (second-order MAML); False treats them as
            constants (first-order MAML).

    Returns:
        The adapted parameters, a new dict name -> tensor.
    """
    support_x, support_y, _, _ = task_data
    adapted_params = {name: param.clone() for name, param in model.named_parameters()}
    for _ in range(num_inner_steps):
        support_loss = nn.MSELoss()(functional_call(model, adapted_params, (support_x,)), support_y)
        grads = torch.autograd.grad(support_loss, adapted_params.values(), create_graph=create_graph)
        adapted_params = {name: param - inner_lr * grad
                          for (name, param), grad in zip(adapted_params.items(), grads)}
    return adapted_params


def tutorial_meta_loss(model: nn.Module, batch_tasks: Sequence[TaskData], inner_lr: float = 0.01,
                       num_inner_steps: int = 1, create_graph: bool = True) -> torch.Tensor:
    """The loss of the tutorial's ``MAML.outer_loop``: the query MSE after adaptation, averaged over the tasks.

    Returns:
        A scalar tensor; its gradient with respect to the model's parameters is the meta-gradient
        (second order with ``create_graph=True``, as in the tutorial; first order with False).
    """
    meta_loss = 0
    for task_data in batch_tasks:  # one task at a time
        adapted_params = tutorial_inner_loop(model, task_data, inner_lr, num_inner_steps, create_graph)
        _, _, query_x, query_y = task_data
        meta_loss += nn.MSELoss()(functional_call(model, adapted_params, (query_x,)), query_y)
    return meta_loss / len(batch_tasks)


def tutorial_maml_step(model: nn.Module, meta_optimizer: torch.optim.Optimizer, batch_tasks: Sequence[TaskData],
                       inner_lr: float = 0.01, num_inner_steps: int = 1, create_graph: bool = True) -> float:
    """The tutorial's ``MAML.outer_loop``: one meta-update of the model's parameters by ``meta_optimizer``.

    Returns:
        The meta-loss before the update (a float).
    """
    meta_loss = tutorial_meta_loss(model, batch_tasks, inner_lr, num_inner_steps, create_graph)
    meta_optimizer.zero_grad()
    meta_loss.backward()
    meta_optimizer.step()
    return meta_loss.item()


def tutorial_meta_gradient(model: nn.Module, batch_tasks: Sequence[TaskData], inner_lr: float = 0.01,
                           num_inner_steps: int = 1, create_graph: bool = True) -> dict[str, torch.Tensor]:
    """The gradient that :func:`tutorial_maml_step` would give its optimiser; nothing is updated.

    The model's ``.grad`` fields are not touched either (``torch.autograd.grad``, not ``backward``).

    Returns:
        Parameter name -> gradient, each of the parameter's shape.
    """
    params = dict(model.named_parameters())
    meta_loss = tutorial_meta_loss(model, batch_tasks, inner_lr, num_inner_steps, create_graph)
    return dict(zip(params, torch.autograd.grad(meta_loss, list(params.values()))))
