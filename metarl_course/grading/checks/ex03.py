"""Checks of exercise 03 (navigation goals, their meta-train / meta-test split, one step of 2D navigation); the
references are ``NavigationDistribution.sample``, ``TaskDistribution.split`` and ``Navigation2DEnv.step``, which the
grader's sandbox does not provide."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from metarl_course.grading.checks import Check, CheckFailed, array, close, field, register, tensor_data
from metarl_course.grading.checks.common import check_split_keys, number_or_text, split_lists, tasks_data
from metarl_course.tasks import Navigation2DEnv, NavigationDistribution, NavigationTask
from metarl_course.tasks.navigation import GOAL_TOLERANCE, HORIZON

REFERENCES = {"metarl_course.tasks.navigation": ["NavigationDistribution.sample", "Navigation2DEnv.step"],
              "metarl_course.tasks.distribution": ["TaskDistribution.split"]}
"""The course functions this exercise asks the student to write: unavailable while grading."""
RTOL = 1e-5
"""The relative tolerance of ``np.allclose``, which the tests used to call."""


def _pair(x):
    """A case's ``(low, high)`` (a list after JSON) as the tuple the exercise documents; None stays None."""
    return None if x is None else tuple(x)


# ------------------------------------------------------------------------------------------------------- goals
@lru_cache(maxsize=32)
def _reference_goals(num_tasks, seed, low, high, exclude):
    tasks = NavigationDistribution(goal_low=low, goal_high=high, exclude=exclude).sample(
        num_tasks, np.random.default_rng(seed))
    return np.array([t.goal for t in tasks])


@register
class Goals(Check):
    name = "ex03.goals"
    answers = ("sample_goals",)
    ok = "goals: OK"

    def probe(self, sample_goals, *, num_tasks, seed, low=-0.5, high=0.5, exclude=None):
        return tensor_data(sample_goals(num_tasks, np.random.default_rng(seed), low, high, _pair(exclude)))

    def verdict(self, got, *, num_tasks, seed, low=-0.5, high=0.5, exclude=None):
        exclude = _pair(exclude)
        goals = array(got, None, "the goals")
        if goals.shape != (num_tasks, 2):
            raise CheckFailed(f"goals must have shape ({num_tasks}, 2), got {goals.shape}")
        if not (goals.min() >= low and goals.max() <= high):
            raise CheckFailed(f"a goal lies outside [{low}, {high}]^2")
        if exclude is not None:
            inside = np.all((goals >= exclude[0]) & (goals <= exclude[1]), axis=1)
            if inside.any():
                raise CheckFailed(f"{inside.sum()} goal(s) lie inside the excluded square {exclude}")
        if not close(goals, _reference_goals(num_tasks, seed, low, high, exclude), 1e-12, RTOL):
            raise CheckFailed("the goals differ from the reference; draw whole batches rng.uniform(low, high, "
                              "size=(num_tasks, 2)), drop the rows inside the excluded square, and keep the first "
                              "num_tasks goals")


@register
class GoalsMean(Check):
    """Behaviour: goals uniform on a square minus a centred inner square average to about (0, 0)."""

    name = "ex03.goals_mean"
    answers = ("sample_goals",)
    ok = "the mean goal: OK"

    def probe(self, sample_goals, *, num_tasks, seed, low, high, exclude):
        return tensor_data(sample_goals(num_tasks, np.random.default_rng(seed), low, high, _pair(exclude)))

    def verdict(self, got, *, num_tasks, seed, low, high, exclude):
        goals = array(got, (num_tasks, 2), "the goals")
        if not abs(goals.mean()) < 0.05:
            raise CheckFailed(f"{num_tasks} goals uniform in [{low}, {high}]^2 minus [{exclude[0]}, {exclude[1]}]^2 "
                              f"have the mean {goals.mean(axis=0).round(3)}, far from (0, 0): draw them uniformly "
                              "and reject only the rows inside the excluded square")


# ------------------------------------------------------------------------------------------------------- split
def _parameters(t: NavigationTask) -> dict:
    goal = t.goal
    goal = [number_or_text(g) for g in goal] if isinstance(goal, tuple) else f"{type(goal).__name__}: {goal!r:.100}"
    return {"goal": goal, "dynamics": number_or_text(t.dynamics)}


def _tasks_data(tasks) -> dict:
    return tasks_data(tasks, NavigationTask, _parameters)


def _hashable(x):
    return tuple(_hashable(v) for v in x) if isinstance(x, list) else x if isinstance(x, (float, str)) else repr(x)


def _keys(tasks: list) -> list:
    """What a task's equality depends on: its class, goal and dynamics."""
    return [(field(t, "exact") is True, str(field(t, "type")), _hashable(field(t, "goal")),
             _hashable(field(t, "dynamics"))) for t in tasks]


def _reference_keys(tasks: list[NavigationTask]) -> list:
    return [(True, "NavigationTask", tuple(float(g) for g in t.goal), float(t.dynamics)) for t in tasks]


@register
class Split(Check):
    name = "ex03.split"
    answers = ("split_navigation_tasks",)
    ok = "split: OK"

    def probe(self, split_navigation_tasks, *, num_train, num_test, seed, low=-0.5, high=0.5, exclude=None):
        out = {}
        for call in ("first", "again"):
            train, test = split_navigation_tasks(num_train, num_test, seed, low, high, _pair(exclude))
            out[call] = {"train": _tasks_data(train), "test": _tasks_data(test)}
        return out

    def verdict(self, got, *, num_train, num_test, seed, low=-0.5, high=0.5, exclude=None):
        train, test = split_lists(field(got, "first"), num_train, num_test, "NavigationTask")
        if not all(field(t, "dynamics") == 1.0 for t in train + test):
            raise CheckFailed("use the paper's dynamics, 1.0")
        keys = check_split_keys(got, train, test, _keys)
        ref_train, ref_test = NavigationDistribution(goal_low=low, goal_high=high, exclude=_pair(exclude)).split(
            num_train, num_test, np.random.default_rng(seed))
        if keys != (_reference_keys(ref_train), _reference_keys(ref_test)):
            raise CheckFailed("the tasks differ from the reference; draw all goals with one sample_goals call and "
                              "keep the first num_train tasks for meta-training")


# -------------------------------------------------------------------------------------------------------- step
def _obs_data(obs) -> dict:
    out = {"ndarray": isinstance(obs, np.ndarray), "repr": repr(obs)[:200]}
    if isinstance(obs, np.ndarray):
        out.update(shape=list(obs.shape), dtype=str(obs.dtype))
    try:
        out["value"] = tensor_data(obs)
    except Exception:  # noqa: BLE001 - not numbers: the verdict says what an observation must be
        out["value"] = None
    return out


def play_episode(env_class, goal, actions, dynamics, horizon, goal_tolerance) -> dict:
    """What the student's env returns on ``actions``: reset, then every step until its episode ends (a probe's
    result)."""
    env = env_class(goal, dynamics, horizon, goal_tolerance)
    obs, _ = env.reset(seed=0)
    record = {"reset": _obs_data(obs), "steps": []}
    for action in actions:
        out = env.step(action.copy())
        if not isinstance(out, tuple) or len(out) != 5:
            record["steps"].append({"tuple": False})
            break
        obs, reward, terminated, truncated, info = out
        step = {"tuple": True, "obs": _obs_data(obs), "reward_float": isinstance(reward, float),
                "reward_type": type(reward).__name__, "reward": float(reward) if isinstance(reward, float) else None,
                "terminated": bool(terminated), "truncated": bool(truncated), "info_dict": isinstance(info, dict)}
        record["steps"].append(step)
        if step["terminated"] or step["truncated"]:
            break
    return record


def compare_episode(got, goal, actions, dynamics, horizon, goal_tolerance) -> int:
    """Raise CheckFailed unless ``got`` (from :func:`play_episode`) is what ``Navigation2DEnv`` does on ``actions``
    until its episode ends; returns the number of steps of the reference's episode."""
    ref = Navigation2DEnv(NavigationTask(goal=goal, dynamics=dynamics), horizon=horizon, goal_tolerance=goal_tolerance)
    ref_obs, _ = ref.reset(seed=0)
    reset = field(got, "reset")
    if not np.array_equal(array(field(reset, "value"), None, "the observation of reset"), ref_obs):
        raise CheckFailed(f"reset must return the start position {ref_obs} (do not change reset), got "
                          f"{field(reset, 'repr')}")
    steps = field(got, "steps")
    if not isinstance(steps, list):
        raise CheckFailed("the result has no list of steps")
    for t, action in enumerate(actions):
        r_obs, r_reward, r_terminated, r_truncated, _ = ref.step(action.copy())
        where = (f"step {t + 1} (goal {tuple(float(g) for g in goal)}, dynamics {dynamics}, action "
                 f"{action.round(3)})")
        if t >= len(steps):
            raise CheckFailed(f"{where}: your episode had ended, expected terminated={r_terminated}, "
                              f"truncated={r_truncated} on the step before")
        step = steps[t]
        if field(step, "tuple") is not True:
            raise CheckFailed("step must return (obs, reward, terminated, truncated, info)")
        obs = field(step, "obs")
        if not (field(obs, "ndarray") is True and field(obs, "shape") == [2] and field(obs, "dtype") == "float32"):
            raise CheckFailed(f"the observation must be a float32 array of shape (2,), got {field(obs, 'repr')}")
        position = array(field(obs, "value"), (2,), "the observation")
        if not close(position, r_obs.astype(np.float64), 1e-6, 1e-5):
            raise CheckFailed(f"{where}: position {position.astype(np.float32)}, expected {r_obs}")
        if field(step, "reward_float") is not True:
            raise CheckFailed(f"the reward must be a Python float, got {field(step, 'reward_type')}")
        reward = field(step, "reward")
        if not (isinstance(reward, float) and abs(reward - r_reward) < 1e-5):
            raise CheckFailed(f"{where}: reward {reward:.6f}, expected {r_reward:.6f}" if isinstance(reward, float)
                              else f"{where}: the reward is not a number")
        terminated, truncated = field(step, "terminated"), field(step, "truncated")
        if terminated is not r_terminated:
            raise CheckFailed(f"{where}: terminated={terminated}, expected {r_terminated}")
        if truncated is not r_truncated:
            raise CheckFailed(f"{where}: truncated={truncated}, expected {r_truncated}")
        if field(step, "info_dict") is not True:
            raise CheckFailed(f"{where}: info must be a dict ({{}})")
        if r_terminated or r_truncated:
            return t + 1
    return len(actions)


def random_episode(seed, horizon, scale):
    """A case's goal and actions: normal with standard deviation ``scale``, many beyond +-0.1 (clipping matters)."""
    rng = np.random.default_rng(seed)
    goal = tuple(float(g) for g in rng.uniform(-0.5, 0.5, 2).round(6))
    return goal, rng.normal(0.0, scale, size=(horizon, 2)).astype(np.float32)


@register
class StepRandomActions(Check):
    """Random (often too large) actions: the same observations, rewards and flags as ``Navigation2DEnv``."""

    name = "ex03.step_random_actions"
    answers = ("MiniNavigationEnv",)
    ok = "random actions: OK"

    def probe(self, env_class, *, seed, horizon=HORIZON, dynamics=1.0, goal_tolerance=GOAL_TOLERANCE, scale=0.2):
        goal, actions = random_episode(seed, horizon, scale)
        return play_episode(env_class, goal, actions, dynamics, horizon, goal_tolerance)

    def verdict(self, got, *, seed, horizon=HORIZON, dynamics=1.0, goal_tolerance=GOAL_TOLERANCE, scale=0.2):
        goal, actions = random_episode(seed, horizon, scale)
        if compare_episode(got, goal, actions, dynamics, horizon, goal_tolerance) != horizon:
            raise CheckFailed("this episode should run into the time limit")


@register
class StepReachesGoal(Check):
    """Heading straight for the goal: the episode terminates within the tolerance, as in ``Navigation2DEnv``."""

    name = "ex03.step_reaches_goal"
    answers = ("MiniNavigationEnv",)
    ok = "reaching the goal: OK"

    def probe(self, env_class, *, goal, dynamics=1.0, horizon=HORIZON, goal_tolerance=GOAL_TOLERANCE,
              expect_steps=None):
        goal = tuple(float(g) for g in goal)
        # an oracle that knows the goal: a velocity straight towards it (the env clips it), one action per step
        env = env_class(goal, dynamics, horizon, goal_tolerance)
        obs, _ = env.reset()
        actions, terminated = [], False
        for _ in range(horizon):
            actions.append(((np.asarray(goal, dtype=np.float32) - obs) / np.float32(dynamics)).astype(np.float32))
            obs, _, terminated, truncated, _ = env.step(actions[-1].copy())
            if terminated or truncated:
                break
        actions = np.stack(actions)
        return {"terminated": bool(terminated), "obs": _obs_data(obs), "actions": tensor_data(actions),
                "replay": play_episode(env_class, goal, actions, dynamics, horizon, goal_tolerance)}

    def verdict(self, got, *, goal, dynamics=1.0, horizon=HORIZON, goal_tolerance=GOAL_TOLERANCE,
                expect_steps=None):
        goal = tuple(float(g) for g in goal)
        if field(got, "terminated") is not True:
            raise CheckFailed(f"heading straight for {goal} never terminated within {horizon} steps")
        obs = array(field(field(got, "obs"), "value"), (2,), "the last observation")
        if not np.all(np.abs(obs - np.asarray(goal)) < goal_tolerance):
            raise CheckFailed(f"the episode terminated at {obs.astype(np.float32)}, not within {goal_tolerance} of the "
                              f"goal {goal} in both coordinates")
        actions = array(field(got, "actions"), None, "the actions")
        if actions.ndim != 2 or actions.shape[1] != 2 or not 1 <= len(actions) <= horizon \
                or not np.isfinite(actions).all():
            raise CheckFailed(f"the oracle's actions should be at most {horizon} finite velocities, got shape "
                              f"{actions.shape}")
        if expect_steps is not None and len(actions) != expect_steps:
            raise CheckFailed(f"expected to reach the goal in {expect_steps} steps, took {len(actions)}")
        steps = compare_episode(field(got, "replay"), goal, actions.astype(np.float32), dynamics, horizon,
                                goal_tolerance)
        if steps != len(actions):
            raise CheckFailed(f"replaying its {len(actions)} actions, the episode ended after {steps} steps: the same "
                              "actions must give the same episode")


@register
class StepToleranceBox(Check):
    """An episode ends inside the tolerance *square* around the goal, farther than the tolerance from it."""

    name = "ex03.step_tolerance_box"
    answers = ("MiniNavigationEnv",)
    ok = "the tolerance square: OK"

    def probe(self, env_class, *, goal, actions, dynamics=1.0):
        goal = tuple(float(g) for g in goal)
        return play_episode(env_class, goal, np.asarray(actions, dtype=np.float32), dynamics, HORIZON, GOAL_TOLERANCE)

    def verdict(self, got, *, goal, actions, dynamics=1.0):
        goal, actions = tuple(float(g) for g in goal), np.asarray(actions, dtype=np.float32)
        if compare_episode(got, goal, actions, dynamics, HORIZON, GOAL_TOLERANCE) != len(actions):
            raise CheckFailed("the episode should end on the last action")
