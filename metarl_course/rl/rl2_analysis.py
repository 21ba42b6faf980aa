"""What chapter 05 measures about a trained RL² agent: pulls on common bandits, regret, a comparison table.

Every function plays RL² and the classic baselines on *the same* bandits
(arm means from the same seed as
:func:`~metarl_course.rl.bandit_baselines.evaluate_bandit_policy`), so curves
and differences compare choices, not luck in the tasks. Intervals are 95%
Student-t intervals (:func:`metarl_course.evaluation.mean_ci`); differences
between two policies are paired, bandit by bandit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metarl_course.evaluation import mean_ci
from metarl_course.papers import DUAN_2016_BANDITS
from metarl_course.rl.bandit_baselines import POLICY_LABELS, make_policy, run_bandit, sample_arm_means
from metarl_course.rl.bayes_optimal import bayes_optimal_ceiling
from metarl_course.rl.policies import RL2ActorCritic
from metarl_course.rl.sampling import rollout
from metarl_course.seeding import cpu_generator
from metarl_course.tasks.bandits import BanditTask, BatchedBanditEnv


@dataclass(frozen=True)
class BanditPulls:
    """What a policy did on a batch of bandits: arms pulled, rewards, and the arms' true means."""

    name: str
    arms: np.ndarray
    """(B, n) pulled arm at each step."""
    rewards: np.ndarray
    """(B, n) reward (0 or 1) at each step."""
    arm_means: np.ndarray
    """(B, k) the bandits' arm means."""

    @property
    def totals(self) -> np.ndarray:
        """(B,) total reward of each trial."""
        return self.rewards.sum(1)

    def expected_rewards(self) -> np.ndarray:
        """(B, n) mean of the pulled arm: the reward without the coin flip."""
        return np.take_along_axis(self.arm_means, self.arms, axis=1)

    def cumulative_regret(self) -> np.ndarray:
        """(B, n) sum over pulls so far of (best arm's mean - pulled arm's mean)."""
        return np.cumsum(self.arm_means.max(1, keepdims=True) - self.expected_rewards(), axis=1)

    def best_arm_rank_frequencies(self) -> np.ndarray:
        """(n, k): at each pull, the fraction of trials that pulled the best, 2nd best, ... arm."""
        ranks = (-self.arm_means).argsort(1).argsort(1)  # (B, k) rank of each arm, 0 = best
        pulled_rank = np.take_along_axis(ranks, self.arms, axis=1)  # (B, n)
        k = self.arm_means.shape[1]
        return np.stack([(pulled_rank == r).mean(0) for r in range(k)], axis=1)


def _arm_means(num_trials: int, num_arms: int, seed: int) -> torch.Tensor:
    return sample_arm_means(num_trials, num_arms, cpu_generator(int(seed)))  # (B, k) float64


def rl2_pulls(model: RL2ActorCritic, num_pulls: int, num_arms: int, num_trials: int = 1000, seed: int = 0,
              reset_hidden_every_episode: bool = False) -> BanditPulls:
    """The RL² agent on the common bandits of ``seed``: those :func:`baseline_pulls` and
    :func:`~metarl_course.rl.bandit_baselines.evaluate_bandit_policy` give the baselines with the same seed."""
    setting = {"task": "bandit", "num_arms": num_arms, "horizon": num_pulls, "episodes_per_trial": 1}
    if {key: model.setting.get(key) for key in setting} != setting:
        raise ValueError(f"the model was trained for {model.setting}, not n={num_pulls}, k={num_arms}; "
                         "load the checkpoint of that setting")
    arm_means = _arm_means(num_trials, num_arms, seed)
    env = BatchedBanditEnv([BanditTask(arm_probs=tuple(p)) for p in arm_means.numpy()], horizon=num_pulls,
                           device=model.device)
    trials = rollout(model, env, cpu_generator(seed), seed=seed,
                     reset_hidden_every_episode=reset_hidden_every_episode)
    return BanditPulls("rl2", trials.actions.T.cpu().numpy(), trials.rewards.T.cpu().double().numpy(),
                       arm_means.numpy())


def baseline_pulls(name: str, num_pulls: int, num_arms: int, num_trials: int = 1000, seed: int = 0) -> BanditPulls:
    """Baseline ``name`` (one of :data:`~metarl_course.rl.bandit_baselines.POLICY_NAMES`) on the common bandits of
    ``seed``."""
    generator = cpu_generator(int(seed))
    arm_means = sample_arm_means(num_trials, num_arms, generator)  # the same draws as _arm_means
    result = run_bandit(make_policy(name, num_pulls, device="cpu"), arm_means, num_pulls, generator)
    return BanditPulls(name, result.arms.numpy(), result.rewards.numpy(), arm_means.numpy())


def bandit_comparison_table(rl2: BanditPulls, baselines: list[BanditPulls]) -> str:
    """Markdown: mean total reward +/- 95% CI (Student t) of RL² and every baseline, beside Duan et al.'s Table 1
    (:data:`metarl_course.papers.DUAN_2016_BANDITS`), with the best any policy can do
    (:func:`~metarl_course.rl.bayes_optimal.bayes_optimal_ceiling`) as the last row."""
    num_trials, num_pulls = rl2.rewards.shape
    num_arms = rl2.arm_means.shape[1]
    paper = DUAN_2016_BANDITS.get((num_pulls, num_arms), {})
    lines = [f"| policy (n = {num_pulls}, k = {num_arms}, {num_trials} trials) | measured (95% CI, Student t) | "
             "RL² minus it (paired, 95% CI, Student t) | Duan et al. 2016 |", "| --- | --- | --- | --- |"]
    for pulls in [rl2, *baselines]:
        mean, hw = mean_ci(pulls.totals)
        diff = "" if pulls is rl2 else "{:+.2f} +/- {:.2f}".format(*mean_ci(rl2.totals - pulls.totals))
        ref = paper.get(pulls.name)
        lines.append(f"| {POLICY_LABELS.get(pulls.name, pulls.name)} | {mean:.2f} +/- {hw:.2f} | {diff} | "
                     f"{'-' if ref is None else ref} |")
    ceiling, exact = bayes_optimal_ceiling(num_arms, num_pulls)
    mean, hw = mean_ci(rl2.totals)
    gap = f"{mean - ceiling:+.2f} +/- {hw:.2f}"  # an exact number: the interval is RL²'s own
    label = "Bayes-optimal (exact, dynamic programming)" if exact else "told the arm means (above Bayes-optimal)"
    lines.append(f"| {label} | {ceiling:.3f} | {gap} | - |")
    return "\n".join(lines)


@dataclass(frozen=True)
class BanditSetScores:
    """RL² on several independent sets of common bandits: its score on each, and its gaps, paired per set."""

    seeds: tuple[int, ...]
    rl2: np.ndarray
    """(S, 2) RL²'s mean and 95% CI half-width (Student t) on each set."""
    minus_gittins: np.ndarray
    """(S, 2) RL² minus the Gittins index on the same bandits and luck: mean and 95% CI half-width (paired,
    Student t)."""
    ceiling: float
    """The exact Bayes-optimal expected total, or an upper bound (``exact`` False)."""
    exact: bool

    def table(self) -> str:
        """Markdown, one row per bandit set."""
        ceiling = "Bayes-optimal" if self.exact else "the told-the-arms bound"
        lines = [f"| bandit set (seed) | RL² (95% CI, Student t) | RL² minus Gittins (paired, 95% CI, Student t) | "
                 f"RL² minus {ceiling} |", "| --- | --- | --- | --- |"]
        for seed, (m, h), (d, dh) in zip(self.seeds, self.rl2, self.minus_gittins):
            lines.append(f"| {seed} | {m:.3f} +/- {h:.3f} | {d:+.3f} +/- {dh:.3f} | "
                         f"{m - self.ceiling:+.3f} +/- {h:.3f} |")
        return "\n".join(lines)


def bandit_set_scores(model: RL2ActorCritic, num_pulls: int, num_arms: int, seeds: tuple[int, ...] = (0, 1, 2, 3),
                      num_trials: int = 5000) -> BanditSetScores:
    """RL² and Gittins on ``len(seeds)`` independent sets of ``num_trials`` common bandits each.

    One set's score moves with the set (the bandits and the luck drawn for it); several sets show by how much,
    and a score above the exact ceiling on one set is that noise, not a better policy.
    """
    rl2, gaps = [], []
    for seed in seeds:
        ours = rl2_pulls(model, num_pulls, num_arms, num_trials=num_trials, seed=seed)
        gittins = baseline_pulls("gittins", num_pulls, num_arms, num_trials=num_trials, seed=seed)
        rl2.append(mean_ci(ours.totals))
        gaps.append(mean_ci(ours.totals - gittins.totals))
    ceiling, exact = bayes_optimal_ceiling(num_arms, num_pulls)
    return BanditSetScores(tuple(seeds), np.array(rl2, dtype=float), np.array(gaps, dtype=float), ceiling, exact)
