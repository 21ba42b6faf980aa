"""Command line: ``python -m metarl_course {list,train,evaluate} ...`` (many seeds: :mod:`metarl_course.seeds`)."""

from __future__ import annotations

import argparse
import sys

from metarl_course.experiments import CHECKPOINT_DIR, EXPERIMENTS, RUNS_DIR, run_experiment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metarl_course", description="Train the course's experiments.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    t = sub.add_parser("train", help="train an experiment from scratch (resumes an interrupted run)")
    t.add_argument("name", choices=sorted(EXPERIMENTS), metavar="NAME", help="experiment name (see `list`)")
    which = t.add_mutually_exclusive_group()
    which.add_argument("--seed", type=int, default=0, help="one training seed (default 0)")
    which.add_argument("--seeds", metavar="RANGE",
                       help="many seeds, e.g. 0-4 or 0,2,5: side by side on Ray if installed, else one after "
                            "another; gathered in <out>/NAME-seeds.pt")
    t.add_argument("--jobs", type=int, default=None,
                   help="with --seeds/--sweep: runs at the same time (default: every CPU; needs Ray for more than 1)")
    t.add_argument("--address", default=None,
                   help="with --seeds/--sweep: an existing Ray cluster's HOST:PORT (or 'auto') instead of this machine")
    t.add_argument("--sweep", action="append", default=[], metavar="FIELD=A,B,...",
                   help="train every value of a config field (repeat for a grid), each with every seed; "
                        "gathered in <out>/NAME-sweep.pt")
    t.add_argument("--iterations", type=int, default=None, help="override the number of meta-updates")
    t.add_argument("--out", default=str(CHECKPOINT_DIR),
                   help="folder for the result file, NAME.pt, or with --seeds/--sweep the gathered NAME-seeds.pt / "
                        "NAME-sweep.pt (default: the package's, where the shipped files are)")
    t.add_argument("--runs", default=str(RUNS_DIR),
                   help="folder for resumable checkpoints and, with --seeds, each finished seed's result in "
                        "results/ (default: runs/; on a cluster, a folder every node sees)")
    t.add_argument("--no-resume", action="store_true",
                   help="start from scratch even if a run checkpoint exists (one seed only; with --seeds, delete the "
                        "seed's run file in --runs)")
    e = sub.add_parser("evaluate", help="score a result file on its held-out tasks again")
    e.add_argument("name", choices=sorted(EXPERIMENTS), metavar="NAME", help="experiment name (see `list`)")
    e.add_argument("--dir", default=str(CHECKPOINT_DIR), help="folder of the result file (default: the package's)")
    e.add_argument("--eval-budget", type=float, default=None,
                   help="change the config's eval_budget (MAML-RL: adapt on whole episodes for this many times the "
                        "training batch's env steps per step; 2 is Finn et al.'s test protocol, 4000 steps)")
    e.add_argument("--eval-seed", type=int, default=None,
                   help="change the config's eval_seed (the evaluation's random numbers; RL²: also its tasks)")
    e.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change another config field the experiment allows for evaluation (see `list`)")
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        try:
            overrides = evaluate_overrides(args.eval_budget, args.eval_seed, args.set)
        except ValueError as error:
            parser.error(str(error))
        return evaluate(args.name, args.dir, overrides)
    if args.command == "list":
        for name, exp in EXPERIMENTS.items():
            options = f"; evaluate may set {', '.join(exp.evaluate_options)}" if exp.evaluate_options else ""
            print(f"{name:38s} {exp.description} ({exp.num_iterations} iterations{options})")
        return 0
    if args.iterations is not None and args.iterations < 1:
        parser.error("--iterations must be a positive integer")
    if args.seeds is not None or args.sweep:
        return train_many(parser, args)
    if args.jobs is not None or args.address is not None:
        parser.error("--jobs and --address apply to many runs: add --seeds (e.g. --seeds 0-4) or --sweep")
    try:
        path = run_experiment(args.name, args.seed, args.iterations, args.out, args.runs, resume=not args.no_resume)
    except (ValueError, OSError) as error:  # bad folders, a run file of another run: say what to change
        print(f"error: {error}", file=sys.stderr)
        return 2
    import torch

    data = torch.load(path, map_location="cpu", weights_only=True)
    results = ", ".join(f"{k.removeprefix('eval/')}={v:.3f}" for k, v in data["results"].items())
    print(f"{args.name}: {results} ({data['wall_seconds_last_session']:.0f} s) -> {path}")
    return 0


def train_many(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``train NAME --seeds ... [--sweep ...]``: every input checked first, then the runs, then the summary."""
    import time

    from metarl_course import seeds as many

    if args.no_resume:
        parser.error("--no-resume applies to one seed; to start a seed afresh, delete its run file in --runs")
    try:
        seeds = many.parse_seeds(args.seeds) if args.seeds is not None else [args.seed]
        grid = many.parse_sweep(args.name, args.sweep)
    except ValueError as error:
        parser.error(str(error))
    start = time.perf_counter()
    try:
        path, outcomes = many.train_seeds(args.name, seeds, jobs=args.jobs, address=args.address, sweep=grid,
                                          num_iterations=args.iterations, out_dir=args.out, runs_dir=args.runs)
    except (ValueError, OSError) as error:  # --jobs 0, no Ray, an unreachable cluster, unwritable folders
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished runs are kept in {args.runs}/results/ and the others resume from their run "
              "files when you run the same command again", file=sys.stderr)
        return 130
    return many.main_summary(path, outcomes, time.perf_counter() - start)


def evaluate_overrides(eval_budget: float | None, eval_seed: int | None, settings: list[str]) -> dict[str, str]:
    """The config changes asked for on the command line, as ``{field: text}``."""
    overrides = {} if eval_budget is None else {"eval_budget": str(eval_budget)}
    if eval_seed is not None:
        overrides["eval_seed"] = str(eval_seed)
    for setting in settings:
        field, sep, value = setting.partition("=")
        if not sep or not field or not value:
            raise ValueError(f"--set takes FIELD=VALUE, e.g. --set eval_seed=3; got {setting!r}")
        overrides[field.strip()] = value.strip()
    return overrides


def evaluate(name: str, directory: str, overrides: dict[str, str] | None = None) -> int:
    """Print a result file's stored held-out scores beside the scores measured now (with ``overrides`` applied)."""
    from metarl_course.experiments import load_result, with_evaluate_options

    try:
        learner, data = load_result(name, directory)
        if overrides:
            learner.config = with_evaluate_options(EXPERIMENTS[name], learner.config, overrides)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    now = learner.evaluate_heldout()
    if overrides:
        print(f"{name} with {', '.join(f'{k}={v}' for k, v in overrides.items())}:")
    for key, value in now.items():
        stored = data["results"].get(key)
        print(f"{key.removeprefix('eval/'):16s} now {value:9.3f}   stored {stored:9.3f}" if stored is not None
              else f"{key.removeprefix('eval/'):16s} now {value:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
