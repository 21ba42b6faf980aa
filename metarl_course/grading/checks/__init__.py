"""Checks: one definition of each test of an exercise, run by the student's notebook and by the grader.

A check has two halves:

* ``probe(*answers, **case)`` calls the student's functions on one case's inputs and returns **plain data**
  (numbers, strings, booleans, ``None``, lists and string-keyed dicts of those). It runs wherever the student's
  code runs: in the student's kernel when they run a test cell, in the grader's sandbox when a class is graded.
* ``verdict(got, **case)`` decides, with the course's reference code, whether ``got`` is right, and raises
  :class:`CheckFailed` with a message for the student when it is not. The grader runs it in its own process, on
  the data the sandbox sent back, so nothing the student's code does to its interpreter changes a verdict.

In a notebook, a test cell is a list of calls such as::

    run_check("ex02.inner_loop_values", inner_loop, cases=[dict(seed=0, task=0, inner_lr=0.05, num_steps=1)])

The grader reads the same calls (their syntax, not by running them) from the instructor's copy of the cell,
hidden cases included, sends the cases to the sandbox and compares what comes back. A case field whose name
starts with ``_`` (say an answer key, in a hidden case) reaches the verdict only, never the student's code. The checks of exercise
``exNN`` live in ``metarl_course.grading.checks.exNN``.
"""

from __future__ import annotations

import importlib
import json
import math
from typing import Any, Callable

import numpy as np


class CheckFailed(AssertionError):
    """A check's verdict: the answer is wrong; the message says what to change."""


class ReferenceUnavailable(RuntimeError):
    """Raised, while a class is graded, by a course function that an exercise asks the student to write."""


class Check:
    """One test of an exercise: ``probe`` runs with the student's code, ``verdict`` with the reference."""

    name: str = ""
    """``"exNN.what"``; test cells call ``run_check(name, ...)``."""
    answers: tuple[str, ...] = ()
    """The names of the student's functions ``probe`` calls, in its argument order."""
    ok: str = ""
    """The line printed when every case passes."""

    def probe(self, *answers: Callable, **case: Any) -> Any:
        raise NotImplementedError

    def verdict(self, got: Any, **case: Any) -> None:
        raise NotImplementedError


_REGISTRY: dict[str, Check] = {}


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: make a :class:`Check` subclass available to :func:`run_check` under its ``name``."""
    if not cls.name or "." not in cls.name:
        raise ValueError(f"{cls.__name__}.name must be 'exNN.what', got {cls.name!r}")
    _REGISTRY[cls.name] = cls()
    return cls


def get_check(name: str) -> Check:
    """The check called ``name`` (importing its exercise's module on first use)."""
    if not isinstance(name, str) or "." not in name:
        raise KeyError(f"a check name looks like 'ex02.inner_loop_values', got {name!r}")
    if name not in _REGISTRY:
        module = name.split(".", 1)[0]
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            raise KeyError(f"no checks for {module!r} ({exc})") from None
    if name not in _REGISTRY:
        raise KeyError(f"no check called {name!r}")
    return _REGISTRY[name]


# ---------------------------------------------------------------------------------------------- running a probe
MAX_MESSAGE = 500


def short(text: str, limit: int = MAX_MESSAGE) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + " ..."


def describe_exception(exc: BaseException) -> str:
    """``Name: message`` of an exception, cut to a readable length."""
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a student's exception class may break str()
        message = "(its message could not be read)"
    return short(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def call_probe(check: Check, answers: tuple, case: dict) -> dict:
    """``{"data": plain data}`` from ``check.probe``, or ``{"error": why}`` when the student's code raised.

    The data go through JSON and back, so the self-check in a notebook sees exactly what the grader sees. Case
    fields whose name starts with ``_`` (an answer key) are for the verdict only: the probe never sees them.
    """
    try:
        data = check.probe(*answers, **probe_case(case))
        return {"data": json.loads(to_json(data))}
    except ReferenceUnavailable as exc:
        return {"error": str(exc), "reference": True}
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from student code are answers too
        return {"error": describe_exception(exc)}


def probe_case(case: dict) -> dict:
    """The fields of a case the probe (and so the student's code) may see: all but those starting with ``_``."""
    return {k: v for k, v in case.items() if not k.startswith("_")}


def to_json(data: Any) -> str:
    """Plain data as JSON; anything else (a tensor, a function, a pickle) is refused."""
    return json.dumps(_plain(data, "the result"), allow_nan=True)


def _plain(x: Any, where: str) -> Any:
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    if isinstance(x, (list, tuple)):
        return [_plain(v, where) for v in x]
    if isinstance(x, dict):
        if not all(isinstance(k, str) for k in x):
            raise TypeError(f"{where}: dict keys must be strings")
        return {str(k): _plain(v, where) for k, v in x.items()}
    raise TypeError(f"{where} holds a {type(x).__name__}, which is not plain data")


def tensor_data(t: Any) -> Any:
    """A tensor or array as nested lists of Python numbers (for a probe's result)."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().double().numpy()
    return np.asarray(t, dtype=np.float64).tolist()


# ------------------------------------------------------------------------------------- reading a probe's result
def array(got: Any, shape: tuple | None = None, what: str = "the result") -> np.ndarray:
    """``got`` (nested lists) as a float64 array of ``shape``, or :class:`CheckFailed` saying what was wrong."""
    try:
        a = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what} is not an array of numbers") from None
    if shape is not None and a.shape != tuple(shape):
        raise CheckFailed(f"{what} has shape {a.shape}, expected {tuple(shape)}")
    return a


def number(got: Any, what: str = "the result") -> float:
    """``got`` as a float, or :class:`CheckFailed`."""
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise CheckFailed(f"{what} is not a number (got {type(got).__name__})")
    return float(got)


def field(got: Any, key: str) -> Any:
    """``got[key]`` of a probe's dict result, or :class:`CheckFailed`."""
    if not isinstance(got, dict) or key not in got:
        raise CheckFailed(f"the result has no {key!r}")
    return got[key]


def close(a: np.ndarray, b: np.ndarray, atol: float, rtol: float = 0.0) -> bool:
    """Whether two arrays of one shape agree elementwise (NaN never agrees)."""
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


# ------------------------------------------------------------------------------------------ the test cells' call
def decide(check: Check, outcome: dict, case: dict) -> None:
    """Raise :class:`CheckFailed` unless ``outcome`` (from :func:`call_probe`) passes ``check`` on ``case``."""
    if "error" in outcome:
        if outcome.get("reference") or outcome.get("missing"):
            raise CheckFailed(short(outcome["error"]))
        raise CheckFailed(f"your code raised {short(outcome['error'])}")
    check.verdict(outcome.get("data"), **case)


def run_check(name: str, *answers: Callable, cases: list[dict]) -> None:
    """Run check ``name`` on the student's ``answers`` for every case; raise :class:`CheckFailed` on the first failure.

    The grader runs the same check on the same cases (and on hidden ones), deciding outside the student's code.
    """
    check = get_check(name)
    if len(answers) != len(check.answers):
        raise TypeError(f"{name} checks {', '.join(check.answers)}: pass {len(check.answers)} function(s)")
    for i, case in enumerate(cases):
        outcome = call_probe(check, answers, case)
        try:
            decide(check, outcome, case)
        except CheckFailed as exc:
            raise CheckFailed(f"case {i + 1} of {len(cases)} ({_case_text(case)}): {exc}") from None
    print(check.ok or f"{name}: OK")


def _case_text(case: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in probe_case(case).items())


def finite(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x)
