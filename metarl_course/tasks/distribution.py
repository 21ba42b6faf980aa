"""Task distributions p(T): what every sampler of tasks in the course can do.

A *task* is a small frozen dataclass (a goal, arm probabilities, an MDP's
tables). A *task distribution* samples tasks from an explicit
``np.random.Generator`` (never from global state), so the same seed always
gives the same tasks. Every distribution in the course can also

* split into disjoint meta-train and meta-test task sets (:meth:`split`), and
* give an out-of-distribution variant (:meth:`out_of_distribution`): tasks a
  meta-learner trained on this distribution has never seen the like of.

Meta-learning only ever learns what the tasks of p(T) have in common; the
design of p(T) decides what that is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

import numpy as np

TaskT = TypeVar("TaskT")


def check_rng(rng: object) -> np.random.Generator:
    """Return ``rng`` if it is a ``np.random.Generator``; raise a helpful TypeError otherwise."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator, got {type(rng).__name__}; "
            "pass rng=np.random.default_rng(seed) with a fixed seed."
        )
    return rng


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is a whole number >= ``minimum``; raise ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


class TaskDistribution(ABC, Generic[TaskT]):
    """A distribution over tasks, p(T), sampled with an explicit ``np.random.Generator``.

    Subclasses are frozen dataclasses whose fields are the distribution's
    parameters, and implement :meth:`sample` and :meth:`out_of_distribution`.
    """

    @abstractmethod
    def sample(self, num_tasks: int, rng: np.random.Generator) -> list[TaskT]:
        """Draw ``num_tasks`` independent tasks using only ``rng``."""

    @abstractmethod
    def out_of_distribution(self) -> TaskDistribution[TaskT]:
        """A distribution of tasks that this one never produces (for stress tests)."""

    def split(
        self, num_train: int, num_test: int, rng: np.random.Generator
    ) -> tuple[list[TaskT], list[TaskT]]:
        """Disjoint meta-train and meta-test task sets drawn from this distribution.

        Both sets come from the *same* p(T), as in every meta-learning benchmark;
        no task appears twice (duplicates, possible only for discrete
        parameters, are redrawn).

        Returns:
            ``(train_tasks, test_tasks)``, lists of length ``num_train`` and ``num_test``.

        Example:
            >>> from metarl_course.tasks.navigation import NavigationDistribution
            >>> train, test = NavigationDistribution().split(40, 40, np.random.default_rng(0))
            >>> set(train).isdisjoint(test)
            True
        """
        num_train = check_count("num_train", num_train)
        num_test = check_count("num_test", num_test)
        check_rng(rng)
        wanted = num_train + num_test
        unique: dict[TaskT, None] = {}  # an ordered set: keeps the draw order
        for _ in range(100):
            for task in self.sample(wanted - len(unique), rng):
                unique.setdefault(task, None)
            if len(unique) == wanted:
                tasks = list(unique)
                return tasks[:num_train], tasks[num_train:]
        raise ValueError(
            f"could not draw {wanted} distinct tasks from {self}; the distribution has "
            "too few distinct tasks: ask for fewer tasks or widen the distribution."
        )


def reset_options(options: dict[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A gymnasium ``reset(options=...)`` dict, checked: an unknown key is an error naming the valid ones."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; valid options: {', '.join(map(repr, allowed))}")
    return options
