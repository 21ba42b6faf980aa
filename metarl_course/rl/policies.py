"""Policies that can be run with given parameters (for functional adaptation).

:class:`GaussianMLPPolicy` is the policy of Finn et al. (2017)'s MAML-RL
experiments: an MLP gives the mean of a diagonal Gaussian, and a learned,
state-independent log standard deviation gives its spread.

Its ``forward`` returns the mean and the log-std side by side, ``(..., 2 * act_dim)``,
so the policy plugs into :func:`metarl_course.adaptation.adapt` like any
regression model: the "target" of a time step is the action taken and its
advantage, and :func:`reinforce_loss` is the loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from metarl_course.nets import MLP

LOG_2PI = math.log(2 * math.pi)


class GaussianMLPPolicy(nn.Module):
    """pi(a | s) = N(mean(s), exp(log_std)^2), a diagonal Gaussian.

    Args:
        obs_dim, act_dim: sizes of observations and actions.
        hidden: hidden layer sizes (Finn et al. 2017: two layers of 100, ReLU).
        init_std: initial standard deviation of every action dimension.
        action_scale: what one unit of the policy's action is in the environment's units: the env
            receives ``action_scale * a``. rllab's ``normalize`` wrapper, which Finn et al. (2017) put
            around the navigation env, makes the policy act in [-1, 1] (``action_scale = 0.1``), so that
            ``init_std = 1`` is as wide as the action box, not ten times wider.

    Example:
        >>> policy = GaussianMLPPolicy(2, 2)
        >>> policy(torch.zeros(5, 2)).shape     # mean and log-std
        torch.Size([5, 4])
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (100, 100), init_std: float = 1.0,
                 action_scale: float = 1.0) -> None:
        super().__init__()
        if not init_std > 0:
            raise ValueError(f"init_std must be > 0, got {init_std}")
        if not (math.isfinite(action_scale) and action_scale > 0):
            raise ValueError(f"action_scale must be a finite number > 0, got {action_scale}")
        self.act_dim = act_dim
        self.action_scale = float(action_scale)
        self.mean = MLP(obs_dim, act_dim, hidden)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(..., obs_dim) -> (..., 2 * act_dim): the mean, then the log-std."""
        mean = self.mean(obs)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)

    def batched_forward(self, params: dict[str, torch.Tensor], obs: torch.Tensor) -> torch.Tensor:
        """One parameter set per task: params (T, ...), obs (T, M, obs_dim) -> (T, M, 2 * act_dim)."""
        mean_params = {k.removeprefix("mean."): v for k, v in params.items() if k.startswith("mean.")}
        mean = self.mean.batched_forward(mean_params, obs)
        log_std = params["log_std"][:, None, :].expand_as(mean)  # (T, M, act_dim)
        return torch.cat([mean, log_std], dim=-1)


def split_output(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A policy's output (..., 2 * act_dim) as ``(mean, log_std)``."""
    act_dim = output.shape[-1] // 2
    return output[..., :act_dim], output[..., act_dim:]


def gaussian_log_prob(output: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a | s) for outputs (..., 2 * act_dim) and actions (..., act_dim): returns (...)."""
    mean, log_std = split_output(output)
    if actions.shape != mean.shape:
        raise ValueError(f"actions have shape {tuple(actions.shape)} but the policy outputs means of shape "
                         f"{tuple(mean.shape)}; the policy's act_dim must match the environment's actions")
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - 0.5 * LOG_2PI).sum(dim=-1)


def gaussian_kl(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """KL(old || new) between diagonal Gaussians given as policy outputs (..., 2 * act_dim): returns (...)."""
    mean_old, log_std_old = split_output(old)
    mean_new, log_std_new = split_output(new)
    var_ratio = torch.exp(2 * (log_std_old - log_std_new))
    mean_term = ((mean_old - mean_new) * torch.exp(-log_std_new)) ** 2
    return 0.5 * (var_ratio + mean_term - 1).sum(dim=-1) + (log_std_new - log_std_old).sum(dim=-1)


def reinforce_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The policy-gradient (REINFORCE with baseline) loss, mean over time steps: -E[log pi(a|s) A].

    Args:
        output: policy outputs (..., M, 2 * act_dim) for M time steps.
        target: (..., M, act_dim + 1): the actions taken and, in the last column, their advantages.

    Returns:
        (...): one loss per task. Its gradient is the policy-gradient estimate (Williams 1992).
    """
    actions, advantages = target[..., :-1], target[..., -1]
    return -(gaussian_log_prob(output, actions) * advantages).mean(dim=-1)


def lvc_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ProMP's low-variance-curvature inner loss: -E[pi(a|s) / pi_old(a|s) A] (Rothfuss et al. 2019).

    ``target`` is (..., M, act_dim + 2): the actions, the log-probability under the
    policy that sampled them, and the advantage. At the sampling policy the gradient
    equals :func:`reinforce_loss`'s, but the second derivative (which the
    meta-gradient uses) has a much lower variance.
    """
    actions, old_log_prob, advantages = target[..., :-2], target[..., -2], target[..., -1]
    ratio = torch.exp(gaussian_log_prob(output, actions) - old_log_prob)
    return -(ratio * advantages).mean(dim=-1)
