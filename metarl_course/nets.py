"""Networks used across the course.

They are ordinary ``torch.nn.Module`` s. Adaptation never mutates them: it
runs them with other parameters through ``torch.func.functional_call``
(see :mod:`metarl_course.adaptation`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from metarl_course.device import get_device
from metarl_course.tasks.distribution import check_count


class MLP(nn.Module):
    """A fully connected network ``in_dim -> hidden... -> out_dim``.

    Example:
        >>> net = MLP(1, 1, hidden=(40, 40))   # Finn et al.'s sinusoid regressor
        >>> net(torch.zeros(5, 1)).shape
        torch.Size([5, 1])
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (40, 40),
                 activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        sizes = [check_count("in_dim", in_dim), *(check_count("each hidden size", h) for h in hidden),
                 check_count("out_dim", out_dim)]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(activation())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., out_dim)"""
        return self.net(x)

    def batched_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Run the network once per task, each task with its own parameters, in one batched pass.

        The same result as ``torch.func.vmap(functional_call(self, ...))`` but with
        ``torch.baddbmm``, which is faster for small networks on a CPU.

        Args:
            params: this module's parameter names -> (num_tasks, *param_shape).
            x: (num_tasks, N, in_dim)

        Returns:
            (num_tasks, N, out_dim)
        """
        h = x
        for i, layer in enumerate(self.net):
            if isinstance(layer, nn.Linear):
                weight, bias = params[f"net.{i}.weight"], params[f"net.{i}.bias"]  # (T, out, in), (T, out)
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))  # (T, N, out)
            else:
                h = layer(h)
        return h


def sinusoid_regressor(seed: int = 0, device: torch.device | str | None = None,
                       dtype: torch.dtype = torch.float32) -> MLP:
    """Finn et al. (2017)'s sinusoid network, 1-40-40-1 with ReLU, on the course's device."""
    torch.manual_seed(seed)
    return MLP(1, 1, hidden=(40, 40)).to(device=device or get_device(), dtype=dtype)
