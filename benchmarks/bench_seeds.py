"""Five seeds of one experiment: five single runs one after another, against one many-seed command on Ray.

    .venv/bin/python benchmarks/bench_seeds.py                         # maml-sinusoid, seeds 0-4, --jobs 2
    .venv/bin/python benchmarks/bench_seeds.py --name fomaml-sinusoid --iterations 5000

Both ways run as a learner runs them, from the command line in fresh processes, into temporary folders:
``train NAME --seed S`` for each seed, then ``train NAME --seeds 0-4 --jobs N`` (Ray started for the run, so
its start-up is counted). Prints both wall times and their ratio, and checks that every gathered seed has the
weights and numbers of its single run. Needs Ray (``make cluster``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def command(*args: str) -> float:
    """Run ``python -m metarl_course train ...``; its wall time."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "metarl_course", "train", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="maml-sinusoid")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=None, help="default: the experiment's full budget")
    args = parser.parse_args()
    extra = [] if args.iterations is None else ["--iterations", str(args.iterations)]
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as tmp:
        root = Path(tmp)
        single = sum(command(args.name, "--seed", str(s), "--out", str(root / f"single{s}"), "--runs",
                             str(root / "runs-single"), *extra) for s in range(args.seeds))
        print(f"{args.seeds} single runs one after another: {single:7.1f} s")
        many = command(args.name, "--seeds", f"0-{args.seeds - 1}", "--jobs", str(args.jobs), "--out", str(root),
                       "--runs", str(root / "runs-many"), *extra)
        print(f"--seeds 0-{args.seeds - 1} --jobs {args.jobs} on Ray:     {many:7.1f} s   "
              f"({many / single:.2f} of the single runs' time, {single / many:.2f}x faster)")
        rounds = -(-args.seeds // args.jobs)  # whole seeds: the last round may keep only some of the CPUs busy
        print(f"(with whole seeds, {args.jobs} at a time, no run can take less than {rounds}/{args.seeds} = "
              f"{rounds / args.seeds:.2f} of the single runs' time)")
        gathered = torch.load(root / f"{args.name}-seeds.pt", weights_only=True)
        for run in gathered["runs"]:
            alone = torch.load(root / f"single{run['seed']}" / f"{args.name}.pt", weights_only=True)
            same = run["results"] == alone["results"] and all(
                torch.equal(run["model"][k], alone["model"][k]) for k in alone["model"])
            print(f"seed {run['seed']}: gathered {'==' if same else '!='} single run; training "
                  f"{alone['wall_seconds_last_session']:.1f} s alone, {run['wall_seconds_last_session']:.1f} s "
                  f"beside another seed   {run['results']}")
            if not same:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
