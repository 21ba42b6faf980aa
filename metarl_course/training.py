"""The course's one meta-training loop: sample tasks -> adapt -> evaluate -> meta-update.

Every algorithm of the course is a *meta-learner*: an object with the four
steps below (plus held-out evaluation and ``state_dict``). :func:`train` runs
them with a progress bar, records a :class:`History` of named metrics,
evaluates on held-out tasks every ``eval_every`` iterations, and writes
checkpoints atomically. A run stopped mid-way resumes from its last checkpoint
and ends with the same numbers as an uninterrupted run with the same seed:
the checkpoint holds the learner, the optimiser and every random-number state.

Interrupting a notebook cell (the stop button, Ctrl-C) ends :func:`train` at the
end of the current iteration: the model keeps what it learned, the history is
returned, and a checkpoint is written if a path was given.
"""

from __future__ import annotations

import math
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from metarl_course.tasks.distribution import check_count


class MetaLearner(Protocol):
    """What :func:`train` needs from an algorithm: one iteration is ``sample_tasks -> adapt -> evaluate ->
    meta_update``.

    Every method is required. What is optional is the meta-loss: ``evaluate`` returns ``(meta_loss, metrics)``
    and ``meta_loss`` may be None for learners whose ``meta_update`` builds its own objective from the
    adapted data (RL²'s PPO, MAML-TRPO's trust region, ProMP); when it is a tensor, :func:`train` checks that
    it is finite and passes it to ``meta_update`` (MAML, the pooled baselines).
    """

    def sample_tasks(self, rng: np.random.Generator) -> Any:
        """Draw a meta-batch of tasks (and their data) from p(T), using only ``rng`` for the draw."""

    def adapt(self, tasks: Any) -> Any:
        """The inner loop: adapt to each task (gradient steps, or an RNN's hidden state)."""

    def evaluate(self, tasks: Any, adapted: Any) -> tuple[torch.Tensor | None, dict[str, float]]:
        """The meta-objective on the adapted learners (or None, see above), and metrics to log."""

    def meta_update(self, tasks: Any, adapted: Any, meta_loss: torch.Tensor | None) -> dict[str, float]:
        """The outer loop: one update of the meta-parameters; returns metrics to log."""

    def evaluate_heldout(self) -> dict[str, float]:
        """Metrics on fixed held-out (meta-test) tasks, named ``eval/...``."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimizer state, counters."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class ModelOptimizerState:
    """``state_dict`` / ``load_state_dict`` for learners whose state is ``self.model`` and ``self.optimizer``."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


class History:
    """Named metrics over training: ``history["eval/mse_step1"]`` -> (iterations, values)."""

    def __init__(self, records: dict[str, list[tuple[int, float]]] | None = None) -> None:
        self.records: dict[str, list[tuple[int, float]]] = {k: list(v) for k, v in (records or {}).items()}
        self.interrupted = False

    def log(self, iteration: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.records.setdefault(name, []).append((iteration, float(value)))

    def __getitem__(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.records:
            raise KeyError(f"no metric {name!r}; recorded: {sorted(self.records)}")
        data = np.array(self.records[name], dtype=float).reshape(-1, 2)
        return data[:, 0].astype(int), data[:, 1]

    def __contains__(self, name: str) -> bool:
        return name in self.records

    def names(self) -> list[str]:
        return sorted(self.records)

    def last(self, name: str) -> float:
        return self.records[name][-1][1]

    def __repr__(self) -> str:
        return f"History({', '.join(f'{k}: {len(v)}' for k, v in sorted(self.records.items()))})"


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | os.PathLike, learner: MetaLearner, history: History, iteration: int,
                    rng: np.random.Generator, extra: dict[str, Any] | None = None) -> Path:
    """Everything needed to resume: learner, history, iteration and random states."""
    return atomic_save({
        "iteration": iteration,
        "learner": learner.state_dict(),
        "history": history.records,
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "extra": extra or {},
    }, path)


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = ("iteration", "learner", "history")
                    ) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain data only).

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is not a checkpoint of this course (corrupt, truncated, another
            format): the message says which file, so it can be deleted or recreated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a damaged file; all mean the same here
        raise ValueError(f"{path} is not a readable checkpoint (corrupt, truncated or not written by this "
                         f"course: {type(error).__name__}). Delete it and train again.") from error
    missing = [key for key in required if not isinstance(data, dict) or key not in data]
    if missing:
        raise ValueError(f"{path} is a checkpoint in another or older format (missing {', '.join(missing)}). "
                         "Delete it and train again.")
    return data


@contextmanager
def _deferred_interrupt() -> Iterator[list[bool]]:
    """Turn Ctrl-C / the notebook's stop button into a flag checked between iterations."""
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):  # noqa: ARG001
        if flag[0]:  # a second interrupt stops at once
            raise KeyboardInterrupt
        flag[0] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def check_finite(loss: torch.Tensor | float, iteration: int) -> None:
    value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    if not math.isfinite(value):
        raise FloatingPointError(
            f"the meta-loss became {value} at iteration {iteration}: training diverged. "
            "Try smaller learning rates (inner_lr and/or meta_lr)."
        )


def meta_training_step(learner: MetaLearner, rng: np.random.Generator, iteration: int) -> dict[str, float]:
    """One iteration of :func:`train`: sample tasks -> adapt -> evaluate -> meta-update; returns the metrics."""
    tasks = learner.sample_tasks(rng)
    adapted = learner.adapt(tasks)
    loss, metrics = learner.evaluate(tasks, adapted)
    if loss is not None:
        check_finite(loss, iteration)
    return {**metrics, **learner.meta_update(tasks, adapted, loss)}


def _resume(learner: MetaLearner, checkpoint_path: str | os.PathLike, rng: np.random.Generator,
            run_info: dict[str, Any] | None) -> tuple[History, int]:
    """Load a run checkpoint into ``learner`` and ``rng`` (and torch's generator); its history and iteration."""
    state = load_checkpoint(checkpoint_path)
    stored = state.get("extra", {}).get("run_info")
    if run_info is not None and stored != run_info:
        raise ValueError(f"{checkpoint_path} belongs to another run ({stored}), not to {run_info}; "
                         "delete it, choose another checkpoint path, or start afresh with resume=False.")
    learner.load_state_dict(state["learner"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    return History(state["history"]), state["iteration"]


def train(learner: MetaLearner, num_iterations: int, seed: int = 0, eval_every: int = 0,
          checkpoint_path: str | os.PathLike | None = None, checkpoint_every: int = 1000,
          resume: bool = True, progress: bool = True, desc: str = "meta-training",
          run_info: dict[str, Any] | None = None, on_iteration: Callable[[int], None] | None = None) -> History:
    """Meta-train ``learner`` for ``num_iterations`` meta-updates.

    Each iteration: ``tasks = sample_tasks(rng)``; ``adapted = adapt(tasks)``;
    ``loss, metrics = evaluate(tasks, adapted)``; ``meta_update(tasks, adapted, loss)`` (see
    :class:`MetaLearner`; ``loss`` may be None).

    Args:
        seed: seeds the task sampler (a ``np.random.Generator``) and torch.
        eval_every: run ``evaluate_heldout`` every this many iterations and at the end (0: only at the end).
        checkpoint_path: where to write checkpoints; with ``resume``, an existing file there
            is loaded first and training continues from its iteration.
        checkpoint_every: iterations between checkpoints (and one at the end).
        run_info: what identifies the run (e.g. experiment name and config); stored in the
            checkpoint, and a checkpoint with other ``run_info`` is refused instead of resumed.
        on_iteration: called with the iteration number after every meta-update (e.g. to report progress
            to another process; :mod:`metarl_course.seeds`).

    Returns:
        The :class:`History`; ``history.interrupted`` tells whether it was stopped early.
    """
    check_count("num_iterations", num_iterations)
    if eval_every < 0 or checkpoint_every < 1:
        raise ValueError("eval_every must be >= 0 and checkpoint_every >= 1")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    history, start = History(), 0
    if checkpoint_path is not None and resume and Path(checkpoint_path).exists():
        history, start = _resume(learner, checkpoint_path, rng, run_info)
        if start > num_iterations:  # its history and weights are of a longer run: never pass them off as this one
            raise ValueError(f"{checkpoint_path} is a run already at iteration {start}, past the {num_iterations} "
                             "asked for; ask for at least that many iterations, or use another checkpoint path "
                             "(--runs) to train this shorter run from scratch")

    def checkpoint(iteration: int) -> None:
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, learner, history, iteration, rng, {"run_info": run_info})

    started = time.perf_counter()
    iteration = start
    with _deferred_interrupt() as interrupted, tqdm(total=num_iterations, initial=start, desc=desc,
                                                    disable=not progress, leave=False) as bar:
        while iteration < num_iterations and not interrupted[0]:
            metrics = meta_training_step(learner, rng, iteration)
            iteration += 1
            history.log(iteration, metrics)
            if eval_every and iteration % eval_every == 0:
                history.log(iteration, learner.evaluate_heldout())
            if iteration % checkpoint_every == 0:
                checkpoint(iteration)
            bar.update(1)
            if on_iteration is not None:
                on_iteration(iteration)
            if iteration % 100 == 0:
                bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in metrics.items()}, refresh=False)
    if start < iteration == num_iterations and not (eval_every and iteration % eval_every == 0):
        history.log(iteration, learner.evaluate_heldout())  # always end with a held-out evaluation
    if iteration > start:
        history.log(iteration, {"charts/wall_seconds": time.perf_counter() - started})
    checkpoint(iteration)
    if interrupted[0]:
        history.interrupted = True
        print(f"Interrupted after {iteration} of {num_iterations} iterations: the model and history so far are "
              f"kept{'' if checkpoint_path is None else f'; run again to resume from {checkpoint_path}'}.")
    return history
