"""The course's experiments, trainable from scratch by name: one table, one row per experiment.

    python -m metarl_course list
    python -m metarl_course train maml-sinusoid --seed 0
    python -m metarl_course evaluate maml-trpo-navigation --eval-budget 2

``train`` runs the experiment through :func:`metarl_course.training.train`
(resuming from ``runs/<name>-seed<seed>.pt`` if a previous run was stopped)
and writes the result to ``metarl_course/checkpoints/<name>.pt``: the model's
weights, the config, the final held-out numbers and a compact history. The
chapters load these files with :func:`load_result`; each shipped file is
reproduced by its command.

Each row of :data:`EXPERIMENTS` names its config once; the config's type says
which learner trains it (:data:`LEARNERS`), and ``evaluate_options`` lists the
config fields ``evaluate`` may change for a re-score (e.g. MAML-RL's
evaluation budget).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from metarl_course.baselines import PooledConfig, PooledLearner
from metarl_course.budget import budget
from metarl_course.maml import MAMLConfig, MAMLLearner
from metarl_course.nets import sinusoid_regressor
from metarl_course.rl.maml_rl import MAMLRLConfig, MAMLRLLearner
from metarl_course.rl.pretrained import PretrainedPolicyLearner
from metarl_course.rl.rl2 import RL2Config, RL2Learner
from metarl_course.rl.varibad import VariBADConfig, VariBADLearner
from metarl_course.tasks.navigation import GOAL_TOLERANCE
from metarl_course.tasks.sinusoid import SinusoidTaskDistribution, heldout_batch
from metarl_course.training import History, MetaLearner, atomic_save, load_checkpoint, train

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
RUNS_DIR = Path("runs")
RESULT_FORMAT = 1
"""Version of the result files' layout (files without a ``format`` key are version 1)."""
RESULT_KEYS = ("experiment", "seed", "iterations", "config", "model", "results", "history")
Config = MAMLConfig | PooledConfig | MAMLRLConfig | RL2Config | VariBADConfig


def _maml_learner(config: MAMLConfig, seed: int) -> MetaLearner:
    return MAMLLearner(sinusoid_regressor(seed), config, SinusoidTaskDistribution(), heldout_batch(config.num_support))


def _maml_rl_learner(config: MAMLRLConfig, seed: int) -> MetaLearner:
    learner = PretrainedPolicyLearner if config.outer == "pretrained" else MAMLRLLearner
    return learner(config, seed=seed)


LEARNERS: dict[type, Callable[[Any, int], MetaLearner]] = {
    MAMLConfig: _maml_learner,
    PooledConfig: PooledLearner.from_config,
    MAMLRLConfig: _maml_rl_learner,
    RL2Config: RL2Learner,
    VariBADConfig: VariBADLearner,
}
"""Config type -> ``(config, seed) -> a fresh learner``: which algorithm trains an experiment."""


@dataclass(frozen=True)
class Experiment:
    """A named, reproducible training run."""

    name: str
    description: str
    config: Config
    """Every hyperparameter of the run; its type picks the learner (:data:`LEARNERS`)."""
    num_iterations: int
    """Meta-updates in full mode."""
    quick_iterations: int
    """Meta-updates in quick mode (``METARL_QUICK=1``: the tests and CI)."""
    eval_every: int
    """Iterations between held-out evaluations logged in the history."""
    evaluate_options: tuple[str, ...] = ()
    """Config fields that ``python -m metarl_course evaluate`` may change for a re-score."""

    def build(self, seed: int) -> MetaLearner:
        """A fresh learner for this experiment, initialised from ``seed``."""
        return LEARNERS[type(self.config)](self.config, seed)

    def config_dict(self) -> dict[str, Any]:
        """The config as stored in result files."""
        return dataclasses.asdict(self.config)

    def with_changes(self, changes: dict[str, Any] | None) -> Experiment:
        """This experiment with the config fields in ``changes`` set (a sweep's setting); the config's own checks
        raise a ValueError for a bad value."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, **changes)) if changes else self


SINUSOID = dict(num_iterations=20_000, quick_iterations=300, eval_every=1000)
NAVIGATION = dict(quick_iterations=3, eval_every=25, evaluate_options=("eval_budget", "eval_seed"))
RL2_EVALUATE = ("eval_seed", "num_eval_trials")

_TABLE = [
    # sinusoid regression (chapters 01-03)
    Experiment("maml-sinusoid", "second-order MAML, K=10 (Finn et al. 2017)", MAMLConfig(), **SINUSOID),
    Experiment("maml-sinusoid-k5", "second-order MAML, K=5", MAMLConfig(num_support=5, num_query=5), **SINUSOID),
    Experiment("maml-sinusoid-k20", "second-order MAML, K=20", MAMLConfig(num_support=20, num_query=20), **SINUSOID),
    Experiment("fomaml-sinusoid", "first-order MAML, K=10", MAMLConfig(algorithm="fomaml"), **SINUSOID),
    Experiment("reptile-sinusoid", "Reptile, K=10, 5 inner steps (Nichol et al. 2018)",
               MAMLConfig(algorithm="reptile", num_inner_steps=5), **SINUSOID),
    Experiment("pretrained-sinusoid", "one network trained on pooled tasks", PooledConfig(), **SINUSOID),
    Experiment("oracle-sinusoid", "a network given amplitude and phase as inputs", PooledConfig(oracle=True),
               **SINUSOID),
    # MAML-RL on 2D navigation (chapter 04)
    Experiment("maml-trpo-navigation", "MAML with a TRPO outer step on 2D navigation (Finn et al. 2017)",
               MAMLRLConfig(), num_iterations=220, **NAVIGATION),
    Experiment("maml-trpo-2step-navigation", "MAML-TRPO meta-trained through two inner steps (0.5, then 0.25), "
               "with the outer loss after each step", MAMLRLConfig(inner_steps=2, loss_after_every_step=True),
               num_iterations=75, **NAVIGATION),
    Experiment("promp-navigation", "ProMP on 2D navigation (Rothfuss et al. 2019)",
               MAMLRLConfig(outer="promp", meta_batch_size=20), num_iterations=120, **NAVIGATION),
    Experiment("pretrained-navigation", "one policy trained with TRPO on all goals (no inner step)",
               MAMLRLConfig(outer="pretrained", inner_lr=0.05), num_iterations=100, **NAVIGATION),
    # the papers' convention for episodes that end at the goal, side by side with the two above
    Experiment("maml-trpo-2step-real-steps-navigation", "maml-trpo-2step-navigation with losses and baseline over "
               "the steps the episodes really took (Finn et al.'s sampler)",
               MAMLRLConfig(inner_steps=2, loss_after_every_step=True, real_steps_only=True),
               num_iterations=75, **NAVIGATION),
    Experiment("promp-real-steps-navigation", "promp-navigation with losses and baseline over the steps the "
               "episodes really took (Rothfuss et al.'s sampler)",
               MAMLRLConfig(outer="promp", meta_batch_size=20, real_steps_only=True), num_iterations=120,
               **NAVIGATION),
    # RL² (chapter 05): bandits, tabular MDPs, navigation
    Experiment("rl2-bandit-n10-k5", "RL², Bernoulli bandits, n=10 pulls, k=5 arms (Duan et al. 2016, Table 1)",
               RL2Config.bandit(num_pulls=10, num_arms=5), num_iterations=6000, quick_iterations=150,
               eval_every=500, evaluate_options=RL2_EVALUATE),
    Experiment("rl2-bandit-n100-k5", "RL², Bernoulli bandits, n=100 pulls, k=5 arms (Duan et al. 2016, Table 1)",
               RL2Config.bandit(num_pulls=100, num_arms=5, num_minibatches=8, anneal_iterations=450),
               num_iterations=450, quick_iterations=15, eval_every=50, evaluate_options=RL2_EVALUATE),
    Experiment("rl2-mdp-n10", "RL², random tabular MDPs, 10 episodes of 10 steps per trial (Duan et al. 2016)",
               RL2Config(task="tabular_mdp", horizon=10, episodes_per_trial=10, num_minibatches=8, gae_lambda=0.3,
                         entropy_coef=0.03, anneal_iterations=1200),
               num_iterations=1200, quick_iterations=15, eval_every=50, evaluate_options=RL2_EVALUATE),
    Experiment("rl2-nav-2ep", "RL², 2D navigation to an unseen goal, 2 episodes of 100 steps per trial",
               RL2Config(task="navigation", horizon=100, episodes_per_trial=2, num_trials=128,
                         goal_tolerance=GOAL_TOLERANCE),
               num_iterations=350, quick_iterations=15, eval_every=50, evaluate_options=RL2_EVALUATE),
    # task inference (chapter 08): VariBAD's gridworld, 4 episodes of 15 steps per trial (Zintgraf et al. 2020)
    Experiment("rl2-gridworld", "RL² on VariBAD's 5x5 gridworld, 4 episodes of 15 steps per trial",
               RL2Config(task="gridworld", horizon=15, episodes_per_trial=4, num_trials=128, anneal_iterations=1000),
               num_iterations=1000, quick_iterations=15, eval_every=100, evaluate_options=RL2_EVALUATE),
    Experiment("varibad-gridworld", "VariBAD on the 5x5 gridworld (Zintgraf et al. 2020)", VariBADConfig(),
               num_iterations=1500, quick_iterations=15, eval_every=100, evaluate_options=RL2_EVALUATE),
]
EXPERIMENTS: dict[str, Experiment] = {exp.name: exp for exp in _TABLE}
"""Every experiment of the course by name, in the order of the chapters."""


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(sorted(EXPERIMENTS))}")
    return EXPERIMENTS[name]


FIELD_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "int": (int, "a whole number"), "float": (float, "a number"), "str": (str, "text"),
    "bool": (lambda text: {"true": True, "false": False}[text.strip().lower()], "true or false")}
"""A config field's annotation (a string: the configs use ``from __future__ import annotations``) -> how to
parse it from the command line (a ValueError or KeyError for bad text), and what to call it in an error."""


def with_evaluate_options(exp: Experiment, config: Config, overrides: dict[str, str]) -> Config:
    """``config`` with the evaluation fields in ``overrides`` (``{field: text}``) changed; a clear error for a
    field the experiment does not allow (see ``Experiment.evaluate_options``) or a value of the wrong kind."""
    changes: dict[str, Any] = {}
    for field, text in overrides.items():
        if field not in exp.evaluate_options:
            allowed = ", ".join(exp.evaluate_options) or "none"
            takers = sorted(e.name for e in EXPERIMENTS.values() if field in e.evaluate_options)
            raise ValueError(f"{exp.name} cannot change {field!r} for evaluation (it allows: {allowed})"
                             + (f"; {field} applies to {', '.join(takers)}" if takers else ""))
        annotation = {f.name: f.type for f in dataclasses.fields(config)}[field]  # the type, not the value's
        if annotation not in FIELD_PARSERS:
            raise ValueError(f"{field} cannot be set from the command line")
        parse, kind = FIELD_PARSERS[annotation]
        try:
            changes[field] = parse(text)
        except (ValueError, KeyError):
            raise ValueError(f"{field} must be {kind}, got {text!r}") from None
    return dataclasses.replace(config, **changes)


def _compact(history: History, every: int = 100) -> dict[str, list[tuple[int, float]]]:
    """Eval metrics in full, per-iteration metrics thinned to one point in ``every``."""
    return {k: (v if k.startswith(("eval/", "charts/")) else v[every - 1::every]) for k, v in history.records.items()}


def run_experiment(name: str, seed: int = 0, num_iterations: int | None = None,
                   out_dir: str | Path = CHECKPOINT_DIR, runs_dir: str | Path = RUNS_DIR,
                   resume: bool = True, progress: bool = True, changes: dict[str, Any] | None = None,
                   on_iteration: Callable[[int], None] | None = None) -> Path:
    """Train experiment ``name`` from scratch (or resume it) and write ``<out_dir>/<name>.pt``.

    ``changes`` (``{field: value}``) trains the experiment with those config fields changed (a sweep; see
    :mod:`metarl_course.seeds`): its run file is named after them. ``on_iteration`` is called with the
    iteration number after every meta-update (progress reports from other processes).
    """
    exp = get_experiment(name).with_changes(changes)
    iterations = num_iterations or budget(full=exp.num_iterations, quick=exp.quick_iterations)
    for folder in (out_dir, runs_dir):  # fail now, not after minutes of training
        check_writable(folder)
    learner = exp.build(seed)
    run_file = Path(runs_dir) / f"{name}{changes_label(changes)}-seed{seed}.pt"
    start = time.perf_counter()
    history = train(learner, iterations, seed=seed, eval_every=exp.eval_every, checkpoint_path=run_file,
                    resume=resume, progress=progress, desc=name, on_iteration=on_iteration,
                    run_info={"experiment": name, "seed": seed, "config": exp.config_dict()})
    if history.interrupted:
        raise KeyboardInterrupt(f"{name} was interrupted; run the same command again to resume from {run_file}")
    results = {k: v[-1][1] for k, v in history.records.items() if k.startswith("eval/")}
    finish = getattr(learner, "finish_training", None)  # e.g. VariBAD keeps the weights best on validation
    if finish is not None:
        selected = finish()
        if selected:
            results = learner.evaluate_heldout()
            history.log(iterations, selected)
    result = {
        "format": RESULT_FORMAT,
        "experiment": name, "seed": seed, "iterations": iterations, "config": exp.config_dict(),
        "model": learner.state_dict()["model"],
        "results": results,
        "wall_seconds_last_session": time.perf_counter() - start,
        "torch": str(torch.__version__),
        "history": _compact(history),
    }
    trials = heldout_trial_returns(learner)
    if trials is not None:
        result["trial_returns"] = trials
    curve = getattr(learner, "adaptation_curve", None)  # sinusoid: (num_tasks, eval_steps + 1) float64 query MSE
    if curve is not None:
        result["task_curves"] = curve().detach().cpu().double()
    return atomic_save(result, Path(out_dir) / f"{name}.pt")


def changes_label(changes: dict[str, Any] | None) -> str:
    """A file-name part for changed config fields: ``{"inner_lr": 0.3}`` -> ``"-inner_lr=0.3"``; ``""`` for none."""
    return "".join(f"-{field}={value}" for field, value in sorted((changes or {}).items()))


def heldout_trial_returns(learner: MetaLearner) -> torch.Tensor | None:
    """The return of every held-out trial of an RL² learner, (num_eval_trials,) float64; None for other learners.

    Stored in RL²'s result files beside the mean, so a re-score can be compared trial by trial (see
    :func:`metarl_course.evaluation.rescore_problems`).
    """
    evaluate_trials = getattr(learner, "evaluate_trials", None)
    if evaluate_trials is None:
        return None
    return torch.as_tensor(evaluate_trials()[0].trial_returns, dtype=torch.float64)


def load_result(name: str, directory: str | Path = CHECKPOINT_DIR) -> tuple[MetaLearner, dict[str, Any]]:
    """A learner of experiment ``name`` with the trained weights from ``<directory>/<name>.pt``, and the file's data."""
    exp = get_experiment(name)
    path = Path(directory) / f"{name}.pt"
    remedy = f"recreate it with: python -m metarl_course train {name}"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; create it with: python -m metarl_course train {name}")
    try:
        data = load_checkpoint(path, required=RESULT_KEYS)
    except ValueError as error:
        raise ValueError(f"{error} ({remedy})") from error
    if data.get("format", 1) > RESULT_FORMAT:
        raise ValueError(f"{path} was written by a newer version of the course (format {data['format']}); "
                         f"update the course, or {remedy}")
    if data["experiment"] != name:
        raise ValueError(f"{path} holds experiment {data['experiment']!r}, not {name!r}; {remedy}")
    learner = exp.build(data["seed"])
    if not matches_course_config(data["config"], exp):
        raise ValueError(f"{path} was trained with another configuration of {name!r} than the course's "
                         f"current one; {remedy}")
    model: nn.Module = learner.model  # type: ignore[attr-defined]
    model.load_state_dict(data["model"])
    return learner, data


def matches_course_config(stored: dict, exp: Experiment) -> bool:
    """Whether a file's stored config is ``exp``'s current one (fields added since at their defaults)."""
    return _with_new_defaults(stored, exp.config_dict(), exp.config) == exp.config_dict()


def _with_new_defaults(stored: dict, current: dict, config: Any) -> dict:
    """``stored`` plus the fields that ``config``'s class gained after the file was written, at their defaults.

    A result file trained before a configuration field existed was trained with what the field's default
    means (e.g. one inner step), so it still matches a configuration that keeps that default.
    """
    if not dataclasses.is_dataclass(config):
        return stored
    defaults = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    added = {key: defaults[key] for key in current.keys() - stored.keys() if key in defaults}
    return {**stored, **added}


def check_writable(folder: str | Path) -> None:
    """Create ``folder`` if needed and make sure files can be written there; a clear error if not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise PermissionError(f"cannot write to {folder} ({error.strerror or error}); "
                              "choose another folder (--out / --runs) or fix its permissions") from error
