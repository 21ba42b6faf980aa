"""Trust-region policy optimisation's step (Schulman et al. 2015), for any differentiable objective.

The step maximises a linear model of the objective inside a KL ball: it solves
``F x = -g`` for the natural gradient with conjugate gradients, where ``F`` is
the Hessian of the mean KL divergence, reached only through Hessian-vector
products (``F`` itself is never formed), then backtracks along ``x`` until the
loss improves and the KL stays below ``max_kl``. In MAML-TRPO the loss and the
KL are functions of the meta-parameters *through the inner adaptation step*,
so these products differentiate through the inner loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Params = dict[str, torch.Tensor]
Objective = Callable[[Params], tuple[torch.Tensor, torch.Tensor]]
"""params -> (loss to minimise, mean KL from the sampling policy); both scalars."""


def flatten(tensors: dict[str, torch.Tensor] | list[torch.Tensor]) -> torch.Tensor:
    values = tensors.values() if isinstance(tensors, dict) else tensors
    return torch.cat([t.reshape(-1) for t in values])


def unflatten(vector: torch.Tensor, like: Params) -> Params:
    out, i = {}, 0
    for k, v in like.items():
        out[k] = vector[i:i + v.numel()].view_as(v)
        i += v.numel()
    return out


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iterations: int = 10,
                       tolerance: float = 1e-10) -> torch.Tensor:
    """Approximately solve ``A x = b`` for a symmetric positive-definite ``A`` given only ``x -> A x``."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iterations):
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r @ r
        if rr_new < tolerance:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def hessian_vector_product(scalar: torch.Tensor, params: Params) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> (d^2 scalar / d params^2) v`` by double backward (Pearlmutter 1994)."""
    grads = flatten(torch.autograd.grad(scalar, list(params.values()), create_graph=True))

    def hvp(v: torch.Tensor) -> torch.Tensor:
        return flatten(torch.autograd.grad(grads @ v, list(params.values()), retain_graph=True))

    return hvp


def trpo_step(params: Params, objective: Objective, max_kl: float = 0.01, damping: float = 1e-5,
              cg_iterations: int = 10, line_search_steps: int = 15, backtrack: float = 0.8,
              fisher_objective: Objective | None = None) -> dict[str, float]:
    """Update ``params`` (leaf tensors, in place) with one TRPO step on ``objective``.

    ``fisher_objective`` (default: ``objective``) gives the KL whose curvature the
    conjugate-gradient products use; evaluating it on a subsample of the data makes
    each product cheaper (the line search still checks the KL on all of it).

    Returns:
        metrics: the loss before and after, the KL of the accepted step and how many
        halvings the line search needed (``line_search_steps`` means no step was taken).
    """
    if not max_kl > 0:
        raise ValueError(f"max_kl must be > 0, got {max_kl}")
    loss, kl = objective(params)
    grad = flatten(torch.autograd.grad(loss, list(params.values()), retain_graph=True))
    fisher = hessian_vector_product(kl if fisher_objective is None else fisher_objective(params)[1], params)
    direction = conjugate_gradient(lambda v: fisher(v) + damping * v, -grad, cg_iterations)
    curvature = 0.5 * direction @ (fisher(direction) + damping * direction)
    if not (torch.isfinite(curvature) and curvature > 0):
        raise FloatingPointError(f"TRPO: the KL curvature along the step is {curvature.item()}; the policy has "
                                 "collapsed or diverged (e.g. a tiny standard deviation). Try a smaller max_kl.")
    full_step = unflatten(direction * torch.sqrt(max_kl / curvature), params)
    expected = (-grad @ direction * torch.sqrt(max_kl / curvature)).item()
    old = {k: v.detach().clone() for k, v in params.items()}
    with torch.no_grad():
        for i in range(line_search_steps):
            scale = backtrack ** i
            candidate = {k: old[k] + scale * full_step[k] for k in params}
            new_loss, new_kl = objective(candidate)
            if not (math.isfinite(new_loss.item()) and math.isfinite(new_kl.item())):
                continue  # a NaN candidate is rejected like any bad one
            if new_loss < loss and new_kl <= max_kl:
                for k, p in params.items():
                    p.copy_(candidate[k])
                return {"losses/surrogate_before": loss.item(), "losses/surrogate_after": new_loss.item(),
                        "trpo/kl": new_kl.item(), "trpo/line_search_steps": i, "trpo/expected_improvement": expected}
    return {"losses/surrogate_before": loss.item(), "losses/surrogate_after": loss.item(), "trpo/kl": 0.0,
            "trpo/line_search_steps": line_search_steps, "trpo/expected_improvement": expected}
