"""Returns and advantages for policy gradients.

* :func:`discounted_returns` and :func:`linear_baseline`: Monte-Carlo returns and
  the linear feature baseline of MAML-RL (episodes of equal length, time last).
* :func:`gae`: generalised advantage estimation with a learned critic (RL²,
  time first); bootstrapping stops only at ``terminal`` steps, so RL² can treat a
  whole trial of several episodes as one long episode (Duan et al. 2016).
"""

from __future__ import annotations

import torch


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Reward-to-go ``R_t = sum_{k >= t} gamma^(k - t) r_k`` along the last dim.

    Args:
        rewards: (..., H) rewards of whole episodes of H steps.

    Example:
        >>> discounted_returns(torch.tensor([1.0, 1.0, 1.0]), 0.5)
        tensor([1.7500, 1.5000, 1.0000])
    """
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    returns = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = rewards[..., t] + gamma * running
        returns[..., t] = running
    return returns


def linear_baseline(obs: torch.Tensor, returns: torch.Tensor, reg: float = 1e-5,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """A linear value estimate fitted by least squares, separately for each task.

    The baseline of Duan et al. (2016, "Benchmarking deep RL"), used by Finn et
    al. (2017): features ``[s, s^2, t, t^2, t^3, 1]`` with ``t`` the time step
    divided by 100, fitted to the returns of the task's own episodes.

    Args:
        obs: (T, N, H, obs_dim) observations of N episodes of H steps for T tasks.
        returns: (T, N, H) discounted returns.
        mask: optional (T, N, H) bool: fit only on these steps (e.g. leave out episodes that do not
            count), though the values are given for every step.

    Returns:
        (T, N, H) baseline values.
    """
    T, N, H, _ = obs.shape
    x = obs.double()  # the normal equations are badly conditioned in float32
    t = (torch.arange(H, dtype=x.dtype, device=x.device) / 100.0)[None, None, :, None].expand(T, N, H, 1)
    features = torch.cat([x, x ** 2, t, t ** 2, t ** 3, torch.ones_like(t)], dim=-1).reshape(T, N * H, -1)
    fit = features if mask is None else features * mask.reshape(T, N * H, 1).to(x.dtype)  # masked rows count 0
    gram = fit.transpose(1, 2) @ fit  # (T, F, F)
    eye = torch.eye(gram.shape[-1], dtype=x.dtype, device=x.device)
    rhs = fit.transpose(1, 2) @ returns.double().reshape(T, N * H, 1)  # (T, F, 1)
    # increase the ridge term until every task's system is solvable (as rllab's LinearFeatureBaseline does)
    for scale in (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6):
        weights, info = torch.linalg.solve_ex(gram + reg * scale * eye, rhs)
        if (info == 0).all() and torch.isfinite(weights).all():
            break
    return (features @ weights).reshape(T, N, H).to(returns.dtype)


def normalize_per_task(values: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """Zero mean, unit standard deviation within each task: (T, ...) -> (T, ...).

    With a boolean ``mask`` of the same shape, the statistics use only the masked-in
    entries, and the others are set to 0 (e.g. time steps after an episode ended).
    """
    if mask is None:
        mask = torch.ones_like(values, dtype=torch.bool)
    weights = mask.reshape(values.shape[0], -1).to(values.dtype)
    flat = values.reshape(values.shape[0], -1)
    count = weights.sum(dim=1).clamp(min=2)
    mean = (flat * weights).sum(dim=1) / count
    std = ((((flat - mean[:, None]) ** 2) * weights).sum(dim=1) / (count - 1)).sqrt()
    shape = (-1,) + (1,) * (values.dim() - 1)
    return torch.where(mask, (values - mean.view(shape)) / (std.view(shape) + eps), torch.zeros_like(values))


def gae(rewards: torch.Tensor, values: torch.Tensor, last_value: torch.Tensor, terminal: torch.Tensor,
        gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages ``A_t`` and value targets ``A_t + V(s_t)`` by GAE(gamma, lambda).

    ``delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminal_t) - V(s_t)`` and
    ``A_t = delta_t + gamma * lam * (1 - terminal_t) * A_{t+1}``.

    Args:
        rewards: (T, B) reward of step t.
        values: (T, B) V(s_t), the critic's estimate before step t.
        last_value: (B,) V(s_T) of the state after the last step (ignored where ``terminal[-1]``).
        terminal: (T, B) bool, True where step t ends a trial (no bootstrapping through it).
        gamma: discount in [0, 1].
        lam: GAE's lambda in [0, 1]: 0 is the one-step TD error, 1 the Monte-Carlo return minus V.

    Returns:
        ``(advantages, returns)``, both (T, B).

    Example:
        >>> r = torch.tensor([[1.0], [0.0], [2.0]]); v = torch.tensor([[0.5], [1.0], [1.0]])
        >>> adv, ret = gae(r, v, torch.zeros(1), torch.tensor([[False], [False], [True]]), gamma=1.0, lam=1.0)
        >>> ret[:, 0]
        tensor([3., 2., 2.])
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    if rewards.shape != values.shape or rewards.shape != terminal.shape or rewards.dim() != 2:
        raise ValueError(f"rewards, values and terminal must all be (T, B); got {tuple(rewards.shape)}, "
                         f"{tuple(values.shape)}, {tuple(terminal.shape)}")
    if last_value.shape != rewards.shape[1:]:
        raise ValueError(f"last_value must be (B,) = {tuple(rewards.shape[1:])}, got {tuple(last_value.shape)}")
    not_terminal = (~terminal.bool()).to(values.dtype)  # (T, B)
    next_values = torch.cat([values[1:], last_value[None]], dim=0)  # (T, B) V(s_{t+1})
    deltas = rewards + gamma * next_values * not_terminal - values
    advantages = torch.empty_like(values)
    running = torch.zeros_like(last_value)
    for t in range(rewards.shape[0] - 1, -1, -1):  # a short Python loop over time, vectorised over the batch
        running = deltas[t] + gamma * lam * not_terminal[t] * running
        advantages[t] = running
    return advantages, advantages + values
