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
