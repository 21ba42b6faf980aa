"""Episodes that end at the goal: how many steps are padding, and what counting them changes.

MAML-RL's navigation episodes end when the agent is within 0.01 of the goal; the batched env then holds it there
for the rest of the 100 steps. ``MAMLRLConfig.real_steps_only`` decides whether losses and the baseline average
over those padded steps (the course's default, how the shipped results were trained) or over the real steps only
(Finn et al.'s and Rothfuss et al.'s samplers). For each shipped MAML-RL result this prints, on the 40 held-out
goals, the fraction of real steps in the episodes sampled before each adaptation step, and the held-out returns
adapting under each convention (the same policy, noise and goals):

    .venv/bin/python tools/padded_steps.py [NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from metarl_course.adaptation import parameters_of
from metarl_course.experiments import EXPERIMENTS, load_result
from metarl_course.rl.maml_rl import MAMLRLLearner, adapt_policy, adaptation_returns
from metarl_course.rl.sampling import expand_params, sample_episodes
from metarl_course.seeding import cpu_generator


def real_step_fractions(learner: MAMLRLLearner, num_steps: int = 3) -> list[float]:
    """Fraction of real (not padded) steps in the episodes sampled before each of 0..num_steps inner steps."""
    c, tasks = learner.config, learner.heldout
    generator = cpu_generator(learner.config.eval_seed)
    params = expand_params({k: v.detach() for k, v in parameters_of(learner.model).items()}, len(tasks))
    fractions = []
    for step in range(num_steps + 1):
        episodes = sample_episodes(learner.model, params, tasks, c.num_trajectories, generator, c.horizon)
        fractions.append(episodes.alive.double().mean().item())
        with torch.no_grad():
            params = adapt_policy(learner.model, params, episodes, c.step_size(step), c.gamma, per_task_params=True,
                                  real_steps_only=c.real_steps_only)
    return fractions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="MAML-RL results (default: every navigation one)")
    args = parser.parse_args(argv)
    names = args.names or sorted(n for n in EXPERIMENTS if n.endswith("-navigation"))
    print("| result (trained with) | real steps before step 0 / 1 / 2 / 3 | held-out return after 0 / 1 / 2 / 3 "
          "steps, adapting on all steps | on real steps only |")
    print("| --- | --- | --- | --- |")
    for name in names:
        learner, data = load_result(name)
        fractions = real_step_fractions(learner)
        curves = []
        for real in (False, True):
            config = dataclasses.replace(learner.config, real_steps_only=real)
            returns = adaptation_returns(learner.model, config, learner.heldout, 3, learner.config.eval_seed)
            curves.append(" / ".join(f"{v:.2f}" for v in returns.mean(0).tolist()))
        trained = "real steps" if learner.config.real_steps_only else "all steps"
        print(f"| {name} ({trained}) | {' / '.join(f'{f:.0%}' for f in fractions)} | {curves[0]} | {curves[1]} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
