"""cnn.optim's NumPy optimizers (Adadelta, RMSprop, Adagrad, NAdam, RAdam) against PyTorch step
by step, their state dicts, and a user's own optimizer written PyTorch's way."""
import itertools

import numpy as np
import pytest
from test_optim import gradient_sequence, make_params, run_parity, set_grads

import cnn
from cnn.nn import Parameter
from cnn.optim import SGD, Adadelta, Adagrad, NAdam, Optimizer, RAdam, RMSprop

CONFIGS = {
    "Adadelta": [dict(), dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1, maximize=True)],
    "RMSprop": [dict(momentum=momentum, centered=centered, weight_decay=weight_decay,
                     maximize=maximize)
                for momentum, centered, weight_decay, maximize in itertools.product(
                    [0, 0.9], [False, True], [0, 0.01], [False, True])],
    "Adagrad": [dict(), dict(lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2,
                             eps=1e-6, maximize=True)],
    "NAdam": [dict(), dict(weight_decay=0.1, momentum_decay=0.01, betas=(0.8, 0.99)),
              dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)],
    "RAdam": [dict(), dict(weight_decay=0.1, betas=(0.8, 0.9)),
              dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)],
}
CLASSES = {"Adadelta": Adadelta, "RMSprop": RMSprop, "Adagrad": Adagrad, "NAdam": NAdam,
           "RAdam": RAdam}
CASES = [(name, options) for name, configs in CONFIGS.items() for options in configs]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, options", CASES,
                         ids=[f"{n}-" + "-".join(f"{k}={v}" for k, v in o.items())
                              for n, o in CASES])
def test_matches_torch_step_by_step(name, options, dtype):
    torch = pytest.importorskip("torch")
    run_parity(CLASSES[name], getattr(torch.optim, name), dtype, options)


@pytest.mark.parametrize("name", CLASSES)
def test_state_dict_round_trip_resumes_exactly(name):
    params = make_params(np.float64)
    flat = [p for group in params for p in group]
    optimizer = CLASSES[name](flat, lr=0.01)
    grads = gradient_sequence(np.float64, steps=6)
    for step_grads in grads[:3]:
        set_grads(params, step_grads)
        optimizer.step()
    saved = optimizer.state_dict()
    copies = [Parameter(p._data.copy()) for p in flat]
    resumed = CLASSES[name](copies, lr=0.01)
    resumed.load_state_dict(saved)
    for step_grads in grads[3:]:
        set_grads(params, step_grads)
        optimizer.step()
        for p, g in zip(copies, (g for group in step_grads for g in group)):
            p.grad = None if g is None else g.copy()
        resumed.step()
    for ours, theirs in zip(flat, copies):
        np.testing.assert_array_equal(ours._data, theirs._data)


def test_invalid_hyperparameters_raise_pytorchs_errors():
    p = [Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match="Invalid rho value"):
        Adadelta(p, rho=1.5)
    with pytest.raises(ValueError, match="Invalid alpha value"):
        RMSprop(p, alpha=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        NAdam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="capturable"):
        RMSprop(p, capturable=True)


class MomentumSGD(Optimizer):
    """A user's optimizer written as PyTorch's tutorials write them."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @cnn.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = cnn.clone(p.grad).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(p.grad)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])


def test_a_users_own_optimizer_matches_sgd_with_momentum_and_saves_its_state():
    params = make_params(np.float64)
    flat = [p for group in params for p in group]
    twins = [Parameter(p._data.copy()) for p in flat]
    ours, reference = MomentumSGD(flat), SGD(twins, lr=0.1, momentum=0.9)
    for step_grads in gradient_sequence(np.float64, steps=5):
        grads = [g for group in step_grads for g in group]
        for p, q, g in zip(flat, twins, grads):
            p.grad = q.grad = None if g is None else g.copy()
        ours.step()
        reference.step()
    for p, q in zip(flat, twins):
        np.testing.assert_allclose(p._data, q._data, rtol=1e-12)
    saved = ours.state_dict()
    restored = MomentumSGD([Parameter(p._data.copy()) for p in flat])
    restored.load_state_dict(saved)
    buffers = [restored.state[p]["momentum_buffer"] for p in restored.param_groups[0]["params"]
               if p in restored.state]
    assert buffers and all(isinstance(b, cnn.Tensor) for b in buffers)
    assert isinstance(ours.state, dict) and ours.state[Parameter(np.zeros(1))] == {}
