import numpy as np
import pytest
import torch
from torch import nn

from metarl_course.device import get_device
from metarl_course.adaptation import adapt, parameters_of
from metarl_course.maml import MAMLConfig, MAMLLearner, maml_meta_loss, meta_gradient
from metarl_course.nets import MLP, sinusoid_regressor
from metarl_course.tasks import SinusoidTaskDistribution, heldout_batch
from metarl_course.training import train
from metarl_course.tutorial_maml import tutorial_maml_step, tutorial_meta_gradient, tutorial_tasks


def setup(dtype=torch.float64, hidden=(16, 16), activation=nn.ReLU, num_tasks=5):
    torch.manual_seed(0)
    net = MLP(1, 1, hidden=hidden, activation=activation).to(device=get_device(), dtype=dtype)  # where the batch is
    b = SinusoidTaskDistribution().sample_support_query(num_tasks, 10, 10, np.random.default_rng(1), dtype=dtype)
    return net, b


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("algorithm", ["maml", "fomaml"])
def test_meta_gradient_equals_the_tutorials_per_task_loop(steps, algorithm):
    """The batched meta-gradient against the tutorial's loop over tasks, in float64: equal up to rounding."""
    net, b = setup()
    config = MAMLConfig(algorithm=algorithm, inner_lr=0.05, num_inner_steps=steps)
    ours, _ = meta_gradient(net, parameters_of(net), b.support_x, b.support_y, b.query_x, b.query_y, config)
    ref = tutorial_meta_gradient(net, tutorial_tasks(b), 0.05, steps, create_graph=algorithm == "maml")
    for k in ref:
        assert torch.allclose(ours[k], ref[k], atol=1e-10, rtol=0), k


def test_tutorial_maml_step_descends_its_meta_gradient():
    """One SGD step of the tutorial's outer loop moves every parameter by -lr times its meta-gradient."""
    net, b = setup()
    grads = tutorial_meta_gradient(net, tutorial_tasks(b), 0.05, 2)
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    tutorial_maml_step(net, torch.optim.SGD(net.parameters(), lr=0.1), tutorial_tasks(b), 0.05, 2)
    for k, v in net.named_parameters():
        assert torch.allclose(v.detach(), before[k] - 0.1 * grads[k], atol=1e-12, rtol=0), k


def test_generic_vmap_path_equals_fast_mlp_path():
    net, b = setup(activation=nn.Tanh)
    plain = nn.Sequential(*net.net)  # same weights, no batched_forward: takes the vmap path
    config = MAMLConfig(inner_lr=0.05, num_inner_steps=2)
    fast, _ = meta_gradient(net, parameters_of(net), b.support_x, b.support_y, b.query_x, b.query_y, config)
    generic, _ = meta_gradient(plain, parameters_of(plain), b.support_x, b.support_y, b.query_x, b.query_y, config)
    for k, v in generic.items():
        assert torch.allclose(fast[f"net.{k}"], v, atol=1e-12)


def test_first_and_second_order_differ():
    net, b = setup()
    so, _ = meta_gradient(net, parameters_of(net), b.support_x, b.support_y, b.query_x, b.query_y,
                          MAMLConfig(inner_lr=0.05))
    fo, _ = meta_gradient(net, parameters_of(net), b.support_x, b.support_y, b.query_x, b.query_y,
                          MAMLConfig(algorithm="fomaml", inner_lr=0.05))
    diff = max((so[k] - fo[k]).abs().max().item() for k in so)
    assert diff > 1e-4


def test_second_order_meta_gradient_matches_finite_differences():
    net, b = setup(hidden=(4,), activation=nn.Tanh, num_tasks=3)
    names = [k for k, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]

    def objective(*flat):
        params = dict(zip(names, flat))
        return maml_meta_loss(net, params, b.support_x, b.support_y, b.query_x, b.query_y, 0.1, 2)

    inputs = tuple(p.detach().clone().requires_grad_() for _, p in net.named_parameters())
    assert [t.shape for t in inputs] == shapes
    assert torch.autograd.gradcheck(objective, inputs, eps=1e-6, atol=1e-6)


def test_reptile_direction_is_theta_minus_mean_adapted():
    net, b = setup()
    config = MAMLConfig(algorithm="reptile", inner_lr=0.05, num_inner_steps=3)
    direction, _ = meta_gradient(net, parameters_of(net), b.support_x, b.support_y, b.query_x, b.query_y, config)
    adapted = adapt(net, {k: v.detach() for k, v in parameters_of(net).items()}, b.support_x, b.support_y, 0.05, 3)
    for k, v in net.named_parameters():
        assert torch.allclose(direction[k], v.detach() - adapted[k].mean(0), atol=1e-12)


def test_meta_gradient_does_not_touch_the_model():
    net, b = setup()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    meta_gradient(net, parameters_of(net), b.support_x, b.support_y, b.query_x, b.query_y,
                  MAMLConfig(num_inner_steps=3))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("kwargs,match", [
    ({"inner_lr": -0.1}, "inner_lr must be > 0"), ({"meta_lr": 0}, "meta_lr must be > 0"),
    ({"num_inner_steps": 0}, "num_inner_steps must be a whole number >= 1"), ({"algorithm": "maml2"}, "one of"),
    ({"algorithm": "reptile", "num_inner_steps": 1}, "num_inner_steps >= 2"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MAMLConfig(**kwargs)


def test_short_meta_training_improves_one_step_mse():
    torch.manual_seed(0)
    learner = MAMLLearner(sinusoid_regressor(0, device="cpu"), MAMLConfig(), SinusoidTaskDistribution(),
                          heldout_batch(10, device="cpu"))
    before = learner.evaluate_heldout()["eval/mse_step1"]
    history = train(learner, 400, progress=False)
    after = history.last("eval/mse_step1")
    assert after < 0.8 * before, (before, after)
    _, losses = history["losses/query_mse"]
    assert losses[-50:].mean() < losses[:50].mean()


def test_divergence_stops_with_a_hint():
    learner = MAMLLearner(sinusoid_regressor(0, device="cpu"), MAMLConfig(inner_lr=50.0, meta_lr=10.0),
                          SinusoidTaskDistribution(), heldout_batch(10, device="cpu"))
    with pytest.raises(FloatingPointError, match="smaller learning rates"):
        train(learner, 50, progress=False)
