"""CPU or GPU? The course's training workloads timed on one CPU thread and on the GPU, side by side, in one run.

At the course's sizes (a 40-40 network, 25 tasks per meta-batch; a 64-unit GRU, 256 trials) every tensor is
small and a step is a chain of many tiny operations: a GPU spends its time launching kernels and waiting for
the CPU. At larger sizes (1000 tasks and a 256-256 network; 8192 parallel trials) there is enough arithmetic per
operation for the GPU to pay off. This script measures where the crossover lies, on this machine:

    .venv/bin/python benchmarks/bench_devices.py [--repeats 3]

Each workload is built afresh on each device with the same seed, warmed up once, then timed (best of
``--repeats``; on the GPU with ``torch.cuda.synchronize()`` around the clock). Without a GPU it prints the CPU
side and says so.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from metarl_course.maml import MAMLConfig, MAMLLearner
from metarl_course.nets import MLP
from metarl_course.rl.rl2 import RL2Config, RL2Learner
from metarl_course.tasks import SinusoidTaskDistribution, heldout_batch

Workload = Callable[[torch.device], Callable[[], None]]


def maml(meta_batch: int, hidden: tuple[int, ...]) -> Workload:
    """One second-order MAML meta-update on sinusoids (K = 10, one inner step)."""
    def build(device: torch.device) -> Callable[[], None]:
        torch.manual_seed(0)
        model = MLP(1, 1, hidden=hidden).to(device)
        learner = MAMLLearner(model, MAMLConfig(meta_batch_size=meta_batch), SinusoidTaskDistribution(),
                              heldout_batch(10, num_tasks=2, device=device))
        return training_step(learner)
    return build


def training_step(learner) -> Callable[[], None]:
    """One iteration of the course's training loop (sample tasks, adapt, evaluate, meta-update)."""
    rng = np.random.default_rng(0)

    def step() -> None:
        tasks = learner.sample_tasks(rng)
        adapted = learner.adapt(tasks)
        loss, _ = learner.evaluate(tasks, adapted)
        learner.meta_update(tasks, adapted, loss)
    return step


def rl2(num_trials: int) -> Workload:
    """One RL² training iteration on bandits (n = 10, k = 5): collect a trial of every task, then PPO."""
    def build(device: torch.device) -> Callable[[], None]:
        learner = RL2Learner(RL2Config.bandit(num_pulls=10, num_arms=5, num_trials=num_trials), seed=0, device=device)
        return training_step(learner)
    return build


WORKLOADS: dict[str, Workload] = {
    "MAML, 25 tasks, 40-40 net (the course's)": maml(25, (40, 40)),
    "MAML, 1000 tasks, 256-256 net": maml(1000, (256, 256)),
    "RL², 256 trials (the course's)": rl2(256),
    "RL², 8192 trials": rl2(8192),
}


def seconds_per_step(build: Workload, device: torch.device, repeats: int) -> float:
    step = build(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    step()  # warm-up: allocations, kernel selection
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        step()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the course's default (METARL_NUM_THREADS=1)
    gpu = torch.device("cuda") if torch.cuda.is_available() else None
    print(f"torch {torch.__version__}; CPU: 1 thread; GPU: "
          f"{torch.cuda.get_device_name(0) if gpu else 'none visible, so only the CPU side is measured'}\n")
    print("| workload | CPU, 1 thread (s per step) | GPU (s per step) | CPU time / GPU time |")
    print("| --- | --- | --- | --- |")
    for name, build in WORKLOADS.items():
        cpu = seconds_per_step(build, torch.device("cpu"), args.repeats)
        if gpu is None:
            print(f"| {name} | {cpu:.4f} | - | - |", flush=True)
            continue
        cuda = seconds_per_step(build, gpu, args.repeats)
        print(f"| {name} | {cpu:.4f} | {cuda:.4f} | {cpu / cuda:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
