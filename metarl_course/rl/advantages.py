"""Generalised advantage estimation (GAE, Schulman et al. 2016) over time-major batches.

RL² (Duan et al. 2016) treats a whole *trial* -- several episodes of one task
-- as one long episode of the recurrent agent: the value of a step includes
the rewards of the later episodes of the same trial, because what the agent
learns now pays off there. So the only place where bootstrapping stops is
the end of a trial, marked by ``terminal``; the ends of episodes inside a
trial are not terminal.

Shared with other algorithms of the course: it knows nothing about RL².
"""

from __future__ import annotations

import torch


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
