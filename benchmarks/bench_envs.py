"""Environment steps per second: a Python list of gymnasium envs vs one batched tensor env.

Same tasks, same pre-drawn random actions, one process, the same torch
thread count (``metarl_course`` sets 1 thread unless ``METARL_NUM_THREADS``
says otherwise). Timed: whole trials, resets included, best of 5 interleaved rounds; the cost of choosing
actions is not (they are drawn beforehand), so this is the environment alone.
The gymnasium envs are stepped unwrapped (no ``gym.make`` checker wrappers),
which is the fastest way to step them.

Usage::

    PYTHONPATH=. python benchmarks/bench_envs.py [--num-tasks 256] [--device cpu] [--check]

``--check`` exits with status 1 if the batched env is less than 20x faster
on navigation or bandits (the course's requirement).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

import metarl_course
from metarl_course.tasks import (
    BanditDistribution,
    BatchedBanditEnv,
    BatchedNavigationEnv,
    BatchedTabularMDPEnv,
    BernoulliBanditEnv,
    Navigation2DEnv,
    NavigationDistribution,
    TabularMDPDistribution,
    TabularMDPEnv,
)

REQUIRED_SPEEDUP = {"navigation": 20.0, "bandit": 20.0}


def steps_per_second(runs: dict[str, Callable[[], int]], min_seconds: float, rounds: int = 5) -> dict[str, float]:
    """Best rate of each run over ``rounds`` interleaved rounds of at least ``min_seconds`` each.

    Interleaving (gym, batched, gym, batched, ...) exposes both to the same
    drifts of a shared machine's speed, which would otherwise bias the ratio.
    """
    best = dict.fromkeys(runs, 0.0)
    for run in runs.values():
        run()  # warm-up
    for _ in range(rounds):
        for name, run in runs.items():
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < min_seconds:
                steps += run()
            best[name] = max(best[name], steps / (time.perf_counter() - start))
    return best


def gym_list_trial(envs: list, actions: list[list]) -> Callable[[], int]:
    """One trial (one episode) of every env in a Python loop; ``actions[t][i]`` for env i at step t."""

    def run() -> int:
        for env in envs:
            env.reset()
        for step_actions in actions:
            for env, action in zip(envs, step_actions):
                env.step(action)
        return len(actions) * len(envs)

    return run


def batched_trial(env, actions: torch.Tensor) -> Callable[[], int]:
    """One trial of the batched env; ``actions`` is ``(T, num_envs, ...)``."""

    def run() -> int:
        env.reset()
        for step_actions in actions:
            env.step(step_actions)
        return actions.shape[0] * env.num_envs

    return run


def bench_one(name: str, num_tasks: int, device: str, min_seconds: float) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    if name == "navigation":
        tasks = NavigationDistribution().sample(num_tasks, rng)
        # goal_tolerance=None: no episode ends early, so every env is stepped the same number of times
        envs = [Navigation2DEnv(task=t, goal_tolerance=None) for t in tasks]
        batched = BatchedNavigationEnv(tasks, device=device, goal_tolerance=None)
        actions = torch.randn(batched.horizon, num_tasks, 2, generator=gen) * 0.1
        gym_actions = [list(a) for a in actions.numpy()]
    else:
        if name == "bandit":
            tasks = BanditDistribution(num_arms=5).sample(num_tasks, rng)
            envs, batched = [BernoulliBanditEnv(task=t) for t in tasks], BatchedBanditEnv(tasks, device=device)
        else:  # tabular MDP: one episode of 10 steps per trial
            tasks = TabularMDPDistribution().sample(num_tasks, rng)
            envs, batched = [TabularMDPEnv(task=t) for t in tasks], BatchedTabularMDPEnv(tasks, device=device)
        actions = torch.randint(0, 5, (batched.horizon, num_tasks), generator=gen)
        gym_actions = actions.tolist()  # Python ints
    for env in envs:
        env.reset(seed=0)
    batched.reset(seed=0)
    runs = {"gym": gym_list_trial(envs, gym_actions), "batched": batched_trial(batched, actions.to(device))}
    rates = steps_per_second(runs, min_seconds)
    return rates["gym"], rates["batched"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-tasks", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="device of the batched env (cpu, cuda)")
    parser.add_argument("--min-seconds", type=float, default=0.5, help="length of each timed round")
    parser.add_argument("--check", action="store_true", help="exit 1 below the required speed-ups")
    args = parser.parse_args(argv)
    print(metarl_course.describe())
    print(f"{args.num_tasks} tasks; batched env on {args.device}; env steps per second (env only)\n")
    print(f"{'environment':<12} {'gym list':>12} {'batched':>12} {'ratio':>8}  required")
    failed = []
    for name in ("navigation", "bandit", "tabular_mdp"):
        gym_sps, batched_sps = bench_one(name, args.num_tasks, args.device, args.min_seconds)
        ratio = batched_sps / gym_sps
        required = REQUIRED_SPEEDUP.get(name)
        verdict = "-" if required is None else (f">= {required:.0f}x ok" if ratio >= required else f">= {required:.0f}x FAIL")
        if required is not None and ratio < required:
            failed.append(name)
        print(f"{name:<12} {gym_sps / 1e6:>10.3f} M {batched_sps / 1e6:>10.2f} M {ratio:>7.1f}x  {verdict}")
    return 1 if (args.check and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
