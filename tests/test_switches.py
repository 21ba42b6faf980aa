import pytest
import torch

import metarl_course as mc
from metarl_course.budget import budget, quick_mode
from metarl_course.device import configure_threads, get_device


@pytest.mark.parametrize("value,expected", [("1", True), ("0", False), ("true", True), ("", False)])
def test_quick_mode_values(monkeypatch, value, expected):
    monkeypatch.setenv("METARL_QUICK", value)
    assert quick_mode() is expected
    assert budget(full=100, quick=3) == (3 if expected else 100)


def test_quick_mode_rejects_bad_value_and_names_valid_ones(monkeypatch):
    monkeypatch.setenv("METARL_QUICK", "yes")
    with pytest.raises(ValueError, match="METARL_QUICK=1.*METARL_QUICK=0"):
        budget(full=1, quick=2)


def test_device_cpu_and_auto(monkeypatch):
    monkeypatch.setenv("METARL_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("METARL_DEVICE", "auto")
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_device_rejects_unknown_value_and_names_valid_ones(monkeypatch):
    monkeypatch.setenv("METARL_DEVICE", "tpu")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setenv("METARL_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="METARL_DEVICE=cpu"):
        get_device()


def test_threads_default_one_and_override(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("METARL_NUM_THREADS", raising=False)
        assert configure_threads() == 1
        monkeypatch.setenv("METARL_NUM_THREADS", "2")
        assert configure_threads() == 2
        monkeypatch.setenv("METARL_NUM_THREADS", "many")
        with pytest.raises(ValueError, match="whole number"):
            configure_threads()
    finally:
        torch.set_num_threads(before)


def test_describe_mentions_device_and_mode(monkeypatch):
    monkeypatch.setenv("METARL_QUICK", "1")
    monkeypatch.setenv("METARL_DEVICE", "cpu")  # pinned: the line must name the device the switch picks
    text = mc.describe()
    assert "device: cpu" in text and "quick" in text


def test_seed_everything_repeats():
    a = mc.seed_everything(3).uniform(size=3), torch.rand(2)
    b = mc.seed_everything(3).uniform(size=3), torch.rand(2)
    assert (a[0] == b[0]).all() and torch.equal(a[1], b[1])
    with pytest.raises(ValueError):
        mc.seed_everything(-1)


def test_random_numbers_are_drawn_on_the_cpu_whatever_the_device():
    """seeding.uniform / normal / categorical give torch's CPU stream, on the course's device: one seed, the same
    episodes on a CPU and a GPU (and exactly the numbers the shipped results were scored with)."""
    from metarl_course.seeding import categorical, cpu_generator, normal, uniform

    device = get_device()
    for draw, reference in ((uniform, torch.rand), (normal, torch.randn)):
        ours = draw((4, 5), cpu_generator(3), device, torch.float64)
        assert ours.device == device and ours.dtype == torch.float64
        assert torch.equal(ours.cpu(), reference((4, 5), generator=cpu_generator(3), dtype=torch.float64))
    probs = torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]], device=device).repeat(50, 1)
    arms = categorical(probs, cpu_generator(4))
    assert arms.device == device and arms.shape == (100,)
    assert torch.equal(arms.cpu(), torch.multinomial(probs.cpu(), 1, generator=cpu_generator(4)).squeeze(-1))
    with pytest.raises(ValueError, match="non-negative integer"):
        cpu_generator(-1)
