"""Many training seeds and sweeps of an experiment: on this machine, on a Ray cluster, or one after another.

    python -m metarl_course train maml-sinusoid --seeds 0-4                 # every core of this machine
    python -m metarl_course train maml-sinusoid --seeds 0-4 --jobs 2        # two seeds at a time
    python -m metarl_course train maml-sinusoid --seeds 0-4 --address HOST:6379   # an existing Ray cluster
    python -m metarl_course train maml-sinusoid --seeds 0-2 --sweep inner_lr=0.003,0.01,0.03

A claim about a meta-learner needs an interval over *training seeds* (chapter 06): one training run is one
sample of what the algorithm does. Each seed here is one ordinary run of :func:`run_experiment` (one torch
thread, its own resumable run file ``runs/<name>-seed<S>.pt``); a finished seed's result is kept in
``runs/results/<name>-seed<S>/<name>.pt``, so running the same command again after a crash resumes the seeds
that did not finish and never trains a finished one again. The gathered file ``<out>/<name>-seeds.pt`` (or
``-sweep.pt``) holds every finished seed's whole result (weights, final numbers, history, per-task scores)
and the seeds that failed, with why; :func:`summary` turns it into intervals over seeds and paired
differences between settings (:mod:`metarl_course.evaluation`).

Seeds run as Ray tasks (sweeps as Ray Tune trials, seeds nested in each setting) when Ray is installed
(``pip install -e .[cluster]``); Ray starts on this machine for the run, or joins a cluster given its address.
Without Ray the seeds run one after another in this process, with the same files and numbers.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import os
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metarl_course.budget import budget
from metarl_course.evaluation import paired_difference
from metarl_course.evaluation import summarize
from metarl_course.experiments import (CHECKPOINT_DIR, FIELD_PARSERS, RUNS_DIR, changes_label, check_writable,
                                       get_experiment, matches_course_config, run_experiment)
from metarl_course.training import atomic_save, load_checkpoint

GATHERED_FORMAT = 1
"""Version of the gathered files' layout."""
ENV_PASSED_ON = ("METARL_QUICK", "METARL_DEVICE", "METARL_NUM_THREADS")
"""The course's switches, handed to every Ray worker (a cluster's workers do not inherit this shell's)."""
INSTALL_RAY = "install Ray with: pip install -e '.[cluster]' (pinned in requirements-cluster.txt)"


# ---------------------------------------------------------------------------------------------------------------
# What to run: seeds, sweeps, and checks of the command line before any training
# ---------------------------------------------------------------------------------------------------------------

MAX_SEEDS = 1000
"""The most seeds one command takes (a typo such as 0-100000 fails at once instead of queueing for days)."""


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,3,7"`` and ``"0-2,9"`` too; a clear error for anything else."""
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if match is None:
            raise ValueError(f"--seeds takes whole numbers >= 0 and ranges, e.g. 0-4 or 0,2,5; got {text!r}")
        first, last = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if last < first:
            raise ValueError(f"the seed range {part.strip()!r} is empty (write it from low to high, e.g. 0-4)")
        if last >= 2**32 or len(seeds) + last - first + 1 > MAX_SEEDS:
            raise ValueError(f"--seeds {text!r} asks for too many or too large seeds: at most {MAX_SEEDS} seeds, "
                             "each below 2**32")
        seeds.extend(range(first, last + 1))
    duplicates = sorted(seed for seed, count in Counter(seeds).items() if count > 1)
    if duplicates:
        raise ValueError(f"--seeds names seed(s) {duplicates} more than once; list each seed once")
    return seeds


def parse_sweep(name: str, specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["inner_lr=0.1,0.3"]`` -> ``{"inner_lr": [0.1, 0.3]}``, checked against experiment ``name``'s config."""
    config = get_experiment(name).config
    fields = {f.name: f.type for f in dataclasses.fields(config)}
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        field_name, sep, values = (part.strip() for part in spec.partition("="))
        if not sep or not field_name or not values:
            raise ValueError(f"--sweep takes FIELD=VALUE,VALUE,..., e.g. --sweep inner_lr=0.1,0.3; got {spec!r}")
        if field_name not in fields:
            raise ValueError(f"{name} has no config field {field_name!r}; its fields: {', '.join(fields)}")
        if field_name in grid:
            raise ValueError(f"--sweep names {field_name} twice; give all its values in one --sweep")
        if fields[field_name] not in FIELD_PARSERS:
            raise ValueError(f"{field_name} ({fields[field_name]}) cannot be swept from the command line; "
                             f"sweep a field of type {', '.join(FIELD_PARSERS)}")
        parse, kind = FIELD_PARSERS[fields[field_name]]
        texts = [v.strip() for v in values.split(",")]
        try:
            parsed = [parse(v) for v in texts]
        except (ValueError, KeyError):
            raise ValueError(f"{field_name} must be {kind}; got {values!r}") from None
        if len(set(parsed)) != len(parsed):
            raise ValueError(f"--sweep {field_name} lists a value twice: {values!r}")
        try:  # the config's own checks (e.g. inner_lr > 0), now rather than in a worker
            for value in parsed:
                dataclasses.replace(config, **{field_name: value})
        except (ValueError, TypeError) as error:
            raise ValueError(f"--sweep {field_name}: {error}") from None
        grid[field_name] = parsed
    return grid


def settings_of(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of a sweep's values, in order: ``{a: [1, 2]}`` -> ``[{a: 1}, {a: 2}]``; ``[{}]`` for none."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def check_jobs(jobs: int | None) -> None:
    """A clear error for a number of seeds at a time below 1 (None: every CPU)."""
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be 1 or more (seeds trained at the same time), got {jobs}")


def ray_available() -> bool:
    """Whether the optional Ray is installed (``make cluster``)."""
    return importlib.util.find_spec("ray") is not None


def check_address(address: str) -> None:
    """A clear error, at once, when a Ray cluster's ``host:port`` cannot be reached ("auto" and ray:// pass)."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")  # an IPv6 address in brackets, e.g. [::1]:6379
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--address takes the head node's HOST:PORT (e.g. 10.0.0.5:6379; `ray status` on the "
                         f"head node shows it) or 'auto'; got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise ConnectionError(f"cannot reach a Ray cluster at {address} ({error.strerror or error}); start one "
                              "with `ray start --head` on the head node, check the address, or leave out "
                              "--address to run on this machine") from None


# ---------------------------------------------------------------------------------------------------------------
# One seed, in whichever process runs it
# ---------------------------------------------------------------------------------------------------------------

def run_label(name: str, changes: dict[str, Any], seed: int) -> str:
    """A run's name in files and messages, e.g. ``maml-sinusoid-inner_lr=0.03-seed2``."""
    return f"{name}{changes_label(changes)}-seed{seed}"


@dataclass(frozen=True)
class SeedSpec:
    """One training run of a many-seed command: the experiment, the seed, the config fields changed."""

    name: str
    seed: int
    iterations: int
    runs_dir: str
    """Absolute: run files and finished results live here (on a cluster, a folder every node sees)."""
    changes: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The run's name in files and messages (:func:`run_label`)."""
        return run_label(self.name, self.changes, self.seed)

    @property
    def result_path(self) -> Path:
        """The finished run's result file (that of ``train NAME --seed S --out <runs>/results/<label>``)."""
        return Path(self.runs_dir) / "results" / self.label / f"{self.name}.pt"

    @property
    def run_file(self) -> Path:
        """The resumable checkpoint of the run while it trains."""
        return Path(self.runs_dir) / f"{self.label}.pt"


def finished_result(spec: SeedSpec) -> dict[str, Any] | None:
    """The finished result of ``spec`` if an earlier command wrote one, else None; a clear error if the file there
    is of another run (another number of iterations, e.g. quick mode, or another config)."""
    if not spec.result_path.exists():
        return None
    data = load_checkpoint(spec.result_path, required=("experiment", "seed", "iterations", "config", "results"))
    exp = get_experiment(spec.name).with_changes(spec.changes)
    if (data["experiment"], data["seed"], data["iterations"]) != (spec.name, spec.seed, spec.iterations) \
            or not matches_course_config(data["config"], exp):
        raise ValueError(f"{spec.result_path} holds another run ({data['iterations']} iterations, not "
                         f"{spec.iterations}, or another config); give another --runs folder, or delete it to "
                         "train this run")
    return data


def train_seed(spec: SeedSpec, report: Callable[[int], None] | None = None) -> tuple[str, dict[str, Any]]:
    """Train ``spec`` here (resuming its run file) unless it already finished: ``("done" or "kept", result)``.

    Runs inside a Ray worker or in this process alike; the finished result is written to ``spec.result_path``
    and returned as well (the run's whole result file: weights, numbers, history).
    """
    kept = finished_result(spec)
    if kept is not None:
        return "kept", kept
    run_experiment(spec.name, spec.seed, spec.iterations, spec.result_path.parent, spec.runs_dir, progress=False,
                   changes=spec.changes or None, on_iteration=report)
    return "done", load_checkpoint(spec.result_path, required=("results",))


# ---------------------------------------------------------------------------------------------------------------
# Running many seeds: one after another, as Ray tasks, or as Ray Tune trials
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What happened to one seed of a command: ``done`` now, ``kept`` from before, or ``failed`` (with why)."""

    spec: SeedSpec
    status: str
    detail: str = ""
    seconds: float = 0.0


def run_sequential(specs: Sequence[SeedSpec]) -> list[Outcome]:
    """Each seed in this process, one after another, with a progress bar per seed."""
    from tqdm.auto import tqdm

    outcomes = []
    for index, spec in enumerate(specs):
        bar = tqdm(total=spec.iterations, desc=f"{spec.label} ({index + 1}/{len(specs)})", leave=False)
        try:
            status, result = train_seed(spec, report=lambda i: bar.update(i - bar.n))
            outcomes.append(Outcome(spec, status, seconds=result["wall_seconds_last_session"]))
        except KeyboardInterrupt:
            bar.close()
            raise
        except Exception as error:  # noqa: BLE001 - reported in the summary; the other seeds go on
            outcomes.append(Outcome(spec, "failed", f"{type(error).__name__}: {error}"))
        bar.close()
        print(outcome_line(outcomes[-1]), flush=True)
    return outcomes


@contextmanager
def ray_session(jobs: int | None, address: str | None) -> Iterator[Any]:
    """``ray``, connected: a local Ray with ``jobs`` CPUs started for the block, or the cluster at ``address``; a
    Ray this process connected to before (``ray.init()`` in a notebook or a test) is used as it is and kept."""
    import ray

    started = not ray.is_initialized()
    if started:
        env = {key: os.environ[key] for key in ENV_PASSED_ON if key in os.environ}
        env.setdefault("METARL_NUM_THREADS", "1")  # one torch thread per seed: the course's models train fastest so
        options: dict[str, Any] = {"runtime_env": {"env_vars": env}, "include_dashboard": False}
        where = {"address": "local", "num_cpus": jobs} if address is None else {"address": address}
        try:
            ray.init(**where, **options)  # "local": a new Ray for this run, even if `ray start` runs one here
        except ConnectionError as error:
            raise ConnectionError(
                f"{error}. Is a cluster running there (`ray status` on its head node)? If it uses token "
                "authentication, run the command with RAY_AUTH_MODE=token and the cluster's token in "
                "~/.ray/auth_token or RAY_AUTH_TOKEN (`ray get-auth-token` on the head node prints it)") from None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def run_on_ray(specs: Sequence[SeedSpec], jobs: int | None, address: str | None) -> list[Outcome]:
    """Each seed as a Ray task of one CPU, at most ``jobs`` at a time (also on a cluster); progress shown here."""
    with ray_session(jobs, address) as ray:
        board = ray.remote(num_cpus=0)(_ProgressBoard).remote()
        task = ray.remote(num_cpus=1, max_retries=0)(_train_seed_reporting)
        try:
            return _follow(ray, lambda spec: task.remote(spec, board), board, specs, jobs or len(specs))
        finally:
            ray.kill(board)


class _ProgressBoard:
    """A Ray actor: the workers post their iteration, the driver reads them all."""

    def __init__(self) -> None:
        self.iterations: dict[str, int] = {}

    def post(self, label: str, iteration: int) -> None:
        self.iterations[label] = iteration

    def read(self) -> dict[str, int]:
        return self.iterations


def _train_seed_reporting(spec: SeedSpec, board: Any) -> tuple[str, dict[str, Any]]:
    """:func:`train_seed` in a Ray worker, posting its iteration to ``board`` at most once a second."""
    last = [0.0]

    def report(iteration: int) -> None:
        now = time.monotonic()
        if now - last[0] > 1 or iteration == spec.iterations:
            last[0] = now
            board.post.remote(spec.label, iteration)

    return train_seed(spec, report)


def _follow(ray: Any, submit: Callable[[SeedSpec], Any], board: Any, specs: Sequence[SeedSpec],
            jobs: int) -> list[Outcome]:
    """Submit the seeds, ``jobs`` in flight at a time, and wait for them, drawing progress bars (in a terminal);
    each task's end becomes an :class:`Outcome`. Interrupted, the tasks still running are cancelled."""
    from tqdm.auto import tqdm

    quiet = not sys.stderr.isatty()  # in a log, only the lines written when a seed ends
    total = tqdm(total=sum(s.iterations for s in specs), desc=f"{len(specs)} seeds", mininterval=1, disable=quiet)
    bars = {s.label: tqdm(total=s.iterations, desc=s.label, position=i + 1, leave=False, mininterval=1,
                          disable=quiet) for i, s in enumerate(specs)}
    waiting, running, outcomes = list(specs), {}, {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                spec = waiting.pop(0)
                running[submit(spec)] = spec
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            if not quiet:
                for label, iteration in ray.get(board.read.remote()).items():
                    bars[label].update(iteration - bars[label].n)
            for ref in done:
                spec = running.pop(ref)
                outcomes[spec.label] = _outcome_of(ray, ref, spec)
                bars[spec.label].update(spec.iterations - bars[spec.label].n)
                tqdm.write(outcome_line(outcomes[spec.label]))
            total.update(sum(b.n for b in bars.values()) - total.n)
    finally:
        for ref in running:  # Ctrl-C or an error here: stop the seeds still training (their run files stay)
            ray.cancel(ref, force=True)
        for bar in (*bars.values(), total):
            bar.close()
    return [outcomes[s.label] for s in specs]


def _outcome_of(ray: Any, ref: Any, spec: SeedSpec) -> Outcome:
    """A finished Ray task's :class:`Outcome`; its result file is written here too if this machine lacks it (a
    cluster's worker wrote it on its own disk)."""
    try:
        status, result = ray.get(ref)
    except ray.exceptions.RayTaskError as error:  # the training raised (e.g. it diverged)
        cause = error.cause if getattr(error, "cause", None) is not None else error
        return Outcome(spec, "failed", f"{type(cause).__name__}: {cause}")
    except ray.exceptions.RayError as error:  # the worker died: killed, out of memory, node lost
        return Outcome(spec, "failed", f"its worker died ({type(error).__name__})")
    if not spec.result_path.exists():
        atomic_save(result, spec.result_path)
    return Outcome(spec, status, seconds=result["wall_seconds_last_session"])


def _tune_trial(params: dict[str, Any]) -> None:
    """A Ray Tune trainable: one (setting, seed) of a sweep; reports the final held-out numbers."""
    from ray import tune

    status, result = train_seed(params["run"])
    tune.report({**result["results"], "seconds": result["wall_seconds_last_session"], "status": status})


def run_on_tune(name: str, specs: Sequence[SeedSpec], jobs: int | None, address: str | None) -> list[Outcome]:
    """A sweep as Ray Tune trials, one CPU each: every setting of the grid with every seed (one trial per spec)."""
    from ray import tune

    with ray_session(jobs, address):
        tuner = tune.Tuner(
            tune.with_resources(_tune_trial, {"cpu": 1}), param_space={"run": tune.grid_search(list(specs))},
            tune_config=tune.TuneConfig(max_concurrent_trials=jobs),
            run_config=tune.RunConfig(name=f"{name}-sweep", storage_path=str(Path(specs[0].runs_dir) / "tune"),
                                      verbose=1, failure_config=tune.FailureConfig(max_failures=0)))
        outcomes = {}
        for result in tuner.fit():
            spec = result.config["run"]
            if result.error is not None:
                cause = getattr(result.error, "cause", None) or result.error
                outcomes[spec.label] = Outcome(spec, "failed", f"{type(cause).__name__}: {cause}")
            elif "status" not in result.metrics:  # stopped (Ctrl-C) before it reported
                outcomes[spec.label] = Outcome(spec, "failed", "interrupted before it finished")
            else:
                outcomes[spec.label] = Outcome(spec, result.metrics["status"], seconds=result.metrics["seconds"])
        return [outcomes[s.label] for s in specs]


def outcome_line(outcome: Outcome) -> str:
    """One line for the log: what happened to a seed, and for a failed one what running the command again does."""
    spec = outcome.spec
    if outcome.status == "failed":
        again = (f"resume it from {spec.run_file}" if spec.run_file.exists()
                 else "start it afresh (it stopped before its first run file)")
        return f"{spec.label}: FAILED: {outcome.detail}; running the same command again would {again}"
    how = "trained" if outcome.status == "done" else "finished earlier, kept"
    return f"{spec.label}: {how} ({outcome.seconds:.1f} s of training)"


# ---------------------------------------------------------------------------------------------------------------
# The command: check, run, gather, summarise
# ---------------------------------------------------------------------------------------------------------------

def train_seeds(name: str, seeds: Sequence[int], *, jobs: int | None = None, address: str | None = None,
                sweep: dict[str, list[Any]] | None = None, num_iterations: int | None = None,
                out_dir: str | Path = CHECKPOINT_DIR, runs_dir: str | Path = RUNS_DIR) -> tuple[Path, list[Outcome]]:
    """Train experiment ``name`` with every seed (and every setting of ``sweep``) and gather the results.

    ``jobs``: seeds at the same time (default: every CPU, with Ray; 1 runs them in this process). ``address``:
    a Ray cluster's ``HOST:PORT`` or "auto". Every input is checked before any training starts; seeds an earlier
    command finished are kept, not trained again.

    Returns:
        The gathered file (``<out_dir>/<name>-seeds.pt``, or ``-sweep.pt`` with a sweep) and each run's outcome.
    """
    specs, finished, use_ray = plan(name, seeds, jobs, address, sweep, num_iterations, out_dir, runs_dir)
    kept = [Outcome(s, "kept", seconds=finished[s.label]["wall_seconds_last_session"]) for s in specs
            if s.label in finished]
    todo = [s for s in specs if s.label not in finished]
    for outcome in kept:
        print(outcome_line(outcome))
    if not todo:
        outcomes = []
    elif not use_ray:
        if len(todo) > 1:
            print(f"{len(todo)} runs one after another in this process"
                  + ("" if ray_available() else f" ({INSTALL_RAY} to run them side by side)"))
        outcomes = run_sequential(todo)
    elif sweep:
        outcomes = run_on_tune(name, todo, jobs, address)
    else:
        outcomes = run_on_ray(todo, jobs, address)
    done = {o.spec.label: o for o in [*kept, *outcomes]}
    ordered = [done[s.label] for s in specs]
    return gather(name, ordered, out_dir, kind="sweep" if sweep else "seeds"), ordered


def plan(name: str, seeds: Sequence[int], jobs: int | None, address: str | None, sweep: dict[str, list[Any]] | None,
         num_iterations: int | None, out_dir: str | Path, runs_dir: str | Path
         ) -> tuple[list[SeedSpec], dict[str, dict[str, Any]], bool]:
    """Check every input of :func:`train_seeds` (a clear error naming the fix); the runs, the results of those an
    earlier command finished (by label), and whether to run on Ray."""
    exp = get_experiment(name)
    check_jobs(jobs)
    if not seeds:
        raise ValueError("give at least one seed, e.g. --seeds 0-4")
    if any(not isinstance(seed, int) or not 0 <= seed < 2**32 for seed in seeds):
        raise ValueError(f"seeds must be whole numbers from 0 to 2**32 - 1, got {list(seeds)}")
    settings = settings_of(sweep or {})
    for changes in settings:  # the config's own checks, for every combination of the grid
        try:
            exp.with_changes(changes)
        except (ValueError, TypeError) as error:
            raise ValueError(f"the setting {_setting_name(changes)}: {error}") from None
    if (address is not None or (jobs or 1) > 1) and not ray_available():
        raise ValueError(f"running seeds side by side (--jobs, --address) needs Ray; {INSTALL_RAY}, or leave "
                         "out --jobs to run the seeds one after another")
    if address is not None:
        check_address(address)
    for folder in (out_dir, runs_dir):
        check_writable(folder)
    iterations = num_iterations or budget(full=exp.num_iterations, quick=exp.quick_iterations)
    runs = str(Path(runs_dir).resolve())
    specs = [SeedSpec(name, seed, iterations, runs, changes) for changes in settings for seed in seeds]
    # a result file of another run in --runs, or a gathered file of another budget in --out: an error now
    finished = {s.label: result for s in specs if (result := finished_result(s)) is not None}
    _previous_gathered(name, "sweep" if sweep else "seeds", iterations, out_dir)
    use_ray = address is not None or (jobs != 1 and ray_available() and len(specs) > 1)
    return specs, finished, use_ray


def _previous_gathered(name: str, kind: str, iterations: int, out_dir: str | Path) -> dict[str, Any] | None:
    """The gathered file already at ``<out_dir>/<name>-<kind>.pt`` if its runs can join this command's (same
    iterations and config), None if there is none; a clear error if it holds other runs."""
    path = Path(out_dir) / f"{name}-{kind}.pt"
    if not path.exists():
        return None
    data = load_checkpoint(path, required=("experiment", "config", "iterations", "runs", "failed"))
    if data["experiment"] != name or data["iterations"] != iterations \
            or not matches_course_config(data["config"], get_experiment(name)):
        raise ValueError(f"{path} holds runs of {data['iterations']} iterations (or another config), not "
                         f"{iterations}; give --out another folder so that this command does not replace them")
    return data


def gather(name: str, outcomes: Sequence[Outcome], out_dir: str | Path, kind: str = "seeds") -> Path:
    """Write ``<out_dir>/<name>-<kind>.pt``: every finished run's whole result file (weights, ``results``,
    ``history``, ``task_curves`` where the learner has them) under ``runs``, the failed runs with why under
    ``failed``; the runs of an earlier gathered file there that this command did not run are kept."""
    iterations = outcomes[0].spec.iterations
    previous = _previous_gathered(name, kind, iterations, out_dir) or {"runs": [], "failed": []}
    ran = {o.spec.label for o in outcomes}
    runs = [r for r in previous["runs"] if run_label(name, r["changes"], r["seed"]) not in ran]
    failed = [f for f in previous["failed"] if run_label(name, f["changes"], f["seed"]) not in ran]
    for outcome in outcomes:
        spec = outcome.spec
        if outcome.status == "failed":
            failed.append({"seed": spec.seed, "changes": spec.changes, "error": outcome.detail,
                           "run_file": str(spec.run_file)})
        else:
            result = load_checkpoint(spec.result_path, required=("results",))
            runs.append({"seed": spec.seed, "changes": spec.changes, **result})
    runs.sort(key=lambda r: (str(sorted(r["changes"].items())), r["seed"]))
    gathered = {"format": GATHERED_FORMAT, "experiment": name, "kind": kind,
                "config": get_experiment(name).config_dict(), "iterations": iterations,
                "seeds": sorted({r["seed"] for r in runs} | {f["seed"] for f in failed}),
                "runs": runs, "failed": failed}
    return atomic_save(gathered, Path(out_dir) / f"{name}-{kind}.pt")


def load_seeds(name: str, directory: str | Path = CHECKPOINT_DIR, kind: str = "seeds") -> dict[str, Any]:
    """A gathered file written by ``train NAME --seeds ...`` (``kind="sweep"`` for ``--sweep``)."""
    path = Path(directory) / f"{name}-{kind}.pt"
    if not path.exists():
        flag = "--seeds 0-4" + (" --sweep FIELD=A,B" if kind == "sweep" else "")
        raise FileNotFoundError(f"{path} does not exist; create it with: python -m metarl_course train {name} {flag}")
    data = load_checkpoint(path, required=("experiment", "config", "runs", "failed"))
    if data.get("format", 1) > GATHERED_FORMAT:
        raise ValueError(f"{path} was written by a newer version of the course; update the course")
    exp = get_experiment(name)
    if data["experiment"] != name or not matches_course_config(data["config"], exp):
        raise ValueError(f"{path} holds runs of another experiment or configuration than the course's {name!r}; "
                         f"recreate it with: python -m metarl_course train {name} --seeds "
                         f"{','.join(str(s) for s in data['seeds'])}")
    return data


def seed_learner(data: dict[str, Any], seed: int) -> Any:
    """A learner of a gathered file's experiment with the trained weights of ``seed`` (its first setting)."""
    run = next((r for r in data["runs"] if r["seed"] == seed), None)
    if run is None:
        raise ValueError(f"the gathered file has no finished run of seed {seed}; "
                         f"it has seeds {sorted(r['seed'] for r in data['runs'])}")
    learner = get_experiment(data["experiment"]).with_changes(run["changes"]).build(seed)
    learner.model.load_state_dict(run["model"])
    return learner


def per_seed(data: dict[str, Any], key: str, changes: dict[str, Any] | None = None) -> dict[int, Any]:
    """``{seed: run[key]}`` for the runs of one setting (``changes``; default the first run's)."""
    setting = data["runs"][0]["changes"] if changes is None else changes
    return {run["seed"]: run[key] for run in data["runs"] if run["changes"] == setting}


def summary(data: dict[str, Any], confidence: float = 0.95) -> str:
    """Each setting's held-out numbers over seeds (mean +/- interval, Student t), each other setting's paired
    difference from the first one on the seeds both finished, and the failed runs."""
    settings = [dict(c) for c in dict.fromkeys(tuple(sorted(r["changes"].items())) for r in data["runs"])]
    lines = [f"{data['experiment']}: {len(data['runs'])} finished runs of {data['iterations']} iterations; "
             f"mean +/- {confidence:.0%} CI over training seeds (Student t)"]
    baseline = per_seed(data, "results", settings[0]) if settings else {}
    for index, changes in enumerate(settings):
        results = per_seed(data, "results", changes)
        seeds = sorted(results)
        lines.append(f"  {_setting_name(changes)} (seeds {', '.join(map(str, seeds))})")
        for metric in results[seeds[0]]:
            lines.append(f"    {metric:<22} {_interval(np.array([results[s][metric] for s in seeds]), confidence)}")
            common = [s for s in seeds if s in baseline]
            if index > 0 and len(common) >= 2:
                diff = paired_difference(np.array([results[s][metric] for s in common]),
                                         np.array([baseline[s][metric] for s in common]), confidence)
                lines.append(f"    {'':<22} minus {_setting_name(settings[0])}: {diff} (paired, {len(common)} seeds)")
    lines += [f"  FAILED seed {f['seed']}{changes_label(f['changes'])}: {f['error']}" for f in data["failed"]]
    return "\n".join(lines)


def _setting_name(changes: dict[str, Any]) -> str:
    """``{"inner_lr": 0.03}`` -> ``"inner_lr=0.03"``; no changes -> the experiment's own config."""
    return ", ".join(f"{k}={v}" for k, v in changes.items()) or "the experiment's config"


def _interval(values: np.ndarray, confidence: float) -> str:
    """The mean over seeds with its interval (the course's ``MeanCI``); one seed has no interval."""
    if len(values) < 2:
        return f"{values.mean():.3f} (one seed: no interval)"
    return str(summarize(values, confidence))


def main_summary(path: Path, outcomes: Sequence[Outcome], seconds: float) -> int:
    """Print the command's summary; exit status 1 if any run failed."""
    data = load_checkpoint(path, required=("runs", "failed"))
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "kept", "failed")}
    print(f"\n{counts['done']} trained, {counts['kept']} kept from earlier, {counts['failed']} failed "
          f"in {seconds:.0f} s -> {path}")
    if data["runs"]:
        print(summary(data))
    if counts["failed"]:
        print("Run the same command again to resume the failed runs from their run files (finished runs are kept); "
              "a run that diverged needs another setting first.", file=sys.stderr)
    return 1 if counts["failed"] else 0
