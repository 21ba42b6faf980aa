"""Random tabular MDPs (Duan et al. 2016, section 4.2, RL²'s second benchmark).

A task is a finite MDP with S states and A actions, given by two tables:
``transitions[s, a, s']`` = P(s' | s, a) and ``reward_means[s, a]``. The
exact task distribution used here (the one in the RL² paper and in the
authors' rllab code):

* S = 10 states, A = 5 actions;
* every row ``transitions[s, a, :]`` ~ Dirichlet(1, ..., 1) (flat: uniform
  over the probability simplex);
* every mean reward ``reward_means[s, a]`` ~ N(1, 1), i.i.d.;
* the reward of a step is ``reward_means[s, a] + eps`` with eps ~ N(0, 1)
  (unit-variance Gaussian noise, fresh at every step);
* every episode starts in state 0 and lasts exactly 10 steps (a time limit);
  a trial is n episodes of the same MDP (n = 10 or 25 in the paper).

Randomness, drawn the same way in both implementations: step ``t`` uses a
uniform ``u_t`` in [0, 1) and a standard normal ``eps_t``. The next state
is the first ``s'`` whose cumulative probability exceeds ``u_t``
(inverse-CDF sampling, with the float32 table :func:`transition_cdf`), and
the reward is ``reward_means[s, a] + eps_t`` in float32. The gymnasium env
draws ``(u_t, eps_t)`` from its ``np_random`` unless they are passed in with
``reset(options={"noise": noise})`` (shape ``(horizon, 2)``); the batched env
draws a whole trial's worth from its ``torch.Generator`` at reset and returns
it as ``info["noise"]``, ``(num_envs, trial_length, 2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from metarl_course.seeding import normal, uniform
from metarl_course.tasks.batched import BatchedEnv
from metarl_course.tasks.distribution import TaskDistribution, check_count, check_rng
from metarl_course.tasks.gym_env import TaskEnv, check_index_action, replay_noise

NUM_STATES, NUM_ACTIONS, HORIZON = 10, 5, 10
"""Duan et al. 2016's sizes: 10 states, 5 actions, episodes of 10 steps."""


def _nested_tuple(array: np.ndarray) -> tuple:
    return tuple(_nested_tuple(a) for a in array) if array.ndim > 1 else tuple(float(x) for x in array)


@dataclass(frozen=True)
class TabularMDPTask:
    """One finite MDP: a transition table and a mean-reward table (stored as nested tuples).

    Pass NumPy arrays (or nested lists); they are checked and stored as
    immutable tuples. Use :attr:`transition_array` / :attr:`reward_array` to
    get arrays back.

    Example:
        >>> task = TabularMDPTask(transitions=[[[1.0, 0.0], [0.5, 0.5]]] * 2, reward_means=[[0.0, 1.0]] * 2)
        >>> task.num_states, task.num_actions
        (2, 2)
    """

    transitions: tuple
    """P(s' | s, a), shape ``(num_states, num_actions, num_states)``; every row sums to 1."""
    reward_means: tuple
    """Mean reward of taking action a in state s, shape ``(num_states, num_actions)``."""

    def __post_init__(self) -> None:
        p = np.asarray(self.transitions, dtype=np.float64)
        r = np.asarray(self.reward_means, dtype=np.float64)
        if p.ndim != 3 or p.shape[0] != p.shape[2] or p.shape[0] < 1:
            raise ValueError(f"transitions must have shape (S, A, S), got {p.shape}")
        if p.shape[1] < 2:
            raise ValueError(f"an MDP needs >= 2 actions (with one there is nothing to decide), got {p.shape[1]}")
        if r.shape != p.shape[:2]:
            raise ValueError(f"reward_means must have shape (S, A) = {p.shape[:2]}, got {r.shape}")
        if not (np.all(np.isfinite(p)) and np.all(p >= 0)):
            raise ValueError("transition probabilities must be finite and >= 0")
        if not np.allclose(p.sum(-1), 1.0, atol=1e-6):
            raise ValueError(
                f"every row transitions[s, a, :] must sum to 1, got sums from {p.sum(-1).min()} to {p.sum(-1).max()}"
            )
        if not np.all(np.isfinite(r)):
            raise ValueError("reward_means must be finite")
        object.__setattr__(self, "transitions", _nested_tuple(p))
        object.__setattr__(self, "reward_means", _nested_tuple(r))

    @property
    def num_states(self) -> int:
        """S."""
        return len(self.reward_means)

    @property
    def num_actions(self) -> int:
        """A."""
        return len(self.reward_means[0])

    @property
    def transition_array(self) -> np.ndarray:
        """P(s' | s, a) as a float64 array, ``(S, A, S)``."""
        return np.asarray(self.transitions, dtype=np.float64)

    @property
    def reward_array(self) -> np.ndarray:
        """Mean rewards as a float64 array, ``(S, A)``."""
        return np.asarray(self.reward_means, dtype=np.float64)


def transition_cdf(task: TabularMDPTask) -> np.ndarray:
    """Cumulative transition probabilities in float32, ``(S, A, S)``, last column exactly 1.

    Both implementations sample the next state as the number of entries
    ``<= u`` in ``cdf[s, a]``, so they agree bit for bit.
    """
    cdf = np.cumsum(task.transition_array, axis=-1).astype(np.float32)
    cdf[..., -1] = 1.0  # u < 1 always finds a state, whatever the rounding
    return cdf


@dataclass(frozen=True)
class TabularMDPDistribution(TaskDistribution[TabularMDPTask]):
    """Random MDPs as in Duan et al. 2016: flat-Dirichlet transitions, N(1, 1) mean rewards.

    Example:
        >>> task = TabularMDPDistribution().sample(1, np.random.default_rng(0))[0]
        >>> task.num_states, task.num_actions
        (10, 5)
    """

    num_states: int = NUM_STATES
    """S (>= 1)."""
    num_actions: int = NUM_ACTIONS
    """A (>= 2)."""
    dirichlet_alpha: float = 1.0
    """Concentration of the Dirichlet over each transition row: 1 = flat (the paper's); small = nearly deterministic."""
    reward_mean: float = 1.0
    """Mean of the normal distribution the mean rewards are drawn from."""
    reward_std: float = 1.0
    """Standard deviation of that normal distribution (the per-step noise is always N(0, 1))."""

    def __post_init__(self) -> None:
        check_count("num_states", self.num_states, minimum=1)
        check_count("num_actions", self.num_actions, minimum=2)
        if not (math.isfinite(self.dirichlet_alpha) and self.dirichlet_alpha > 0):
            raise ValueError(f"dirichlet_alpha must be > 0, got {self.dirichlet_alpha}")
        if not (math.isfinite(self.reward_std) and self.reward_std >= 0 and math.isfinite(self.reward_mean)):
            raise ValueError(f"need a finite reward_mean and reward_std >= 0, got {self.reward_mean}, {self.reward_std}")

    def sample(self, num_tasks: int, rng: np.random.Generator) -> list[TabularMDPTask]:
        """Draw ``num_tasks`` MDPs using only ``rng``."""
        num_tasks, rng = check_count("num_tasks", num_tasks), check_rng(rng)
        s, a = self.num_states, self.num_actions
        alpha = np.full(s, self.dirichlet_alpha)
        transitions = rng.dirichlet(alpha, size=(num_tasks, s, a))  # (num_tasks, S, A, S)
        rewards = rng.normal(self.reward_mean, self.reward_std, size=(num_tasks, s, a))  # (num_tasks, S, A)
        return [TabularMDPTask(transitions=p, reward_means=r) for p, r in zip(transitions, rewards)]

    def out_of_distribution(self) -> TabularMDPDistribution:
        """Nearly deterministic MDPs: transition rows ~ Dirichlet(alpha / 10), unlike the flat prior."""
        return TabularMDPDistribution(
            num_states=self.num_states,
            num_actions=self.num_actions,
            dirichlet_alpha=self.dirichlet_alpha / 10,
            reward_mean=self.reward_mean,
            reward_std=self.reward_std,
        )


class TabularMDPEnv(TaskEnv[TabularMDPTask, int, int]):
    """A random tabular MDP as a gymnasium env (id ``metarl_course/TabularMDP-v0``).

    Observation: the state index (``Discrete(S)``), 0 at the start of every
    episode. Action: ``Discrete(A)``. Reward: ``reward_means[s, a] + N(0, 1)``.
    Episodes last ``horizon`` steps (``truncated=True`` on the last).
    ``info["expected_reward"]`` is ``reward_means[s, a]``.

    The task is kept across resets (run n resets for a trial of n episodes)
    until changed with ``reset(options={"task": task})`` or :meth:`set_task`
    (same S and A); without a task the env uses one drawn from
    ``TabularMDPDistribution()`` with ``task_seed`` (see
    :class:`~metarl_course.tasks.gym_env.TaskEnv`). ``reset(options={"noise": noise})``,
    noise of shape ``(horizon, 2)``, fixes the episode's random numbers (module docstring).
    """

    task_type = TabularMDPTask
    task_example = "TabularMDPDistribution().sample(1, rng)[0]"
    default_tasks = TabularMDPDistribution()

    def __init__(self, task: TabularMDPTask | None = None, horizon: int = HORIZON, task_seed: int = 0) -> None:
        self.horizon = check_count("horizon", horizon)
        super().__init__(task, task_seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Start an episode in state 0; options ``task`` and ``noise`` (see class docstring)."""
        options = self._reset_task(seed, options, ("noise",))
        self._noise = replay_noise(options, (self.horizon, 2))
        self._state, self._t = 0, 0
        return 0, {"task": self._task}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Take ``action`` in the current state: sample s' ~ P(. | s, a), reward ~ N(R[s, a], 1)."""
        t = self._check_running()
        a = check_index_action(action, self._task.num_actions, "action")
        if self._noise is None:
            u = self.np_random.random(dtype=np.float32)
            eps = self.np_random.standard_normal(dtype=np.float32)
        else:
            u, eps = self._noise[t]
        mean = self._rewards[self._state, a]
        reward = mean + np.float32(eps)  # float32 arithmetic, as the batched env
        self._state = int(np.count_nonzero(self._cdf[self._state, a] <= u))
        self._t = t + 1
        return self._state, float(reward), False, self._t >= self.horizon, {"expected_reward": float(mean)}

    def _load_task(self, task: TabularMDPTask) -> None:
        self._cdf = transition_cdf(task)  # (S, A, S) float32
        self._rewards = task.reward_array.astype(np.float32)  # (S, A)
        self.observation_space = gym.spaces.Discrete(task.num_states)
        self.action_space = gym.spaces.Discrete(task.num_actions)

    def _check_replacement(self, task: TabularMDPTask) -> None:
        if task.transition_array.shape != self._task.transition_array.shape:
            raise ValueError("the new task has a different number of states or actions; make a new env.")

    def _episode_over(self, t: int) -> str | None:
        return f"the episode ended after {self.horizon} steps" if t >= self.horizon else None


class BatchedTabularMDPEnv(BatchedEnv[TabularMDPTask]):
    """Many tabular MDPs stepped in one tensor operation (see :mod:`metarl_course.tasks.batched`).

    Observations ``(num_envs,)`` long (state indices), actions ``(num_envs,)``
    long, rewards ``(num_envs,)`` float32. Every episode starts in state 0.
    At reset, ``info["noise"]`` is the trial's ``(u, eps)`` pairs,
    ``(num_envs, trial_length, 2)``.

    Example:
        >>> tasks = TabularMDPDistribution().sample(64, np.random.default_rng(0))
        >>> env = BatchedTabularMDPEnv(tasks, episodes_per_trial=10, device="cpu")
        >>> obs, info = env.reset(seed=0)
        >>> info["noise"].shape
        torch.Size([64, 100, 2])
    """

    task_type = TabularMDPTask

    def __init__(
        self,
        tasks: Sequence[TabularMDPTask],
        *,
        horizon: int = HORIZON,
        episodes_per_trial: int = 1,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        tasks = tuple(tasks)
        shapes = {t.transition_array.shape for t in tasks if isinstance(t, TabularMDPTask)}
        if len(shapes) > 1:
            raise ValueError(f"all tasks must have the same numbers of states and actions, got {sorted(shapes)}")
        self.num_states, self.num_actions, _ = shapes.pop() if shapes else (1, 2, 1)
        self.single_observation_space = gym.spaces.Discrete(self.num_states)
        self.single_action_space = gym.spaces.Discrete(self.num_actions)
        super().__init__(tasks, horizon=horizon, episodes_per_trial=episodes_per_trial, seed=seed, device=device)

    def expected_rewards(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``reward_means[i, states[i], actions[i]]``, ``(num_envs,)``."""
        return self._rewards[self._rows, states.long(), actions.long()]

    def _load_tasks(self, tasks: tuple[TabularMDPTask, ...]) -> None:
        if any(t.transition_array.shape != (self.num_states, self.num_actions, self.num_states) for t in tasks):
            raise ValueError(f"every task must have {self.num_states} states and {self.num_actions} actions")
        to_device = lambda x: torch.as_tensor(np.stack(x), device=self.device)  # noqa: E731
        self._cdf = to_device([transition_cdf(t) for t in tasks])  # (N, S, A, S) float32
        self._rewards = to_device([t.reward_array.astype(np.float32) for t in tasks])  # (N, S, A)
        self._rows = torch.arange(self.num_envs, device=self.device)  # (N,)

    def _start_trial(self) -> tuple[torch.Tensor, dict[str, Any]]:
        shape = (self.num_envs, self.trial_length)
        u = uniform(shape, self.generator, self.device)
        eps = normal(shape, self.generator, self.device)
        self._noise = torch.stack([u, eps], dim=-1)  # (N, T, 2)
        return self._start_episode(), {"noise": self._noise}

    def _start_episode(self) -> torch.Tensor:
        self._state = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        return self._state

    def _check_actions(self, actions: Any) -> torch.Tensor:
        return self._as_index_actions(actions, self.num_actions)

    def _transition(self, actions: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        cdf = self._cdf[self._rows, self._state, actions]  # (N, S)
        noise = self._noise[:, t]  # (N, 2)
        rewards = self._rewards[self._rows, self._state, actions] + noise[:, 1]
        self._state = (cdf <= noise[:, :1]).sum(1)  # (N,) next states, a new tensor
        return self._state, rewards
