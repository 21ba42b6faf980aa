"""Seeding: one call makes a run repeatable."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's global state and torch; return a fresh Generator.

    The course passes the returned ``np.random.Generator`` explicitly to task
    samplers instead of relying on global state.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))
    return np.random.default_rng(int(seed))


# ---------------------------------------------------------------------------------------------------------------
# Device-independent random numbers
#
# CPU and CUDA generators give different streams for the same seed, so a GPU run that drew its noise on the GPU
# would play other episodes than the CPU run: other numbers than the README and the chapters. The course draws
# every random number (task noise, action noise, payouts, minibatch orders) from a CPU ``torch.Generator`` and
# moves it to the device, so one seed gives the same numbers on any device, up to floating point. On the CPU
# the move is a no-op and the numbers are exactly those of ``torch.rand(..., generator=g)``.
# ---------------------------------------------------------------------------------------------------------------


def cpu_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``: the source of the course's random numbers on any device."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return torch.Generator(device="cpu").manual_seed(int(seed))


def generator_device(generator: torch.Generator | None) -> torch.device:
    """Where ``generator`` draws (``None``: torch's global CPU stream)."""
    return generator.device if generator is not None else torch.device("cpu")


def uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """U[0, 1) numbers of ``shape`` drawn on ``generator``'s device (the CPU's for the course) and moved to ``device``.

    ``generator=None`` draws from torch's global CPU stream.
    """
    return torch.rand(shape, generator=generator, dtype=dtype, device=generator_device(generator)).to(device)


def normal(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal numbers of ``shape``, drawn as :func:`uniform` draws (same seed, same numbers on any device)."""
    return torch.randn(shape, generator=generator, dtype=dtype, device=generator_device(generator)).to(device)


def categorical(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One index per row of ``probs`` (B, k), sampled on ``generator``'s device; returned on ``probs.device``, (B,)."""
    return torch.multinomial(probs.to(generator_device(generator)), 1, generator=generator).squeeze(-1).to(probs.device)
