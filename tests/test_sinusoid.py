import math

import numpy as np
import pytest
import torch

from metarl_course.device import get_device
from metarl_course.tasks import SinusoidTask, SinusoidTaskDistribution, meta_train_test_split


def test_batch_shapes_values_and_ranges():
    dist = SinusoidTaskDistribution()
    batch = dist.sample_batch(25, num_support=10, num_query=15, rng=np.random.default_rng(0))
    assert batch.support_x.shape == (25, 10, 1) and batch.query_y.shape == (25, 15, 1)
    assert batch.support_x.dtype == torch.float32 and batch.support_x.device == get_device()
    assert ((batch.amplitude >= 0.1) & (batch.amplitude <= 5)).all()
    assert ((batch.phase >= 0) & (batch.phase <= math.pi)).all()
    assert ((batch.query_x >= -5) & (batch.query_x <= 5)).all()
    # y is exactly A sin(x - phase), task by task
    for i in range(batch.num_tasks):
        task = batch.task(i)
        assert torch.allclose(batch.support_y[i], task(batch.support_x[i]), atol=1e-5)


def test_same_seed_same_batch_and_custom_ranges():
    dist = SinusoidTaskDistribution(amplitude_range=(1.0, 2.0), x_range=(0.0, 1.0))
    a = dist.sample_batch(4, 3, 3, np.random.default_rng(7))
    b = dist.sample_batch(4, 3, 3, np.random.default_rng(7))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)
    assert ((a.amplitude >= 1) & (a.amplitude <= 2)).all() and (a.support_x <= 1).all()


def test_task_distribution_statistics():
    tasks = SinusoidTaskDistribution().sample_tasks(20000, np.random.default_rng(0))
    amplitudes = np.array([t.amplitude for t in tasks])
    phases = np.array([t.phase for t in tasks])
    assert abs(amplitudes.mean() - 2.55) < 0.05  # U[0.1, 5] has mean 2.55
    assert abs(phases.mean() - math.pi / 2) < 0.03


def test_meta_train_test_split_is_disjoint_and_repeatable():
    train, test = meta_train_test_split(SinusoidTaskDistribution(), 50, 20, seed=1)
    assert len(train) == 50 and len(test) == 20 and not set(train) & set(test)
    assert meta_train_test_split(SinusoidTaskDistribution(), 50, 20, seed=1)[1] == test


def test_task_is_frozen():
    task = SinusoidTask(1.0, 0.0)
    with pytest.raises(AttributeError):
        task.amplitude = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("k", [0, -3, 2.5])
def test_rejects_non_positive_k(k):
    with pytest.raises(ValueError, match="num_support"):
        SinusoidTaskDistribution().sample_batch(2, k, 5, np.random.default_rng(0))


@pytest.mark.parametrize("bad", [(5.0, 0.1), (1.0,), (0.0, float("inf"))])
def test_rejects_malformed_range(bad):
    with pytest.raises(ValueError, match="amplitude_range"):
        SinusoidTaskDistribution(amplitude_range=bad)
