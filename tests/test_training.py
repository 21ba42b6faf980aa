import os
import signal

import numpy as np
import pytest
import torch

from metarl_course.__main__ import main
from metarl_course.experiments import EXPERIMENTS, load_result, run_experiment
from metarl_course.maml import MAMLConfig, MAMLLearner
from metarl_course.nets import sinusoid_regressor
from metarl_course.tasks import SinusoidTaskDistribution, heldout_batch
from metarl_course.training import atomic_save, train


def learner(seed=0):
    return MAMLLearner(sinusoid_regressor(seed, device="cpu"), MAMLConfig(), SinusoidTaskDistribution(),
                       heldout_batch(10, num_tasks=20, device="cpu"))


def comparable(history):
    return {k: v for k, v in history.records.items() if not k.startswith("charts/")}


def test_resumed_run_ends_with_the_same_numbers(tmp_path):
    full = learner()
    full_history = train(full, 60, seed=3, eval_every=20, progress=False)

    ckpt = tmp_path / "run.pt"
    first = learner()
    train(first, 40, seed=3, eval_every=20, checkpoint_path=ckpt, checkpoint_every=20, progress=False)
    resumed = learner()  # a new process would start from a fresh learner
    history = train(resumed, 60, seed=3, eval_every=20, checkpoint_path=ckpt, checkpoint_every=20, progress=False)

    assert comparable(history) == comparable(full_history)
    for k, v in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v)


class InterruptAt:
    """Wraps a learner and sends the process a Ctrl-C (SIGINT) during iteration ``at``."""

    def __init__(self, inner, at):
        self.inner, self.at, self.calls = inner, at, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def adapt(self, tasks):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return self.inner.adapt(tasks)


def test_interrupt_keeps_progress_and_resumes_identically(tmp_path):
    ckpt = tmp_path / "run.pt"
    interrupted = InterruptAt(learner(), at=7)
    history = train(interrupted, 30, seed=1, checkpoint_path=ckpt, progress=False)
    assert history.interrupted
    assert history["losses/query_mse"][0][-1] == 7  # the iteration in progress was finished, then it stopped
    assert ckpt.exists()
    resumed = learner()
    history = train(resumed, 30, seed=1, checkpoint_path=ckpt, progress=False)
    reference = learner()
    reference_history = train(reference, 30, seed=1, progress=False)
    assert comparable(history) == comparable(reference_history)
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), reference.model.parameters()))


def test_atomic_save_never_leaves_a_half_written_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_save({"a": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_train_rejects_bad_budgets():
    with pytest.raises(ValueError, match="num_iterations"):
        train(learner(), 0, progress=False)


def test_cli_trains_by_name_and_result_loads(tmp_path, capsys):
    assert main(["train", "oracle-sinusoid", "--iterations", "30", "--out", str(tmp_path), "--runs", str(tmp_path)]) == 0
    assert "oracle-sinusoid" in capsys.readouterr().out
    loaded, data = load_result("oracle-sinusoid", tmp_path)
    assert data["iterations"] == 30
    assert abs(loaded.evaluate_heldout()["eval/mse_step0"] - data["results"]["eval/mse_step0"]) < 1e-6
    with pytest.raises(SystemExit):
        main(["train", "no-such-experiment"])
    with pytest.raises(FileNotFoundError, match="python -m metarl_course train"):
        load_result("maml-sinusoid", tmp_path)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_trains_briefly(name, tmp_path):
    path = run_experiment(name, num_iterations=3, out_dir=tmp_path, runs_dir=tmp_path, progress=False)
    data = torch.load(path, weights_only=True)
    assert data["experiment"] == name
    assert any(k.startswith("eval/") for k in data["results"])  # a held-out evaluation was recorded


def test_shipped_checkpoints_load_and_score_what_they_claim():
    """The files the chapters load: they must reproduce their stored numbers."""
    for name in ("maml-sinusoid", "pretrained-sinusoid"):
        learner_, data = load_result(name)
        now = learner_.evaluate_heldout()
        for k, v in data["results"].items():
            assert abs(now[k] - v) < 1e-4, (name, k, now[k], v)
    _, maml = load_result("maml-sinusoid")
    _, pretrained = load_result("pretrained-sinusoid")
    # Finn et al.'s setting: MAML's 1-step MSE well below the pretrained network's
    assert maml["results"]["eval/mse_step1"] <= 0.50
    assert maml["results"]["eval/mse_step10"] <= 0.20
    assert pretrained["results"]["eval/mse_step1"] > 2 * maml["results"]["eval/mse_step1"]
