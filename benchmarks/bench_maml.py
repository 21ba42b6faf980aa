"""Meta-updates per second: the tutorial's per-task loop vs the course's vmapped MAML.

Same model (1-40-40-1 MLP), same data (meta-batch 25, K = 10, 10 query points,
pre-sampled), same thread count, one process. Run:

    python benchmarks/bench_maml.py [--threads 1] [--iterations 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from metarl_course.adaptation import parameters_of
from metarl_course.maml import MAMLConfig, meta_gradient
from metarl_course.nets import sinusoid_regressor
from metarl_course.tasks import SinusoidTaskDistribution


class SeedModel(nn.Module):
    """The tutorial's SimpleModel, with a second hidden layer to match the paper's 1-40-40-1."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1)])

    def forward(self, x, params=None):
        params = params or dict(self.named_parameters())
        x = torch.relu(nn.functional.linear(x, params["layers.0.weight"], params["layers.0.bias"]))
        x = torch.relu(nn.functional.linear(x, params["layers.2.weight"], params["layers.2.bias"]))
        return nn.functional.linear(x, params["layers.4.weight"], params["layers.4.bias"])


def seed_style_step(model, optimizer, batch, inner_lr, num_steps, first_order):
    """The tutorial's MAML.outer_loop: a Python loop over tasks, autograd.grad(create_graph=True)."""
    meta_loss = 0.0
    for i in range(batch.num_tasks):
        params = {name: p.clone() for name, p in model.named_parameters()}
        for _ in range(num_steps):
            loss = nn.functional.mse_loss(model(batch.support_x[i], params), batch.support_y[i])
            grads = torch.autograd.grad(loss, params.values(), create_graph=not first_order)
            params = {n: p - inner_lr * g for (n, p), g in zip(params.items(), grads)}
        meta_loss = meta_loss + nn.functional.mse_loss(model(batch.query_x[i], params), batch.query_y[i])
    meta_loss = meta_loss / batch.num_tasks
    optimizer.zero_grad()
    meta_loss.backward()
    optimizer.step()


def course_step(model, optimizer, batch, config):
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
    batches = [dist.sample_batch(25, 10, 10, rng, device="cpu") for _ in range(args.iterations)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), meta-batch 25, K=10, "
          f"{args.iterations} meta-updates per timing (best of 3)")
    print(f"{'inner steps':>11} {'order':>7} {'seed loop (upd/s)':>18} {'course (upd/s)':>15} {'ratio':>6}")
    for steps in (1, 3):
        for first_order in (False, True):
            seed_model = SeedModel()
            course_model = sinusoid_regressor(device="cpu")
            seed_opt = torch.optim.Adam(seed_model.parameters(), 1e-3)
            course_opt = torch.optim.Adam(course_model.parameters(), 1e-3)
            config = MAMLConfig(algorithm="fomaml" if first_order else "maml", num_inner_steps=steps)
            seed = rate(lambda b: seed_style_step(seed_model, seed_opt, b, 0.01, steps, first_order), batches)
            ours = rate(lambda b: course_step(course_model, course_opt, b, config), batches)
            print(f"{steps:>11} {'first' if first_order else 'second':>7} {seed:>18.0f} {ours:>15.0f} {ours / seed:>5.1f}x")


if __name__ == "__main__":
    main()
