"""Every agent of chapter 08 on the same held-out gridworld trials, with intervals and paired differences.

The learners (VariBAD, RL²) and the reference agents of :mod:`metarl_course.rl.gridworld_bayes` play the same
held-out goals: the learners' own (``eval_seed``, 1000 trials, drawn from the prior). The Bayes-optimal and
told-the-goal agents are deterministic, so their score on these goals is exact for these goals; their
expectation over the prior (37.21 and 44.29 per trial) is the exact number of :func:`reference_returns`. A
learner is compared with the Bayes-optimal agent trial by trial (a paired difference), which removes what the
goals' luck adds to both: on a sample of goals that happen to lie near the start, any agent scores above 37.21.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarl_course.evaluation import TrialEvaluation, mean_ci, paired_difference
from metarl_course.rl.gridworld_bayes import play_reference, reference_returns
from metarl_course.tasks.gridworld import BatchedGridNaviEnv, GridNaviDistribution
from metarl_course.tasks.heldout import RL2_HELDOUT_SEED


def heldout_env(num_trials: int = 1000, seed: int = RL2_HELDOUT_SEED) -> BatchedGridNaviEnv:
    """The held-out trials of VariBAD and RL² on the gridworld (the same goals as their ``evaluate_trials``)."""
    tasks = GridNaviDistribution().sample(num_trials, np.random.default_rng(seed))
    return BatchedGridNaviEnv(tasks, device="cpu")


@dataclass(frozen=True)
class AgentScore:
    name: str
    scores: TrialEvaluation
    exact: tuple[float, ...] | None = None
    """The agent's exact expected return per episode over the prior (reference agents), else None."""


def reference_scores(num_trials: int = 1000, seed: int = RL2_HELDOUT_SEED) -> list[AgentScore]:
    """Bayes-optimal, told the goal, posterior sampling (re-sampling when its goal is ruled out, and committing
    for a whole episode) and random play, on the held-out trials."""
    env = heldout_env(num_trials, seed)
    exact = reference_returns()
    out = []
    for label, name, within in (("Bayes-optimal", "bayes_optimal", "commit"), ("told the goal", "oracle", "commit"),
                                ("posterior sampling", "posterior_sampling", "resample"),
                                ("posterior sampling, committed per episode", "posterior_sampling", "commit"),
                                ("random play", "random", "commit")):
        scores = play_reference(name, env, seed=seed, within_episode=within)
        known = exact[name].episode_returns if exact[name].exact and within == "commit" else None
        out.append(AgentScore(label, scores, known))
    return out


def comparison_table(agents: list[AgentScore], baseline: str = "Bayes-optimal") -> str:
    """A markdown table: return per episode and per trial (mean +/- 95% CI), paired difference to ``baseline``
    on the same trials, and the exact expectation over the prior where it is known."""
    by_name = {a.name: a for a in agents}
    base = by_name[baseline].scores.trial_returns
    episodes = agents[0].scores.episode_returns.shape[1]
    header = ("| agent | " + " | ".join(f"episode {e + 1}" for e in range(episodes))
              + f" | trial | minus {baseline} (paired) | exact over the prior |")
    lines = [header, "|" + " --- |" * (episodes + 4)]
    for a in agents:
        mean, half = mean_ci(a.scores.episode_returns)
        cells = [f"{m:.2f} +/- {h:.2f}" for m, h in zip(mean, half)]
        if a.name == baseline:
            diff = ""
        else:
            paired = paired_difference(a.scores.trial_returns, base)
            diff = f"{paired.mean:+.2f} +/- {paired.half_width:.2f}"
        exact = "" if a.exact is None else f"{sum(a.exact):.2f} ({', '.join(f'{x:.2f}' for x in a.exact)})"
        lines.append(f"| {a.name} | " + " | ".join(cells) + f" | **{a.scores.mean:.2f} +/- {a.scores.ci95:.2f}** | "
                     f"{diff} | {exact} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ pictures
def draw_belief(ax, p: np.ndarray, goal: tuple[int, int] | None = None, path: np.ndarray | None = None,
                title: str = "", vmax: float | None = None):
    """A belief over goal cells as a heat map, ``p[x, y]`` (x to the right, y up), with the true goal (red star)
    and the agent's path so far (white line, black dot where it stands)."""
    n = p.shape[0]
    image = ax.imshow(p.T, origin="lower", cmap="viridis", vmin=0.0, vmax=vmax if vmax is not None else max(p.max(), 1e-9))
    if path is not None and len(path):
        ax.plot(path[:, 0], path[:, 1], color="white", lw=1.5, alpha=0.8)
        ax.plot(path[-1, 0], path[-1, 1], "o", color="black", ms=7, mec="white")
    if goal is not None:
        ax.plot(goal[0], goal[1], "*", color="red", ms=14, mec="white")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_title(title, fontsize=9)
    return image


def draw_paths(ax, cells: np.ndarray, horizon: int, goal: tuple[int, int], num_cells: int = 5, title: str = ""):
    """The cells visited in each episode of one trial (``cells``: (T, 2) the cell after each step), offset a
    little per episode so that overlapping routes stay visible; the start is the black square, the goal the star."""
    styles = ["-", "--", "-.", ":"]
    episodes = len(cells) // horizon
    for e in range(episodes):
        route = np.vstack([[0, 0], cells[e * horizon:(e + 1) * horizon]]).astype(float)
        offset = (e - (episodes - 1) / 2) * 0.08
        ax.plot(route[:, 0] + offset, route[:, 1] + offset, styles[e % 4], lw=2, label=f"episode {e + 1}")
    ax.plot(0, 0, "s", color="black", ms=9)
    ax.plot(goal[0], goal[1], "*", color="red", ms=16, mec="black")
    ax.set(xlim=(-0.5, num_cells - 0.5), ylim=(-0.5, num_cells - 0.5), xticks=range(num_cells),
           yticks=range(num_cells), title=title)
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.3)


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Half the L1 distance between two beliefs over cells (0: equal, 1: disjoint), over the last two axes."""
    return 0.5 * np.abs(p - q).sum(axis=(-2, -1))


def replay_cells(goal: tuple[int, int], actions, horizon: int = 15, episodes: int = 4) -> np.ndarray:
    """The cell after each step when ``actions`` (T,) are played on a trial with ``goal``: (T, 2), exact."""
    env = BatchedGridNaviEnv([GridNaviDistribution().check_task(_task(goal))], horizon=horizon,
                             episodes_per_trial=episodes, device="cpu")
    env.reset(seed=0)
    out = []
    for a in np.asarray(actions).reshape(-1):
        obs, _, _, _, info = env.step(np.array([int(a)]))
        out.append(info.get("final_obs", obs)[0].tolist())
    return np.array(out, dtype=int)


def _task(goal: tuple[int, int]):
    from metarl_course.tasks.gridworld import GridNaviTask

    return GridNaviTask(goal=tuple(goal))
