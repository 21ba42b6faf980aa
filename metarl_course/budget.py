"""Quick mode: one switch that shrinks training budgets, never lessons.

``METARL_QUICK=1`` (set by ``make test`` and CI) makes every chapter run a
real but smaller experiment; ``METARL_QUICK=0`` or unset gives the full
budgets that reproduce the papers' numbers. Every budget in the package and
the notebooks goes through :func:`budget`, so the same code runs in both modes.
"""

from __future__ import annotations

import os
from typing import TypeVar

QUICK_ENV = "METARL_QUICK"
_TRUE, _FALSE = ("1", "true", "on"), ("0", "false", "off", "")

T = TypeVar("T")


def quick_mode() -> bool:
    """True when ``METARL_QUICK`` asks for quick mode.

    Raises:
        ValueError: the variable holds anything but 0/1 (or true/false, on/off).
    """
    raw = os.environ.get(QUICK_ENV, "0").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{QUICK_ENV}={raw!r} is not valid; use {QUICK_ENV}=1 (quick) or {QUICK_ENV}=0 (full).")


def budget(full: T, quick: T) -> T:
    """Pick ``quick`` in quick mode and ``full`` otherwise.

    Example:
        >>> num_iterations = budget(full=10_000, quick=300)
    """
    return quick if quick_mode() else full
