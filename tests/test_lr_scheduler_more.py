"""The schedulers added for PyTorch scripts, step by step against PyTorch: MultiStepLR,
ExponentialLR, LambdaLR, MultiplicativeLR, LinearLR, ConstantLR, OneCycleLR,
CosineAnnealingWarmRestarts, ReduceLROnPlateau, SequentialLR and ChainedScheduler."""
import copy

import numpy as np
import pytest
from test_lr_scheduler import LRS, make_optimizer

from cnn.nn import Parameter
from cnn.optim import SGD, Adam
from cnn.optim import lr_scheduler as schedulers

STEPS = 25


def _halving(epoch):
    return 0.5 ** (epoch // 3)


def _shrinking(epoch):
    return 0.9


SIMPLE = {
    "multistep": ("MultiStepLR", dict(milestones=[3, 7, 7, 12], gamma=0.5)),
    "exponential": ("ExponentialLR", dict(gamma=0.9)),
    "lambda": ("LambdaLR", dict(lr_lambda=_halving)),
    "lambda-per-group": ("LambdaLR", dict(lr_lambda=[_halving, lambda epoch: 1 / (epoch + 1)])),
    "multiplicative": ("MultiplicativeLR", dict(lr_lambda=_shrinking)),
    "linear": ("LinearLR", dict(start_factor=0.25, end_factor=0.9, total_iters=6)),
    "constant": ("ConstantLR", dict(factor=0.5, total_iters=4)),
    "warm-restarts": ("CosineAnnealingWarmRestarts", dict(T_0=4, T_mult=2, eta_min=0.001)),
    "warm-restarts-flat": ("CosineAnnealingWarmRestarts", dict(T_0=5)),
    "one-cycle": ("OneCycleLR", dict(max_lr=[0.5, 0.2], total_steps=STEPS)),
    "one-cycle-linear-3": ("OneCycleLR", dict(max_lr=0.4, epochs=5, steps_per_epoch=5,
                                              anneal_strategy="linear", three_phase=True,
                                              pct_start=0.25)),
}


def torch_optimizer(torch, optimizer_class="SGD"):
    kwargs = {"momentum": 0.9} if optimizer_class == "SGD" else {}
    return getattr(torch.optim, optimizer_class)(
        [{"params": [torch.ones(2, requires_grad=True)], "lr": lr} for lr in LRS], lr=LRS[0],
        **kwargs)


def cnn_optimizer(optimizer_class=SGD):
    kwargs = {"momentum": 0.9} if optimizer_class is SGD else {}
    return optimizer_class([{"params": [Parameter(np.ones(2))], "lr": lr} for lr in LRS],
                           lr=LRS[0], **kwargs)


def trace(scheduler, steps=STEPS):
    """The rates (and momenta) after construction and after each step."""
    def snapshot():
        groups = scheduler.optimizer.param_groups
        return (scheduler.get_last_lr(), [g.get("momentum", g.get("betas")) for g in groups])
    rates = [snapshot()]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        rates.append(snapshot())
    return rates


@pytest.mark.parametrize("name", SIMPLE)
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    class_name, options = SIMPLE[name]
    ours = getattr(schedulers, class_name)(cnn_optimizer(), **options)
    theirs = getattr(torch.optim.lr_scheduler, class_name)(torch_optimizer(torch), **options)
    steps = STEPS if class_name != "OneCycleLR" else ours.total_steps
    expected = [(lrs, [float(m) if not isinstance(m, tuple) else m for m in moms])
                for lrs, moms in trace(theirs, steps)]
    np.testing.assert_allclose([lrs for lrs, _ in trace(ours, steps)],
                               [lrs for lrs, _ in expected], rtol=1e-13, atol=0)
    assert ours.last_epoch == theirs.last_epoch


def test_one_cycle_cycles_adams_beta1_like_torch():
    torch = pytest.importorskip("torch")
    ours = schedulers.OneCycleLR(cnn_optimizer(Adam), max_lr=0.3, total_steps=12)
    theirs = torch.optim.lr_scheduler.OneCycleLR(torch_optimizer(torch, "Adam"), max_lr=0.3,
                                                 total_steps=12)
    for (lrs, betas), (ref_lrs, ref_betas) in zip(trace(ours, 12), trace(theirs, 12)):
        np.testing.assert_allclose(lrs, ref_lrs, rtol=1e-13)
        np.testing.assert_allclose(np.array(betas, float), np.array(ref_betas, float),
                                   rtol=1e-13)


def test_warm_restarts_take_fractional_epochs_like_torch():
    torch = pytest.importorskip("torch")
    ours = schedulers.CosineAnnealingWarmRestarts(cnn_optimizer(), T_0=3, T_mult=2)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(torch_optimizer(torch), T_0=3,
                                                                  T_mult=2)
    for epoch in np.arange(0, 12, 0.25):
        ours.step(float(epoch))
        theirs.step(float(epoch))
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-13)


@pytest.mark.parametrize("options", [
    dict(), dict(mode="max", factor=0.5, patience=1, threshold=0.1, cooldown=2),
    dict(threshold_mode="abs", patience=0, min_lr=[0.02, 0.001], eps=1e-3),
])
def test_reduce_on_plateau_matches_torch(options):
    torch = pytest.importorskip("torch")
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.8, 0.81, 0.82, 0.83, 0.84, 0.7] * 3
    ours = schedulers.ReduceLROnPlateau(cnn_optimizer(), **options)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_optimizer(torch), **options)
    for metric in metrics:
        ours.step(metric)
        theirs.step(metric)
        assert ours.get_last_lr() == theirs.get_last_lr()
        assert ours.num_bad_epochs == theirs.num_bad_epochs


def sequential(optimizer, library):
    warmup = library.LinearLR(optimizer, start_factor=0.1, total_iters=4)
    middle = library.ConstantLR(optimizer, factor=0.5, total_iters=3)
    decay = library.CosineAnnealingLR(optimizer, T_max=6, eta_min=0.001)
    return library.SequentialLR(optimizer, [warmup, middle, decay], milestones=[4, 9])


def chained(optimizer, library):
    return library.ChainedScheduler([library.ExponentialLR(optimizer, gamma=0.9),
                                     library.MultiStepLR(optimizer, milestones=[5, 10])])


@pytest.mark.parametrize("build", [sequential, chained])
def test_composites_match_torch_and_round_trip(build):
    torch = pytest.importorskip("torch")
    ours = build(cnn_optimizer(), schedulers)
    theirs = build(torch_optimizer(torch), torch.optim.lr_scheduler)
    np.testing.assert_allclose([lrs for lrs, _ in trace(ours)],
                               [lrs for lrs, _ in trace(theirs)], rtol=1e-13)
    saved = copy.deepcopy(ours.state_dict())
    resumed = build(cnn_optimizer(), schedulers)
    resumed.optimizer.load_state_dict(ours.optimizer.state_dict())
    resumed.load_state_dict(saved)
    for _ in range(5):
        ours.step()
        resumed.step()
        assert resumed.get_last_lr() == ours.get_last_lr()


@pytest.mark.parametrize("name", ["multistep", "lambda", "linear", "warm-restarts", "one-cycle"])
def test_state_dict_round_trip(name):
    class_name, options = SIMPLE[name]
    scheduler = getattr(schedulers, class_name)(cnn_optimizer(), **options)
    for _ in range(7):
        scheduler.optimizer.step()
        scheduler.step()
    saved = copy.deepcopy(scheduler.state_dict())
    optimizer = cnn_optimizer()
    resumed = getattr(schedulers, class_name)(optimizer, **options)
    optimizer.load_state_dict(scheduler.optimizer.state_dict())
    resumed.load_state_dict(saved)
    for _ in range(5):
        scheduler.step()
        resumed.step()
        assert resumed.get_last_lr() == scheduler.get_last_lr()


@pytest.mark.parametrize("make, error, match", [
    (lambda o: schedulers.ConstantLR(o, factor=2), ValueError, "between 0 and 1"),
    (lambda o: schedulers.LinearLR(o, start_factor=0), ValueError, "greater than 0"),
    (lambda o: schedulers.LambdaLR(o, lr_lambda=[_halving]), ValueError, "Expected 2 lr_lambdas"),
    (lambda o: schedulers.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps OR"),
    (lambda o: schedulers.ReduceLROnPlateau(o, factor=1.5), ValueError, "Factor should be"),
    (lambda o: schedulers.ReduceLROnPlateau(o, mode="up"), ValueError, "mode up is unknown"),
    (lambda o: schedulers.SequentialLR(o, [schedulers.ExponentialLR(o, 0.9)], [3]), ValueError,
     "one more than the number of milestone"),
    (lambda o: schedulers.ChainedScheduler([schedulers.ExponentialLR(make_optimizer(), 0.9),
                                            schedulers.ExponentialLR(o, 0.9)]), ValueError,
     "same optimizer"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make(make_optimizer())
