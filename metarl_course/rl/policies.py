"""The course's policies: MAML-RL's Gaussian MLP (run with given parameters) and RL²'s recurrent actor-critic.

:class:`GaussianMLPPolicy` is the policy of Finn et al. (2017)'s MAML-RL
experiments: an MLP gives the mean of a diagonal Gaussian, and a learned,
state-independent log standard deviation gives its spread.

:class:`RL2ActorCritic` is the policy of RL² (Duan et al. 2016): a GRU over
what the agent saw and did, whose hidden state carries what it has learned
about the task (trained in :mod:`metarl_course.rl.rl2`).

Its ``forward`` returns the mean and the log-std side by side, ``(..., 2 * act_dim)``,
so the policy plugs into :func:`metarl_course.adaptation.adapt` like any
regression model: the "target" of a time step is the action taken and its
advantage, and :func:`reinforce_loss` is the loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from metarl_course.nets import MLP
from metarl_course.seeding import categorical, normal
from metarl_course.tasks.distribution import check_count

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


# ---------------------------------------------------------------------------
# RL²'s recurrent actor-critic
# ---------------------------------------------------------------------------


class RL2ActorCritic(nn.Module):
    """A GRU over (s_t, a_{t-1}, r_{t-1}, d_{t-1}) with a policy head and a value head.

    Discrete actions are fed back one-hot, continuous ones as the (clipped,
    rescaled to [-1, 1]) action itself. Discrete observations are one-hot.
    The GRU is time-major: inputs ``(T, B, input_size)``, hidden ``(1, B, H)``.

    The model remembers the setting it was built for (``setting``, part of its
    ``state_dict``): loading weights trained for another (n, k) raises a
    ValueError that says what to change.

    Example:
        >>> model = RL2ActorCritic(obs_dim=1, action_dim=5, discrete=True, hidden_size=8)
        >>> x = model.encode(torch.zeros(3, dtype=torch.long), torch.zeros(3, 5), torch.zeros(3), torch.zeros(3))
        >>> out, values, h = model(x[None], model.initial_hidden(3))
        >>> out.shape, values.shape, h.shape
        (torch.Size([1, 3, 5]), torch.Size([1, 3]), torch.Size([1, 3, 8]))
    """

    def __init__(self, obs_dim: int, action_dim: int, discrete: bool, hidden_size: int = 128,
                 obs_is_index: bool = True, setting: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.obs_dim, self.action_dim, self.discrete, self.obs_is_index = obs_dim, action_dim, discrete, obs_is_index
        self.setting = dict(setting or {})
        self.input_size = obs_dim + action_dim + 2  # s_t, a_{t-1}, r_{t-1}, d_{t-1}
        self.gru = nn.GRU(self.input_size, hidden_size)
        self.policy_head = nn.Linear(hidden_size, action_dim)
        self.value_head = nn.Linear(hidden_size, 1)
        nn.init.orthogonal_(self.policy_head.weight, gain=0.01)  # a near-uniform first policy (CleanRL)
        nn.init.zeros_(self.policy_head.bias)
        if not discrete:
            self.log_std = nn.Parameter(torch.zeros(action_dim))

    @property
    def hidden_size(self) -> int:
        return self.gru.hidden_size

    @property
    def device(self) -> torch.device:
        return self.value_head.weight.device

    def initial_hidden(self, batch_size: int) -> torch.Tensor:
        """Zeros ``(1, batch_size, H)`` on the model's device: the state at the start of a trial."""
        return torch.zeros(1, check_count("batch_size", batch_size), self.hidden_size, device=self.device)

    def action_features(self, actions: torch.Tensor) -> torch.Tensor:
        """How an action is fed back at the next step: (B,) long -> one-hot (B, A); (B, A) float -> clipped."""
        if self.discrete:
            return F.one_hot(actions.long(), self.action_dim).float()
        return actions.clamp(-1.0, 1.0)

    def encode(self, obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
               prev_done: torch.Tensor) -> torch.Tensor:
        """The GRU's input (B, input_size) = [s_t, a_{t-1}, r_{t-1}, d_{t-1}].

        Args:
            obs: (B,) long state indices, or (B, obs_dim) floats.
            prev_action: (B, action_dim) from :meth:`action_features` (zeros at the start of a trial).
            prev_reward: (B,) the reward of the previous step (0 at the start of a trial).
            prev_done: (B,) 1.0 if the previous step ended an episode, else 0.0.
        """
        obs_features = F.one_hot(obs.long(), self.obs_dim).float() if self.obs_is_index else obs.float()
        if prev_action.shape != (obs.shape[0], self.action_dim):
            raise ValueError(f"prev_action must be (B, {self.action_dim}) = action_features(a_(t-1)), "
                             f"got {tuple(prev_action.shape)}")
        return torch.cat([obs_features, prev_action.float(), prev_reward.float()[:, None],
                          prev_done.float()[:, None]], dim=1)

    def forward(self, inputs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the GRU over a sequence in one call (cuDNN/MKL fused on long sequences).

        Args:
            inputs: (T, B, input_size) encoded steps.
            hidden: (1, B, H) the state before the first of them.

        Returns:
            ``(policy_out, values, hidden)``: logits or action means (T, B, A), values (T, B), state (1, B, H).
        """
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(f"inputs must be (T, B, {self.input_size}), got {tuple(inputs.shape)}")
        if hidden.shape != (1, inputs.shape[1], self.hidden_size):
            raise ValueError(f"hidden must be (1, {inputs.shape[1]}, {self.hidden_size}) for a batch of "
                             f"{inputs.shape[1]} trials, got {tuple(hidden.shape)}; "
                             f"make it with model.initial_hidden({inputs.shape[1]})")
        features, hidden = self.gru(inputs, hidden)  # (T, B, H)
        return self.policy_head(features), self.value_head(features).squeeze(-1), hidden

    def distribution(self, policy_out: torch.Tensor) -> torch.distributions.Distribution:
        """Categorical over logits, or a diagonal Gaussian (state-independent std) over actions."""
        if self.discrete:
            return torch.distributions.Categorical(logits=policy_out)
        return torch.distributions.Independent(torch.distributions.Normal(policy_out, self.log_std.exp()), 1)

    def sample(self, policy_out: torch.Tensor, generator: torch.Generator | None, greedy: bool = False
               ) -> torch.Tensor:
        """An action per row of ``policy_out`` (B, A) from an explicit generator; ``greedy``: the mode."""
        if self.discrete:
            if greedy:
                return policy_out.argmax(-1)
            return categorical(policy_out.softmax(-1), generator)
        if greedy:
            return policy_out
        noise = normal(policy_out.shape, generator, policy_out.device)
        return policy_out + self.log_std.exp() * noise

    def get_extra_state(self) -> dict[str, Any]:
        return {"setting": dict(self.setting)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        theirs = state.get("setting", {}) if isinstance(state, dict) else {}
        if theirs != self.setting:
            diff = {k: (theirs.get(k), self.setting.get(k)) for k in sorted(set(theirs) | set(self.setting))
                    if theirs.get(k) != self.setting.get(k)}
            wrong = ", ".join(f"{k}={a!r} (this model: {b!r})" for k, (a, b) in diff.items())
            raise ValueError(f"these weights were trained for {wrong}; build the model for the checkpoint's "
                             f"setting (e.g. RL2Config.bandit(num_pulls=..., num_arms=...)) or load the "
                             f"checkpoint trained for this one")
