"""Checks of exercise 04 (MAML-RL's inner step: the reward-to-go and REINFORCE with a baseline); the references are
``discounted_returns``, ``Episodes.advantages``, ``inner_target``, ``adapt_policy`` and ``adapt``, which the grader's
sandbox does not provide."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from metarl_course.adaptation import parameters_of
from metarl_course.grading.checks import Check, CheckFailed, array, close, field, register, tensor_data
from metarl_course.rl.policies import GaussianMLPPolicy
from metarl_course.rl.sampling import expand_params, sample_episodes
from metarl_course.tasks import NavigationDistribution

REFERENCES = {"metarl_course.rl.returns": ["discounted_returns"], "metarl_course.rl.sampling": ["Episodes.advantages"],
              "metarl_course.rl.maml_rl": ["inner_target", "adapt_policy"], "metarl_course.adaptation": ["adapt"]}
"""The course functions this exercise asks the student to write (or that compute its answers): unavailable while
grading."""


def _key(d: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in d.items()))


def _shape_text(shape) -> object:
    return tuple(shape) if isinstance(shape, list) else shape


def _tensor_result(t) -> dict:
    """A tensor the student returned, as plain data: its type, dtype, shape and values."""
    if not isinstance(t, torch.Tensor):
        return {"type": type(t).__name__}
    return {"type": "Tensor", "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
            "value": tensor_data(t)}


# ------------------------------------------------------------------------------------------- the reward-to-go
def make_rewards(rewards=None, shape=None, seed=None) -> torch.Tensor:
    """A case's rewards: the literal ``rewards``, or float32 N(0, 1) of ``shape`` drawn from ``seed``."""
    if rewards is not None:
        return torch.tensor(rewards, dtype=torch.float32)
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@register
class RewardToGo(Check):
    name = "ex04.reward_to_go"
    answers = ("reward_to_go",)
    ok = "reward-to-go: OK"

    def probe(self, reward_to_go, *, gamma, **case):
        rewards = make_rewards(**case)
        mine = reward_to_go(rewards, gamma)
        return {"result": _tensor_result(mine), "rewards_after": tensor_data(rewards)}

    def verdict(self, got, *, gamma, **case):
        from metarl_course.rl.returns import discounted_returns

        rewards = make_rewards(**case)
        shape = tuple(rewards.shape)
        what = (f"reward_to_go({case['rewards']}, {gamma})" if case.get("rewards") is not None
                else f"shape {shape}, gamma {gamma}")
        mine = field(got, "result")
        if field(mine, "type") != "Tensor" or field(mine, "shape") != list(shape):
            raise CheckFailed(f"{what}: return a tensor of shape {shape}, got "
                              f"{_shape_text(mine['shape']) if mine.get('type') == 'Tensor' else mine.get('type')}")
        if field(mine, "dtype") != "float32":
            raise CheckFailed(f"{what}: return a tensor of the rewards' dtype (float32), got {mine['dtype']}")
        if not close(array(field(got, "rewards_after"), shape, "the rewards after the call"),
                     rewards.double().numpy(), 0.0):
            raise CheckFailed(f"{what}: reward_to_go changed its input")
        ref = discounted_returns(rewards, gamma).double().numpy()
        # torch.allclose's tolerances: its defaults for the literal example, atol 1e-5 for random rewards
        atol = 1e-8 if case.get("rewards") is not None else 1e-5
        value = array(field(mine, "value"), shape, "the returns")
        if not close(value, ref, atol, 1e-5):
            shown = f" ({value.tolist()}, expected {ref.tolist()})" if case.get("rewards") is not None else ""
            raise CheckFailed(f"{what}: the returns differ from the reference{shown}")


# ------------------------------------------------------------------------------------------- the inner step
def make_problem(seed=0, num_tasks=3, num_episodes=5, horizon=20, hidden=(32, 32)):
    """A seeded policy, its parameters, navigation tasks and the episodes the policy sampled on them (the setup
    cell's ``make_problem``)."""
    torch.manual_seed(seed)
    policy = GaussianMLPPolicy(2, 2, tuple(hidden))
    params = parameters_of(policy)
    tasks = NavigationDistribution().sample(num_tasks, np.random.default_rng(seed))
    generator = torch.Generator().manual_seed(seed)
    episodes = sample_episodes(policy, expand_params({k: v.detach() for k, v in params.items()}, num_tasks),
                               tasks, num_episodes, generator, horizon=horizon)
    return policy, params, tasks, episodes


def _params_result(mine) -> dict:
    if not isinstance(mine, dict):
        return {"type": type(mine).__name__}
    return {"type": "dict", "params": {str(k): _tensor_result(v) for k, v in mine.items()}}


def _numpy(params) -> dict:
    return {k: v.detach().double().numpy().copy() for k, v in params.items()}


@lru_cache(maxsize=16)
def _reference_step(seed, lr, gamma, problem_key):
    from metarl_course.rl.maml_rl import adapt_policy

    policy, params, tasks, episodes = make_problem(seed, **dict(problem_key))
    ref = adapt_policy(policy, {k: v.detach() for k, v in params.items()}, episodes, lr, gamma)
    return _numpy(ref), _numpy(params), len(tasks)


def _adapted_arrays(got, params: dict, num_tasks: int, what: str) -> dict:
    """The student's adapted parameters (name -> (T, *shape) float32 tensor) as arrays, or CheckFailed."""
    if field(got, "type") != "dict" or not isinstance(field(got, "params"), dict) or set(got["params"]) != set(params):
        raise CheckFailed(f"{what}: return a dict with the keys {sorted(params)}")
    out = {}
    for k, p in params.items():
        mine, shape = got["params"][k], (num_tasks, *p.shape)
        if not isinstance(mine, dict) or mine.get("type") != "Tensor":
            kind = mine.get("type") if isinstance(mine, dict) else mine
            raise CheckFailed(f"{what}: {k} must be a tensor, got {kind}")
        if field(mine, "shape") != list(shape):
            raise CheckFailed(f"{what}: {k}: shape {_shape_text(mine['shape'])}, expected {shape}")
        if field(mine, "dtype") != "float32":
            raise CheckFailed(f"{what}: {k}: dtype {mine['dtype']}, expected float32 (the dtype of the parameters)")
        out[k] = array(field(mine, "value"), shape, f"{what}: {k}")
    return out


@register
class ReinforceStepValues(Check):
    name = "ex04.reinforce_step_values"
    answers = ("reinforce_step",)
    ok = "inner step values: OK"

    def probe(self, reinforce_step, *, seed, lr, gamma, **problem):
        policy, params, tasks, episodes = make_problem(seed, **problem)
        mine = reinforce_step(policy, params, episodes, lr, gamma)
        return {"adapted": _params_result(mine), "params_after": {k: tensor_data(v) for k, v in params.items()},
                "policy_after": {k: tensor_data(v) for k, v in policy.named_parameters()}}

    def verdict(self, got, *, seed, lr, gamma, **problem):
        ref, before, num_tasks = _reference_step(seed, lr, gamma, _key(problem))
        mine = _adapted_arrays(field(got, "adapted"), before, num_tasks, "reinforce_step")
        params_after, policy_after = field(got, "params_after"), field(got, "policy_after")
        for k, b in before.items():
            if not isinstance(params_after, dict) or not close(array(params_after.get(k), b.shape, f"params[{k!r}]"),
                                                               b, 0.0):
                raise CheckFailed(f"reinforce_step changed params[{k!r}] in place")
            if not isinstance(policy_after, dict) or not close(array(policy_after.get(k), b.shape,
                                                                     f"the policy's {k}"), b, 0.0):
                raise CheckFailed(f"the policy's {k} changed: never change the policy in place")
            if not close(mine[k], ref[k], 1e-5, 1e-4):
                raise CheckFailed(f"{k} differs from the reference")
        moved = max(float(np.abs(mine[k] - before[k]).max()) for k in before)
        if not moved > 1e-4:
            raise CheckFailed("the parameters did not move")


def _improve_problem(seed, num_goals):
    torch.manual_seed(seed)
    policy = GaussianMLPPolicy(2, 2, (64, 64))
    params = {k: v.detach() for k, v in parameters_of(policy).items()}
    tasks = NavigationDistribution().sample(num_goals, np.random.default_rng(seed))
    return policy, params, tasks, torch.Generator().manual_seed(seed)


@register
class ReinforceStepImproves(Check):
    """Behaviour: one step (alpha = 0.5, 20 trajectories per goal) raises the mean return of 200 fresh trajectories
    per goal on 4 goals, from a randomly initialised 64-64 policy."""

    name = "ex04.reinforce_step_improves"
    answers = ("reinforce_step",)
    ok = "one inner step improves the return: OK"

    def probe(self, reinforce_step, *, seed, num_goals=4, num_train=20, num_eval=200):
        policy, params, tasks, generator = _improve_problem(seed, num_goals)
        train = sample_episodes(policy, expand_params(params, num_goals), tasks, num_train, generator)
        return {"adapted": _params_result(reinforce_step(policy, params, train, 0.5, 0.99))}

    def verdict(self, got, *, seed, num_goals=4, num_train=20, num_eval=200):
        policy, params, tasks, generator = _improve_problem(seed, num_goals)
        mine = _adapted_arrays(field(got, "adapted"), params, num_goals, "reinforce_step")
        if not all(np.isfinite(v).all() for v in mine.values()):
            raise CheckFailed("the adapted parameters are not all finite numbers")
        adapted = {k: torch.as_tensor(v, dtype=params[k].dtype) for k, v in mine.items()}
        shared = expand_params(params, num_goals)
        sample_episodes(policy, shared, tasks, num_train, generator)  # the probe's training episodes: same noise next
        before = sample_episodes(policy, shared, tasks, num_eval, generator).episode_returns.mean().item()
        try:
            after = sample_episodes(policy, adapted, tasks, num_eval, generator).episode_returns.mean().item()
        except FloatingPointError:
            raise CheckFailed("the adapted policy produces non-finite actions: the step has diverged") from None
        # with the reference step the gain is 10 to 65 on seeds 0-5; the mean of 800 returns has a standard error
        # of about 1.5
        if not after > before + 5:
            raise CheckFailed(f"seed {seed}: mean return {before:.1f} before, {after:.1f} after one inner step: "
                              "one inner step did not raise the return (by more than 5)")
