"""Checks of exercise 06 (held-out evaluation and confidence intervals); the references are ``mean_ci`` and
``across_seeds`` (``metarl_course.evaluation``) and ``adaptation_curve`` (``metarl_course.adaptation``, and the
sinusoid learners' ``adaptation_curve`` and ``evaluate_heldout`` built on it), which the grader's sandbox does
not provide."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy import stats
from torch import nn

from metarl_course.adaptation import parameters_of
from metarl_course.grading.checks import (Check, CheckFailed, array, close, describe_exception, field, number,
                                          register, short, tensor_data)
from metarl_course.grading.checks.common import shape_text
from metarl_course.nets import MLP
from metarl_course.tasks import heldout_batch

REFERENCES = {
    "metarl_course.evaluation": ["mean_ci", "across_seeds"],
    "metarl_course.adaptation": ["adaptation_curve"],
    "metarl_course.maml": ["MAMLLearner.adaptation_curve", "MAMLLearner.evaluate_heldout"],
    "metarl_course.baselines": ["PooledLearner.adaptation_curve", "PooledLearner.evaluate_heldout"],
}
"""The course functions this exercise asks the student to write: unavailable while grading."""
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
AS_TYPES = {"array": np.asarray, "list": list, "tuple": tuple, "tensor": torch.tensor}
"""How a sample of values reaches the student's ``mean_ci`` (case field ``as_type``)."""
LETTERS = set("abcdef")
"""The statements of part 4."""


# --------------------------------------------------------------------------------------------------- the inputs
def gamma_values(seed: int, n: int) -> np.ndarray:
    """(n,) skewed, positive values, like per-task MSEs."""
    return np.random.default_rng(seed).gamma(2.0, 1.5, size=n)


def small_values(values=None, seed=None, n=None) -> list:
    """A few values: given as a literal, or ``n`` normal draws (mean 1, sd 0.2) from ``seed``."""
    if values is not None:
        return list(values)
    return list(np.random.default_rng(seed).normal(1.0, 0.2, n))


def seed_results(seed: int, num_seeds: int, num_tasks: int) -> np.ndarray:
    """(num_seeds, num_tasks) made-up query MSEs: the same tasks for every run (some tasks are harder), and runs
    that end better or worse than others (a run's offset is shared by all its tasks)."""
    rng = np.random.default_rng(seed)
    task_difficulty = rng.gamma(2.0, 0.2, size=num_tasks)  # (num_tasks,)
    run_quality = rng.lognormal(0.0, 0.3, size=(num_seeds, 1))  # (num_seeds, 1)
    return task_difficulty * run_quality + rng.normal(0.0, 0.01, (num_seeds, num_tasks))


def seed_table(seed=None, num_seeds=None, num_tasks=None, row=None, zeros=None) -> np.ndarray:
    """A table for ``mean_ci_over_seeds``: ``seed_results``, one ``row`` of it (1-D), or ``np.zeros(zeros)``."""
    if zeros is not None:
        return np.zeros(tuple(zeros))
    values = seed_results(seed, num_seeds, num_tasks)
    return values if row is None else values[row]


def random_curve(seed: int, num_tasks: int, num_steps: int) -> torch.Tensor:
    """(num_tasks, num_steps + 1) float32 made-up curve."""
    return torch.from_numpy(np.random.default_rng(seed).gamma(2.0, 1.0, (num_tasks, num_steps + 1))).float()


def make_curve_problem(seed, num_tasks=6, num_support=10, num_query=20, hidden=(16, 16), activation="relu"):
    """A seeded network, its parameters and seeded held-out-style tasks."""
    torch.manual_seed(seed)
    model = MLP(1, 1, hidden=tuple(hidden), activation=ACTIVATIONS[activation])
    b = heldout_batch(num_support, num_tasks=num_tasks, num_query=num_query, seed=seed, device="cpu")
    return model, parameters_of(model), b


def load_trained(name: str):
    """The shipped meta-trained learner's CPU network, its parameters and the result file's data."""
    from metarl_course.experiments import load_result

    learner, data = load_result(name)
    model = learner.model.cpu()
    return model, parameters_of(model), data


# ------------------------------------------------------------------------------------ what the probes send back
def _pair_data(out) -> dict:
    """A result that should be a tuple (mean, half_width) of Python floats."""
    if not isinstance(out, tuple) or len(out) != 2:
        return {"pair": False, "type": type(out).__name__}
    return {"pair": True, "types": [type(v).__name__ for v in out],
            "floats": [isinstance(v, float) for v in out],
            "values": [float(v) if isinstance(v, float) else None for v in out]}


def _raised(fn, *args) -> dict:
    """What calling ``fn(*args)`` raised: a ValueError and its message, another exception, or nothing."""
    try:
        fn(*args)
    except ValueError as exc:
        return {"raised": "ValueError", "message": short(str(exc))}
    except Exception as exc:  # noqa: BLE001 - any other exception is the wrong answer, said in the verdict
        return {"raised": "other", "message": describe_exception(exc)}
    return {"raised": None}


def _arrays_data(out) -> dict:
    """A result that should be a tuple of two arrays (mean, half_width)."""
    if not isinstance(out, tuple) or len(out) != 2:
        return {"pair": False, "type": type(out).__name__}
    return {"pair": True, "mean": tensor_data(np.asarray(out[0])), "half_width": tensor_data(np.asarray(out[1]))}


def _read_pair(got) -> tuple[float, float]:
    """(mean, half_width) from :func:`_pair_data`'s result, after the tuple and float checks."""
    if not field(got, "pair"):
        raise CheckFailed("return a tuple (mean, half_width)")
    floats, types = field(got, "floats"), field(got, "types")
    if not (isinstance(floats, list) and len(floats) == 2 and all(f is True for f in floats)):
        names = ", ".join(str(t) for t in types) if isinstance(types, list) else "something else"
        raise CheckFailed(f"return Python floats, got {short(names, 200)}")
    values = field(got, "values")
    if not isinstance(values, list) or len(values) != 2:
        raise CheckFailed("return a tuple (mean, half_width)")
    return number(values[0], "the mean"), number(values[1], "the half-width")


def _read_arrays(got, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, half_width) arrays of shape (length,) from :func:`_arrays_data`'s result."""
    if not field(got, "pair"):
        raise CheckFailed("return a tuple (mean, half_width)")
    mean, half_width = array(field(got, "mean"), None, "the mean"), array(field(got, "half_width"), None,
                                                                           "the half-width")
    if not mean.shape == half_width.shape == (length,):
        raise CheckFailed(f"expected two arrays of shape (num_steps + 1,) = ({length},), got {mean.shape} and "
                          f"{half_width.shape}")
    return mean, half_width


def _isclose(a: float, b: float, rtol: float, atol: float = 0.0) -> bool:
    """``np.isclose(a, b, rtol, atol)``: |a - b| <= atol + rtol |b| (NaN never agrees)."""
    return close(np.array(a), np.array(b), atol, rtol)


# --------------------------------------------------------------------------------------------- part 1: mean_ci
@lru_cache(maxsize=64)
def _reference_mean_ci(seed: int, n: int, confidence: float) -> tuple[float, float]:
    from metarl_course.evaluation import mean_ci

    mean, half_width = mean_ci(gamma_values(seed, n), confidence)
    return float(mean), float(half_width)


@register
class MeanCIValues(Check):
    """Mean and half-width equal the course's ``mean_ci`` for lists, tuples, arrays and tensors."""

    name = "ex06.mean_ci_values"
    answers = ("mean_ci",)
    ok = "mean_ci values: OK"

    def probe(self, mean_ci, *, seed, n, confidence=None, as_type="array"):
        values = AS_TYPES[as_type](gamma_values(seed, n))
        return _pair_data(mean_ci(values) if confidence is None else mean_ci(values, confidence))

    def verdict(self, got, *, seed, n, confidence=None, as_type="array"):
        mean, half_width = _read_pair(got)
        c = 0.95 if confidence is None else confidence
        ref_mean, ref_half_width = _reference_mean_ci(seed, n, c)
        if not _isclose(mean, ref_mean, 1e-7):
            raise CheckFailed(f"mean {mean}, expected {ref_mean}")
        if _isclose(half_width, ref_half_width * np.sqrt((n - 1) / n), 1e-7):
            raise CheckFailed("the half-width uses the standard deviation with ddof=0: use ddof=1 (divide by n - 1)")
        if not _isclose(half_width, ref_half_width, 1e-7):
            raise CheckFailed(f"half-width {half_width} for n={n}, confidence={c}; expected {ref_half_width}")


@register
class MeanCISmallSamples(Check):
    """Few values: the half-width is Student's t quantile (n - 1 degrees of freedom) times the standard error."""

    name = "ex06.mean_ci_small_samples"
    answers = ("mean_ci",)
    ok = "small samples: OK"

    def probe(self, mean_ci, *, confidence, values=None, seed=None, n=None):
        mean, half_width = mean_ci(small_values(values, seed, n), confidence)
        return {"half_width": float(half_width)}

    def verdict(self, got, *, confidence, values=None, seed=None, n=None):
        half_width = number(field(got, "half_width"), "the half-width")
        x = np.asarray(small_values(values, seed, n), dtype=float)
        n = len(x)
        sem = np.std(x, ddof=1) / np.sqrt(n)
        z, t = stats.norm.ppf((1 + confidence) / 2), stats.t.ppf((1 + confidence) / 2, df=n - 1)
        if _isclose(half_width, z * sem, 1e-7, 1e-8):
            raise CheckFailed(f"with n={n} the half-width is {t:.3f} standard errors (Student's t, {n - 1} degrees "
                              f"of freedom), not {z:.3f} (the normal quantile): use stats.t.ppf")
        if not _isclose(half_width, t * sem, 1e-7):
            raise CheckFailed(f"half-width {half_width}, expected {t * sem}")


@register
class MeanCIErrors(Check):
    """Fewer than 2 values, or a confidence not strictly between 0 and 1: a ValueError with a message."""

    name = "ex06.mean_ci_errors"
    answers = ("mean_ci",)
    ok = "errors: OK"

    def probe(self, mean_ci, *, values, confidence=0.95, as_type="list"):
        return _raised(mean_ci, AS_TYPES[as_type](values), confidence)

    def verdict(self, got, *, values, confidence=0.95, as_type="list"):
        raised, call = field(got, "raised"), f"mean_ci({_shown(values, as_type)}, {confidence!r})"
        if raised is None:
            raise CheckFailed(f"{call} should raise a ValueError")
        message = field(got, "message")
        if not isinstance(message, str):
            raise CheckFailed("the exception's message could not be read")
        if raised != "ValueError":
            raise CheckFailed(f"{call} should raise a ValueError, not {short(message, 300)}")
        if not message.strip():
            raise CheckFailed("give the ValueError a message that tells the user what to change")


def _shown(values, as_type: str) -> str:
    return {"array": f"np.array({values!r})", "tensor": f"torch.tensor({values!r})",
            "tuple": repr(tuple(values))}.get(as_type, repr(values))


# ------------------------------------------------------------------------------------ part 2: the curve and CIs
@lru_cache(maxsize=16)
def _reference_curve(seed, num_steps, inner_lr, net_key):
    from metarl_course.adaptation import adaptation_curve

    model, params, b = make_curve_problem(seed, **dict(net_key))
    before = {k: v.detach().numpy().copy() for k, v in params.items()}
    ref = adaptation_curve(model, params, b.support_x, b.support_y, b.query_x, b.query_y, inner_lr, num_steps)
    leaky = adaptation_curve(model, params, b.query_x, b.query_y, b.query_x, b.query_y, inner_lr, num_steps)
    return before, ref.double().numpy(), leaky.double().numpy()


def _key(problem: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in problem.items()))


@register
class HeldOutCurve(Check):
    """The curve equals the course's ``adaptation_curve`` (support set to adapt, query set to score); detached;
    ``params`` unchanged."""

    name = "ex06.held_out_curve"
    answers = ("held_out_curve",)
    ok = "held-out curve: OK"

    def probe(self, held_out_curve, *, seed, num_steps, inner_lr, **problem):
        model, params, b = make_curve_problem(seed, **problem)
        curve = held_out_curve(model, params, b, inner_lr, num_steps)
        out = {"params_after": {k: tensor_data(v) for k, v in params.items()}}
        if not isinstance(curve, torch.Tensor):
            return {**out, "type": type(curve).__name__}
        return {**out, "type": "Tensor", "shape": list(curve.shape), "requires_grad": bool(curve.requires_grad),
                "curve": tensor_data(curve)}

    def verdict(self, got, *, seed, num_steps, inner_lr, **problem):
        before, ref, leaky = _reference_curve(seed, num_steps, inner_lr, _key(problem))
        num_tasks = ref.shape[0]
        if field(got, "type") != "Tensor":
            raise CheckFailed(f"return a torch.Tensor, got {short(str(got['type']), 100)}")
        if field(got, "shape") != [num_tasks, num_steps + 1]:
            raise CheckFailed(f"expected shape (num_tasks, num_steps + 1) = {(num_tasks, num_steps + 1)}, got "
                              f"{short(str(shape_text(got['shape'])), 100)}")
        if field(got, "requires_grad") is not False:
            raise CheckFailed("return the curve detached (no gradients are needed to measure)")
        after = field(got, "params_after")
        if not isinstance(after, dict) or set(after) != set(before):
            raise CheckFailed(f"params should keep the keys {sorted(before)}")
        for k, v in before.items():
            if not np.array_equal(array(after[k], v.shape, f"params[{k!r}]"), v):
                raise CheckFailed(f"held_out_curve changed params[{k!r}] in place")
        curve = array(field(got, "curve"), (num_tasks, num_steps + 1), "the curve")
        if not close(curve[:, 0], ref[:, 0], 1e-7, 1e-5):
            raise CheckFailed("column 0 must be each task's query MSE under params, before any step")
        if num_steps > 0 and close(curve, leaky, 1e-7, 1e-5):
            raise CheckFailed("you adapted on the query set: adapt on the support set, score on the query set")
        for j in range(1, num_steps + 1):
            if not close(curve[:, j], ref[:, j], 1e-7, 1e-5):
                raise CheckFailed(f"column {j} (the query MSE after {j} steps on the support set) differs from the "
                                  "reference")


@register
class SummarizeCurve(Check):
    """Mean and half-width at every step equal the course's ``mean_ci`` over the tasks (the rows)."""

    name = "ex06.summarize_curve"
    answers = ("summarize_curve",)
    ok = "summarized curve: OK"

    def probe(self, summarize_curve, *, seed, num_tasks, num_steps, confidence=0.95):
        return _arrays_data(summarize_curve(random_curve(seed, num_tasks, num_steps), confidence))

    def verdict(self, got, *, seed, num_tasks, num_steps, confidence=0.95):
        from metarl_course.evaluation import mean_ci

        mean, half_width = _read_arrays(got, num_steps + 1)
        ref_mean, ref_half_width = mean_ci(random_curve(seed, num_tasks, num_steps), confidence)  # over axis 0
        if not (close(mean, ref_mean, 1e-8, 1e-6) and close(half_width, ref_half_width, 1e-8, 1e-6)):
            raise CheckFailed("the mean or the half-width differs from the reference: the tasks (rows) are the "
                              "samples")


def _row(a: np.ndarray) -> str:
    """An array on one line, to 4 decimals."""
    return np.array2string(np.asarray(a), precision=4, max_line_width=10**6)


@lru_cache(maxsize=8)
def _reference_trained(name: str, num_steps: int, confidence: float):
    from metarl_course.adaptation import adaptation_curve
    from metarl_course.evaluation import mean_ci

    model, params, data = load_trained(name)
    config = data["config"]
    batch = heldout_batch(config["num_support"], device="cpu")
    ref = adaptation_curve(model, params, batch.support_x, batch.support_y, batch.query_x, batch.query_y,
                           config["inner_lr"], num_steps)
    ref_mean, ref_half_width = mean_ci(ref, confidence)
    return ref_mean, ref_half_width, float(data["results"]["eval/mse_step1"])


@register
class TrainedEvaluation(Check):
    """A shipped meta-trained network on the course's fixed held-out tasks: the mean and interval per step equal
    the course's, the 1-step MSE recorded in training is reproduced, and adapting clearly lowers the error."""

    name = "ex06.trained_evaluation"
    answers = ("held_out_curve", "summarize_curve")
    ok = "held-out evaluation: OK"

    def probe(self, held_out_curve, summarize_curve, *, name, num_steps, confidence=0.95):
        model, params, data = load_trained(name)
        config = data["config"]
        batch = heldout_batch(config["num_support"], device="cpu")  # the course's fixed meta-test tasks
        curve = held_out_curve(model, params, batch, config["inner_lr"], num_steps)
        return _arrays_data(summarize_curve(curve, confidence))

    def verdict(self, got, *, name, num_steps, confidence=0.95):
        mean, half_width = _read_arrays(got, num_steps + 1)
        ref_mean, ref_half_width, recorded = _reference_trained(name, num_steps, confidence)
        if not (close(mean, ref_mean, 1e-8, 1e-5) and close(half_width, ref_half_width, 1e-8, 1e-5)):
            raise CheckFailed(f"{name}: mean {_row(mean)} +/- {_row(half_width)}, expected {_row(ref_mean)} +/- "
                              f"{_row(ref_half_width)}")
        if not abs(mean[1] - recorded) < 1e-4 * recorded:
            raise CheckFailed(f"{name}: 1-step MSE {mean[1]:.5f}, recorded in training {recorded:.5f}")
        if not mean[1] + half_width[1] < mean[0] - half_width[0]:
            raise CheckFailed(f"{name}: one step did not clearly lower the error")
        if not mean[-1] < mean[1]:
            raise CheckFailed(f"{name}: {num_steps} steps did not lower the error below 1 step")


# ---------------------------------------------------------------------------------- part 3: over training seeds
@lru_cache(maxsize=16)
def _reference_seeds(seed: int, num_seeds: int, num_tasks: int, confidence: float):
    from metarl_course.evaluation import across_seeds, mean_ci

    values = seed_results(seed, num_seeds, num_tasks)
    ref_mean, ref_half_width = (float(v[0]) for v in across_seeds(list(values[:, :, None]), confidence))
    pooled = float(mean_ci(values.reshape(-1), confidence)[1])
    return ref_mean, ref_half_width, pooled


@register
class MeanCIOverSeeds(Check):
    """The interval is over the seeds' means (``across_seeds``), not over all values pooled."""

    name = "ex06.mean_ci_over_seeds"
    answers = ("mean_ci_over_seeds",)
    ok = "intervals over seeds: OK"

    def probe(self, mean_ci_over_seeds, *, seed, num_seeds, num_tasks, confidence=None):
        values = seed_results(seed, num_seeds, num_tasks)
        out = mean_ci_over_seeds(values) if confidence is None else mean_ci_over_seeds(values, confidence)
        if not isinstance(out, tuple) or len(out) != 2:
            return {"pair": False}
        return {"pair": True, "mean": float(out[0]), "half_width": float(out[1])}

    def verdict(self, got, *, seed, num_seeds, num_tasks, confidence=None):
        if not field(got, "pair"):
            raise CheckFailed("return a tuple (mean, half_width)")
        mean, half_width = number(field(got, "mean"), "the mean"), number(field(got, "half_width"), "the half-width")
        c = 0.95 if confidence is None else confidence
        ref_mean, ref_half_width, pooled = _reference_seeds(seed, num_seeds, num_tasks, c)
        if not _isclose(mean, ref_mean, 1e-7, 1e-8):
            raise CheckFailed(f"mean {mean}, expected {ref_mean}")
        if num_tasks > 1 and _isclose(half_width, pooled, 1e-7, 1e-8):
            raise CheckFailed("that is the interval of all values pooled: average each seed over its tasks first")
        if not _isclose(half_width, ref_half_width, 1e-7, 1e-8):
            raise CheckFailed(f"half-width {half_width} for {num_seeds} seeds x {num_tasks} tasks, expected "
                              f"{ref_half_width}")


@register
class MeanCIOverSeedsErrors(Check):
    """A table that is not 2-D, or has fewer than 2 seeds (rows): a ValueError."""

    name = "ex06.mean_ci_over_seeds_errors"
    answers = ("mean_ci_over_seeds",)
    ok = "intervals over seeds, errors: OK"

    def probe(self, mean_ci_over_seeds, **table):
        return _raised(mean_ci_over_seeds, seed_table(**table))

    def verdict(self, got, **table):
        shape = seed_table(**table).shape
        raised = field(got, "raised")
        if raised is None:
            raise CheckFailed(f"a table of shape {shape} should raise a ValueError")
        if raised != "ValueError":
            message = field(got, "message")
            raise CheckFailed(f"a table of shape {shape} should raise a ValueError, not "
                              f"{short(str(message), 300)}")


# -------------------------------------------------------------------------------------------- part 4: statements
@register
class TrueStatements(Check):
    """The answer is a set of letters a to f; a hidden case's ``_key`` (verdict only) holds the true ones."""

    name = "ex06.true_statements"
    answers = ("true_statements",)
    ok = "statements: answered"

    def probe(self, answer):
        chosen = answer
        if not isinstance(chosen, (set, frozenset, list, tuple)):
            return {"type": type(chosen).__name__}
        return {"type": "ok", "letters": sorted({str(s).strip().lower() for s in chosen})}

    def verdict(self, got, _key=None):
        if field(got, "type") != "ok":
            raise CheckFailed('give a set of letters, e.g. {"a", "b"}')
        letters = field(got, "letters")
        if not isinstance(letters, list) or not all(isinstance(s, str) for s in letters):
            raise CheckFailed('give a set of letters, e.g. {"a", "b"}')
        if not set(letters) <= LETTERS:
            raise CheckFailed(f"the statements are a to f; got {short(str(sorted(set(letters) - LETTERS)), 200)}")
        if _key is not None and set(letters) != set(_key):
            raise CheckFailed("not the true statements")
