"""Many seeds and sweeps (metarl_course.seeds): bad input refused before training, the gathered file equal to the
single-seed runs (one after another and on a local Ray with 2 CPUs), sweeps through Ray Tune, and faults (a
diverging seed, a killed worker) reported and resumed without training a finished seed again.

The Ray tests need the optional Ray (``make cluster``); they are skipped without it, except in CI (``CI=true``,
where ``.ci/run`` installs it), where they fail.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from metarl_course import seeds as many
from metarl_course.__main__ import main
from metarl_course.evaluation import rescore_problems
from metarl_course.experiments import CHECKPOINT_DIR, run_experiment
from metarl_course.training import load_checkpoint

NAME = "maml-sinusoid"  # the cheapest experiment: about 1 ms per meta-update
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def same_run(gathered_run: dict, single: dict) -> None:
    """A gathered seed equals a single-seed run: weights, final numbers, per-task curves, history (not wall time)."""
    assert gathered_run["results"] == single["results"]
    assert gathered_run["model"].keys() == single["model"].keys()
    assert all(torch.equal(gathered_run["model"][k], single["model"][k]) for k in single["model"])
    assert torch.equal(gathered_run["task_curves"], single["task_curves"])
    history = {k: v for k, v in gathered_run["history"].items() if k != "charts/wall_seconds"}
    assert history == {k: v for k, v in single["history"].items() if k != "charts/wall_seconds"}


def single_runs(tmp_path: Path, seeds: list[int], iterations: int, changes: dict | None = None) -> dict[int, dict]:
    """Each seed trained alone, as ``train NAME --seed S`` does."""
    out = {}
    for seed in seeds:
        path = run_experiment(NAME, seed, iterations, tmp_path / f"single{seed}", tmp_path / "single-runs",
                              progress=False, changes=changes)
        out[seed] = load_checkpoint(path, required=("results",))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Bad input: a clear error naming the fix, before any training
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seeds", [("0-4", [0, 1, 2, 3, 4]), ("0,2,5", [0, 2, 5]), (" 3 ", [3]),
                                         ("0-1,7", [0, 1, 7])])
def test_seed_ranges(text, seeds):
    assert many.parse_seeds(text) == seeds


@pytest.mark.parametrize("text, says", [("", "ranges"), ("a", "ranges"), ("4-0", "empty"), ("-1", "ranges"),
                                        ("1-", "ranges"), ("1.5", "ranges"), ("0,0-2", "more than once")])
def test_bad_seed_ranges(text, says):
    with pytest.raises(ValueError, match=says):
        many.parse_seeds(text)


def test_sweep_values_are_parsed_by_the_field_type():
    assert many.parse_sweep(NAME, ["inner_lr=0.1, 0.3", "num_inner_steps=1,2"]) == {
        "inner_lr": [0.1, 0.3], "num_inner_steps": [1, 2]}
    assert many.settings_of({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]


@pytest.mark.parametrize("spec, says", [
    ("nonsense=1", "has no config field 'nonsense'; its fields: algorithm, inner_lr"),
    ("inner_lr=abc", "inner_lr must be a number"),
    ("num_inner_steps=1.5", "num_inner_steps must be a whole number"),
    ("inner_lr", "FIELD=VALUE"),
    ("inner_lr=0.1,0.1", "twice"),
    ("inner_lr=-1", "inner_lr must be > 0"),
])
def test_bad_sweeps(spec, says):
    with pytest.raises(ValueError, match=says):
        many.parse_sweep(NAME, [spec])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.mark.parametrize("args, says", [
    (["--seeds", "4-0"], "empty"),
    (["--seeds", "0-4", "--seed", "1"], "not allowed with argument"),
    (["--seeds", "0-1", "--jobs", "0"], "--jobs must be 1 or more"),
    (["--seeds", "0-1", "--sweep", "nonsense=1"], "has no config field"),
    (["--seeds", "0-1", "--sweep", "inner_lr=fast"], "inner_lr must be a number"),
    (["--seeds", "0-1", "--address", "nohost"], "HOST:PORT"),
    (["--seeds", "0-1", "--address", "127.0.0.1:PORT"], "cannot reach a Ray cluster at 127.0.0.1"),
    (["--seeds", "0-1", "--no-resume"], "delete its run file"),
    (["--jobs", "2"], "add --seeds"),
    (["--seeds", "0-100000"], "too many"),
    (["--seed", "-1", "--sweep", "inner_lr=0.01,0.02"], "seeds must be whole numbers"),
    (["--seeds", "0-1", "--sweep", "num_inner_steps=0,1"], "num_inner_steps must be"),
])
def test_command_line_refuses_bad_input_before_training(tmp_path, capsys, monkeypatch, args, says):
    monkeypatch.setattr(many, "ray_available", lambda: True)  # the checks hold with or without Ray
    args = [a.replace("PORT", str(closed_port())) for a in args]
    start = time.perf_counter()
    status = run_main(["train", NAME, *args, "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")])
    assert status == 2 and says in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.pt")), "nothing was trained"
    assert time.perf_counter() - start < 30  # hang guard: the address check gives up after 5 s


def run_main(argv: list[str]) -> int:
    """The command's exit status: argparse's errors exit, later ones are returned."""
    try:
        return main(argv)
    except SystemExit as error:
        return int(error.code)


def test_side_by_side_without_ray_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(many, "ray_available", lambda: False)
    status = run_main(["train", NAME, "--seeds", "0-1", "--jobs", "2", "--out", str(tmp_path), "--runs", str(tmp_path)])
    assert status == 2 and "pip install -e '.[cluster]'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# Without Ray: one after another, the same files
# ---------------------------------------------------------------------------------------------------------------

def test_seeds_one_after_another_gather_the_single_runs_and_are_never_trained_twice(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(many, "ray_available", lambda: False)
    path, outcomes = many.train_seeds(NAME, [0, 1], num_iterations=60, out_dir=tmp_path / "out",
                                      runs_dir=tmp_path / "runs")
    assert "one after another" in capsys.readouterr().out
    assert [o.status for o in outcomes] == ["done", "done"] and path == tmp_path / "out" / f"{NAME}-seeds.pt"
    gathered = load_checkpoint(path, required=("runs",))
    singles = single_runs(tmp_path, [0, 1], 60)
    assert [r["seed"] for r in gathered["runs"]] == [0, 1] and gathered["failed"] == []
    for run in gathered["runs"]:
        same_run(run, singles[run["seed"]])
    assert gathered["runs"][0]["results"] != gathered["runs"][1]["results"], "two seeds, two different runs"

    stamps = {o.spec.seed: o.spec.result_path.stat().st_mtime_ns for o in outcomes}
    _, again = many.train_seeds(NAME, [0, 1, 2], num_iterations=60, out_dir=tmp_path / "out",
                                runs_dir=tmp_path / "runs")
    assert [o.status for o in again] == ["kept", "kept", "done"]
    assert {o.spec.seed: o.spec.result_path.stat().st_mtime_ns for o in again[:2]} == stamps
    assert "finished earlier, kept" in capsys.readouterr().out
    text = many.summary(many.load_seeds(NAME, tmp_path / "out"))
    assert "3 finished runs" in text and "eval/mse_step1" in text and "+/-" in text


def test_a_diverging_run_is_reported_and_the_others_are_gathered(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(many, "ray_available", lambda: False)
    sweep = many.parse_sweep(NAME, ["inner_lr=0.01,1e30"])  # a step of 1e30 overflows float32
    path, outcomes = many.train_seeds(NAME, [0], sweep=sweep, num_iterations=20, out_dir=tmp_path,
                                      runs_dir=tmp_path / "runs")
    assert [o.status for o in outcomes] == ["done", "failed"]
    assert "FloatingPointError" in outcomes[1].detail and "diverged" in outcomes[1].detail
    status = many.main_summary(path, outcomes, 1.0)
    out, err = capsys.readouterr()
    assert status == 1 and "1 failed" in out and "FAILED seed 0-inner_lr=1e+30" in out and "again" in err
    data = many.load_seeds(NAME, tmp_path, kind="sweep")
    assert [r["changes"] for r in data["runs"]] == [{"inner_lr": 0.01}] and len(data["failed"]) == 1


def test_runs_of_another_budget_are_refused_before_training_and_more_seeds_join_the_gathered_file(tmp_path):
    """A finished seed of 60 iterations is neither passed off as a 30-iteration run nor overwritten by one; a later
    command with other seeds adds them to the gathered file instead of replacing it."""
    kwargs = dict(out_dir=tmp_path / "out", runs_dir=tmp_path / "runs")
    many.train_seeds(NAME, [0], num_iterations=60, **kwargs)
    stamp = (tmp_path / "out" / f"{NAME}-seeds.pt").stat().st_mtime_ns
    with pytest.raises(ValueError, match="holds another run .60 iterations, not 30.*another --runs"):
        many.train_seeds(NAME, [0], num_iterations=30, **kwargs)
    with pytest.raises(ValueError, match="holds runs of 60 iterations.*give --out another folder"):
        many.train_seeds(NAME, [0], num_iterations=30, out_dir=tmp_path / "out", runs_dir=tmp_path / "other")
    assert (tmp_path / "out" / f"{NAME}-seeds.pt").stat().st_mtime_ns == stamp
    assert not (tmp_path / "other" / f"{NAME}-seed0.pt").exists(), "nothing was trained"
    many.train_seeds(NAME, [1], num_iterations=60, **kwargs)
    data = many.load_seeds(NAME, tmp_path / "out")
    assert [r["seed"] for r in data["runs"]] == [0, 1] and data["seeds"] == [0, 1]


def test_a_run_file_past_the_budget_is_refused(tmp_path):
    run_experiment(NAME, 0, 40, tmp_path / "out", tmp_path / "runs", progress=False)
    with pytest.raises(ValueError, match="already at iteration 40, past the 20 asked for"):
        run_experiment(NAME, 0, 20, tmp_path / "out", tmp_path / "runs", progress=False)


def test_load_seeds_refuses_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train maml-sinusoid --seeds 0-4"):
        many.load_seeds(NAME, tmp_path)
    shipped = load_checkpoint(CHECKPOINT_DIR / "fomaml-sinusoid-seeds.pt", required=("runs",))
    torch.save(shipped, tmp_path / f"{NAME}-seeds.pt")
    with pytest.raises(ValueError, match="another experiment or configuration"):
        many.load_seeds(NAME, tmp_path)


@pytest.mark.parametrize("name", ["maml-sinusoid", "fomaml-sinusoid"])
def test_shipped_seeds_score_what_they_claim(name):
    """Chapter 06's five training seeds: every seed's weights re-score to its stored numbers (the tolerances of
    the single-seed result files), and the file is the experiment's full budget."""
    data = many.load_seeds(name)
    assert sorted(r["seed"] for r in data["runs"]) == [0, 1, 2, 3, 4] and data["failed"] == []
    assert data["iterations"] == many.get_experiment(name).num_iterations
    for run in data["runs"]:
        assert not rescore_problems(name, run, many.seed_learner(data, run["seed"]).evaluate_heldout())
    single = load_checkpoint(CHECKPOINT_DIR / f"{name}.pt", required=("results",))
    assert data["runs"][0]["results"] == single["results"], "seed 0 is the shipped single-seed run"


# ---------------------------------------------------------------------------------------------------------------
# On Ray: a local Ray with 2 CPUs, started once for these tests
# ---------------------------------------------------------------------------------------------------------------

def needs_ray() -> None:
    if not many.ray_available():
        if IN_CI:
            pytest.fail("Ray is not installed: .ci/run installs it with `make cluster`")
        pytest.skip("Ray is not installed (make cluster)")


def test_two_seeds_on_local_ray_equal_the_single_seed_runs(tmp_path):
    """What a learner types: the command starts a local Ray with 2 CPUs, trains two seeds side by side and gathers
    exactly the weights, numbers, curves and histories of the two single-seed runs."""
    needs_ray()
    out = subprocess.run([sys.executable, "-m", "metarl_course", "train", NAME, "--seeds", "0-1", "--jobs", "2",
                          "--iterations", "60", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Started a local Ray instance" in out.stderr and "2 trained, 0 kept from earlier, 0 failed" in out.stdout
    gathered = load_checkpoint(tmp_path / "out" / f"{NAME}-seeds.pt", required=("runs",))
    singles = single_runs(tmp_path, [0, 1], 60)
    assert [r["seed"] for r in gathered["runs"]] == [0, 1]
    for run in gathered["runs"]:
        same_run(run, singles[run["seed"]])


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the tests below (the commands use a Ray their process started as it is)."""
    needs_ray()
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False,
             runtime_env={"env_vars": {k: os.environ[k] for k in many.ENV_PASSED_ON if k in os.environ}})
    yield ray
    ray.shutdown()


def test_a_sweep_through_ray_tune_equals_the_same_sweep_one_after_another(local_ray, tmp_path, monkeypatch):
    sweep = {"inner_lr": [0.01, 0.03]}
    path, outcomes = many.train_seeds(NAME, [0, 1], jobs=2, sweep=sweep, num_iterations=40, out_dir=tmp_path / "tune",
                                      runs_dir=tmp_path / "tune-runs")
    assert [o.status for o in outcomes] == ["done"] * 4
    monkeypatch.setattr(many, "ray_available", lambda: False)
    reference, _ = many.train_seeds(NAME, [0, 1], sweep=sweep, num_iterations=40, out_dir=tmp_path / "seq",
                                    runs_dir=tmp_path / "seq-runs")
    tuned, sequential = (load_checkpoint(p, required=("runs",))["runs"] for p in (path, reference))
    assert [(r["changes"], r["seed"]) for r in tuned] == [(r["changes"], r["seed"]) for r in sequential]
    for a, b in zip(tuned, sequential):
        same_run(a, b)
    text = many.summary(many.load_seeds(NAME, tmp_path / "tune", kind="sweep"))
    assert "inner_lr=0.03" in text and "minus inner_lr=0.01" in text and "(paired, 2 seeds)" in text


def test_a_killed_worker_is_reported_then_resumed_and_the_finished_seed_kept(local_ray, tmp_path):
    """One of two seeds loses its worker (SIGKILL) after its first run file; the command reports it; running it
    again keeps the finished seed (its file untouched) and resumes the other to the numbers of a straight run."""
    iterations, runs = 6000, tmp_path / "runs"
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(zip(("path", "outcomes"), many.train_seeds(
        NAME, [0, 1], jobs=2, num_iterations=iterations, out_dir=tmp_path / "out", runs_dir=runs))))
    thread.start()
    deadline = time.monotonic() + 240
    while not all((runs / f"{NAME}-seed{s}.pt").exists() for s in (0, 1)):  # both wrote a checkpoint
        assert time.monotonic() < deadline and thread.is_alive(), "the seeds never wrote their run files"
        time.sleep(0.05)
    assert not list((runs / "results").rglob("*.pt")), "both seeds are still training (far from their end)"
    workers = subprocess.run(["pgrep", "-f", "ray::_train_seed_reporting"], capture_output=True, text=True)
    pids = [int(p) for p in workers.stdout.split()]
    assert pids, "no worker is training"
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=240)
    assert not thread.is_alive()
    statuses = sorted(o.status for o in result["outcomes"])
    assert statuses == ["done", "failed"], result["outcomes"]
    failed = next(o for o in result["outcomes"] if o.status == "failed")
    finished = next(o for o in result["outcomes"] if o.status == "done")
    assert "worker died" in failed.detail and "resume it from" in many.outcome_line(failed)
    assert load_checkpoint(failed.spec.run_file)["iteration"] >= 1000, "its run file keeps the progress"
    gathered = load_checkpoint(result["path"], required=("runs",))
    assert [r["seed"] for r in gathered["runs"]] == [finished.spec.seed]
    assert [f["seed"] for f in gathered["failed"]] == [failed.spec.seed]

    stamp = finished.spec.result_path.stat().st_mtime_ns
    path, again = many.train_seeds(NAME, [0, 1], jobs=2, num_iterations=iterations, out_dir=tmp_path / "out",
                                   runs_dir=runs)
    assert {o.spec.seed: o.status for o in again} == {finished.spec.seed: "kept", failed.spec.seed: "done"}
    assert finished.spec.result_path.stat().st_mtime_ns == stamp, "the finished seed was not trained again"
    gathered = load_checkpoint(path, required=("runs",))
    straight = single_runs(tmp_path, [failed.spec.seed], iterations)[failed.spec.seed]
    same_run(next(r for r in gathered["runs"] if r["seed"] == failed.spec.seed), straight)
