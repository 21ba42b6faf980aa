"""Meta-updates per second: the tutorial's per-task loop vs the course's vmapped MAML.

The tutorial's MAML is :mod:`metarl_course.tutorial_maml` (its ``MAML.outer_loop``
as :func:`~metarl_course.tutorial_maml.tutorial_maml_step`). Same model (the
1-40-40-1 MLP of :func:`~metarl_course.nets.sinusoid_regressor`), same data
(meta-batch 25, K = 10, 10 query points, pre-sampled), same thread count, one
process. Run:

    python benchmarks/bench_maml.py [--threads 1] [--iterations 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from metarl_course.adaptation import parameters_of
from metarl_course.maml import MAMLConfig, meta_gradient
from metarl_course.nets import sinusoid_regressor
from metarl_course.tasks import SinusoidBatch, SinusoidTaskDistribution
from metarl_course.tutorial_maml import tutorial_maml_step, tutorial_tasks


def course_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: SinusoidBatch,
                config: MAMLConfig) -> None:
    """One meta-update of the course's MAML: all tasks of the batch at once."""
    params = parameters_of(model)
    grads, _ = meta_gradient(model, params, batch.support_x, batch.support_y, batch.query_x, batch.query_y, config)
    for name, p in params.items():
        p.grad = grads[name]
    optimizer.step()


def rate(step, batches, repeats=3) -> float:
    """Best of ``repeats`` timings, in meta-updates per second."""
    step(batches[0])  # warm-up
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            step(b)
        best = max(best, len(batches) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    dist = SinusoidTaskDistribution()
    batches = [dist.sample_support_query(25, 10, 10, rng, device="cpu") for _ in range(args.iterations)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), meta-batch 25, K=10, "
          f"{args.iterations} meta-updates per timing (best of 3)")
    print(f"{'inner steps':>11} {'order':>7} {'tutorial loop (upd/s)':>22} {'course (upd/s)':>15} {'ratio':>6}")
    for steps in (1, 3):
        for first_order in (False, True):
            tutorial_model = sinusoid_regressor(device="cpu")
            course_model = sinusoid_regressor(device="cpu")
            tutorial_opt = torch.optim.Adam(tutorial_model.parameters(), 1e-3)
            course_opt = torch.optim.Adam(course_model.parameters(), 1e-3)
            config = MAMLConfig(algorithm="fomaml" if first_order else "maml", num_inner_steps=steps)
            tutorial = rate(lambda b: tutorial_maml_step(tutorial_model, tutorial_opt, tutorial_tasks(b), 0.01, steps,
                                                         create_graph=not first_order), batches)
            ours = rate(lambda b: course_step(course_model, course_opt, b, config), batches)
            order = "first" if first_order else "second"
            print(f"{steps:>11} {order:>7} {tutorial:>22.0f} {ours:>15.0f} {ours / tutorial:>5.1f}x")


if __name__ == "__main__":
    main()
