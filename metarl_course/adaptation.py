"""Functional gradient-descent adaptation on a batch of tasks.

This is the inner loop shared by fine-tuning baselines and MAML: starting
from parameters ``params`` (a dict of tensors), take gradient steps on each
task's support set and return *new*, per-task parameters. The module passed in
is never changed; it is only run with other parameters.

All tasks adapt at once. Every parameter tensor gets a leading ``num_tasks``
dimension, and one batched forward pass runs all tasks:

* for any ``nn.Module``: ``torch.func.vmap`` over ``torch.func.functional_call``;
* for modules that provide ``batched_forward(params, x)`` (the course's
  :class:`~metarl_course.nets.MLP`): a hand-batched forward with ``torch.baddbmm``,
  about 1.8x faster again on a laptop CPU (measured in ``benchmarks/bench_maml.py``).

Because the tasks' losses only depend on their own parameters, one
``autograd.grad`` of the *summed* loss gives every task its own gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from metarl_course.tasks.distribution import check_count

Params = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A loss ``(prediction, target) -> loss`` that reduces the last two dims: (..., N, out) -> (...)."""


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over points and outputs: (..., N, out) -> (...)."""
    return ((prediction - target) ** 2).mean(dim=(-2, -1))


def parameters_of(model: nn.Module) -> Params:
    """The module's trainable parameters as a dict, checked to require grad."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError(
            f"{type(model).__name__} has no parameters that require grad; "
            "adaptation needs at least one (did you call requires_grad_(False)?)"
        )
    return params


def step_sizes(inner_lr: float | Sequence[float], num_steps: int) -> list[float]:
    """Expand a learning rate (or one per step) into ``num_steps`` checked values."""
    num_steps = check_count("num_steps", num_steps, minimum=0)
    lrs = [float(inner_lr)] * num_steps if isinstance(inner_lr, (int, float)) else [float(a) for a in inner_lr]
    if len(lrs) != num_steps:
        raise ValueError(f"got {len(lrs)} inner learning rates for {num_steps} steps; "
                         "give one per step or a single number")
    for lr in lrs:
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"inner learning rates must be finite and > 0, got {lr!r}")
    return lrs


def check_task_shapes(support_x: torch.Tensor, support_y: torch.Tensor,
                      query_x: torch.Tensor | None = None, query_y: torch.Tensor | None = None) -> None:
    """Support and query sets must be (num_tasks, num_points, features) with matching sizes."""
    pairs = [("support", support_x, support_y)]
    if query_x is not None:
        pairs.append(("query", query_x, query_y))
    for name, x, y in pairs:
        if x.dim() != 3 or y is None or y.dim() != 3 or x.shape[:2] != y.shape[:2]:
            raise ValueError(
                f"{name}_x and {name}_y must both be (num_tasks, num_points, features) with the same "
                f"num_tasks and num_points; got {tuple(x.shape)} and {None if y is None else tuple(y.shape)}"
            )
    if query_x is not None and (query_x.shape[0] != support_x.shape[0] or query_x.shape[2] != support_x.shape[2]):
        raise ValueError(
            f"support and query sets must have the same number of tasks and input features; "
            f"got support_x {tuple(support_x.shape)} and query_x {tuple(query_x.shape)}"
        )


def batched_forward(model: nn.Module, task_params: Params, x: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on every task with that task's parameters.

    Args:
        task_params: each tensor (num_tasks, *param_shape).
        x: (num_tasks, N, in_dim)

    Returns:
        (num_tasks, N, out_dim)
    """
    fast = getattr(model, "batched_forward", None)
    if fast is not None:
        return fast(task_params, x)
    return vmap(lambda p, xx: functional_call(model, p, (xx,)))(task_params, x)


def batched_loss(model: nn.Module, task_params: Params, x: torch.Tensor, y: torch.Tensor,
                 loss_fn: LossFn = mse) -> torch.Tensor:
    """Each task's loss under its own parameters: (num_tasks,)."""
    return loss_fn(batched_forward(model, task_params, x), y)


def adapt(model: nn.Module, params: Params, support_x: torch.Tensor, support_y: torch.Tensor,
          inner_lr: float | Sequence[float], num_steps: int, first_order: bool = False,
          loss_fn: LossFn = mse, per_task_params: bool = False) -> Params:
    """Take ``num_steps`` gradient steps on every task's support set at once.

    Args:
        model: any ``nn.Module``; only its structure is used, its parameters are not changed.
        params: starting parameters shared by all tasks (e.g. the meta-parameters), or one set
            per task (leading ``num_tasks`` dim) with ``per_task_params=True``.
        support_x, support_y: (num_tasks, K, in_dim), (num_tasks, K, out_dim)
        inner_lr: one step size, or one per step.
        num_steps: number of gradient steps (0 returns the start, one copy per task).
        first_order: treat the inner gradients as constants (first-order MAML).

    Returns:
        Adapted parameters, each tensor (num_tasks, *param_shape). If ``params``
        require grad and grad mode is on, the result is differentiable with
        respect to them: through the inner gradients (second order) unless
        ``first_order``. Otherwise the result is detached.

    Example:
        >>> from metarl_course.nets import MLP
        >>> net = MLP(1, 1)
        >>> sx, sy = torch.zeros(3, 5, 1), torch.zeros(3, 5, 1)  # 3 tasks, K = 5 support points each
        >>> adapted = adapt(net, parameters_of(net), sx, sy, inner_lr=0.01, num_steps=1)
        >>> adapted["net.0.weight"].shape  # one copy of every parameter per task
        torch.Size([3, 40, 1])
    """
    check_task_shapes(support_x, support_y)
    lrs = step_sizes(inner_lr, num_steps)
    num_tasks = support_x.shape[0]
    differentiable = torch.is_grad_enabled() and any(v.requires_grad for v in params.values())
    current = params if per_task_params else {k: v.expand(num_tasks, *v.shape) for k, v in params.items()}
    if not differentiable:
        current = {k: v.detach() for k, v in current.items()}
    for lr in lrs:
        with torch.enable_grad():
            if not differentiable:
                current = {k: v.detach().requires_grad_() for k, v in current.items()}
            loss = batched_loss(model, current, support_x, support_y, loss_fn).sum()
            grads = torch.autograd.grad(loss, list(current.values()),
                                        create_graph=differentiable and not first_order)
        current = {k: v - lr * g for (k, v), g in zip(current.items(), grads)}
        if not differentiable:
            current = {k: v.detach() for k, v in current.items()}
    return current


def adapted_predictions(model: nn.Module, params: Params, support_x: torch.Tensor, support_y: torch.Tensor,
                        x: torch.Tensor, inner_lr: float | Sequence[float], num_steps: int) -> torch.Tensor:
    """What each task's model predicts at ``x`` after ``num_steps`` gradient steps on its support set.

    The picture behind an adaptation curve: e.g. a wave's prediction on a grid, before (0 steps) and after
    fine-tuning on K points. ``params`` and the model are not changed.

    Args:
        params: starting parameters shared by all tasks (e.g. ``parameters_of(model)``).
        support_x, support_y: (num_tasks, K, in_dim), (num_tasks, K, out_dim)
        x: (num_tasks, N, in_dim), or (1, N, in_dim) for the same N points on every task.

    Returns:
        (num_tasks, N, out_dim), detached.

    Example:
        >>> grid = torch.linspace(-5, 5, 200).reshape(1, -1, 1)                   # doctest: +SKIP
        >>> adapted_predictions(net, parameters_of(net), sx, sy, grid, 0.01, 10)  # doctest: +SKIP
    """
    num_tasks = support_x.shape[0]
    if x.dim() != 3 or x.shape[0] not in (1, num_tasks):
        raise ValueError(f"x must be (num_tasks, N, in_dim) or (1, N, in_dim) with num_tasks = {num_tasks}, "
                         f"got {tuple(x.shape)}")
    adapted = adapt(model, params, support_x, support_y, inner_lr, num_steps)
    with torch.no_grad():
        return batched_forward(model, adapted, x.expand(num_tasks, -1, -1))


def adaptation_curve(model: nn.Module, params: Params, support_x: torch.Tensor, support_y: torch.Tensor,
                     query_x: torch.Tensor, query_y: torch.Tensor, inner_lr: float | Sequence[float],
                     num_steps: int, loss_fn: LossFn = mse) -> torch.Tensor:
    """Query loss of every task after 0, 1, ..., ``num_steps`` gradient steps on its support set.

    Returns:
        (num_tasks, num_steps + 1), detached: column j is the loss after j steps.
    """
    check_task_shapes(support_x, support_y, query_x, query_y)
    lrs = step_sizes(inner_lr, num_steps)
    num_tasks = support_x.shape[0]
    current = {k: v.detach().expand(num_tasks, *v.shape) for k, v in params.items()}
    with torch.no_grad():
        curve = [batched_loss(model, current, query_x, query_y, loss_fn)]
        for lr in lrs:
            current = adapt(model, current, support_x, support_y, lr, 1, loss_fn=loss_fn, per_task_params=True)
            curve.append(batched_loss(model, current, query_x, query_y, loss_fn))
    return torch.stack(curve, dim=1)
