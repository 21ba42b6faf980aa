"""A bandit game for chapter 05: you pull the arms, then RL² and Thompson sampling play the same bandit.

Every player faces the same arms *and the same luck*: the payout of pull t
is ``1 if u_t < p[arm]`` with one uniform ``u_t`` per pull drawn from the
game's seed, exactly as :class:`~metarl_course.tasks.bandits.BatchedBanditEnv`
draws them after ``reset(seed=seed)``. So a difference in totals comes from
the choices, not from the dice.

:class:`BanditGame` is plain logic (tested); :func:`bandit_game_widget` wraps
it in ipywidgets buttons for the notebook.

Example:
    >>> game = BanditGame(BanditTask(arm_probs=(0.1, 0.9)), num_pulls=3, seed=0)
    >>> rewards = [game.pull(1) for _ in range(3)]
    >>> game.done, game.total == sum(rewards)
    (True, True)
"""

from __future__ import annotations

import torch

from metarl_course.rl.bandit_baselines import ThompsonPolicy, argmax_random_ties
from metarl_course.rl.policies import RL2ActorCritic
from metarl_course.rl.sampling import rollout
from metarl_course.seeding import cpu_generator
from metarl_course.tasks.bandits import BanditTask, BatchedBanditEnv
from metarl_course.tasks.distribution import check_count


class BanditGame:
    """One trial of ``num_pulls`` pulls on ``task``, for a human player, with fixed luck from ``seed``."""

    def __init__(self, task: BanditTask, num_pulls: int = 10, seed: int = 0) -> None:
        self.task, self.num_pulls, self.seed = task, check_count("num_pulls", num_pulls), seed
        # the same uniforms BatchedBanditEnv(tasks=[task]).reset(seed=seed) draws on the CPU
        self.uniforms = torch.rand((1, num_pulls), generator=torch.Generator().manual_seed(seed))[0]
        self.arms: list[int] = []
        self.rewards: list[float] = []

    @property
    def done(self) -> bool:
        return len(self.arms) >= self.num_pulls

    @property
    def total(self) -> float:
        return float(sum(self.rewards))

    def payout(self, step: int, arm: int) -> float:
        """What pulling ``arm`` at pull ``step`` pays in this game (the same for every player)."""
        return 1.0 if float(self.uniforms[step]) < self.task.arm_probs[arm] else 0.0

    def pull(self, arm: int) -> float:
        """The human's next pull; returns its reward (0 or 1)."""
        if self.done:
            raise RuntimeError(f"the game is over after {self.num_pulls} pulls; start a new BanditGame")
        if not isinstance(arm, int) or not 0 <= arm < self.task.num_arms:
            raise ValueError(f"arm must be an integer in [0, {self.task.num_arms - 1}], got {arm!r}")
        reward = self.payout(len(self.arms), arm)
        self.arms.append(arm)
        self.rewards.append(reward)
        return reward

    def play_rl2(self, model: RL2ActorCritic, greedy: bool = False) -> tuple[list[int], list[float]]:
        """The RL² agent's arms and rewards on this game (same arms, same uniforms)."""
        if model.setting.get("num_arms") != self.task.num_arms:
            raise ValueError(f"the model was trained for {model.setting.get('num_arms')} arms, "
                             f"this game has {self.task.num_arms}; load the matching checkpoint")
        env = BatchedBanditEnv([self.task], horizon=self.num_pulls, device=model.device)
        trials = rollout(model, env, cpu_generator(self.seed), seed=self.seed,
                         greedy=greedy)
        return trials.actions[:, 0].tolist(), trials.rewards[:, 0].tolist()

    def play_thompson(self) -> tuple[list[int], list[float]]:
        """Thompson sampling (Beta(1, 1) priors) on this game."""
        policy, generator = ThompsonPolicy(), torch.Generator().manual_seed(self.seed)
        successes = torch.zeros(1, self.task.num_arms, dtype=torch.int64)
        failures = torch.zeros_like(successes)
        arms, rewards = [], []
        for step in range(self.num_pulls):
            scores = policy.scores(successes, failures, step, policy.draw(successes, failures, generator))
            arm = int(argmax_random_ties(scores, torch.rand(scores.shape, generator=generator, dtype=torch.float64)))
            reward = self.payout(step, arm)
            successes[0, arm] += int(reward)
            failures[0, arm] += 1 - int(reward)
            arms.append(arm)
            rewards.append(reward)
        return arms, rewards


def bandit_game_widget(game: BanditGame, model: RL2ActorCritic | None = None):
    """Buttons, one per arm, and an Output: play the game, then see RL² and Thompson sampling play it."""
    import ipywidgets as widgets

    out = widgets.Output()
    buttons = [widgets.Button(description=f"arm {i}") for i in range(game.task.num_arms)]

    def finish() -> None:
        for b in buttons:
            b.disabled = True
        lines = [f"you: {game.total:.0f}   arms {game.arms}"]
        if model is not None:
            arms, rewards = game.play_rl2(model)
            lines.append(f"RL²: {sum(rewards):.0f}   arms {arms}")
        arms, rewards = game.play_thompson()
        lines.append(f"Thompson: {sum(rewards):.0f}   arms {arms}")
        probs = ", ".join(f"{p:.2f}" for p in game.task.arm_probs)
        lines.append(f"the arms paid with probabilities ({probs}); best arm: {game.task.best_arm}")
        print("\n".join(lines))

    def on_click(button) -> None:
        with out:
            arm = buttons.index(button)
            reward = game.pull(arm)
            print(f"pull {len(game.arms)}/{game.num_pulls}: arm {arm} paid {reward:.0f} (total {game.total:.0f})")
            if game.done:
                finish()

    for b in buttons:
        b.on_click(on_click)
    return widgets.VBox([widgets.HBox(buttons), out])
