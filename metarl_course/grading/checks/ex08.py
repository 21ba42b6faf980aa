"""Checks of exercise 08 (task inference on GridNavi: the exact belief, and the two terms of VariBAD's ELBO); the
references are ``goal_posterior`` (``metarl_course.rl.gridworld_bayes``) and ``gaussian_kl``,
``reward_reconstruction`` and ``belief_kl`` (``metarl_course.rl.varibad``), which the grader's sandbox does not
provide. The inputs are built here and in the notebook's setup cell the same way (``random_trajectory``,
``gaussians``, ``elbo_inputs``); nothing here needs the references but the verdicts."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from metarl_course.grading.checks import Check, CheckFailed, array, close, field, register, tensor_data
from metarl_course.grading.checks.common import shape_text
from metarl_course.tasks.gridworld import (GOAL_REWARD, HORIZON, NUM_ACTIONS, NUM_CELLS, START, STEP_REWARD,
                                           GridNaviDistribution, move)

REFERENCES = {"metarl_course.rl.gridworld_bayes": ["goal_posterior"],
              "metarl_course.rl.varibad": ["gaussian_kl", "reward_reconstruction", "belief_kl"]}
"""The course functions this exercise asks the student to write: unavailable while grading."""
GOAL_CELLS = GridNaviDistribution().goal_cells
"""The prior's 21 goal cells (all but the start's 2x2 block), sorted."""
POSTERIOR_TOL = 1e-12
"""A posterior is 1 / (number of candidates) on each candidate: computed any sensible way, it agrees to 1e-15."""
KL_TOL = dict(atol=1e-10, rtol=1e-9)
"""gaussian_kl and belief_kl on float64 inputs: the same formula in another order agrees to about 1e-14."""
BCE_TOL = dict(atol=1e-6, rtol=1e-5)
"""reward_reconstruction: loose enough for float32 targets (which make PyTorch's BCE compute in float32)."""
GRAD_TOL = dict(atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------ the inputs
def random_trajectory(seed, steps, goal=None, horizon=HORIZON):
    """A random walk of ``steps`` steps on GridNavi (uniform actions; back to the start every ``horizon`` steps,
    as a trial's episodes are) and its rewards, for a goal drawn from ``seed`` unless given.

    Returns:
        positions ``(steps, 2)`` int64 (the cell after each step), rewards ``(steps,)`` float32 (+1 on the goal,
        -0.1 elsewhere), and the goal.
    """
    rng = np.random.default_rng(seed)
    goal = tuple(int(v) for v in goal) if goal is not None else GOAL_CELLS[rng.integers(len(GOAL_CELLS))]
    cell, positions, rewards = START, [], []
    for t in range(steps):
        if t % horizon == 0:
            cell = START
        cell = move(cell, int(rng.integers(NUM_ACTIONS)))
        positions.append(cell)
        rewards.append(GOAL_REWARD if cell == goal else STEP_REWARD)
    return np.array(positions, dtype=np.int64).reshape(-1, 2), np.array(rewards, dtype=np.float32), goal


def gaussians(seed, shape, scale=1.0):
    """Two seeded diagonal Gaussians of ``shape`` (float64): mean, logvar, mean0, logvar0."""
    g = torch.Generator().manual_seed(seed)
    mean, mean0 = (scale * torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(2))
    logvar, logvar0 = (scale * torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(2))
    return mean, logvar, mean0, logvar0


def elbo_inputs(seed, T, B, num_cells=NUM_CELLS * NUM_CELLS):
    """Seeded inputs of the reconstruction term: logits ``(T + 1, B, num_cells)`` float64, next_cells ``(T, B)``
    long and rewards ``(T, B)`` float32 (+1 where the cell is the trial's goal, a third of the steps)."""
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(T + 1, B, num_cells, generator=g, dtype=torch.float64)
    goals = torch.randint(num_cells, (B,), generator=g)
    cells = torch.randint(num_cells, (T, B), generator=g)
    next_cells = torch.where(torch.rand(T, B, generator=g) < 1 / 3, goals.expand(T, B), cells)
    rewards = torch.where(next_cells == goals, GOAL_REWARD, STEP_REWARD).float()
    return logits, next_cells, rewards


def beliefs(seed, T, B, latent_dim):
    """Seeded beliefs t = 0 .. T: means and logvars ``(T + 1, B, latent_dim)`` float64."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(T + 1, B, latent_dim, generator=g, dtype=torch.float64)
    logvars = 0.5 * torch.randn(T + 1, B, latent_dim, generator=g, dtype=torch.float64)
    return means, logvars


def weights(seed, shape):
    """Positive weights of a result's entries, so that one backward pass tells every entry's gradient apart."""
    g = torch.Generator().manual_seed(10_000 + seed)
    return 0.5 + torch.rand(shape, generator=g, dtype=torch.float64)


# ------------------------------------------------------------------------------------------------ helpers
def _array_result(x) -> dict:
    """What the student returned, as plain data: its type and, when it is an array of numbers, shape and values."""
    try:
        a = np.asarray(tensor_data(x), dtype=np.float64)
    except Exception:  # noqa: BLE001 - anything that is not an array of numbers
        return {"type": type(x).__name__}
    return {"type": type(x).__name__, "shape": list(a.shape), "value": a.tolist()}


def _result_array(got, shape: tuple, what: str) -> np.ndarray:
    if not isinstance(got, dict) or "shape" not in got:
        kind = got.get("type") if isinstance(got, dict) else got
        raise CheckFailed(f"{what}: return an array of shape {shape}, got a {kind}")
    if tuple(got["shape"]) != tuple(shape):
        raise CheckFailed(f"{what}: expected shape {tuple(shape)}, got {shape_text(got['shape'])}")
    return array(field(got, "value"), shape, what)


def _tensor_result(t, inputs: list[torch.Tensor], w: torch.Tensor | None) -> dict:
    """A tensor the student returned, as plain data, with the gradients of ``(t * w).sum()`` w.r.t. ``inputs``
    (``None`` when ``t`` is not differentiable w.r.t. them)."""
    if not isinstance(t, torch.Tensor):
        return {"type": type(t).__name__}
    out = {"type": "Tensor", "shape": list(t.shape), "value": tensor_data(t)}
    if w is not None and tuple(t.shape) == tuple(w.shape):
        if t.requires_grad:
            grads = torch.autograd.grad((t * w.to(t.dtype)).sum(), inputs, allow_unused=True)
            out["grads"] = [None if g is None else tensor_data(g) for g in grads]
        else:
            out["grads"] = None
    return out


def _tensor_array(got, shape: tuple, what: str) -> np.ndarray:
    if field(got, "type") != "Tensor":
        raise CheckFailed(f"{what}: return a torch tensor, got a {got['type']}")
    if tuple(field(got, "shape")) != tuple(shape):
        raise CheckFailed(f"{what}: expected shape {tuple(shape)}, got {shape_text(got['shape'])}")
    return array(field(got, "value"), shape, what)


def _first_difference(a: np.ndarray, b: np.ndarray) -> str:
    i = np.unravel_index(int(np.argmax(np.where(np.isnan(a), np.inf, np.abs(a - b)))), a.shape)
    index = ", ".join(str(int(k)) for k in i)
    return f"[{index}] is {a[i]:.6g}, expected {b[i]:.6g}"


def _check_grads(got, refs: list[np.ndarray], names: list[str], what: str) -> None:
    grads = field(got, "grads")
    if grads is None:
        raise CheckFailed(f"{what} is not differentiable: compute it with torch operations on the inputs "
                          "(no .detach(), .item(), numpy or torch.no_grad())")
    if not isinstance(grads, list) or len(grads) != len(refs):
        raise CheckFailed(f"{what}: its gradients could not be read")
    for g, r, name in zip(grads, refs, names):
        if g is None:
            raise CheckFailed(f"{what} does not depend on {name}")
        g = array(g, r.shape, f"the gradient w.r.t. {name}")
        if not close(g, r, **GRAD_TOL):
            raise CheckFailed(f"{what}: the gradient w.r.t. {name} differs from the reference's: "
                              f"{_first_difference(g, r)}")


# ------------------------------------------------------------------------------------------------ 1. the belief
def _prefix_text(t: int, positions: np.ndarray, rewards: np.ndarray) -> str:
    found = [j + 1 for j in range(t) if rewards[j] > 0]
    if t == 0:
        return "before any step (the prior)"
    tail = (f", the goal {tuple(int(v) for v in positions[found[0] - 1])} found at step {found[0]}" if found else
            ", goal not found yet")
    return f"after {t} step(s){tail}"


@lru_cache(maxsize=64)
def _reference_posteriors(seed, steps, goal):
    from metarl_course.rl.gridworld_bayes import goal_posterior

    positions, rewards, _ = random_trajectory(seed, steps, goal)
    return [goal_posterior(positions[:t], rewards[:t]) for t in range(steps + 1)]


def _goal_key(goal):
    return None if goal is None else tuple(goal)


@register
class GoalPosterior(Check):
    """The posterior after every prefix of a random walk (the empty one, the prior, included) equals the course's
    exact ``goal_posterior``."""

    name = "ex08.goal_posterior"
    answers = ("goal_posterior",)
    ok = "goal posterior: OK"

    def probe(self, goal_posterior, *, seed, steps, goal=None):
        positions, rewards, _ = random_trajectory(seed, steps, goal)
        return [_array_result(goal_posterior(positions[:t].copy(), rewards[:t].copy())) for t in range(steps + 1)]

    def verdict(self, got, *, seed, steps, goal=None):
        refs = _reference_posteriors(seed, steps, _goal_key(goal))
        positions, rewards, _ = random_trajectory(seed, steps, goal)
        if not isinstance(got, list) or len(got) != len(refs):
            raise CheckFailed("the posteriors could not be read")
        for t, (mine, ref) in enumerate(zip(got, refs)):
            when = _prefix_text(t, positions, rewards)
            p = _result_array(mine, ref.shape, f"{when}, the posterior")
            if not close(p, ref, POSTERIOR_TOL):
                candidates = int((ref > 0).sum())
                raise CheckFailed(f"{when} ({candidates} candidate cell(s) left): p{_first_difference(p, ref)}")


@register
class GoalPosteriorProperties(Check):
    """Behaviour on whole trials (4 episodes of 15 steps) of many random walks: every posterior is a distribution
    (non-negative, sums to 1), the prior is uniform over the 21 goal cells, a cell visited with reward -0.1 has
    probability 0, and once a +1 was seen the posterior is a point mass on that cell."""

    name = "ex08.goal_posterior_properties"
    answers = ("goal_posterior",)
    ok = "goal posterior behaviour: OK"

    def probe(self, goal_posterior, *, seed, num_walks, steps=60):
        out = []
        for k in range(num_walks):
            positions, rewards, _ = random_trajectory(seed + k, steps)
            out.append([_array_result(goal_posterior(positions[:t].copy(), rewards[:t].copy()))
                        for t in range(steps + 1)])
        return out

    def verdict(self, got, *, seed, num_walks, steps=60):
        if not isinstance(got, list) or len(got) != num_walks:
            raise CheckFailed("the posteriors could not be read")
        prior = np.zeros((NUM_CELLS, NUM_CELLS))
        for c in GOAL_CELLS:
            prior[c] = 1.0 / len(GOAL_CELLS)
        for k, walk in enumerate(got):
            positions, rewards, goal = random_trajectory(seed + k, steps)
            if not isinstance(walk, list) or len(walk) != steps + 1:
                raise CheckFailed("the posteriors could not be read")
            for t, mine in enumerate(walk):
                when = f"walk {k + 1} (goal {goal}), {_prefix_text(t, positions, rewards)}"
                p = _result_array(mine, (NUM_CELLS, NUM_CELLS), f"{when}, the posterior")
                if not np.all(np.isfinite(p)) or p.min() < -POSTERIOR_TOL:
                    raise CheckFailed(f"{when}: the posterior has negative or non-finite entries")
                if not abs(p.sum() - 1.0) <= 1e-9:
                    raise CheckFailed(f"{when}: the posterior sums to {p.sum():.6g}, not 1 (normalise it)")
                if t == 0 and not close(p, prior, POSTERIOR_TOL):
                    raise CheckFailed(f"{when}: expected 1/{len(GOAL_CELLS)} on each of the {len(GOAL_CELLS)} goal "
                                      f"cells and 0 on the start's 2x2 block; p{_first_difference(p, prior)}")
                for j in range(t):
                    cell = tuple(int(v) for v in positions[j])
                    if rewards[j] < 0 and abs(p[cell]) > POSTERIOR_TOL:
                        raise CheckFailed(f"{when}: cell {cell} gave reward -0.1 at step {j + 1}, so it is not the "
                                          f"goal, but p{list(cell)} = {p[cell]:.6g}")
                found = [j for j in range(t) if rewards[j] > 0]
                if found and abs(p[goal] - 1.0) > POSTERIOR_TOL:
                    raise CheckFailed(f"{when}: the +1 at step {found[0] + 1} says the goal is {goal}, so "
                                      f"p{list(goal)} must be 1, got {p[goal]:.6g}")


# ------------------------------------------------------------------------------------------------ 2. the KL
def _kl_inputs(seed, shape, scale):
    return [x.requires_grad_() for x in gaussians(seed, tuple(shape), scale)]


KL_NAMES = ["mean", "logvar", "mean0", "logvar0"]


@lru_cache(maxsize=32)
def _reference_kl(seed, shape, scale):
    from metarl_course.rl.varibad import gaussian_kl

    inputs = _kl_inputs(seed, shape, scale)
    kl = gaussian_kl(*inputs)
    grads = torch.autograd.grad((kl * weights(seed, kl.shape)).sum(), inputs)
    return kl.detach().numpy(), [g.numpy() for g in grads]


@register
class GaussianKL(Check):
    """Values and gradients of the student's KL between seeded diagonal Gaussians equal the course's."""

    name = "ex08.gaussian_kl"
    answers = ("gaussian_kl",)
    ok = "Gaussian KL: OK"

    def probe(self, gaussian_kl, *, seed, shape, scale=1.0):
        inputs = _kl_inputs(seed, shape, scale)
        return _tensor_result(gaussian_kl(*inputs), inputs, weights(seed, tuple(shape[:-1])))

    def verdict(self, got, *, seed, shape, scale=1.0):
        ref, ref_grads = _reference_kl(seed, tuple(shape), scale)
        what = f"KL for inputs of shape {tuple(shape)}"
        kl = _tensor_array(got, ref.shape, what + " (summed over the last dimension)")
        if not close(kl, ref, **KL_TOL):
            raise CheckFailed(f"{what}: the KL{_first_difference(kl, ref)}")
        _check_grads(got, ref_grads, KL_NAMES, f"the {what}")


@register
class GaussianKLProperties(Check):
    """Behaviour: KL(q || q) = 0; the KL is never negative; KL(N(1, 1) || N(0, 1)) = 1/2 per dimension, also
    against a standard normal given as vectors of shape (L,) (broadcast against a batch)."""

    name = "ex08.gaussian_kl_properties"
    answers = ("gaussian_kl",)
    ok = "Gaussian KL behaviour: OK"

    def probe(self, gaussian_kl, *, seed, batch, latent_dim, scale=3.0):
        mean, logvar, mean0, logvar0 = gaussians(seed, (batch, latent_dim), scale)
        ones, zeros = torch.ones(batch, latent_dim, dtype=torch.float64), torch.zeros(latent_dim, dtype=torch.float64)
        return {"self": _array_result(gaussian_kl(mean, logvar, mean, logvar)),
                "random": _array_result(gaussian_kl(mean, logvar, mean0, logvar0)),
                "unit": _array_result(gaussian_kl(ones, torch.zeros_like(ones), zeros, zeros))}

    def verdict(self, got, *, seed, batch, latent_dim, scale=3.0):
        shape = (batch,)
        same = _result_array(field(got, "self"), shape, "KL(q || q)")
        if not np.all(np.abs(same) <= 1e-12):
            raise CheckFailed(f"KL(q || q) must be 0 for every q; got {same[np.argmax(np.abs(same))]:.6g} "
                              "(check the constant term)")
        kl = _result_array(field(got, "random"), shape, "the KL between random Gaussians")
        if not np.all(np.isfinite(kl)) or kl.min() < -1e-12:
            raise CheckFailed(f"a KL divergence is never negative; got {kl.min():.6g} for random Gaussians "
                              f"(spread {scale})")
        unit = _result_array(field(got, "unit"), shape, "KL(N(1, I) || N(0, I)) against mean0 = logvar0 = "
                             f"zeros({latent_dim})")
        if not close(unit, np.full(shape, 0.5 * latent_dim), 1e-12):
            raise CheckFailed(f"KL(N(1, I) || N(0, I)) in {latent_dim} dimensions is {0.5 * latent_dim}; got "
                              f"{unit[0]:.6g} (the standard normal given as zeros({latent_dim}): broadcast it)")


# ------------------------------------------------------------------------------------------------ 3. the ELBO
@lru_cache(maxsize=32)
def _reference_reconstruction(seed, T, B, num_cells):
    from metarl_course.rl.varibad import reward_reconstruction

    logits, next_cells, rewards = elbo_inputs(seed, T, B, num_cells)
    logits.requires_grad_()
    value = reward_reconstruction(logits, next_cells, rewards, GOAL_REWARD)
    (grad,) = torch.autograd.grad((value * weights(seed, (B,))).sum(), [logits])
    return value.detach().numpy(), grad.numpy()


@register
class RewardReconstruction(Check):
    """The reconstruction term (minus the log-likelihood of every reward of the trial, under every belief) and its
    gradient w.r.t. the decoder's logits equal the course's ``reward_reconstruction``."""

    name = "ex08.reward_reconstruction"
    answers = ("reward_reconstruction",)
    ok = "reward reconstruction: OK"

    def probe(self, reward_reconstruction, *, seed, T, B, num_cells=NUM_CELLS * NUM_CELLS):
        logits, next_cells, rewards = elbo_inputs(seed, T, B, num_cells)
        logits.requires_grad_()
        return _tensor_result(reward_reconstruction(logits, next_cells, rewards), [logits], weights(seed, (B,)))

    def verdict(self, got, *, seed, T, B, num_cells=NUM_CELLS * NUM_CELLS):
        ref, ref_grad = _reference_reconstruction(seed, T, B, num_cells)
        what = f"the reconstruction term (T={T}, B={B}, {num_cells} cells)"
        value = _tensor_array(got, (B,), what + ", one number per trial")
        if not close(value, ref, **BCE_TOL):
            hint = ""
            if np.all(np.isfinite(value)) and np.all(value > 0):
                ratio = float(np.median(ref / value))
                for factor, why in (((T + 1) * T, "a mean over beliefs and steps instead of a sum"),
                                    (T, "a mean over the steps j instead of a sum"),
                                    (T + 1, "a mean over the beliefs t instead of a sum")):
                    if abs(ratio - factor) < 1e-3 * factor:
                        hint = f" (it is {factor} times smaller: {why}?)"
            raise CheckFailed(f"{what}: value{_first_difference(value, ref)}{hint}")
        _check_grads(got, [ref_grad], ["logits"], what)


BELIEF_NAMES = ["means", "logvars"]


@lru_cache(maxsize=32)
def _reference_belief_kl(seed, T, B, latent_dim):
    from metarl_course.rl.varibad import belief_kl

    inputs = [x.requires_grad_() for x in beliefs(seed, T, B, latent_dim)]
    value = belief_kl(*inputs)
    grads = torch.autograd.grad((value * weights(seed, (B,))).sum(), inputs)
    return value.detach().numpy(), [g.numpy() for g in grads]


@register
class BeliefKL(Check):
    """The KL chain (each belief to the one before it, the first to N(0, I), summed over time) and its gradients
    equal the course's ``belief_kl``."""

    name = "ex08.belief_kl"
    answers = ("belief_kl",)
    ok = "belief KL: OK"

    def probe(self, belief_kl, *, seed, T, B, latent_dim):
        inputs = [x.requires_grad_() for x in beliefs(seed, T, B, latent_dim)]
        return _tensor_result(belief_kl(*inputs), inputs, weights(seed, (B,)))

    def verdict(self, got, *, seed, T, B, latent_dim):
        ref, ref_grads = _reference_belief_kl(seed, T, B, latent_dim)
        what = f"the KL chain of {T + 1} beliefs (B={B}, latent_dim={latent_dim})"
        value = _tensor_array(got, (B,), what + ", one number per trial")
        if not close(value, ref, **KL_TOL):
            raise CheckFailed(f"{what}: value{_first_difference(value, ref)}")
        _check_grads(got, ref_grads, BELIEF_NAMES, what)

