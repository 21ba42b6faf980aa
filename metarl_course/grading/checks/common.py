"""Helpers shared by the checks of several exercises (a module of helpers, not of checks: no check is called
``common.*``).

:func:`shape_text` shows a shape that a probe sent back. For a meta-train / meta-test split (exercises 01 and 03),
the probe sends back each list of tasks the student's split returned as :func:`tasks_data` describes it, and the
verdict reads them back with :func:`split_lists`, :func:`split_keys` and :func:`check_split_keys`. What identifies a
task (its parameters) is the exercise's own ``keys(tasks)``: a list of hashable keys, one a task, equal for equal
tasks.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from metarl_course.grading.checks import CheckFailed, field


# ----------------------------------------------------------------------------------------------- the probe's half
def number_or_text(x: Any) -> float | str:
    """A task parameter as a float, or a short description of what it is when it is not a number."""
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_)):
        return float(x)
    return f"{type(x).__name__}: {repr(x)[:100]}"


def tasks_data(tasks: Any, task_class: type, parameters: Callable[[Any], dict]) -> dict:
    """A list of tasks as plain data: for each, whether it is a ``task_class`` (``exact``: not a subclass), its
    class's name and, for a ``task_class``, ``parameters(task)`` (a dict of plain data)."""
    if not isinstance(tasks, list):
        return {"list": False, "type": type(tasks).__name__}
    out = []
    for t in tasks:
        if isinstance(t, task_class):
            out.append({"task": True, "exact": type(t) is task_class, "type": type(t).__name__, **parameters(t)})
        else:
            out.append({"task": False, "type": type(t).__name__})
    return {"list": True, "tasks": out}


# --------------------------------------------------------------------------------------------- the verdict's half
def shape_text(shape: Any) -> Any:
    """A shape from a probe's result (a list after JSON) as the tuple a student would print; anything else as is."""
    return tuple(shape) if isinstance(shape, list) else shape


def task_list(tasks: Any, kind: str) -> list:
    """``tasks`` (a split's list from :func:`tasks_data`), or :class:`CheckFailed` when it is not a list."""
    if not isinstance(tasks, list):
        raise CheckFailed(f"return two lists of {kind}")
    return tasks


def split_lists(call: Any, num_train: int, num_test: int, kind: str) -> tuple[list, list]:
    """The meta-training and meta-test tasks of one call's split (``{"train": ..., "test": ...}`` of
    :func:`tasks_data`), or :class:`CheckFailed` unless they are ``num_train`` and ``num_test`` tasks of the class
    called ``kind``."""
    train, test = field(call, "train"), field(call, "test")
    if not (field(train, "list") is True and field(test, "list") is True):
        raise CheckFailed(f"return two lists of {kind}")
    train, test = task_list(field(train, "tasks"), kind), task_list(field(test, "tasks"), kind)
    if (len(train), len(test)) != (num_train, num_test):
        raise CheckFailed(f"expected {num_train} meta-training and {num_test} meta-test tasks, got {len(train)} "
                          f"and {len(test)}")
    if not all(field(t, "task") is True for t in train + test):
        raise CheckFailed(f"the lists must hold {kind} objects")
    return train, test


def split_keys(call: Any, keys: Callable[[list], list]) -> tuple | None:
    """The keys of another call's split, or None when it is not two lists of tasks (so equal to no split)."""
    try:
        train, test = field(call, "train"), field(call, "test")
        if not (field(train, "list") is True and field(test, "list") is True):
            return None
        train, test = task_list(field(train, "tasks"), ""), task_list(field(test, "tasks"), "")
        if not all(isinstance(t, dict) and t.get("task") is True for t in train + test):
            return None
        return keys(train), keys(test)
    except CheckFailed:
        return None


def check_split_keys(got: dict, train: list, test: list, keys: Callable[[list], list]) -> tuple[list, list]:
    """The keys of the first call's split (``train`` and ``test`` from :func:`split_lists`), or
    :class:`CheckFailed` when a task is in both lists or the call ``"again"`` (same seed) gave another split."""
    split = keys(train), keys(test)
    if set(split[0]) & set(split[1]):
        raise CheckFailed("a meta-test task is also a meta-training task")
    if split_keys(field(got, "again"), keys) != split:
        raise CheckFailed("the same seed must give the same split")
    return split
