"""Task distributions and the environments the course trains on."""

from metarl_course.tasks.sinusoid import (
    SinusoidBatch,
    SinusoidTask,
    SinusoidTaskDistribution,
    heldout_batch,
    meta_train_test_split,
)
