import math

import numpy as np
import pytest
import torch

from metarl_course.device import get_device
from metarl_course.tasks import SinusoidTask, SinusoidTaskDistribution, TaskDistribution, heldout_batch
from metarl_course.tasks.heldout import SINUSOID_HELDOUT_SEED


def test_batch_shapes_values_and_ranges():
    dist = SinusoidTaskDistribution()
    batch = dist.sample_support_query(25, num_support=10, num_query=15, rng=np.random.default_rng(0))
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
    a = dist.sample_support_query(4, 3, 3, np.random.default_rng(7))
    b = dist.sample_support_query(4, 3, 3, np.random.default_rng(7))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)
    assert ((a.amplitude >= 1) & (a.amplitude <= 2)).all() and (a.support_x <= 1).all()


def test_task_distribution_statistics():
    tasks = SinusoidTaskDistribution().sample(20000, np.random.default_rng(0))
    amplitudes = np.array([t.amplitude for t in tasks])
    phases = np.array([t.phase for t in tasks])
    assert abs(amplitudes.mean() - 2.55) < 0.05  # U[0.1, 5] has mean 2.55
    assert abs(phases.mean() - math.pi / 2) < 0.03


def test_is_a_task_distribution_whose_split_is_disjoint_and_repeatable():
    dist = SinusoidTaskDistribution()
    assert isinstance(dist, TaskDistribution)
    train, test = dist.split(50, 20, np.random.default_rng(1))
    assert len(train) == 50 and len(test) == 20 and not set(train) & set(test)
    assert all(isinstance(t, SinusoidTask) for t in train + test)
    assert dist.split(50, 20, np.random.default_rng(1))[1] == test
    # the split is one draw of 70 tasks, the first 50 for meta-training (continuous tasks never repeat)
    assert train + test == dist.sample(70, np.random.default_rng(1))


def test_random_streams_are_the_documented_numpy_draws():
    """Pins the streams behind the shipped results: amplitudes, then phases, then every x in one call."""
    dist = SinusoidTaskDistribution()
    batch = dist.sample_support_query(3, 4, 5, np.random.default_rng(11), device="cpu", dtype=torch.float64)
    rng = np.random.default_rng(11)  # the naive reference, draw by draw
    amplitude, phase = rng.uniform(0.1, 5.0, size=3), rng.uniform(0.0, math.pi, size=3)
    x = rng.uniform(-5.0, 5.0, size=(3, 9, 1))
    y = amplitude[:, None, None] * np.sin(x - phase[:, None, None])
    assert np.array_equal(batch.amplitude.numpy(), amplitude) and np.array_equal(batch.phase.numpy(), phase)
    assert np.array_equal(batch.support_x.numpy(), x[:, :4]) and np.array_equal(batch.query_x.numpy(), x[:, 4:])
    assert np.array_equal(batch.support_y.numpy(), y[:, :4]) and np.array_equal(batch.query_y.numpy(), y[:, 4:])


def test_heldout_batch_is_drawn_with_the_named_heldout_seed():
    ours = heldout_batch(5, num_tasks=7, num_query=3, device="cpu")
    dist, rng = SinusoidTaskDistribution(), np.random.default_rng(SINUSOID_HELDOUT_SEED)
    reference = dist.support_query_for(dist.sample(7, rng), 5, 3, rng, device="cpu")
    assert SINUSOID_HELDOUT_SEED == 2017  # the result files in metarl_course/checkpoints were scored on it
    assert all(torch.equal(getattr(ours, k), getattr(reference, k))
               for k in ("support_x", "support_y", "query_x", "query_y", "amplitude", "phase"))


def test_out_of_distribution_phases_are_the_rest_of_the_circle():
    dist = SinusoidTaskDistribution()
    ood = dist.out_of_distribution()
    assert ood.amplitude_range == dist.amplitude_range and ood.phase_range == (math.pi, 2 * math.pi)
    phases = np.array([t.phase for t in ood.sample(1000, np.random.default_rng(0))])
    assert ((phases >= math.pi) & (phases <= 2 * math.pi)).all()
    with pytest.raises(ValueError, match="covers every phase"):
        SinusoidTaskDistribution(phase_range=(0.0, 2 * math.pi)).out_of_distribution()


def test_task_is_frozen():
    task = SinusoidTask(1.0, 0.0)
    with pytest.raises(AttributeError):
        task.amplitude = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("k", [0, -3, 2.5])
def test_rejects_non_positive_k(k):
    with pytest.raises(ValueError, match="num_support"):
        SinusoidTaskDistribution().sample_support_query(2, k, 5, np.random.default_rng(0))


@pytest.mark.parametrize("bad", [(5.0, 0.1), (1.0,), (0.0, float("inf"))])
def test_rejects_malformed_range(bad):
    with pytest.raises(ValueError, match="amplitude_range"):
        SinusoidTaskDistribution(amplitude_range=bad)


def test_rejects_a_seed_instead_of_a_generator_and_no_tasks():
    with pytest.raises(TypeError, match="default_rng"):
        SinusoidTaskDistribution().sample(3, 0)
    with pytest.raises(ValueError, match="num_tasks must be a whole number >= 1"):
        SinusoidTaskDistribution().sample(0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least one SinusoidTask"):
        SinusoidTaskDistribution().support_query_for([], 2, 2, np.random.default_rng(0))
