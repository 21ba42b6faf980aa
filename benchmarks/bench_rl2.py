"""RL² training throughput: the batched tensor env vs a Python list of gymnasium envs.

The same agent (the same GRU actor-critic, the same PPO update) collects one
trial of every task per iteration, either from one batched env
(``BatchedBanditEnv`` etc.: one tensor operation steps every task) or from a
list of ``gymnasium.make("metarl_course/...")`` envs stepped one by one in
Python, whose observations and rewards are gathered into tensors. Timed:
whole training iterations (sample tasks, play the trials, PPO update), and
the data collection alone, in one process with one torch thread, best of
several interleaved rounds. Environment steps per second are printed side by
side with their ratio.

Usage::

    PYTHONPATH=. python benchmarks/bench_rl2.py [--setting rl2-bandit-n100-k5] [--rounds 3] [--check]

``--check`` exits with status 1 if a whole training iteration is less than
2x faster with the batched env (the course's requirement).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import metarl_course  # noqa: F401  (registers the gymnasium ids, sets the thread count)
from metarl_course.experiments import get_experiment
from metarl_course.rl.rl2 import RL2Config, RL2Learner, rollout

SETTINGS = {  # the shipped experiments' configs (metarl_course/experiments.py)
    name: get_experiment(name).config
    for name in ("rl2-bandit-n10-k5", "rl2-bandit-n100-k5", "rl2-mdp-n10", "rl2-nav-2ep")
}
GYM_IDS = {"bandit": "metarl_course/BernoulliBandit-v0", "tabular_mdp": "metarl_course/TabularMDP-v0",
           "navigation": "metarl_course/Navigation2D-v0"}
REQUIRED_SPEEDUP = 2.0


class GymEnvList:
    """A list of ``gymnasium.make`` envs behind the batched API that :func:`rollout` uses (trials included)."""

    def __init__(self, config: RL2Config, tasks: list) -> None:
        self.horizon, self.episodes_per_trial = config.horizon, config.episodes_per_trial
        self.trial_length = self.horizon * self.episodes_per_trial
        size = {"num_pulls": config.horizon} if config.task == "bandit" else {"horizon": config.horizon}
        if config.task == "navigation":
            size["goal_tolerance"] = config.goal_tolerance  # as rl2.TASK_FAMILIES gives it to the batched env
        self.envs = [gym.make(GYM_IDS[config.task], task=task, **size) for task in tasks]
        self.num_envs = len(self.envs)
        self._seed = 0

    def set_tasks(self, tasks: list) -> None:
        self.tasks = list(tasks)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._t = 0
        if seed is not None:
            self._seed = seed
        obs = [env.reset(seed=self._seed + i, options={"task": task})[0]
               for i, (env, task) in enumerate(zip(self.envs, self.tasks))]
        self._last = [(o, 0.0, False) for o in obs]  # what a finished episode keeps returning
        self._ended = [False] * self.num_envs
        return torch.as_tensor(np.array(obs)), {}

    def step(self, actions: torch.Tensor):
        actions = actions.cpu().numpy()
        results = []
        for i, (env, a) in enumerate(zip(self.envs, actions)):
            if self._ended[i]:  # the episode ended at the goal: hold still, reward 0, as the batched env
                results.append((self._last[i][0], 0.0, False))
                continue
            obs, reward, terminated, _, _ = env.step(a.item() if a.ndim == 0 else a)
            self._ended[i] = terminated
            results.append((obs, reward, terminated))
        self._last = results
        self._t += 1
        obs = np.array([r[0] for r in results])
        rewards = torch.tensor([r[1] for r in results], dtype=torch.float32)
        terminated = torch.tensor([r[2] for r in results])
        truncated = torch.full_like(terminated, self._t % self.horizon == 0)
        if self._t % self.horizon == 0 and self._t < self.trial_length:  # next episode of the same task
            obs = np.array([env.reset()[0] for env in self.envs])
            self._ended = [False] * self.num_envs
        return torch.as_tensor(obs), rewards, terminated, truncated, {}


def iteration(learner: RL2Learner, env, rng: np.random.Generator, update: bool) -> int:
    """One training iteration on ``env``: new tasks, one trial each, (optionally) a PPO update."""
    batch = learner.sample_tasks(rng)
    env.set_tasks(batch.tasks)
    trials = rollout(learner.model, env, learner.generator, seed=batch.seed)
    if update:
        learner.meta_update(batch, trials, None)
    return trials.rewards.numel()  # steps simulated: both envs step every task at every step of the trial


def measure(config: RL2Config, rounds: int, update: bool) -> dict[str, float]:
    learner = RL2Learner(config, seed=0, device="cpu")
    envs = {"batched": learner.env, "gymnasium list": GymEnvList(config, list(learner.env.tasks))}
    best = dict.fromkeys(envs, 0.0)
    rng = np.random.default_rng(0)
    for env in envs.values():
        iteration(learner, env, rng, update)  # warm-up
    for _ in range(rounds):
        for name, env in envs.items():
            start = time.perf_counter()
            steps = iteration(learner, env, rng, update)
            best[name] = max(best[name], steps / (time.perf_counter() - start))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), action="append",
                        help="which setting(s) to time (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", action="store_true", help=f"fail if training is < {REQUIRED_SPEEDUP}x faster")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU; env steps per second, "
          f"best of {args.rounds} interleaved rounds")
    print(f"{'setting':19s} {'what':22s} {'batched':>10s} {'gym list':>10s} {'ratio':>6s}")
    ok = True
    for name in args.setting or list(SETTINGS):
        for update, what in ((False, "collection only"), (True, "training (+PPO update)")):
            rates = measure(SETTINGS[name], args.rounds, update)
            ratio = rates["batched"] / rates["gymnasium list"]
            print(f"{name:19s} {what:22s} {rates['batched']:10.0f} {rates['gymnasium list']:10.0f} {ratio:5.1f}x",
                  flush=True)
            ok &= ratio >= REQUIRED_SPEEDUP or not update
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
