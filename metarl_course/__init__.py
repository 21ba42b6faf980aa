"""Reference code for the meta-RL course.

Importing the package sets torch to ``METARL_NUM_THREADS`` threads (default 1,
the fastest setting for the course's small models on a laptop CPU) and turns TF32 off on GPUs (full float32,
the CPU's numbers).
"""

from metarl_course.budget import budget, quick_mode
from metarl_course.device import configure_precision, configure_threads, get_device
from metarl_course.seeding import seed_everything

__version__ = "0.1.0"

configure_threads()
configure_precision()


def describe() -> str:
    """One line that says how the course is set up (device, quick mode, threads)."""
    import torch

    mode = "quick (small budgets)" if quick_mode() else "full"
    return (
        f"metarl_course {__version__} | device: {get_device()} | mode: {mode} | "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )


__all__ = ["budget", "quick_mode", "get_device", "configure_threads", "seed_everything", "describe"]
