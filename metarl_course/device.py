"""The GPU switch: the one place that decides where tensors live.

Set the environment variable ``METARL_DEVICE`` before starting Python (or in
a notebook's first cell, before any training):

* ``auto`` (default): CUDA when a GPU is visible, else the CPU;
* ``cpu``: always the CPU (what CI and quick mode use);
* ``cuda`` or ``cuda:N``: a GPU; an error if there is none, never a silent
  fall-back to the CPU.

Every model and tensor the package creates goes to :func:`get_device`.
"""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "METARL_DEVICE"
THREADS_ENV = "METARL_NUM_THREADS"
VALID_DEVICES = ("auto", "cpu", "cuda", "cuda:N")


def get_device() -> torch.device:
    """The device the course runs on, read from ``METARL_DEVICE``.

    Raises:
        ValueError: the variable holds something other than auto, cpu, cuda
            or cuda:N.
        RuntimeError: a GPU was asked for and none is available.

    Example:
        >>> import os; os.environ["METARL_DEVICE"] = "cpu"
        >>> get_device()
        device(type='cpu')
    """
    choice = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or (choice.startswith("cuda:") and choice[5:].isdigit()):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{DEVICE_ENV}={choice} asks for a GPU, but torch sees none "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None}). "
                f"Set {DEVICE_ENV}=cpu or auto, or install a CUDA build of torch."
            )
        index = int(choice[5:]) if ":" in choice else 0
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"{DEVICE_ENV}={choice}, but only {torch.cuda.device_count()} GPU(s) are visible."
            )
        return torch.device(choice)
    raise ValueError(
        f"{DEVICE_ENV}={choice!r} is not a valid device; use one of {', '.join(VALID_DEVICES)}."
    )


def configure_precision() -> None:
    """Full float32 on a GPU, as on the CPU: no TF32 in matrix products or cuDNN (the GRU).

    TF32 keeps 10 bits of mantissa (relative error 1e-3): faster on recent GPUs, but a GPU run would then
    not "show the same numbers" as the CPU's, which the course promises. Costs nothing at the course's sizes.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def configure_threads() -> int:
    """Set torch's intra-op thread count from ``METARL_NUM_THREADS`` (default 1).

    The course's models are tiny: on a 2-core laptop, one thread trains
    second-order MAML about 4x faster than two (thread start-up dominates).
    Set ``METARL_NUM_THREADS=0`` to keep torch's own default.
    """
    raw = os.environ.get(THREADS_ENV, "1").strip()
    if not raw.isdigit():
        raise ValueError(
            f"{THREADS_ENV}={raw!r} must be a whole number of threads (0 keeps torch's default)."
        )
    if int(raw) > 0:
        torch.set_num_threads(int(raw))
    return torch.get_num_threads()
