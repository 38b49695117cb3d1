"""cnn.optim.lr_scheduler: StepLR and CosineAnnealingLR against PyTorch, state_dict round trips, bad input."""
import copy

import numpy as np
import pytest

from cnn.nn import Parameter
from cnn.optim import SGD, Adam
from cnn.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR

LRS = [0.1, 0.03]
EPOCHS = 30
SCHEDULES = {
    "step": ("StepLR", dict(step_size=4, gamma=0.5)),
    "step-default-gamma": ("StepLR", dict(step_size=7)),
    "cosine": ("CosineAnnealingLR", dict(T_max=30)),
    "cosine-eta-min-short": ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    "cosine-one-epoch": ("CosineAnnealingLR", dict(T_max=1, eta_min=0.01)),
}
CLASSES = {"StepLR": StepLR, "CosineAnnealingLR": CosineAnnealingLR}


def make_optimizer(make_param=lambda: Parameter(np.ones(2)), optimizer_class=SGD):
    return optimizer_class([{"params": [make_param()], "lr": lr} for lr in LRS], lr=LRS[0])


def run(scheduler):
    """The rates after construction and after each of EPOCHS steps."""
    rates = [scheduler.get_last_lr()]
    for _ in range(EPOCHS):
        scheduler.optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr())
    return rates


@pytest.mark.parametrize("name", SCHEDULES)
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    class_name, options = SCHEDULES[name]
    ours = CLASSES[class_name](make_optimizer(), **options)
    reference_optimizer = torch.optim.SGD([{"params": [torch.ones(2, requires_grad=True)], "lr": lr}
                                           for lr in LRS], lr=LRS[0])
    theirs = getattr(torch.optim.lr_scheduler, class_name)(reference_optimizer, **options)
    # Same formulas in the same order of operations: the rates agree to the last bit.
    assert run(ours) == run(theirs)
    assert ours.last_epoch == theirs.last_epoch == EPOCHS


def test_steplr_values():
    scheduler = StepLR(make_optimizer(), step_size=2, gamma=0.1)
    rates = [rate[0] for rate in run(scheduler)[:6]]
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-12)


def test_cosine_reaches_eta_min_at_t_max_and_rises_after():
    scheduler = CosineAnnealingLR(make_optimizer(), T_max=10, eta_min=0.001)
    rates = [rate[0] for rate in run(scheduler)]
    assert rates[0] == 0.1
    assert rates[10] == pytest.approx(0.001, abs=1e-12)
    assert rates[20] == pytest.approx(0.1, rel=1e-9)
    expected = [0.001 + (0.1 - 0.001) * (1 + np.cos(np.pi * t / 10)) / 2 for t in range(EPOCHS + 1)]
    np.testing.assert_allclose(rates, expected, rtol=1e-9)


def test_scheduler_writes_optimizer_lr_and_initial_lr():
    optimizer = make_optimizer()
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    assert [g["initial_lr"] for g in optimizer.param_groups] == LRS
    assert scheduler.base_lrs == LRS and scheduler.last_epoch == 0
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == [0.05, 0.015]
    rates = scheduler.get_last_lr()
    rates[0] = 123.0
    assert scheduler.get_last_lr()[0] == 0.05


def test_schedules_adam_too():
    optimizer = make_optimizer(optimizer_class=Adam)
    CosineAnnealingLR(optimizer, T_max=3).step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.75)


@pytest.mark.parametrize("name", SCHEDULES)
def test_state_dict_round_trip(name):
    class_name, options = SCHEDULES[name]
    scheduler = CLASSES[class_name](make_optimizer(), **options)
    for _ in range(10):
        scheduler.step()
    saved = scheduler.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 10
    saved_copy = copy.deepcopy(saved)

    optimizer = make_optimizer()
    resumed = CLASSES[class_name](optimizer, **options)
    optimizer.load_state_dict(scheduler.optimizer.state_dict())
    resumed.load_state_dict(saved)
    saved["base_lrs"][0] = 99.0  # the loaded lists are copies
    assert resumed.state_dict() == saved_copy
    for _ in range(EPOCHS):
        scheduler.step()
        resumed.step()
        assert resumed.get_last_lr() == scheduler.get_last_lr()


def test_resume_with_last_epoch():
    torch = pytest.importorskip("torch")
    optimizer = make_optimizer()
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    ours = CosineAnnealingLR(optimizer, T_max=8, last_epoch=5)
    reference_optimizer = torch.optim.SGD([{"params": [torch.ones(2, requires_grad=True)], "lr": lr,
                                            "initial_lr": lr} for lr in LRS])
    theirs = torch.optim.lr_scheduler.CosineAnnealingLR(reference_optimizer, T_max=8, last_epoch=5)
    assert run(ours) == run(theirs)


def test_resume_without_initial_lr():
    with pytest.raises(ValueError, match=r"initial_lr.*param_groups\[0\]"):
        StepLR(make_optimizer(), step_size=2, last_epoch=3)


@pytest.mark.parametrize("change, error, match", [
    (lambda s: s.pop("last_epoch"), ValueError, r"missing keys \['last_epoch'\]"),
    (lambda s: s.update(extra=1), ValueError, r"unexpected keys \['extra'\]"),
    (lambda s: s.update(base_lrs=[0.1]), ValueError, "base_lrs must be a list of 2"),
    (lambda s: s.update(_last_lr=[0.1, "x"]), ValueError, "_last_lr"),
    (lambda s: s.update(step_size=0), ValueError, "step_size"),
    (lambda s: s.update(last_epoch=2.5), ValueError, "last_epoch"),
    (lambda s: s.update(gamma=float("nan")), ValueError, "gamma"),
], ids=["missing", "unexpected", "short", "not a number", "step_size", "float epoch", "nan gamma"])
def test_failed_load_changes_nothing(change, error, match):
    scheduler = StepLR(make_optimizer(), step_size=3)
    for _ in range(4):
        scheduler.step()
    before = scheduler.state_dict()
    bad = scheduler.state_dict()
    change(bad)
    with pytest.raises(error, match=match):
        scheduler.load_state_dict(bad)
    assert scheduler.state_dict() == before


def test_load_accepts_file_round_trip_types():
    scheduler = CosineAnnealingLR(make_optimizer(), T_max=5)
    saved = scheduler.state_dict()
    saved = dict(saved, base_lrs=np.array(saved["base_lrs"]), last_epoch=np.int64(3), T_max=np.array(5),
                 eta_min=np.float64(0.0))
    scheduler.load_state_dict(saved)
    assert scheduler.base_lrs == LRS and scheduler.last_epoch == 3 and type(scheduler.last_epoch) is int


@pytest.mark.parametrize("make, error, match", [
    (lambda o: StepLR(o, step_size=0), ValueError, "step_size"),
    (lambda o: StepLR(o, step_size=2.0), TypeError, "step_size"),
    (lambda o: StepLR(o, step_size=2, gamma="0.1"), TypeError, "gamma"),
    (lambda o: CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
    (lambda o: CosineAnnealingLR(o, T_max=5, eta_min=None), TypeError, "eta_min"),
    (lambda o: StepLR(o, step_size=2, last_epoch=-2), ValueError, "last_epoch"),
    (lambda o: StepLR(object(), step_size=2), TypeError, "object is not an Optimizer"),
], ids=["step_size 0", "float step_size", "gamma", "T_max", "eta_min", "last_epoch", "not an optimizer"])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make(make_optimizer())


def test_base_class_get_lr_is_abstract():
    with pytest.raises(NotImplementedError):
        LRScheduler(make_optimizer())
