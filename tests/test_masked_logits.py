"""Losses and (log-)softmax on logits with -inf (masked classes), rows of only -inf, +inf and
nan: the values and gradients PyTorch gives, without NumPy's warnings (issue 16)."""
import warnings

import numpy as np
import pytest

import cnn
import cnn.nn.functional as F

INF, NAN = np.inf, np.nan
# Row 0: one masked class; row 1: all but one masked; row 2: all masked; row 3: a nan; row 4:
# +inf; row 5: plain.
LOGITS = np.array([[1.0, -INF, 2.0, 0.5],
                   [-INF, 3.0, -INF, -INF],
                   [-INF, -INF, -INF, -INF],
                   [0.0, NAN, 1.0, 2.0],
                   [1.0, INF, 0.0, 0.0],
                   [0.3, -1.0, 2.0, 0.1]])
MASKED = [0, 1, 5]  # the rows with finite results wherever PyTorch has them
TARGETS = np.array([0, 1, 2, 3, 1, 2])


def _compare(cnn_fn, torch_fn, logits, dtype=np.float64):
    """Values and logits' gradients of both libraries, nan and inf in the same places."""
    torch = pytest.importorskip("torch")
    ours = cnn.tensor(logits.astype(dtype), requires_grad=True)
    theirs = torch.tensor(logits.astype(dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered" from NumPy
        out = cnn_fn(ours)
        out.sum().backward()
    ref = torch_fn(theirs)
    ref.sum().backward()
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out._data, ref.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours.grad._data, theirs.grad.numpy(), rtol=rtol, atol=rtol)
    return out._data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["log_softmax", "softmax"])
def test_softmaxes_match_torch(name, dtype):
    torch = pytest.importorskip("torch")
    out = _compare(lambda x: getattr(F, name)(x, 1),
                   lambda x: getattr(torch.nn.functional, name)(x, 1), LOGITS, dtype)
    assert np.isfinite(out[5]).all() and np.isnan(out[2]).all()


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("rows", [MASKED, list(range(len(LOGITS)))])
def test_cross_entropy_matches_torch(rows, weighted, label_smoothing):
    torch = pytest.importorskip("torch")
    weight = np.array([1.0, 2.0, 0.5, 1.5]) if weighted else None
    logits, target = LOGITS[rows], TARGETS[rows]
    for reduction in ("none", "mean", "sum"):
        out = _compare(
            lambda x: F.cross_entropy(x, target, weight=weight, reduction=reduction,
                                      label_smoothing=label_smoothing),
            lambda x: torch.nn.functional.cross_entropy(
                x, torch.tensor(target), reduction=reduction, label_smoothing=label_smoothing,
                weight=None if weight is None else torch.tensor(weight)), logits)
    if rows is MASKED and not label_smoothing:
        assert np.isfinite(out).all()  # a masked class that is not the target costs nothing


def test_cross_entropy_ignores_samples_whatever_their_logits():
    torch = pytest.importorskip("torch")
    target = np.array([0, -100, -100, 3, -100, 1])
    for label_smoothing in (0.0, 0.2):
        _compare(lambda x: F.cross_entropy(x, target, reduction="none",
                                           label_smoothing=label_smoothing),
                 lambda x: torch.nn.functional.cross_entropy(
                     x, torch.tensor(target), reduction="none",
                     label_smoothing=label_smoothing), LOGITS)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_with_probabilities_keeps_torch_nans(label_smoothing):
    # With class probabilities PyTorch computes every product: 0 * -inf stays nan.
    torch = pytest.importorskip("torch")
    probs = np.array([[0.5, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0], [0.25] * 4])
    _compare(lambda x: F.cross_entropy(x, probs, reduction="none",
                                       label_smoothing=label_smoothing),
             lambda x: torch.nn.functional.cross_entropy(
                 x, torch.tensor(probs), reduction="none", label_smoothing=label_smoothing),
             LOGITS[:3])


@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_torch(weighted):
    # nll_loss reads only the target's entry: -inf and nan elsewhere change nothing.
    torch = pytest.importorskip("torch")
    weight = np.array([0.0, 2.0, 0.5, 1.5]) if weighted else None
    target = np.array([0, 1, 2, 3, -100, 2])
    for reduction in ("none", "mean", "sum"):
        out = _compare(
            lambda x: F.nll_loss(x, target, weight=weight, reduction=reduction),
            lambda x: torch.nn.functional.nll_loss(
                x, torch.tensor(target), reduction=reduction,
                weight=None if weight is None else torch.tensor(weight)), LOGITS)
    assert out.shape == ()


def test_nll_of_log_softmax_is_cross_entropy_with_masks():
    x = cnn.tensor(LOGITS[MASKED])
    target = TARGETS[MASKED]
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(x, 1), target).item(),
                               F.cross_entropy(x, target).item(), rtol=1e-12)
    assert np.isfinite(F.cross_entropy(x, target).item())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_plain_index_targets_take_the_short_path_with_the_same_bits(dtype, reduction):
    # Index targets without weights, smoothing or ignored samples skip building Q
    # (IndexCrossEntropy); unit class weights send the same problem down the general path.
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((9, 7)) * 30).astype(dtype)
    logits[2, 3] = -np.inf  # a masked class, not the target
    target = rng.integers(0, 7, 9)
    target[2] = 4
    results = []
    for weight in (None, cnn.tensor(np.ones(7, dtype))):
        x = cnn.tensor(logits, requires_grad=True)
        loss = F.cross_entropy(x, cnn.tensor(target), weight=weight, reduction=reduction)
        loss.backward(cnn.tensor(np.linspace(0.5, 2, 9).astype(dtype))
                      if reduction == "none" else None)
        results.append((loss.numpy(), x.grad.numpy()))
    assert loss.grad_fn.name() == "CrossEntropyBackward"
    for short, general in zip(*results):
        assert short.tobytes() == general.tobytes()


def test_the_short_path_leaves_ignored_samples_and_bad_labels_to_the_general_one():
    logits = cnn.tensor(np.zeros((3, 4), np.float32), requires_grad=True)
    loss = F.cross_entropy(logits, cnn.tensor(np.array([1, 2, 1])), ignore_index=2)
    assert loss.grad_fn.name() == "CrossEntropyBackward"
    assert loss.item() == pytest.approx(np.log(4))
    assert F.cross_entropy(logits, cnn.tensor(np.array([1, 2, 1]))).grad_fn.name() == \
        "IndexCrossEntropyBackward"
    with pytest.raises(ValueError, match=r"target: class indices must be in \[0, 3\]"):
        F.cross_entropy(logits, cnn.tensor(np.array([1, 4, 1])))
