"""How far may a re-score of a shipped result move on another CPU or a GPU, and how far does a real change move it?

A re-score plays the same held-out tasks with the same random numbers, so on another machine it differs only by
floating point: another CPU (AVX-512 or not) or a GPU rounds some sums differently in the last bits, and a long
rollout can amplify that where an event is decided by a threshold (an episode that ends at the goal, a sampled
arm whose probability sits on the boundary of a uniform). We stand in for "another machine's rounding" by
perturbing every weight of the shipped model by a relative 1e-6 (about ten times float32's unit roundoff of
6e-8, so larger than any rounding difference), re-scoring, and taking the largest deviation over a few such
perturbations. A "slightly perturbed model" (relative 1e-2: a different model that a regression could produce)
must move the score by more than the tolerance the tests use.

    .venv/bin/python tools/rescore_spread.py [NAME ...] [--repeats 8] [--write]

Prints, per result and metric: the stored value, the re-score here, the largest deviation under 1e-6
perturbations, the tolerance the tests apply (:func:`metarl_course.evaluation.rescore_tolerance`), and the
smallest deviation under 1e-2 and 1e-1 perturbations. For RL² (row ``trials_moved``) the same for the fraction
of held-out trials whose return moves by more than 0.5 (:func:`metarl_course.evaluation.trial_tolerance`).
``--write`` records the 1e-6 figures in ``metarl_course/checkpoints/rescore_spread.json``, which the
tolerances are derived from.
"""

from __future__ import annotations

import argparse
import sys
import time


import json

import numpy as np

from metarl_course.evaluation import SPREAD_FILE, TRIAL_MOVE, perturb_weights, rescore_tolerance, trial_tolerance
from metarl_course.experiments import CHECKPOINT_DIR, EXPERIMENTS, heldout_trial_returns, load_result


def perturbed(name: str, relative: float, seed: int) -> tuple[dict[str, float], np.ndarray | None]:
    """Re-score ``name`` with every weight multiplied by (1 + relative * N(0, 1)); its trial returns (RL² only)."""
    learner, _ = load_result(name)
    perturb_weights(learner.model, relative, seed)
    trials = heldout_trial_returns(learner)
    return learner.evaluate_heldout(), None if trials is None else trials.numpy()


def moved(trials: np.ndarray | None, reference: np.ndarray | None) -> float:
    return float("nan") if trials is None else float(np.mean(np.abs(trials - reference) > TRIAL_MOVE))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="result names (default: every shipped result)")
    parser.add_argument("--repeats", type=int, default=8, help="1e-6 perturbations (4 of each larger size)")
    parser.add_argument("--write", action="store_true", help=f"record the 1e-6 spreads in {SPREAD_FILE.name}")
    args = parser.parse_args(argv)
    names = args.names or sorted(n for n in EXPERIMENTS if (CHECKPOINT_DIR / f"{n}.pt").exists())
    print("| result | metric | stored | now | largest deviation at 1e-6 | tolerance | smallest deviation at 1e-2 "
          "| at 1e-1 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        start = time.perf_counter()
        learner, data = load_result(name)
        now, base = learner.evaluate_heldout(), heldout_trial_returns(learner)
        base = None if base is None else base.numpy()
        tiny = [perturbed(name, 1e-6, seed) for seed in range(args.repeats)]
        sizes = {size: [perturbed(name, size, seed) for seed in range(4)] for size in (1e-2, 1e-1)}
        mine: dict[str, float] = {}
        for key, stored in data["results"].items():
            if not key.endswith("_ci95"):
                mine[key] = float(f"{max(abs(s[key] - now[key]) for s, _ in tiny):.3g}")
        if base is not None:
            mine["trials_moved"] = max(moved(t, base) for _, t in tiny)
        for key in mine:
            if key == "trials_moved":
                tol = trial_tolerance(name, {name: mine})
                shifts = [min(moved(t, base) for _, t in runs) for runs in sizes.values()]
                stored, current = "", ""
            else:
                tol = rescore_tolerance(name, key, data["results"][key], {name: mine})
                shifts = [min(abs(s[key] - now[key]) for s, _ in runs) for runs in sizes.values()]
                stored, current = f"{data['results'][key]:.4f}", f"{now[key]:.4f}"
            print(f"| {name} | {key} | {stored} | {current} | {mine[key]:.2e} | {tol:.2e} | "
                  + " | ".join(f"{m:.2e}{'' if m > tol else ' (inside)'}" for m in shifts) + " |", flush=True)
        if args.write:  # read again: another process may have written other results meanwhile
            spreads = json.loads(SPREAD_FILE.read_text()) if SPREAD_FILE.exists() else {}
            spreads[name] = mine
            SPREAD_FILE.write_text(json.dumps(spreads, indent=1, sort_keys=True) + "\n")
        print(f"<!-- {name}: {time.perf_counter() - start:.0f} s -->", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
