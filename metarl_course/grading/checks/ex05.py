"""Checks of exercise 05 (RL²: the recurrent agent's input and a trial rollout); the references are
``RL2ActorCritic.encode``, ``RL2ActorCritic.action_features`` and ``rollout``, which the grader's sandbox does not
provide."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch.nn import functional as F

from metarl_course.grading.checks import Check, CheckFailed, array, close, field, register, tensor_data
from metarl_course.grading.checks.common import shape_text
from metarl_course.rl.policies import RL2ActorCritic
from metarl_course.tasks import BanditDistribution, BatchedBanditEnv, BatchedTabularMDPEnv
from metarl_course.tasks.tabular_mdp import TabularMDPDistribution

REFERENCES = {"metarl_course.rl.policies": ["RL2ActorCritic.encode", "RL2ActorCritic.action_features"],
              "metarl_course.rl.sampling": ["rollout"]}
"""The course functions this exercise asks the student to write: unavailable while grading."""


def make_model(seed, num_states, num_actions, hidden_size=16):
    """A seeded RL² actor-critic for discrete states and actions, its policy head re-drawn larger (the setup
    cell's ``make_model``)."""
    torch.manual_seed(seed)
    model = RL2ActorCritic(obs_dim=num_states, action_dim=num_actions, discrete=True, hidden_size=hidden_size)
    torch.nn.init.normal_(model.policy_head.weight, std=3.0 / hidden_size ** 0.5)
    return model


def _tensor_result(t) -> dict:
    """A tensor the student returned, as plain data: its type, dtype, shape and values."""
    if not isinstance(t, torch.Tensor):
        return {"type": type(t).__name__}
    return {"type": "Tensor", "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
            "value": tensor_data(t)}


def _allclose(a: np.ndarray, b: np.ndarray, atol: float = 1e-8, rtol: float = 1e-5) -> bool:
    """torch.allclose's test (its default tolerances)."""
    return close(a, b, atol, rtol)


# ------------------------------------------------------------------------------------------------ the input
def make_inputs(batch, num_states, num_actions, seed):
    """A case's states, previous actions, rewards and done flags, drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randint(num_states, (batch,), generator=g)
    actions = torch.randint(num_actions, (batch,), generator=g)
    rewards = torch.randn(batch, generator=g)
    dones = torch.rand(batch, generator=g) < 0.5
    return obs, actions, rewards, dones


SITUATIONS = (("start", "the start of a trial"), ("later", "a later step"))


@register
class RL2Input(Check):
    name = "ex05.rl2_input"
    answers = ("rl2_input",)
    ok = "inputs: OK"

    def probe(self, rl2_input, *, batch, num_states, num_actions, seed):
        obs, actions, rewards, dones = make_inputs(batch, num_states, num_actions, seed)
        args = {"start": (None, None, None), "later": (actions, rewards, dones)}
        return {key: _tensor_result(rl2_input(obs, *args[key], num_states, num_actions)) for key, _ in SITUATIONS}

    def verdict(self, got, *, batch, num_states, num_actions, seed):
        obs, actions, rewards, dones = make_inputs(batch, num_states, num_actions, seed)
        model = make_model(seed, num_states, num_actions, hidden_size=4)
        width = num_states + num_actions + 2
        ref_args = {"start": (torch.zeros(batch, num_actions), torch.zeros(batch), torch.zeros(batch)),
                    "later": (F.one_hot(actions, num_actions).float(), rewards, dones.float())}
        for key, name in SITUATIONS:
            x = field(got, key)
            if field(x, "type") != "Tensor" or field(x, "shape") != [batch, width]:
                raise CheckFailed(f"at {name}: expected shape ({batch}, {width}), got "
                                  f"{shape_text(x['shape']) if x['type'] == 'Tensor' else x['type']}")
            if field(x, "dtype") != "float32":
                raise CheckFailed(f"at {name}: expected float32, got {x['dtype']}")
            x = array(field(x, "value"), (batch, width), f"the input at {name}")
            ref = model.encode(obs, *ref_args[key]).double().numpy()
            for cols, part in ((slice(0, num_states), "the one-hot state"),
                               (slice(num_states, num_states + num_actions), "the one-hot previous action"),
                               (slice(width - 2, width - 1), "the previous reward"),
                               (slice(width - 1, width), "the previous done flag")):
                if not _allclose(x[:, cols], ref[:, cols]):
                    raise CheckFailed(f"at {name}: {part} (columns {cols.start}:{cols.stop}) differs")


# ------------------------------------------------------------------------------------------------ a trial
def bandit_problem(seed, num_trials, num_arms, num_pulls):
    model = make_model(seed, 1, num_arms)
    env = BatchedBanditEnv(BanditDistribution(num_arms=num_arms).sample(num_trials, np.random.default_rng(seed)),
                           horizon=num_pulls, device="cpu")
    return model, env


def mdp_problem(seed, num_trials, episodes_per_trial, horizon, hidden_size=16):
    tasks = TabularMDPDistribution().sample(num_trials, np.random.default_rng(seed))
    model = make_model(seed, tasks[0].num_states, tasks[0].num_actions, hidden_size)
    env = BatchedTabularMDPEnv(tasks, horizon=horizon, episodes_per_trial=episodes_per_trial, device="cpu")
    return model, env


def _play(play_trial, model, env, seed) -> dict:
    result = play_trial(model, env, torch.Generator().manual_seed(seed), seed)
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        return {"type": type(result).__name__, "length": len(result) if isinstance(result, (tuple, list)) else None}
    inputs, actions, rewards = result
    return {"type": type(result).__name__, "length": 3, "inputs": _tensor_result(inputs),
            "actions": _tensor_result(actions), "rewards": _tensor_result(rewards)}


def _reference(model, env, seed, reset_hidden_every_episode=False) -> dict:
    from metarl_course.rl.sampling import rollout

    ref = rollout(model, env, generator=torch.Generator().manual_seed(seed), seed=seed,
                  reset_hidden_every_episode=reset_hidden_every_episode)
    return {"inputs": ref.inputs.double().numpy(), "actions": ref.actions.numpy(),
            "rewards": ref.rewards.double().numpy()}


@lru_cache(maxsize=16)
def _bandit_reference(seed, num_trials, num_arms, num_pulls):
    model, env = bandit_problem(seed, num_trials, num_arms, num_pulls)
    return _reference(model, env, seed), env.trial_length, env.num_envs, env.horizon, model.input_size


@lru_cache(maxsize=16)
def _mdp_reference(seed, num_trials, episodes_per_trial, horizon, hidden_size=16):
    model, env = mdp_problem(seed, num_trials, episodes_per_trial, horizon, hidden_size)
    return (_reference(model, env, seed), _reference(model, env, seed, reset_hidden_every_episode=True),
            env.trial_length, env.num_envs, env.horizon, model.input_size)


def _trial_arrays(got, L: int, B: int, input_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The student's (inputs, actions, rewards) as arrays of the right shapes, or CheckFailed."""
    if field(got, "length") != 3:
        length = got["length"]
        raise CheckFailed("return the tuple (inputs, actions, rewards), got a "
                          f"{field(got, 'type')}" + (f" of length {length}" if length is not None else ""))
    parts = {name: field(got, name) for name in ("inputs", "actions", "rewards")}
    for name, part in parts.items():
        if not isinstance(part, dict) or part.get("type") != "Tensor":
            raise CheckFailed(f"{name} must be a tensor, got a {part.get('type') if isinstance(part, dict) else part}")
    if field(parts["inputs"], "shape") != [L, B, input_size]:
        raise CheckFailed(f"inputs: expected shape {(L, B, input_size)}, got {shape_text(parts['inputs']['shape'])}")
    if field(parts["actions"], "shape") != [L, B] or field(parts["rewards"], "shape") != [L, B]:
        raise CheckFailed(f"actions and rewards must be (L, B) = {(L, B)}, got "
                          f"{shape_text(parts['actions']['shape'])} and {shape_text(parts['rewards']['shape'])}")
    if field(parts["inputs"], "dtype") != "float32":
        raise CheckFailed(f"inputs: expected float32, got {parts['inputs']['dtype']}")
    inputs = array(field(parts["inputs"], "value"), (L, B, input_size), "inputs")
    actions = array(field(parts["actions"], "value"), (L, B), "actions")
    rewards = array(field(parts["rewards"], "value"), (L, B), "rewards")
    return inputs, actions, rewards


def _compare_trial(mine, ref: dict, horizon: int) -> None:
    """The same inputs, actions and rewards as the package's rollout, or CheckFailed saying where not."""
    inputs, actions, rewards = mine
    if not _allclose(inputs, ref["inputs"], atol=1e-6):
        bad = ~(np.abs(inputs - ref["inputs"]) <= 1e-6 + 1e-5 * np.abs(ref["inputs"]))  # NaN counts as different
        t = int(np.nonzero(bad.any(axis=(1, 2)))[0][0])
        b = int(np.nonzero(bad[t].any(axis=1))[0][0])
        raise CheckFailed(f"the inputs first differ at step {t} (episode {t // horizon}, step {t % horizon} of it), "
                          f"in trial {b}: {inputs[t, b].tolist()} vs {ref['inputs'][t, b].tolist()}; if that is "
                          "after an episode boundary, check that the hidden state is carried across the trial's "
                          "episodes")
    # the actions as .long() reads them: finite numbers, truncated towards zero
    if not (np.isfinite(actions).all() and np.array_equal(np.trunc(actions), ref["actions"])):
        raise CheckFailed("the actions differ: run the GRU one step at a time from model.initial_hidden(B) and draw "
                          "with one model.sample(policy_out[0], generator) call per step")
    if not _allclose(rewards.astype(np.float32).astype(np.float64), ref["rewards"]):
        raise CheckFailed("the rewards differ")


@register
class TrialBandit(Check):
    name = "ex05.trial_bandit"
    answers = ("play_trial",)
    ok = "bandit trials: OK"

    def probe(self, play_trial, *, seed, num_trials, num_arms, num_pulls):
        model, env = bandit_problem(seed, num_trials, num_arms, num_pulls)
        return _play(play_trial, model, env, seed)

    def verdict(self, got, *, seed, num_trials, num_arms, num_pulls):
        ref, L, B, horizon, input_size = _bandit_reference(seed, num_trials, num_arms, num_pulls)
        _compare_trial(_trial_arrays(got, L, B, input_size), ref, horizon)


@register
class TrialEpisodes(Check):
    name = "ex05.trial_episodes"
    answers = ("play_trial",)
    ok = "trials of several episodes: OK"

    def probe(self, play_trial, *, seed, num_trials, episodes_per_trial, horizon, hidden_size=16):
        model, env = mdp_problem(seed, num_trials, episodes_per_trial, horizon, hidden_size)
        return _play(play_trial, model, env, seed)

    def verdict(self, got, *, seed, num_trials, episodes_per_trial, horizon, hidden_size=16):
        ref, wrong, L, B, H, input_size = _mdp_reference(seed, num_trials, episodes_per_trial, horizon, hidden_size)
        mine = _trial_arrays(got, L, B, input_size)
        if _allclose(mine[0], wrong["inputs"], atol=1e-6):
            raise CheckFailed("your trial resets the previous action, reward and done (and so, likely, the hidden "
                              "state) at every episode; reset them once per trial")
        _compare_trial(mine, ref, H)
        starts = mine[0][horizon::horizon, :, -1]  # the done flag at the first step of episodes 2, 3, ...
        if not (starts == 1).all():
            raise CheckFailed("the first step of every later episode must see done = 1 for the previous step")
