"""Bernoulli multi-armed bandits (Duan et al. 2016, section 4.1, RL² Table 1).

A task is a k-armed bandit: pulling arm ``j`` pays 1 with probability
``arm_probs[j]`` and 0 otherwise. The task distribution of RL²'s bandit
experiment draws every arm's probability from U[0, 1], with k = 5 or 10 or
50 arms and n = 10, 100 or 500 pulls per trial. The agent sees no state
(the observation is always 0; a bandit has a single state): what it learns
about the arms, it must remember from its own actions and rewards.

How the randomness is drawn (the same in both implementations): pull ``t``
uses one uniform number ``u_t`` in [0, 1) and pays ``1.0 if u_t <
arm_probs[action] else 0.0``. The gymnasium env draws ``u_t`` from its
``np_random`` unless the uniforms are passed in with
``reset(options={"noise": uniforms})``; the batched env draws the uniforms
of the whole trial from its ``torch.Generator`` at reset and returns them as
``info["noise"]``. Feeding those into the gymnasium env gives identical
rewards (tested in ``tests/test_envs.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from metarl_course.seeding import uniform
from metarl_course.tasks.batched import BatchedEnv
from metarl_course.tasks.distribution import TaskDistribution, check_count, check_rng
from metarl_course.tasks.gym_env import TaskEnv, check_index_action, replay_noise

NUM_PULLS = 100
"""Default pulls per trial (n; Duan et al. 2016 use 10, 100 and 500)."""


@dataclass(frozen=True)
class BanditTask:
    """One Bernoulli bandit: the probability that each arm pays 1.

    Example:
        >>> BanditTask(arm_probs=(0.2, 0.9)).best_arm
        1
    """

    arm_probs: tuple[float, ...]
    """Success probability of each of the k >= 2 arms, each in [0, 1]."""

    def __post_init__(self) -> None:
        probs = tuple(float(p) for p in np.asarray(self.arm_probs, dtype=np.float64).reshape(-1))
        if len(probs) < 2:
            raise ValueError(f"a bandit needs k >= 2 arms (with one there is nothing to choose), got k={len(probs)}")
        if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probs):
            raise ValueError(f"every arm probability must lie in [0, 1], got {probs}")
        object.__setattr__(self, "arm_probs", probs)

    @property
    def num_arms(self) -> int:
        """k, the number of arms."""
        return len(self.arm_probs)

    @property
    def best_arm(self) -> int:
        """Index of the arm with the highest success probability."""
        return int(np.argmax(self.arm_probs))


@dataclass(frozen=True)
class BanditDistribution(TaskDistribution[BanditTask]):
    """k arms with probabilities i.i.d. U[low, high]; RL²'s is U[0, 1] (Duan et al. 2016).

    Example:
        >>> task = BanditDistribution(num_arms=5).sample(1, np.random.default_rng(0))[0]
        >>> task.num_arms
        5
    """

    num_arms: int = 5
    """k, the number of arms (>= 2)."""
    low: float = 0.0
    """Lowest arm probability."""
    high: float = 1.0
    """Highest arm probability."""
    outside: bool = False
    """If True, draw probabilities uniformly from [0, 1] *outside* [low, high] (see out_of_distribution)."""

    def __post_init__(self) -> None:
        check_count("num_arms", self.num_arms, minimum=2)
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise ValueError(f"need 0 <= low <= high <= 1, got low={self.low}, high={self.high}")
        if self.outside and self.low == 0.0 and self.high == 1.0:
            raise ValueError("outside=True with [low, high] = [0, 1] leaves no probability to draw")

    def sample(self, num_tasks: int, rng: np.random.Generator) -> list[BanditTask]:
        """Draw ``num_tasks`` bandits using only ``rng``."""
        num_tasks, rng = check_count("num_tasks", num_tasks), check_rng(rng)
        shape = (num_tasks, self.num_arms)
        if not self.outside:
            probs = rng.uniform(self.low, self.high, size=shape)
        else:  # U([0, low) u (high, 1]) by stretching one uniform over the two pieces
            below = self.low
            u = rng.uniform(0.0, below + (1.0 - self.high), size=shape)
            probs = np.where(u < below, u, u - below + self.high)
        return [BanditTask(arm_probs=tuple(p)) for p in probs]

    def out_of_distribution(self) -> BanditDistribution:
        """Arm probabilities in [0, 1] outside [low, high] (needs a training range narrower than [0, 1])."""
        if self.low == 0.0 and self.high == 1.0:
            raise ValueError(
                "U[0, 1] arm probabilities cover every possible bandit, so nothing is out of "
                "distribution; train on a narrower range, e.g. BanditDistribution(low=0.25, high=0.75)."
            )
        return BanditDistribution(num_arms=self.num_arms, low=self.low, high=self.high, outside=not self.outside)


class BernoulliBanditEnv(TaskEnv[BanditTask, int, int]):
    """A Bernoulli bandit as a gymnasium env (id ``metarl_course/BernoulliBandit-v0``).

    Observation: always 0 (``Discrete(1)``). Action: an arm index (``Discrete(k)``).
    Reward: 1.0 or 0.0. An episode is one trial of ``num_pulls`` pulls, then
    ``truncated=True``. ``info["expected_reward"]`` is the pulled arm's
    probability (for regret curves).

    The task is kept across resets until changed with
    ``reset(options={"task": task})`` or :meth:`set_task` (same number of
    arms); without a task the env uses one drawn from ``BanditDistribution()``
    with ``task_seed`` (see :class:`~metarl_course.tasks.gym_env.TaskEnv`).
    ``reset(options={"noise": u})`` with ``u`` of shape ``(num_pulls,)`` fixes the
    uniforms of the episode (see the module docstring).

    Example:
        >>> env = BernoulliBanditEnv(task=BanditTask(arm_probs=(0.0, 1.0)))
        >>> obs, info = env.reset(seed=0)
        >>> env.step(1)[1], env.step(0)[1]
        (1.0, 0.0)
    """

    task_type = BanditTask
    task_example = "BanditTask(arm_probs=(0.2, 0.9)) or BanditDistribution().sample(1, rng)[0]"
    default_tasks = BanditDistribution()

    def __init__(self, task: BanditTask | None = None, num_pulls: int = NUM_PULLS, task_seed: int = 0) -> None:
        self.num_pulls = check_count("num_pulls", num_pulls)
        self.observation_space = gym.spaces.Discrete(1)
        super().__init__(task, task_seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Start a trial of ``num_pulls`` pulls; options ``task`` and ``noise`` (see class docstring)."""
        options = self._reset_task(seed, options, ("noise",))
        self._noise = replay_noise(options, (self.num_pulls,))
        self._t = 0
        return 0, {"task": self._task}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Pull arm ``action``; reward 1.0 with probability ``arm_probs[action]``."""
        t = self._check_running()
        arm = check_index_action(action, self._task.num_arms, "arm")
        u = self.np_random.random(dtype=np.float32) if self._noise is None else self._noise[t]
        reward = 1.0 if u < self._probs[arm] else 0.0
        self._t = t + 1
        return 0, reward, False, self._t >= self.num_pulls, {"expected_reward": float(self._probs[arm])}

    def _load_task(self, task: BanditTask) -> None:
        self._probs = np.asarray(task.arm_probs, dtype=np.float32)  # (k,)
        self.action_space = gym.spaces.Discrete(task.num_arms)

    def _check_replacement(self, task: BanditTask) -> None:
        if task.num_arms != self._task.num_arms:
            raise ValueError(
                f"this env has {self._task.num_arms} arms, the new task {task.num_arms}; make a new env."
            )

    def _episode_over(self, t: int) -> str | None:
        return f"the trial ended after {self.num_pulls} pulls" if t >= self.num_pulls else None


class BatchedBanditEnv(BatchedEnv[BanditTask]):
    """Many Bernoulli bandits pulled in one tensor operation (see :mod:`metarl_course.tasks.batched`).

    Observations ``(num_envs,)`` long (always 0), actions ``(num_envs,)`` long,
    rewards ``(num_envs,)`` float32. ``horizon`` is the number of pulls per
    episode; RL² uses one episode per trial. At reset, ``info["noise"]``
    holds the trial's uniforms, ``(num_envs, trial_length)``.

    Example:
        >>> tasks = BanditDistribution(num_arms=5).sample(256, np.random.default_rng(0))
        >>> env = BatchedBanditEnv(tasks, horizon=100, device="cpu")
        >>> obs, info = env.reset(seed=0)
        >>> obs, rewards, terminated, truncated, info = env.step(torch.zeros(256, dtype=torch.long))
        >>> rewards.shape
        torch.Size([256])
    """

    task_type = BanditTask
    single_observation_space = gym.spaces.Discrete(1)

    def __init__(
        self,
        tasks: Sequence[BanditTask],
        *,
        horizon: int = NUM_PULLS,
        episodes_per_trial: int = 1,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        tasks = tuple(tasks)
        arms = {t.num_arms for t in tasks if isinstance(t, BanditTask)}
        if len(arms) > 1:
            raise ValueError(f"all tasks must have the same number of arms, got {sorted(arms)}")
        self.num_arms = arms.pop() if arms else 2
        self.single_action_space = gym.spaces.Discrete(self.num_arms)
        super().__init__(tasks, horizon=horizon, episodes_per_trial=episodes_per_trial, seed=seed, device=device)

    @property
    def arm_probs(self) -> torch.Tensor:
        """The tasks' arm probabilities, ``(num_envs, num_arms)``."""
        return self._probs

    def expected_rewards(self, actions: torch.Tensor) -> torch.Tensor:
        """``arm_probs[i, actions[i]]``, ``(num_envs,)``: the expected reward of each pull (for regret)."""
        return self._probs.gather(1, actions.long()[:, None]).squeeze(1)

    def _load_tasks(self, tasks: tuple[BanditTask, ...]) -> None:
        if any(t.num_arms != self.num_arms for t in tasks):
            raise ValueError(f"every task must have {self.num_arms} arms, as the env was made with")
        self._probs = torch.as_tensor(
            np.asarray([t.arm_probs for t in tasks], dtype=np.float32), device=self.device
        )  # (N, k)
        self._obs = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    def _start_trial(self) -> tuple[torch.Tensor, dict[str, Any]]:
        shape = (self.num_envs, self.trial_length)
        noise = uniform(shape, self.generator, self.device)  # (N, T)
        # The payout of every arm at every step of the trial, decided now from the same uniforms:
        # a step is then a single gather. (T, N, k) float32; 25 MB for 256 tasks x 500 pulls x 50 arms.
        self._payouts = (noise.T[:, :, None] < self._probs[None]).float().unbind(0)  # T views of (N, k)
        return self._obs, {"noise": noise}

    def _start_episode(self) -> torch.Tensor:
        return self._obs

    def _check_actions(self, actions: Any) -> torch.Tensor:
        return self._as_index_actions(actions, self.num_arms)

    def _transition(self, actions: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        rewards = self._payouts[t].gather(1, actions.unsqueeze(1)).squeeze(1)  # (N,): 1.0 if u_t < p[action]
        return self._obs, rewards
