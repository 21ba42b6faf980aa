"""Exact reference agents on GridNavi: Bayes-optimal, told the goal, posterior sampling, random play.

The task (:mod:`metarl_course.tasks.gridworld`, the rules of ``lmzintgraf/varibad``,
``environments/navigation/gridworld.py``): the goal is uniform over the prior's
goal cells (21 of the 5x5 grid), a trial is E = 4 episodes of H = 15 steps from
the corner (0, 0) with the same goal, the reward is +1 on the goal and -0.1
elsewhere, and the goal does not end the episode (the agent can stay on it).

**The belief is a set.** The prior is uniform and the rewards are
deterministic, so after any history the posterior is uniform over the goal
cells not yet ruled out: a cell the agent has stood on with reward -0.1 is
ruled out, and a reward of +1 reveals the goal (:func:`goal_posterior`). A
belief is therefore a *set of candidate cells*, and there are few of them.

**The Bayes-optimal agent plans a walk.** Until it finds the goal, everything
the agent observes is determined by its own actions (its cell; reward -0.1),
so a policy is, until the goal turns up, one fixed sequence of actions: a
walk through the trial's episodes. Once the goal is found the best play is
obvious: stay on it, and in later episodes walk straight to it. The expected
return of a walk depends only on *when* it first visits each candidate, and
:class:`BayesOptimalGridNavi` finds the best walk exactly:

* within an episode, a forward dynamic programme over (cell, candidate set,
  step) keeps, for each reachable state, the best return collected so far
  (``_frontier``). Three exact prunings keep it small: staying put before the
  goal is found is never better than moving (a stay can be moved to the end of
  the episode, which makes every later discovery earlier); a state reached
  again later with no more collected return is dominated by its earlier self;
  and a walk with no candidate left within reach can only stop;
* across episodes, the value of the set left at the end of an episode is found
  by the same search, recursively, with memoisation over (candidate set,
  episode). A branch-and-bound keeps that cheap: the return of the agent told
  the goal bounds every continuation from above, and it is *attained* when the
  candidates left lie on one monotone (up/right) path from the start (a
  "chain": one shortest walk visits each candidate exactly when the told-the-goal
  agent would reach it), so most sets need no search at all.

All returns are computed in integer tenths (+10 and -1 per step), so the values
are exact rationals; the per-episode returns are then re-derived by replaying
the chosen walks against every goal (:meth:`BayesOptimalGridNavi.episode_returns`).

**The references** (:func:`reference_returns`, one :class:`GridNaviReference`
each, expected returns per episode of the trial):

* ``bayes_optimal``: above; exact.
* ``oracle``: told the goal, walks a shortest path and stays: exact, closed form.
* ``posterior_sampling``: at the start of every episode it samples a goal from
  the exact posterior (uniform over the candidates) and walks to it by a
  shortest path (at each step, a uniformly random one of the moves that bring
  it closer); it updates the posterior at every step. Within an episode it
  *commits* to its sample, as PSRL (Osband et al. 2013) and PEARL (Rakelly et
  al. 2019) do: when it reaches the sampled cell and the goal is not there, it
  stays there until the episode ends (the optimal policy of the sampled task).
  The one exception: if it steps on the true goal on the way (+1), it stays on
  it (the posterior is then a point mass, so any sample is the goal). With
  ``within_episode="resample"`` it instead draws a new sample from the updated
  posterior as soon as its sample is ruled out and walks on (VariBAD's figure 1
  illustrates posterior sampling this way). Committed: exact expectation
  over the goal, the samples and the tie-breaks (the candidate sets possible
  at each episode's start, evaluated backwards, all at once per episode).
  Re-sampling: Monte Carlo with a confidence interval
  (:func:`monte_carlo_reference`); its candidate sets change mid-episode and
  the exact recursion took over 10 minutes.
* ``random``: uniform random actions (all five): exact, by dynamic programming
  over the distribution of the agent's cell.

Example:
    >>> refs = reference_returns()  # about a second
    >>> [round(r, 2) for r in refs["bayes_optimal"].episode_returns], round(refs["oracle"].trial_return, 2)
    ([4.0, 11.07, 11.07, 11.07], 44.29)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from metarl_course.evaluation import TrialEvaluation, mean_ci
from metarl_course.tasks.distribution import check_count
from metarl_course.tasks.gridworld import (
    EPISODES_PER_TRIAL,
    GOAL_REWARD,
    HORIZON,
    NUM_ACTIONS,
    START,
    STEP_REWARD,
    BatchedGridNaviEnv,
    Cell,
    GridNaviDistribution,
    cell_index,
    move,
)

GOAL_TENTHS, STEP_TENTHS = round(GOAL_REWARD * 10), round(STEP_REWARD * 10)
"""The rewards in tenths, so that the dynamic programmes add integers (exact)."""
assert GOAL_TENTHS == GOAL_REWARD * 10 and STEP_TENTHS == STEP_REWARD * 10, "rewards must be multiples of 0.1"

REFERENCE_NAMES = ("bayes_optimal", "oracle", "posterior_sampling", "random")
"""The agents of :func:`reference_returns` and :func:`play_reference`."""
WITHIN_EPISODE = ("commit", "resample")
"""What posterior sampling does when its sampled goal is ruled out mid-episode (module docstring)."""


# --------------------------------------------------------------------------------------------- the problem
class _Problem:
    """The geometry of one (distribution, horizon, episodes): cells as bit indices ``x * n + y``, moves, oracle."""

    def __init__(self, distribution: GridNaviDistribution, horizon: int, episodes: int) -> None:
        if not isinstance(distribution, GridNaviDistribution):
            raise TypeError(f"distribution must be a GridNaviDistribution, got {type(distribution).__name__}")
        self.distribution = distribution
        self.n = n = distribution.num_cells
        self.H = check_count("horizon", horizon)
        self.E = check_count("episodes", episodes)
        self.coords: list[Cell] = [(i // n, i % n) for i in range(n * n)]
        self.origin = cell_index(START, n)
        self.prior = _mask(cell_index(c, n) for c in distribution.goal_cells)
        # moves[i]: (action, next cell) of the four moves that leave cell i (staying is never needed: see _frontier)
        self.moves = [[(a, cell_index(move(c, a, n), n)) for a in range(1, NUM_ACTIONS) if move(c, a, n) != c]
                      for c in self.coords]
        self.oracle = [oracle_episode_tenths(x + y, self.H) for x, y in self.coords]
        # within[i][r]: the cells at most r steps from cell i (r = 0 .. H)
        self.within = [[_mask(j for j, (c, d) in enumerate(self.coords) if abs(a - c) + abs(b - d) <= r)
                        for r in range(self.H + 1)] for a, b in self.coords]

    def mask_of(self, cells: Iterable[Cell]) -> int:
        """The candidate set ``cells`` as a bit mask; a cell outside the prior's goal cells is an error."""
        mask = 0
        for cell in cells:
            cell = (int(cell[0]), int(cell[1]))
            if cell not in self.distribution.goal_cells:
                raise ValueError(f"candidate {cell} is not one of the prior's goal cells; the posterior can only "
                                 "keep cells of distribution.goal_cells.")
            mask |= 1 << cell_index(cell, self.n)
        if not mask:
            raise ValueError("the candidate set is empty; it always holds at least the true goal.")
        return mask


def _mask(indices: Iterable[int]) -> int:
    mask = 0
    for i in indices:
        mask |= 1 << i
    return mask


def _bits(mask: int) -> list[int]:
    """The indices of the set bits of ``mask``, ascending."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def oracle_episode_tenths(distance: int, horizon: int = HORIZON) -> int:
    """Return (in tenths) of one episode of the agent told a goal ``distance`` steps away: walk there, stay.

    ``distance - 1`` steps at -0.1, then +1 on each of the ``horizon - distance + 1`` steps on the goal;
    a goal out of reach (``distance > horizon``) gives -0.1 on every step.
    """
    if distance > horizon:
        return STEP_TENTHS * horizon
    return STEP_TENTHS * (distance - 1) + GOAL_TENTHS * (horizon - distance + 1)


def _toward(cell: Cell, goal: Cell) -> list[int]:
    """The actions that bring ``cell`` one step closer to ``goal`` (empty when there): right/left, up/down."""
    actions = []
    if goal[0] != cell[0]:
        actions.append(2 if goal[0] > cell[0] else 4)
    if goal[1] != cell[1]:
        actions.append(1 if goal[1] > cell[1] else 3)
    return actions


# --------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class GridNaviReference:
    """Expected return per episode of one reference agent over a GridNavi trial (goal drawn from the prior)."""

    name: str
    """One of :data:`REFERENCE_NAMES` (``posterior_sampling_resample`` for the re-sampling variant)."""
    episode_returns: tuple[float, ...]
    """Expected return of episode 1, 2, ..., E of the trial."""
    exact: bool
    """True: exact expectations; False: Monte Carlo means (see the half-widths)."""
    method: str
    """How the numbers were computed."""
    episode_ci95: tuple[float, ...] | None = None
    """Monte Carlo only: half-width of each episode's 95% confidence interval."""
    trial_ci95: float | None = None
    """Monte Carlo only: half-width of the trial return's 95% confidence interval."""

    @property
    def trial_return(self) -> float:
        """Expected return of the whole trial (E episodes)."""
        return float(sum(self.episode_returns))


def _tenths_per_goal(tenths: Sequence[Fraction | float], num_goals: int) -> tuple[float, ...]:
    return tuple(float(Fraction(v) / (10 * num_goals)) if isinstance(v, int | Fraction)
                 else float(v) / (10 * num_goals) for v in tenths)


# --------------------------------------------------------------------------------------------- Bayes-optimal
class BayesOptimalGridNavi:
    """The Bayes-optimal agent of GridNavi, computed exactly (module docstring).

    Args:
        distribution: the prior over goals (varibad's 21 cells by default).
        horizon: steps per episode (15).
        episodes: episodes per trial (4).

    Example:
        >>> agent = BayesOptimalGridNavi(horizon=8, episodes=1)
        >>> round(agent.value(), 4), agent.plan()[0][:3]  # expected return; first actions (1 = up)
        (0.6667, (1, 1, 1))
    """

    def __init__(self, distribution: GridNaviDistribution | None = None, horizon: int = HORIZON,
                 episodes: int = EPISODES_PER_TRIAL) -> None:
        self._p = _Problem(distribution or GridNaviDistribution(), horizon, episodes)
        self.distribution = self._p.distribution
        self.horizon, self.episodes = self._p.H, self._p.E
        # (candidate mask, episode) -> (value in tenths summed over the candidates, the episode's actions (None for
        # a chain), the mask left after them)
        self._memo: dict[tuple[int, int], tuple[int, tuple[int, ...] | None, int | None]] = {}
        self.states_expanded = 0
        """How many (cell, candidate set, step) states the searches have generated (a measure of the work)."""

    # ------------------------------------------------------------------ public API
    def value(self, candidates: Iterable[Cell] | None = None, position: Cell = START, episode: int = 0,
              step: int = 0) -> float:
        """Expected return of the rest of the trial under the Bayes-optimal policy.

        Args:
            candidates: the goal cells not ruled out yet (None: the prior's). If the goal has been found,
                pass just it, with ``position`` on it.
            position: the agent's cell; ``episode`` (0-based) and ``step``: steps already taken in that episode.
        """
        mask, pos, episode, step = self._check_state(candidates, position, episode, step)
        return self._value_tenths(mask, pos, episode, step) / (10 * mask.bit_count())

    def action(self, candidates: Iterable[Cell] | None = None, position: Cell = START, episode: int = 0,
               step: int = 0) -> int:
        """The Bayes-optimal action here (arguments as :meth:`value`): 0 stay, 1 up, 2 right, 3 down, 4 left."""
        mask, pos, episode, step = self._check_state(candidates, position, episode, step)
        if mask.bit_count() == 1:
            goal = self._p.coords[_bits(mask)[0]]
            return (_toward(self._p.coords[pos], goal) or [0])[0]
        if pos == self._p.origin and step == 0:
            actions = self._episode_actions(mask, episode)[0]
        else:
            actions = self._solve_from(pos, step, mask, episode)[1]
        return actions[0]

    def plan(self) -> list[tuple[int, ...]]:
        """The actions of each episode while the goal has not been found, from the prior (``horizon`` each).

        The Bayes-optimal policy is: follow these actions; once the goal is found, stay on it and in later
        episodes walk straight to it.
        """
        plans, mask = [], self._p.prior
        for e in range(self.episodes):
            actions, mask = self._episode_actions(mask, e)
            plans.append(actions)
        return plans

    def episode_returns_exact(self) -> tuple[Fraction, ...]:
        """Expected return of each episode as exact fractions (replaying :meth:`plan` against every goal)."""
        p, plans = self._p, self.plan()
        goals = _bits(p.prior)
        totals = [0] * self.episodes  # tenths, summed over the goals
        for g in goals:
            found = False
            for e, actions in enumerate(plans):
                if found:
                    totals[e] += p.oracle[g]
                    continue
                cell, ret = START, 0
                for a in actions:
                    cell = move(cell, a, p.n) if not found else cell  # on the goal the agent stays
                    found = found or cell_index(cell, p.n) == g
                    ret += GOAL_TENTHS if found else STEP_TENTHS
                totals[e] += ret
        value = self._value_tenths(p.prior, p.origin, 0, 0)
        assert sum(totals) == value, f"replayed plan {sum(totals)} != dynamic programme {value}"
        return tuple(Fraction(t, 10 * len(goals)) for t in totals)

    def episode_returns(self) -> tuple[float, ...]:
        """Expected return of each episode of the trial, as floats."""
        return tuple(float(v) for v in self.episode_returns_exact())

    # ------------------------------------------------------------------ checks
    def _check_state(self, candidates: Iterable[Cell] | None, position: Cell, episode: int, step: int
                     ) -> tuple[int, int, int, int]:
        p = self._p
        mask = p.prior if candidates is None else p.mask_of(candidates)
        pos = cell_index(tuple(int(v) for v in position), p.n) if _inside(position, p.n) else None
        if pos is None:
            raise ValueError(f"position {position!r} is not a cell of the {p.n}x{p.n} grid")
        if not 0 <= check_count("episode", episode, minimum=0) < p.E:
            raise ValueError(f"episode must be in [0, {p.E - 1}] (0-based), got {episode}")
        if not 0 <= check_count("step", step, minimum=0) < p.H:
            raise ValueError(f"step must be in [0, {p.H - 1}] (steps already taken in the episode), got {step}")
        if step == 0 and pos != p.origin:
            raise ValueError(f"every episode starts on {START}; at step 0 the position must be {START}")
        if mask >> pos & 1 and mask != 1 << pos:
            raise ValueError(f"the agent stands on candidate {p.coords[pos]}: its reward there either ruled it out "
                             "(remove it) or revealed the goal (pass only it)")
        return mask, pos, episode, step

    # ------------------------------------------------------------------ the search
    def _value_tenths(self, mask: int, pos: int, episode: int, step: int) -> int:
        p = self._p
        if mask == 1 << pos:  # on the goal: stay, then walk straight to it in the later episodes
            return GOAL_TENTHS * (p.H - step) + (p.E - episode - 1) * p.oracle[pos]
        if pos == p.origin and step == 0:
            return self._S(mask, episode)
        return self._solve_from(pos, step, mask, episode)[0]

    def _is_chain(self, mask: int) -> bool:
        """Whether the candidates lie on one monotone (up/right) path from the start."""
        cells = sorted((self._p.coords[i] for i in _bits(mask)), key=lambda c: (c[0] + c[1], c[0]))
        return all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(cells, cells[1:]))

    def _chain_actions(self, mask: int) -> tuple[int, ...]:
        """A monotone walk through the chain's cells in order (right first), padded with stays to ``horizon``."""
        cells = sorted((self._p.coords[i] for i in _bits(mask)), key=lambda c: (c[0] + c[1], c[0]))
        actions: list[int] = []
        here = START
        for cell in cells:
            actions += [2] * (cell[0] - here[0]) + [1] * (cell[1] - here[1])
            here = cell
        return tuple(actions[: self.horizon]) + (0,) * max(0, self.horizon - len(actions))

    def _bound(self, mask: int, episode: int) -> int:
        """Told-the-goal upper bound (tenths, summed over the candidates) on the return from ``episode`` on."""
        left = self._p.E - episode
        return left * sum(self._p.oracle[i] for i in _bits(mask)) if left > 0 else 0

    def _S(self, mask: int, episode: int) -> int:
        """Max over plans of the return from the start of ``episode`` on, summed over the candidates (tenths)."""
        if episode >= self._p.E or not mask:
            return 0
        key = (mask, episode)
        if key not in self._memo:
            if self._is_chain(mask):  # the told-the-goal bound is attained
                self._memo[key] = (self._bound(mask, episode), None, None)
            else:
                self._memo[key] = self._solve_from(self._p.origin, 0, mask, episode)
        return self._memo[key][0]

    def _episode_actions(self, mask: int, episode: int) -> tuple[tuple[int, ...], int]:
        """The Bayes-optimal actions of ``episode`` from its start with candidates ``mask``, and the mask left."""
        if not mask:
            return (0,) * self.horizon, 0
        self._S(mask, episode)
        _, actions, left = self._memo[(mask, episode)]
        if actions is None:
            actions = self._chain_actions(mask)
            cell, left = START, mask
            for a in actions:
                cell = move(cell, a, self._p.n)
                left &= ~(1 << cell_index(cell, self._p.n))
        return actions, left

    def _solve_from(self, start: int, t0: int, mask: int, episode: int) -> tuple[int, tuple[int, ...], int]:
        """Best plan from cell ``start`` after ``t0`` steps of ``episode``: (value in tenths, actions, mask left)."""
        p = self._p
        best, parents = self._frontier(start, t0, mask, episode)
        steps_left = p.H - t0
        candidates = []
        for left, (gain, layer, key) in best.items():
            base = gain + STEP_TENTHS * steps_left * left.bit_count()
            candidates.append((base + self._bound(left, episode + 1), base, left, layer, key))
        candidates.sort(key=lambda c: -c[0])  # stable: equal bounds keep the search's order
        value, choice = None, None
        for bound, base, left, layer, key in candidates:
            if value is not None and bound <= value:
                break  # no remaining set can beat the best one found
            total = base + self._S(left, episode + 1)
            if value is None or total > value:
                value, choice = total, (left, layer, key)
        left, layer, key = choice
        actions = []
        for k in range(layer - 1, -1, -1):
            key, a = parents[k][key]
            actions.append(a)
        actions.reverse()
        return value, tuple(actions) + (0,) * (steps_left - len(actions)), left

    def _frontier(self, start: int, t0: int, mask: int, episode: int
                  ) -> tuple[dict[int, tuple[int, int, tuple[int, int]]], list[dict]]:
        """Forward DP over one episode: for every candidate set the walks can leave, the best return collected.

        A walk from ``start`` at step ``t0`` collects, for each candidate it visits first at step t, the
        candidate's whole return from step t0 + 1 on if it is the goal (tenths): -1 on steps t0 + 1 .. t - 1,
        +10 on steps t .. H (it stays on the goal) and the told-the-goal return in the later episodes. The
        candidates it leaves pay -1 per step of the episode; that and their future are added by the caller.

        Returns:
            ``best``: mask left -> (collected, layer, state) of the best walk leaving it (it stops after
            ``layer`` moves and stays); ``parents[k]``: state after k + 1 moves -> (state before, action).
        """
        p = self._p
        future = p.E - episode - 1
        found_base = [GOAL_TENTHS * (p.H + 1) + future * o for o in p.oracle]
        layer: dict[tuple[int, int], int] = {(start, mask): 0}
        seen = dict(layer)  # best collected return of each (cell, mask) at any earlier step: dominance
        parents: list[dict] = []
        best: dict[int, tuple[int, int, tuple[int, int]]] = {}
        moves, within = p.moves, p.within
        for t in range(t0, p.H + 1):
            for key, gain in layer.items():  # stopping here (staying to the end of the episode)
                old = best.get(key[1])
                if old is None or gain > old[0]:
                    best[key[1]] = (gain, len(parents), key)
            if t == p.H:
                break
            step_term = STEP_TENTHS * (t - t0) - GOAL_TENTHS * (t + 1)  # a candidate found at step t + 1
            new: dict[tuple[int, int], int] = {}
            par: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
            reach = p.H - t - 1  # steps left after this move
            for key, gain in layer.items():
                pos, left = key
                if not left & within[pos][reach + 1]:
                    continue  # no candidate within reach: this walk can only stop (recorded above)
                for a, j in moves[pos]:
                    bit = 1 << j
                    if left & bit:
                        nkey, ngain = (j, left ^ bit), gain + found_base[j] + step_term
                    elif left & within[j][reach]:
                        nkey, ngain = (j, left), gain
                    else:
                        continue  # finds nothing now and nothing later: the same as stopping here
                    old = seen.get(nkey)
                    if old is not None and old >= ngain:
                        continue  # reached before (or now) with at least as much: dominated
                    seen[nkey] = new[nkey] = ngain
                    par[nkey] = (key, a)
            parents.append(par)
            layer = new
            self.states_expanded += len(new)
        return best, parents


def _inside(cell: Any, n: int) -> bool:
    try:
        x, y = (int(v) for v in cell)
    except (TypeError, ValueError):
        return False
    return 0 <= x < n and 0 <= y < n and (x, y) == tuple(cell)


def bayes_optimal_agent(distribution: GridNaviDistribution | None = None, horizon: int = HORIZON,
                        episodes: int = EPISODES_PER_TRIAL) -> BayesOptimalGridNavi:
    """A solved :class:`BayesOptimalGridNavi`, shared between callers (cached per distribution, horizon, episodes)."""
    return _solved(distribution or GridNaviDistribution(), horizon, episodes)


@lru_cache(maxsize=8)
def _solved(distribution: GridNaviDistribution, horizon: int, episodes: int) -> BayesOptimalGridNavi:
    agent = BayesOptimalGridNavi(distribution, horizon, episodes)
    agent.episode_returns_exact()
    return agent


# --------------------------------------------------------------------------------------------- posterior sampling
def _shortest_walks(p: _Problem, start: int, goal: int, max_steps: int) -> list[tuple[float, tuple[int, ...]]]:
    """Shortest walks start -> goal with their probabilities (a uniformly random closer move at each step).

    A walk is the tuple of cells after each step, cut after ``max_steps`` steps (walks equal after the cut merge).
    """
    out: dict[tuple[int, ...], float] = {}

    def walk(cell: Cell, prob: float, cells: tuple[int, ...]) -> None:
        options = _toward(cell, p.coords[goal])
        if not options or len(cells) == max_steps:
            out[cells] = out.get(cells, 0.0) + prob
            return
        for a in options:
            nxt = move(cell, a, p.n)
            walk(nxt, prob / len(options), cells + (cell_index(nxt, p.n),))

    walk(p.coords[start], 1.0, ())
    return [(q, c) for c, q in out.items()]


def _posterior_sampling_exact(p: _Problem) -> np.ndarray:
    """Per-episode returns of committed posterior sampling, summed over the prior's goals (tenths), ``(E,)``.

    Committed, the agent's episode is fixed by its sample and the walk to it, so everything that carries over
    to the next episode is the candidate set. Level e holds the candidate sets possible at the start of
    episode e (found forwards); their values are computed backwards, all sets of a level at once:

        V_e(M) = sum over samples g in M (prob 1/|M|) and walks w to g (prob q_w) of
                 [returns of the candidates on w, found] + [-0.1 H for each of the others] + V_{e+1}(M minus w)

    (``V`` sums over the candidates, per episode.)
    """
    n_cells, H, E = p.n * p.n, p.H, p.E
    walks = [(g, q, cells) for g in _bits(p.prior) for q, cells in _shortest_walks(p, p.origin, g, H)]
    target = np.array([1 << g for g, _, _ in walks], dtype=np.int64)  # (W,)
    prob = np.array([q for _, q, _ in walks])  # (W,)
    walk_mask = np.array([_mask(cells) for _, _, cells in walks], dtype=np.int64)  # (W,)
    # found[g, c]: expected return in this episode of candidate c, if it is the goal, beyond the -0.1 H it gets
    # when not found, over the walks to sample g; future[g, c]: expected told-the-goal return of c in each later
    # episode (paid only if this walk finds it). Tenths, (cells, cells).
    found = np.zeros((n_cells, n_cells))
    future = np.zeros((n_cells, n_cells))
    for g, q, cells in walks:
        for s, c in enumerate(cells, start=1):
            found[g, c] += q * (STEP_TENTHS * (s - 1) + GOAL_TENTHS * (H - s + 1) - STEP_TENTHS * H)
            future[g, c] += q * p.oracle[c]

    levels = [np.array([p.prior], dtype=np.int64)]  # candidate sets at the start of each episode
    for _ in range(E - 1):
        m = levels[-1]
        valid = (m[:, None] & target[None, :]) != 0
        levels.append(np.unique((m[:, None] & ~walk_mask[None, :])[valid]))

    shifts = np.arange(n_cells, dtype=np.int64)
    following = np.zeros((1, E))
    for e in range(E - 1, -1, -1):
        m = levels[e]
        bits = ((m[:, None] >> shifts[None, :]) & 1).astype(np.float64)  # (S, cells)
        k = np.maximum(bits.sum(1), 1)  # (S,) candidates (the empty set, all found, adds nothing)
        values = np.zeros((len(m), E))
        # sum over samples g in M (prob 1 / |M|) and candidates c in M: bits (found or future) bits^T / |M|
        values[:, e] = ((bits @ found) * bits).sum(1) / k + STEP_TENTHS * H * bits.sum(1)
        if e + 1 < E:
            values[:, e + 1:] += (((bits @ future) * bits).sum(1) / k)[:, None]
            weight = ((m[:, None] & target[None, :]) != 0) * prob[None, :] / k[:, None]  # (S, W) sample and walk
            left = m[:, None] & ~walk_mask[None, :]  # (S, W) the candidates not found
            index = np.searchsorted(levels[e + 1], left).clip(max=len(levels[e + 1]) - 1)
            values += np.einsum("sw,swe->se", weight, following[index])
        following = values
    return following[0]


# --------------------------------------------------------------------------------------------- references
def oracle_reference(distribution: GridNaviDistribution | None = None, horizon: int = HORIZON,
                     episodes: int = EPISODES_PER_TRIAL) -> GridNaviReference:
    """The agent told the goal: a shortest path and stay, every episode (exact)."""
    p = _Problem(distribution or GridNaviDistribution(), horizon, episodes)
    goals = _bits(p.prior)
    total = sum(p.oracle[g] for g in goals)
    return GridNaviReference("oracle", _tenths_per_goal([total] * p.E, len(goals)), True,
                             "closed form: a goal d steps away pays -0.1 (d - 1) + (H - d + 1), averaged over goals")


def bayes_optimal_reference(distribution: GridNaviDistribution | None = None, horizon: int = HORIZON,
                            episodes: int = EPISODES_PER_TRIAL) -> GridNaviReference:
    """The Bayes-optimal agent (exact; :class:`BayesOptimalGridNavi`)."""
    agent = bayes_optimal_agent(distribution or GridNaviDistribution(), check_count("horizon", horizon),
                                check_count("episodes", episodes))
    return GridNaviReference("bayes_optimal", agent.episode_returns(), True,
                             "exact search over walks: forward DP over (cell, candidate set, step) within an episode, "
                             "memoised branch-and-bound over candidate sets across episodes")


def posterior_sampling_reference(distribution: GridNaviDistribution | None = None, horizon: int = HORIZON,
                                 episodes: int = EPISODES_PER_TRIAL) -> GridNaviReference:
    """Committed posterior sampling (module docstring), exact expectation over goals, samples and tie-breaks.

    The re-sampling variant has too many states for this computation (its sets change mid-episode);
    estimate it with ``monte_carlo_reference("posterior_sampling", within_episode="resample")``.
    """
    p = _Problem(distribution or GridNaviDistribution(), horizon, episodes)
    per_episode = _posterior_sampling_exact(p)
    return GridNaviReference("posterior_sampling", _tenths_per_goal(per_episode, p.prior.bit_count()), True,
                             "exact: candidate sets at each episode start (forwards), their values (backwards), over "
                             "every sample and every shortest walk with its probability")


def random_reference(distribution: GridNaviDistribution | None = None, horizon: int = HORIZON,
                     episodes: int = EPISODES_PER_TRIAL) -> GridNaviReference:
    """Uniform random actions (exact: DP over the distribution of the agent's cell, the same every episode)."""
    p = _Problem(distribution or GridNaviDistribution(), horizon, episodes)
    transition = np.zeros((p.n * p.n, p.n * p.n))  # (from, to)
    for i, c in enumerate(p.coords):
        for a in range(NUM_ACTIONS):
            transition[i, cell_index(move(c, a, p.n), p.n)] += 1.0 / NUM_ACTIONS
    occupancy = np.zeros(p.n * p.n)
    occupancy[p.origin] = 1.0
    goals = _bits(p.prior)
    per_goal = np.zeros(len(goals))
    for _ in range(p.H):
        occupancy = occupancy @ transition
        on_goal = occupancy[goals]
        per_goal += on_goal * GOAL_REWARD + (1 - on_goal) * STEP_REWARD
    return GridNaviReference("random", (float(per_goal.mean()),) * p.E, True,
                             "exact: occupancy of each cell after every step under uniform actions, summed per goal")


def reference_returns(distribution: GridNaviDistribution | None = None, horizon: int = HORIZON,
                      episodes: int = EPISODES_PER_TRIAL) -> dict[str, GridNaviReference]:
    """The four references of :data:`REFERENCE_NAMES`, all exact.

    On varibad's GridNavi (the defaults) the Bayes-optimal agent expects 4.00 in episode 1 and 11.07 in each
    of episodes 2 to 4 (37.21 per trial), the agent told the goal 11.07 per episode (44.29).
    """
    distribution = distribution or GridNaviDistribution()
    return {
        "bayes_optimal": bayes_optimal_reference(distribution, horizon, episodes),
        "oracle": oracle_reference(distribution, horizon, episodes),
        "posterior_sampling": posterior_sampling_reference(distribution, horizon, episodes),
        "random": random_reference(distribution, horizon, episodes),
    }


# --------------------------------------------------------------------------------------------- the posterior
def goal_posterior(positions: Any, rewards: Any, distribution: GridNaviDistribution | None = None) -> np.ndarray:
    """The exact posterior over the goal cell after a trajectory: ``(num_cells, num_cells)``, indexed ``[x, y]``.

    The prior is uniform over ``distribution.goal_cells``. Every step's reward tells whether the cell the
    agent moved to is the goal: +1 reveals it (the posterior becomes a point mass), -0.1 rules the cell out.
    Steps of several episodes of one trial can be passed together (the goal is the same).

    Args:
        positions: ``(T, 2)`` the cells (x, y) the agent stood on *after* each step (the observations that
            ``step`` returns; the start cell, never a goal, need not be included).
        rewards: ``(T,)`` the rewards of those steps.

    Returns:
        float64 array ``p`` with ``p[x, y]`` = P(goal = (x, y) | trajectory); it sums to 1. For a heat map
        with x to the right and y up: ``plt.imshow(p.T, origin="lower")``.

    Example:
        >>> p = goal_posterior([(1, 0), (2, 0)], [-0.1, -0.1])  # (2, 0) ruled out: 20 candidates left
        >>> float(p[2, 0]), round(float(p[4, 4]), 4)
        (0.0, 0.05)
    """
    distribution = distribution or GridNaviDistribution()
    n = distribution.num_cells
    cells = _as_numpy(positions, np.float64)
    rewards = _as_numpy(rewards, np.float64).reshape(-1)
    if cells.size == 0:
        cells = cells.reshape(0, 2)
    if cells.ndim != 2 or cells.shape[1] != 2 or len(cells) != len(rewards):
        raise ValueError(f"positions must have shape (T, 2) and rewards (T,), got {cells.shape} and {rewards.shape}")
    if not (np.all(np.isfinite(cells)) and np.all(cells == np.round(cells)) and np.all((cells >= 0) & (cells < n))):
        raise ValueError(f"positions must be whole-number cells of the {n}x{n} grid (0..{n - 1})")
    threshold = (GOAL_REWARD + STEP_REWARD) / 2
    prior = np.zeros((n, n))
    for c in distribution.goal_cells:
        prior[c] = 1.0
    alive = prior.copy()
    found: set[Cell] = set()
    for (x, y), r in zip(cells.astype(int).tolist(), rewards.tolist()):
        if r > threshold:
            found.add((x, y))
        else:
            alive[x, y] = 0.0
    if found:
        goal = found.pop()
        if found or alive[goal] == 0.0:
            raise ValueError("the trajectory is impossible: it reports the goal on two cells, or a reward of +1 "
                             "and -0.1 on the same cell, or +1 on a cell the prior excludes")
        alive[:] = 0.0
        alive[goal] = 1.0
    total = alive.sum()
    if total == 0:
        raise ValueError("the trajectory rules out every goal cell of the prior; it cannot come from this task "
                         "distribution (check the distribution and the rewards)")
    return alive / total


def _as_numpy(x: Any, dtype: type) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


# --------------------------------------------------------------------------------------------- playing the env
def play_reference(name: str, env: BatchedGridNaviEnv, seed: int = 0, within_episode: str = "commit",
                   distribution: GridNaviDistribution | None = None) -> TrialEvaluation:
    """Play one trial of every task of ``env`` with reference agent ``name`` (one of :data:`REFERENCE_NAMES`).

    The agents act exactly as described in the module docstring; ``seed`` seeds the env and the agent's own
    randomness (posterior samples, tie-breaks, random actions). Averaging over many tasks estimates the exact
    numbers of :func:`reference_returns` (for the deterministic agents over ``distribution.all_tasks()``,
    it reproduces them).
    """
    if name not in REFERENCE_NAMES:
        raise ValueError(f"unknown reference agent {name!r}; choose one of {REFERENCE_NAMES}")
    if not isinstance(env, BatchedGridNaviEnv):
        raise TypeError(f"env must be a BatchedGridNaviEnv, got {type(env).__name__}")
    if within_episode not in WITHIN_EPISODE:
        raise ValueError(f"within_episode must be one of {WITHIN_EPISODE}, got {within_episode!r}")
    distribution = distribution or GridNaviDistribution(num_cells=env.num_cells)
    if name in ("bayes_optimal", "posterior_sampling"):  # they need the goal inside their prior
        for task in env.tasks:
            distribution.check_task(task)
    rng = np.random.default_rng((int(seed), 2))
    N, H = env.num_envs, env.horizon
    goals = [t.goal for t in env.tasks]
    plans = bayes_optimal_agent(distribution, H, env.episodes_per_trial).plan() if name == "bayes_optimal" else None
    candidates = [set(distribution.goal_cells) for _ in range(N)]
    known: list[Cell | None] = [None] * N
    targets: list[Cell | None] = [None] * N
    cells: list[Cell] = [START] * N
    obs, _ = env.reset(seed=seed)
    rewards = np.zeros((env.trial_length, N))
    for t in range(env.trial_length):
        e, h = divmod(t, H)
        actions = rng.integers(NUM_ACTIONS, size=N) if name == "random" else np.zeros(N, dtype=np.int64)
        for i in range(N if name != "random" else 0):
            goal = goals[i] if name == "oracle" else known[i]
            if goal is None and name == "bayes_optimal":
                actions[i] = plans[e][h]
                continue
            if goal is None:  # posterior sampling, goal still unknown
                if h == 0 or (targets[i] not in candidates[i] and within_episode == "resample"):
                    pool = sorted(candidates[i])
                    targets[i] = pool[rng.integers(len(pool))]
                goal = targets[i]
            options = _toward(cells[i], goal)
            actions[i] = options[rng.integers(len(options))] if len(options) > 1 else (options or [0])[0]
        obs, reward, _, _, info = env.step(torch.as_tensor(actions, device=env.device))
        after = info.get("final_obs", obs).cpu().numpy().astype(int)
        rewards[t] = reward.cpu().numpy()
        for i in range(N):
            cell = (int(after[i, 0]), int(after[i, 1]))
            if rewards[t, i] > (GOAL_REWARD + STEP_REWARD) / 2:
                known[i] = cell
            if known[i] is None:
                candidates[i].discard(cell)
            cells[i] = START if "final_obs" in info else cell
    episodes = rewards.T.reshape(N, env.episodes_per_trial, H).sum(-1)
    return TrialEvaluation(rewards.sum(0), episodes)


def monte_carlo_reference(name: str, num_trials: int = 10_000, seed: int = 0, within_episode: str = "commit",
                          distribution: GridNaviDistribution | None = None, horizon: int = HORIZON,
                          episodes: int = EPISODES_PER_TRIAL) -> GridNaviReference:
    """A reference agent's returns estimated by playing ``num_trials`` trials (goals drawn from the prior)."""
    distribution = distribution or GridNaviDistribution()
    tasks = distribution.sample(check_count("num_trials", num_trials, minimum=2), np.random.default_rng(seed))
    env = BatchedGridNaviEnv(tasks, horizon=horizon, episodes_per_trial=episodes, device="cpu")
    result = play_reference(name, env, seed=seed, within_episode=within_episode, distribution=distribution)
    mean, half = mean_ci(result.episode_returns)
    label = name if not (name == "posterior_sampling" and within_episode == "resample") else f"{name}_resample"
    return GridNaviReference(label, tuple(float(m) for m in mean), False, f"Monte Carlo, {num_trials} trials",
                             tuple(float(h) for h in half), result.ci95)


__all__ = [
    "REFERENCE_NAMES", "WITHIN_EPISODE", "BayesOptimalGridNavi", "GridNaviReference", "bayes_optimal_agent",
    "bayes_optimal_reference",
    "goal_posterior", "monte_carlo_reference", "oracle_episode_tenths", "oracle_reference", "play_reference",
    "posterior_sampling_reference", "random_reference", "reference_returns",
]
