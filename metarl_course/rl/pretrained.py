"""The "pretrained" baseline of MAML-RL: one policy trained on every goal, fine-tuned at test time.

Finn et al. (2017) compare MAML with a policy pretrained on the whole task
distribution and then fine-tuned on the new task with the same policy-gradient
steps MAML takes at test time. Pretraining is ordinary RL on a mixture of goals:
each iteration samples episodes of ``meta_batch_size`` goals with the current
policy and takes one TRPO step on their return, with no inner step. Everything
else (the policy, the sampler, the TRPO step, the held-out evaluation with
``inner_lr`` as the fine-tuning step size) is MAML-TRPO's, so the two differ
only in what they train for.

Example:
    >>> from metarl_course.rl.maml_rl import MAMLRLConfig
    >>> learner = PretrainedPolicyLearner(MAMLRLConfig(outer="pretrained", inner_lr=0.05), device="cpu")
    >>> learner.training_inner_steps
    0
"""

from __future__ import annotations

import torch

from metarl_course.rl.maml_rl import MAMLRLConfig, MAMLRLLearner
from metarl_course.tasks.navigation import NavigationDistribution, NavigationTask


class PretrainedPolicyLearner(MAMLRLLearner):
    """TRPO on the return over p(T) (no inner step in training), for :func:`metarl_course.training.train`.

    ``config.outer`` must be ``"pretrained"``; ``config.inner_lr`` is the fine-tuning step size at test time
    (the course uses 0.05, the best of 0.05, 0.1, 0.25 and 0.5 for this policy).
    """

    def __init__(self, config: MAMLRLConfig, distribution: NavigationDistribution | None = None,
                 heldout: list[NavigationTask] | None = None, seed: int = 0,
                 device: torch.device | str | None = None, eval_steps: int = 3) -> None:
        if config.outer != "pretrained":
            raise ValueError(f"PretrainedPolicyLearner needs MAMLRLConfig(outer='pretrained'), got "
                             f"outer={config.outer!r}; use MAMLRLLearner for MAML-TRPO and ProMP")
        super().__init__(config, distribution, heldout, seed, device, eval_steps)

    @property
    def training_inner_steps(self) -> int:
        """No inner step in training: the TRPO step improves the return of theta itself on every goal."""
        return 0
