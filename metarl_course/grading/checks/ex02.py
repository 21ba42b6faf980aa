"""Checks of exercise 02 (MAML's inner loop and meta-loss); the references are ``adapt``, ``meta_gradient`` and
``maml_meta_loss``, which the grader's sandbox does not provide."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from metarl_course.adaptation import parameters_of
from metarl_course.grading.checks import Check, CheckFailed, array, close, field, number, register, tensor_data
from metarl_course.nets import MLP
from metarl_course.tasks import SinusoidTaskDistribution

REFERENCES = {"metarl_course.adaptation": ["adapt"], "metarl_course.maml": ["maml_meta_loss", "meta_gradient"]}
"""The course functions this exercise asks the student to write: unavailable while grading."""
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
TOL = 1e-10
"""float64 results of the same computation in another order agree to about 1e-14; 1e-10 leaves room."""


def make_problem(seed=0, num_tasks=4, num_support=10, num_query=10, hidden=(16, 16), activation="relu"):
    """A small float64 network and a seeded batch of sinusoid tasks (support and query sets)."""
    torch.manual_seed(seed)
    model = MLP(1, 1, hidden=tuple(hidden), activation=ACTIVATIONS[activation]).double()
    batch = SinusoidTaskDistribution().sample_support_query(num_tasks, num_support, num_query,
                                                            np.random.default_rng(seed), device="cpu",
                                                            dtype=torch.float64)
    return model, parameters_of(model), batch


def query_mse(model, params, x, y):
    return ((functional_call(model, params, (x,)) - y) ** 2).mean()


def _params_data(params) -> dict:
    return {k: tensor_data(v) for k, v in params.items()}


def _compare_params(got, ref: dict, what: str) -> None:
    if not isinstance(got, dict) or set(got) != set(ref):
        raise CheckFailed(f"{what}: return a dict with the keys {sorted(ref)}")
    for k, r in ref.items():
        a = array(got[k], r.shape, f"{what}[{k!r}]")
        if not close(a, r, TOL):
            raise CheckFailed(f"{what}: {k} differs from the reference")


def _numpy(params) -> dict:
    return {k: v.detach().numpy().copy() for k, v in params.items()}


@lru_cache(maxsize=64)
def _reference_inner(seed, task, inner_lr, num_steps, net_key):
    from metarl_course.adaptation import adapt

    model, params, b = make_problem(seed, **dict(net_key))
    ref = adapt(model, params, b.support_x[task:task + 1], b.support_y[task:task + 1], inner_lr, num_steps)
    return _numpy({k: v[0] for k, v in ref.items()}), _numpy(params)


def _key(net: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in net.items()))


@register
class InnerLoopValues(Check):
    name = "ex02.inner_loop_values"
    answers = ("inner_loop",)
    ok = "inner loop values: OK"

    def probe(self, inner_loop, *, seed, task, inner_lr, num_steps, **net):
        model, params, b = make_problem(seed, **net)
        mine = inner_loop(model, params, b.support_x[task], b.support_y[task], inner_lr, num_steps)
        if not isinstance(mine, dict):
            return {"type": type(mine).__name__}
        return {"type": "dict", "adapted": _params_data(mine), "params_after": _params_data(params)}

    def verdict(self, got, *, seed, task, inner_lr, num_steps, **net):
        ref, before = _reference_inner(seed, task, inner_lr, num_steps, _key(net))
        if field(got, "type") != "dict":
            raise CheckFailed(f"inner_loop returned a {got['type']}: return a dict with the keys {sorted(ref)}")
        _compare_params(field(got, "params_after"), before, "params after the call")
        _compare_params(field(got, "adapted"), ref, f"the adapted parameters after {num_steps} step(s)")


def _reference_gradients(seed, task, inner_lr, num_steps, net, first_order):
    from metarl_course.adaptation import adapt

    model, params, b = make_problem(seed, **net)
    sx, sy, qx, qy = (t[task] for t in (b.support_x, b.support_y, b.query_x, b.query_y))
    ref = adapt(model, params, sx[None], sy[None], inner_lr, num_steps, first_order=first_order)
    grads = torch.autograd.grad(query_mse(model, {k: v[0] for k, v in ref.items()}, qx, qy), list(params.values()))
    return {k: g.numpy() for k, g in zip(params, grads)}


@register
class InnerLoopGradients(Check):
    name = "ex02.inner_loop_gradients"
    answers = ("inner_loop",)
    ok = "inner loop gradients: OK"

    def probe(self, inner_loop, *, seed, task, inner_lr, num_steps, **net):
        out = {}
        for order, first_order in (("second", False), ("first", True)):
            model, params, b = make_problem(seed, **net)
            sx, sy, qx, qy = (t[task] for t in (b.support_x, b.support_y, b.query_x, b.query_y))
            mine = inner_loop(model, params, sx, sy, inner_lr, num_steps, first_order=first_order)
            grads = torch.autograd.grad(query_mse(model, mine, qx, qy), list(params.values()))
            out[order] = {k: tensor_data(g) for k, g in zip(params, grads)}
        return out

    def verdict(self, got, *, seed, task, inner_lr, num_steps, **net):
        for order, first_order in (("second", False), ("first", True)):
            ref = _reference_gradients(seed, task, inner_lr, num_steps, net, first_order)
            mine = field(got, order)
            try:
                _compare_params(mine, ref, f"the {order}-order meta-gradient")
            except CheckFailed as exc:
                hint = (" (use create_graph=True unless first_order)" if order == "second" else
                        " (with first_order=True, the inner gradients are constants: no create_graph)")
                raise CheckFailed(str(exc) + hint) from None


def _reference_meta(seed, inner_lr, num_steps, algorithm, problem):
    from metarl_course.maml import MAMLConfig, meta_gradient

    model, params, b = make_problem(seed, **problem)
    config = MAMLConfig(algorithm=algorithm, inner_lr=inner_lr, num_inner_steps=num_steps)
    direction, loss = meta_gradient(model, params, b.support_x, b.support_y, b.query_x, b.query_y, config)
    return float(loss), {k: v.detach().numpy() for k, v in direction.items()}


@register
class MetaLoss(Check):
    name = "ex02.meta_loss"
    answers = ("meta_loss",)
    ok = "meta-loss: OK"

    def probe(self, meta_loss, *, seed, inner_lr, num_steps, **problem):
        out = {}
        for algorithm in ("maml", "fomaml"):
            model, params, b = make_problem(seed, **problem)
            loss = meta_loss(model, params, b.support_x, b.support_y, b.query_x, b.query_y, inner_lr, num_steps,
                             first_order=algorithm == "fomaml")
            if not isinstance(loss, torch.Tensor) or loss.shape != ():
                out[algorithm] = {"not_scalar": repr(loss)[:200]}
                continue
            grads = torch.autograd.grad(loss, list(params.values()))
            out[algorithm] = {"loss": loss.item(), "grad": {k: tensor_data(g) for k, g in zip(params, grads)}}
        return out

    def verdict(self, got, *, seed, inner_lr, num_steps, **problem):
        for algorithm in ("maml", "fomaml"):
            mine = field(got, algorithm)
            if isinstance(mine, dict) and "not_scalar" in mine:
                raise CheckFailed(f"{algorithm}: return a scalar tensor (shape ()), got {mine['not_scalar']}")
            ref_loss, ref_grad = _reference_meta(seed, inner_lr, num_steps, algorithm, problem)
            loss = number(field(mine, "loss"), f"{algorithm}: the meta-loss")
            if not abs(loss - ref_loss) < TOL:
                raise CheckFailed(f"{algorithm}: meta-loss {loss:.6f}, reference {ref_loss:.6f}")
            _compare_params(field(mine, "grad"), ref_grad, f"{algorithm}: the meta-gradient")


def _heldout_loss(model, params, seed, inner_lr):
    from metarl_course.maml import maml_meta_loss

    heldout = SinusoidTaskDistribution().sample_support_query(50, 10, 10, np.random.default_rng(1000 + seed),
                                                              device="cpu")
    return maml_meta_loss(model, params, heldout.support_x, heldout.support_y, heldout.query_x, heldout.query_y,
                          inner_lr, 1).item()


def _finn_network(seed):
    torch.manual_seed(seed)
    model = MLP(1, 1, hidden=(40, 40))
    return model, parameters_of(model)


@register
class MetaTraining(Check):
    """Behaviour: 100 meta-updates (Adam) with the student's meta-loss reduce the held-out 1-step query loss."""

    name = "ex02.meta_training"
    answers = ("meta_loss",)
    ok = "meta-training: OK"

    def probe(self, meta_loss, *, seed, num_updates=100, inner_lr=0.01):
        model, params = _finn_network(seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        rng = np.random.default_rng(seed)
        p_T = SinusoidTaskDistribution()
        for _ in range(num_updates):
            b = p_T.sample_support_query(10, 10, 10, rng, device="cpu")
            loss = meta_loss(model, params, b.support_x, b.support_y, b.query_x, b.query_y, inner_lr, 1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return {"trained": _params_data(params)}

    def verdict(self, got, *, seed, num_updates=100, inner_lr=0.01):
        model, params = _finn_network(seed)
        before = _heldout_loss(model, params, seed, inner_lr)
        trained = field(got, "trained")
        if not isinstance(trained, dict) or set(trained) != set(params):
            raise CheckFailed(f"the trained network has the wrong parameters (expected {sorted(params)})")
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(torch.as_tensor(array(trained[k], tuple(p.shape), k), dtype=p.dtype))
        after = _heldout_loss(model, params, seed, inner_lr)
        if not after < 0.75 * before:
            raise CheckFailed(f"held-out 1-step query MSE {before:.2f} before and {after:.2f} after {num_updates} "
                              "meta-updates with your meta-loss: it should fall by at least a quarter")
