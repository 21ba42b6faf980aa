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
        diff = "" if a.name == baseline else f"{paired_difference(a.scores.trial_returns, base).mean:+.2f} +/- " \
            f"{paired_difference(a.scores.trial_returns, base).half_width:.2f}"
        exact = "" if a.exact is None else f"{sum(a.exact):.2f} ({', '.join(f'{x:.2f}' for x in a.exact)})"
        lines.append(f"| {a.name} | " + " | ".join(cells) + f" | **{a.scores.mean:.2f} +/- {a.scores.ci95:.2f}** | "
                     f"{diff} | {exact} |")
    return "\n".join(lines)
