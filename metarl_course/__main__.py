"""Command line: ``python -m metarl_course {list,train} ...``."""

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
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--iterations", type=int, default=None, help="override the number of meta-updates")
    t.add_argument("--out", default=str(CHECKPOINT_DIR), help="folder for the result file (default: the package's)")
    t.add_argument("--runs", default=str(RUNS_DIR), help="folder for resumable checkpoints (default: runs/)")
    t.add_argument("--no-resume", action="store_true", help="start from scratch even if a run checkpoint exists")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, exp in sorted(EXPERIMENTS.items()):
            print(f"{name:22s} {exp.description} ({exp.num_iterations} iterations)")
        return 0
    if args.iterations is not None and args.iterations < 1:
        parser.error("--iterations must be a positive integer")
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


if __name__ == "__main__":
    sys.exit(main())
