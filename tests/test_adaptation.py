import numpy as np
import pytest
import torch

from metarl_course.adaptation import adapt, adaptation_curve, adapted_predictions, batched_loss, parameters_of
from metarl_course.device import get_device
from metarl_course.evaluation import mean_ci, summarize
from metarl_course.nets import MLP
from metarl_course.tasks import SinusoidTaskDistribution


def make(dtype=torch.float64, num_tasks=4):
    torch.manual_seed(0)
    net = MLP(1, 1, hidden=(8, 8)).to(device=get_device(), dtype=dtype)  # where the batch is
    batch = SinusoidTaskDistribution().sample_support_query(num_tasks, 5, 7, np.random.default_rng(0), dtype=dtype)
    return net, batch


def loop_reference(net, batch, lrs):
    """The tutorial's way: one task at a time, autograd.grad, new parameter dicts."""
    out = []
    for i in range(batch.num_tasks):
        params = {k: v.detach().clone().requires_grad_() for k, v in net.named_parameters()}
        for lr in lrs:
            loss = ((torch.func.functional_call(net, params, (batch.support_x[i],)) - batch.support_y[i]) ** 2).mean()
            grads = torch.autograd.grad(loss, list(params.values()))
            params = {k: v - lr * g for (k, v), g in zip(params.items(), grads)}
        out.append(params)
    return out


@pytest.mark.parametrize("lrs", [[0.1], [0.1, 0.05, 0.02]])
def test_vmapped_adapt_equals_per_task_loop(lrs):
    net, batch = make()
    adapted = adapt(net, parameters_of(net), batch.support_x, batch.support_y, lrs, len(lrs))
    reference = loop_reference(net, batch, lrs)
    for i, ref in enumerate(reference):
        for k in ref:
            assert torch.allclose(adapted[k][i], ref[k], atol=1e-12, rtol=0)


def test_adapted_predictions_equal_the_per_task_loop_on_shared_points():
    net, batch = make()
    grid = torch.linspace(-5, 5, 11, dtype=torch.float64, device=batch.support_x.device).reshape(1, -1, 1)
    predictions = adapted_predictions(net, parameters_of(net), batch.support_x, batch.support_y, grid, [0.1, 0.05], 2)
    assert predictions.shape == (batch.num_tasks, 11, 1) and not predictions.requires_grad
    for i, params in enumerate(loop_reference(net, batch, [0.1, 0.05])):
        expected = torch.func.functional_call(net, params, (grid[0],))
        assert torch.allclose(predictions[i], expected, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="x must be"):
        adapted_predictions(net, parameters_of(net), batch.support_x, batch.support_y, grid[0], 0.1, 1)


def test_adaptation_never_mutates_the_module():
    net, batch = make()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    adapt(net, parameters_of(net), batch.support_x, batch.support_y, 0.5, 3)
    adaptation_curve(net, parameters_of(net), batch.support_x, batch.support_y, batch.query_x, batch.query_y, 0.5, 3)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_adaptation_curve_matches_adapt_and_reduces_support_loss():
    net, batch = make()
    curve = adaptation_curve(net, parameters_of(net), batch.support_x, batch.support_y,
                             batch.support_x, batch.support_y, 0.02, 20)
    assert curve.shape == (batch.num_tasks, 21)
    adapted = adapt(net, parameters_of(net), batch.support_x, batch.support_y, 0.02, 20)
    assert torch.allclose(curve[:, -1], batched_loss(net, adapted, batch.support_x, batch.support_y))
    assert (curve[:, -1] < curve[:, 0]).all()  # gradient descent on the support set fits it


@pytest.mark.parametrize("kwargs,match", [
    ({"inner_lr": -0.1}, "> 0"), ({"inner_lr": 0.0}, "> 0"), ({"num_steps": -1}, ">= 0"),
    ({"inner_lr": [0.1, 0.1], "num_steps": 3}, "one per step"),
])
def test_bad_learning_rates_and_steps(kwargs, match):
    net, batch = make()
    args = {"inner_lr": 0.1, "num_steps": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        adapt(net, parameters_of(net), batch.support_x, batch.support_y, **args)


def test_mismatched_shapes_and_frozen_model():
    net, batch = make()
    with pytest.raises(ValueError, match="num_tasks, num_points"):
        adapt(net, parameters_of(net), batch.support_x, batch.support_y[:, :3], 0.1, 1)
    with pytest.raises(ValueError, match="same number of tasks"):
        adaptation_curve(net, parameters_of(net), batch.support_x, batch.support_y,
                         batch.query_x[:2], batch.query_y[:2], 0.1, 1)
    net.requires_grad_(False)
    with pytest.raises(ValueError, match="require grad"):
        parameters_of(net)


def test_mean_ci_matches_closed_form():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    mean, hw = mean_ci(values)
    # t_{0.975, 3} = 3.182446
    assert mean == 2.5 and abs(hw - 3.182446 * np.std(values, ddof=1) / 2) < 1e-5
    s = summarize(torch.tensor(values))
    assert s.n == 4 and abs(s.mean - 2.5) < 1e-12
    with pytest.raises(ValueError):
        mean_ci(np.array([1.0]))
