"""Functional gradient-descent adaptation on a batch of tasks.

This is the inner loop shared by fine-tuning baselines and MAML: starting
from parameters ``params`` (a dict of tensors), take gradient steps on each
task's support set and return *new* parameters. The module passed in is never
changed; it is only run with other parameters via
``torch.func.functional_call``. All tasks adapt at once with ``torch.func.vmap``
(one batched computation instead of a Python loop over tasks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

Params = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error (a scalar), the sinusoid regression loss."""
    return ((prediction - target) ** 2).mean()


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
    if not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be an integer >= 0, got {num_steps!r}")
    lrs = [float(inner_lr)] * num_steps if isinstance(inner_lr, (int, float)) else [float(a) for a in inner_lr]
    if len(lrs) != num_steps:
        raise ValueError(f"got {len(lrs)} inner learning rates for {num_steps} steps; give one per step or a single number")
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


def task_loss(model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor,
              loss_fn: LossFn = mse) -> torch.Tensor:
    """Loss of ``model`` run with ``params`` on one task's points ``x`` (N, in), ``y`` (N, out)."""
    return loss_fn(functional_call(model, params, (x,)), y)


def adapt(model: nn.Module, params: Params, support_x: torch.Tensor, support_y: torch.Tensor,
          inner_lr: float | Sequence[float], num_steps: int, first_order: bool = False,
          loss_fn: LossFn = mse, per_task_params: bool = False) -> Params:
    """Take ``num_steps`` gradient steps on every task's support set at once.

    Args:
        model: any ``nn.Module``; only its structure is used.
        params: starting parameters, shared by all tasks (e.g. the meta-parameters),
            or one set per task (leading ``num_tasks`` dim) with ``per_task_params=True``.
        support_x, support_y: (num_tasks, K, in_dim), (num_tasks, K, out_dim)
        inner_lr: one step size, or one per step.
        num_steps: number of gradient steps (0 returns the start, broadcast per task).
        first_order: treat the inner gradients as constants (first-order MAML):
            no gradient flows through them into ``params``.

    Returns:
        Adapted parameters, one set per task: each tensor has a leading
        ``num_tasks`` dimension. When ``params`` require grad, the result stays
        differentiable with respect to them (second order unless ``first_order``).
    """
    check_task_shapes(support_x, support_y)
    lrs = step_sizes(inner_lr, num_steps)
    loss_grad = grad(lambda p, x, y: task_loss(model, p, x, y, loss_fn))

    def adapt_one(p: Params, x: torch.Tensor, y: torch.Tensor) -> Params:
        for lr in lrs:
            g = loss_grad(p, x, y)
            p = {k: p[k] - lr * (g[k].detach() if first_order else g[k]) for k in p}
        return p

    return vmap(adapt_one, in_dims=(0 if per_task_params else None, 0, 0))(params, support_x, support_y)


def batched_loss(model: nn.Module, task_params: Params, x: torch.Tensor, y: torch.Tensor,
                 loss_fn: LossFn = mse) -> torch.Tensor:
    """Each task's loss under its own parameters: returns (num_tasks,).

    ``task_params`` tensors have a leading ``num_tasks`` dim (from :func:`adapt`);
    ``x``, ``y`` are (num_tasks, N, features).
    """
    return vmap(lambda p, xx, yy: task_loss(model, p, xx, yy, loss_fn))(task_params, x, y)


def adaptation_curve(model: nn.Module, params: Params, support_x: torch.Tensor, support_y: torch.Tensor,
                     query_x: torch.Tensor, query_y: torch.Tensor, inner_lr: float | Sequence[float],
                     num_steps: int, loss_fn: LossFn = mse) -> torch.Tensor:
    """Query loss of every task after 0, 1, ..., ``num_steps`` gradient steps.

    Returns:
        (num_tasks, num_steps + 1), detached: column j is the loss after j steps.
    """
    check_task_shapes(support_x, support_y, query_x, query_y)
    lrs = step_sizes(inner_lr, num_steps)
    num_tasks = support_x.shape[0]
    current = {k: v.detach().expand(num_tasks, *v.shape) for k, v in params.items()}
    curve = [batched_loss(model, current, query_x, query_y, loss_fn)]
    for lr in lrs:
        current = adapt(model, current, support_x, support_y, lr, 1, loss_fn=loss_fn, per_task_params=True)
        curve.append(batched_loss(model, current, query_x, query_y, loss_fn))
    return torch.stack(curve, dim=1).detach()
