"""Checks of exercise 01 (sinusoid support and query sets, the meta-train / meta-test split); the references are
``SinusoidTaskDistribution.support_query_for`` and ``TaskDistribution.split``, which the grader's sandbox does not
provide."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from metarl_course.grading.checks import Check, CheckFailed, array, close, field, register, tensor_data
from metarl_course.grading.checks.common import (check_split_keys, number_or_text, shape_text, split_keys, split_lists,
                                                 tasks_data)
from metarl_course.tasks import SinusoidTask, SinusoidTaskDistribution

REFERENCES = {"metarl_course.tasks.sinusoid": ["SinusoidTaskDistribution.support_query_for"],
              "metarl_course.tasks.distribution": ["TaskDistribution.split"]}
"""The course functions this exercise asks the student to write: unavailable while grading."""
NAMES = ("support_x", "support_y", "query_x", "query_y")
RTOL = 1e-5
"""The relative tolerance of ``torch.allclose`` and ``np.allclose``, which the tests used to call."""


def draw_tasks(num_tasks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A case's tasks: amplitudes U[0.1, 5] then phases U[0, pi], from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 5.0, num_tasks), rng.uniform(0.0, np.pi, num_tasks)


def _shapes(num_tasks: int, num_support: int, num_query: int) -> dict[str, tuple[int, int, int]]:
    return {"support_x": (num_tasks, num_support, 1), "support_y": (num_tasks, num_support, 1),
            "query_x": (num_tasks, num_query, 1), "query_y": (num_tasks, num_query, 1)}


def _describe(t) -> dict:
    if not isinstance(t, torch.Tensor):
        return {"tensor": False, "type": type(t).__name__}
    return {"tensor": True, "type": type(t).__name__, "shape": list(t.shape), "dtype": str(t.dtype)}


@register
class SamplerShapes(Check):
    name = "ex01.sampler_shapes"
    answers = ("sample_sinusoid_batch",)
    ok = "shapes and types: OK"

    def probe(self, sample_sinusoid_batch, *, num_tasks, num_support, num_query, seed):
        amplitude, phase = draw_tasks(num_tasks, seed)
        out = sample_sinusoid_batch(amplitude, phase, num_support, num_query, np.random.default_rng(seed))
        if not isinstance(out, tuple):
            return {"tuple": False, "type": type(out).__name__}
        return {"tuple": True, "items": [_describe(t) for t in out]}

    def verdict(self, got, *, num_tasks, num_support, num_query, seed):
        items = field(got, "items") if field(got, "tuple") is True else None
        if not isinstance(items, list) or len(items) != 4:
            raise CheckFailed("return a tuple (support_x, support_y, query_x, query_y)")
        for (name, shape), item in zip(_shapes(num_tasks, num_support, num_query).items(), items):
            if field(item, "tensor") is not True:
                raise CheckFailed(f"{name} must be a torch.Tensor, got {field(item, 'type')}")
            mine = field(item, "shape")
            if not isinstance(mine, list) or tuple(mine) != shape:
                raise CheckFailed(f"{name} must have shape {shape}, got {shape_text(mine)}")
            if field(item, "dtype") != "torch.float32":
                raise CheckFailed(f"{name} must be float32, got {field(item, 'dtype')}")


@lru_cache(maxsize=32)
def _reference_batch(num_tasks, num_support, num_query, seed, x_range):
    """The package's support and query sets of a case's tasks, as float64 arrays of the float32 values."""
    amplitude, phase = draw_tasks(num_tasks, seed)
    tasks = [SinusoidTask(float(A), float(phi)) for A, phi in zip(amplitude, phase)]
    ref = SinusoidTaskDistribution(x_range=x_range).support_query_for(tasks, num_support, num_query,
                                                                      np.random.default_rng(seed), device="cpu")
    return {name: getattr(ref, name).double().numpy() for name in NAMES}


@register
class SamplerValues(Check):
    """The sine waves, the input range, and the same numbers as ``support_query_for`` from a generator in the same
    state."""

    name = "ex01.sampler_values"
    answers = ("sample_sinusoid_batch",)
    ok = "values: OK"

    def probe(self, sample_sinusoid_batch, *, num_tasks, num_support, num_query, seed, x_range=(-5.0, 5.0)):
        amplitude, phase = draw_tasks(num_tasks, seed)
        sx, sy, qx, qy = sample_sinusoid_batch(amplitude, phase, num_support, num_query, np.random.default_rng(seed),
                                               x_range=tuple(x_range))
        return {name: tensor_data(t) for name, t in zip(NAMES, (sx, sy, qx, qy))}

    def verdict(self, got, *, num_tasks, num_support, num_query, seed, x_range=(-5.0, 5.0)):
        x_range = tuple(x_range)
        shapes = _shapes(num_tasks, num_support, num_query)
        mine = {name: array(field(got, name), shapes[name], name) for name in NAMES}
        amplitude, phase = draw_tasks(num_tasks, seed)
        a = torch.tensor(amplitude, dtype=torch.float32)[:, None, None]
        p = torch.tensor(phase, dtype=torch.float32)[:, None, None]
        for part in ("support", "query"):
            x, y = mine[f"{part}_x"], mine[f"{part}_y"]
            wave = (a * torch.sin(torch.as_tensor(x, dtype=torch.float32) - p)).double().numpy()
            if not close(y, wave, 1e-5, RTOL):
                raise CheckFailed(f"{part}_y is not amplitude * sin({part}_x - phase)")
            if not (x.min() >= x_range[0] and x.max() <= x_range[1]):
                raise CheckFailed(f"{part}_x leaves x_range={x_range}")
        ref = _reference_batch(num_tasks, num_support, num_query, seed, x_range)
        for name in NAMES:
            if not close(mine[name], ref[name], 1e-6, RTOL):
                raise CheckFailed(f"{name} differs from the reference; draw all inputs with one rng.uniform call of "
                                  "size (num_tasks, num_support + num_query, 1) and take the first num_support points "
                                  "as the support set")


@register
class PooledAverage(Check):
    """Behaviour: pooled over many tasks, the query points look like the average task, ``-(2 E[A] / pi) cos x``."""

    name = "ex01.pooled_average"
    answers = ("sample_sinusoid_batch",)
    ok = "the average task: OK"

    def probe(self, sample_sinusoid_batch, *, seed, num_tasks=2000):
        rng = np.random.default_rng(seed)
        amplitude, phase = rng.uniform(0.1, 5.0, num_tasks), rng.uniform(0.0, np.pi, num_tasks)
        _, _, qx, qy = sample_sinusoid_batch(amplitude, phase, 1, 10, rng)
        return {"query_x": tensor_data(qx), "query_y": tensor_data(qy)}

    def verdict(self, got, *, seed, num_tasks=2000):
        qx = torch.as_tensor(array(field(got, "query_x"), (num_tasks, 10, 1), "query_x"), dtype=torch.float32)
        qy = torch.as_tensor(array(field(got, "query_y"), (num_tasks, 10, 1), "query_y"), dtype=torch.float32)
        slope = float((qy * torch.cos(qx)).mean() / (torch.cos(qx) ** 2).mean())
        theory = -2 * 2.55 / np.pi
        if not abs(slope - theory) < 0.15:
            raise CheckFailed(f"pooled over {num_tasks} tasks, y ~ {slope:.2f} cos x, but the data should look like "
                              f"{theory:.2f} cos x: with phases in [0, pi], E[A sin(x - phase)] = -(2 E[A] / pi) cos x")


def _parameters(t: SinusoidTask) -> dict:
    return {"amplitude": number_or_text(t.amplitude), "phase": number_or_text(t.phase)}


def _tasks_data(tasks) -> dict:
    return tasks_data(tasks, SinusoidTask, _parameters)


def _distribution(amplitude_range=None, phase_range=None) -> SinusoidTaskDistribution:
    ranges = {k: tuple(v) for k, v in (("amplitude_range", amplitude_range), ("phase_range", phase_range))
              if v is not None}
    return SinusoidTaskDistribution(**ranges)


@register
class Split(Check):
    name = "ex01.split"
    answers = ("split_meta_train_test",)
    ok = "split: OK"

    def probe(self, split_meta_train_test, *, num_train, num_test, seed, amplitude_range=None, phase_range=None):
        distribution = _distribution(amplitude_range, phase_range)
        out = {}
        for call, s in (("first", seed), ("again", seed), ("other", seed + 1)):
            train, test = split_meta_train_test(distribution, num_train, num_test, seed=s)
            out[call] = {"train": _tasks_data(train), "test": _tasks_data(test)}
        return out

    def verdict(self, got, *, num_train, num_test, seed, amplitude_range=None, phase_range=None):
        distribution = _distribution(amplitude_range, phase_range)
        train, test = split_lists(field(got, "first"), num_train, num_test, "SinusoidTask")
        keys = check_split_keys(got, train, test, _keys)
        if split_keys(field(got, "other"), _keys) == keys:
            raise CheckFailed("another seed should give other tasks")
        for t in train + test:
            for attribute in ("amplitude", "phase"):
                value, (low, high) = field(t, attribute), getattr(distribution, f"{attribute}_range")
                if not (isinstance(value, float) and low <= value <= high):
                    raise CheckFailed(f"a task's {attribute} {value} lies outside the distribution's "
                                      f"{attribute}_range {(low, high)}")
        ref_train, ref_test = distribution.split(num_train, num_test, np.random.default_rng(seed))
        if keys != (_reference_keys(ref_train), _reference_keys(ref_test)):
            raise CheckFailed("the tasks differ from the reference; draw all of them with one sample call and "
                              "keep the first num_train for meta-training")


def _keys(tasks: list) -> list:
    """What a task's equality depends on: its class and its parameters."""
    out = []
    for t in tasks:
        a, p = field(t, "amplitude"), field(t, "phase")
        out.append((field(t, "exact") is True, str(field(t, "type")), a if isinstance(a, (float, str)) else repr(a),
                    p if isinstance(p, (float, str)) else repr(p)))
    return out


def _reference_keys(tasks: list[SinusoidTask]) -> list:
    return [(True, "SinusoidTask", float(t.amplitude), float(t.phase)) for t in tasks]

