"""cnn.nn.functional: finite differences in float64 and parity with PyTorch (SPEC section 3)."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import cnn
import cnn.nn.functional as F
from cnn.autograd import gradcheck

TOLERANCES = {  # (forward rtol, atol), (gradient rtol, atol)
    np.float32: ((1e-4, 1e-5), (1e-3, 1e-4)),
    np.float64: ((1e-10, 1e-10), (1e-10, 1e-10)),
}


def leaves(*arrays):
    """float64 tensors that require grad, for gradcheck."""
    return [cnn.tensor(a.astype(np.float64), requires_grad=True) for a in arrays]


def check_against_torch(cnn_fn, torch_fn, arrays, dtype, grad_mask=None):
    """Run both libraries on the same arrays; compare outputs and input gradients."""
    torch = pytest.importorskip("torch")
    grad_mask = grad_mask or [True] * len(arrays)
    ours = [cnn.tensor(a.astype(dtype), requires_grad=g) for a, g in zip(arrays, grad_mask)]
    theirs = [torch.tensor(a.astype(dtype), requires_grad=g) for a, g in zip(arrays, grad_mask)]
    out, ref = cnn_fn(*ours), torch_fn(*theirs)
    (rtol, atol), (grad_rtol, grad_atol) = TOLERANCES[dtype]
    assert out.dtype == dtype
    np.testing.assert_allclose(out._data, ref.detach().numpy(), rtol=rtol, atol=atol)
    weights = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    (out * cnn.tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for ours_t, theirs_t, g in zip(ours, theirs, grad_mask):
        if g:
            np.testing.assert_allclose(ours_t.grad._data, theirs_t.grad.numpy(), rtol=grad_rtol,
                                       atol=grad_atol)


dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def conv_problems(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    n = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    assume(all(dd * (kk - 1) + 1 <= size + 2 * pp for dd, kk, size, pp in zip(d, k, (h, w), p)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n, cin, h, w))
    weight = rng.standard_normal((cout, cin // groups) + k)
    bias = rng.standard_normal(cout)
    return x, weight, bias, dict(stride=s, padding=p, dilation=d, groups=groups)


@given(conv_problems())
def test_conv2d_gradcheck(problem):
    x, weight, bias, options = problem
    assert gradcheck(lambda a, b, c: F.conv2d(a, b, c, **options), leaves(x, weight, bias))


@given(conv_problems(), dtypes)
def test_conv2d_matches_torch(problem, dtype):
    x, weight, bias, options = problem
    torch = pytest.importorskip("torch")
    check_against_torch(lambda a, b, c: F.conv2d(a, b, c, **options),
                        lambda a, b, c: torch.nn.functional.conv2d(a, b, c, **options),
                        [x, weight, bias], dtype)


def test_conv2d_skips_the_input_gradient_when_not_needed():
    x = cnn.tensor(np.ones((1, 1, 4, 4), np.float32))
    w = cnn.tensor(np.ones((2, 1, 3, 3), np.float32), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad.shape == (2, 1, 3, 3)


@st.composite
def pool_problems(draw, dilation=True):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    assume(all(dd * (kk - 1) + 1 <= size + 2 * pp for dd, kk, size, pp in zip(d, k, (h, w), p)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    # Distinct values keep finite differences away from max-pool's kinks.
    x = rng.permutation(2 * 3 * h * w).reshape(2, 3, h, w) / 7.0
    return x, k, s, p, d, draw(st.booleans())


@given(pool_problems())
def test_max_pool2d_gradcheck(problem):
    x, k, s, p, d, ceil_mode = problem
    fn = lambda a: F.max_pool2d(a, k, s, p, d, ceil_mode)  # noqa: E731
    out = fn(leaves(x)[0])
    assume(np.isfinite(out._data).all())  # a window over padding only yields -inf
    assert gradcheck(fn, leaves(x), eps=1e-4)


@given(pool_problems(), dtypes)
def test_max_pool2d_matches_torch(problem, dtype):
    x, k, s, p, d, ceil_mode = problem
    torch = pytest.importorskip("torch")
    out = F.max_pool2d(cnn.tensor(x), k, s, p, d, ceil_mode)
    assume(np.isfinite(out._data).all())
    check_against_torch(lambda a: F.max_pool2d(a, k, s, p, d, ceil_mode),
                        lambda a: torch.nn.functional.max_pool2d(a, k, s, p, d, ceil_mode),
                        [x], dtype)


def test_max_pool2d_ties_route_the_gradient_to_the_first_maximum():
    torch = pytest.importorskip("torch")
    x = np.zeros((1, 2, 4, 4), np.float32)  # every window is all ties
    x[0, 1] = 1.0
    ours = cnn.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    F.max_pool2d(ours, 2, 1, 1).sum().backward()
    torch.nn.functional.max_pool2d(theirs, 2, 1, 1).sum().backward()
    np.testing.assert_array_equal(ours.grad._data, theirs.grad.numpy())


def test_max_pool2d_return_indices_and_unbatched():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    values, indices = F.max_pool2d(cnn.tensor(x), 2, return_indices=True)
    assert values.shape == (1, 2, 2) and indices._data.tolist() == [[[5, 7], [13, 15]]]


@given(pool_problems(dilation=False), st.booleans(), dtypes)
def test_avg_pool2d_gradcheck_and_torch(problem, count_include_pad, dtype):
    x, k, s, p, _, ceil_mode = problem
    fn = lambda a: F.avg_pool2d(a, k, s, p, ceil_mode, count_include_pad)  # noqa: E731
    assert gradcheck(fn, leaves(x))
    torch = pytest.importorskip("torch")
    check_against_torch(fn, lambda a: torch.nn.functional.avg_pool2d(a, k, s, p, ceil_mode,
                                                                     count_include_pad),
                        [x], dtype)


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


@pytest.mark.parametrize("name, torch_name, kwargs", [
    ("relu", "relu", {}),
    ("leaky_relu", "leaky_relu", {"negative_slope": 0.2}),
    ("sigmoid", "sigmoid", {}),
    ("tanh", "tanh", {}),
    ("softmax", "softmax", {"dim": -1}),
    ("log_softmax", "log_softmax", {"dim": 0}),
])
@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2**31))
def test_activations(name, torch_name, kwargs, shape, dtype, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    x[np.abs(x) < 1e-3] = 0.5  # keep finite differences off relu's kink
    fn = lambda a: getattr(F, name)(a, **kwargs)  # noqa: E731
    assert gradcheck(fn, leaves(x))
    torch = pytest.importorskip("torch")
    check_against_torch(fn, lambda a: getattr(torch.nn.functional, torch_name)(a, **kwargs),
                        [x], dtype)


@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6), dtypes, st.integers(0, 2**31))
def test_linear(batch, n_in, n_out, dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((batch, n_in)), rng.standard_normal((n_out, n_in)),
              rng.standard_normal(n_out)]
    assert gradcheck(F.linear, leaves(*arrays))
    torch = pytest.importorskip("torch")
    check_against_torch(F.linear, torch.nn.functional.linear, arrays, dtype)


@st.composite
def classification(draw):
    n, classes = draw(st.integers(1, 6)), draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    logits = rng.standard_normal((n, classes)) * 3
    target = rng.integers(0, classes, n)
    if draw(st.booleans()) and n > 1:
        target[0] = -100  # ignored
        target[1] = rng.integers(0, classes)  # at least one counted sample
    weight = rng.random(classes) + 0.5 if draw(st.booleans()) else None
    return logits, target, weight


@given(classification(), st.sampled_from(["mean", "sum", "none"]),
       st.sampled_from([0.0, 0.1]), dtypes)
def test_cross_entropy(problem, reduction, label_smoothing, dtype):
    logits, target, weight = problem
    options = dict(reduction=reduction, label_smoothing=label_smoothing)
    w = None if weight is None else weight.astype(dtype)
    fn = lambda a: F.cross_entropy(a, target, weight=w, **options)  # noqa: E731
    assert gradcheck(lambda a: F.cross_entropy(a, target, weight=weight, **options),
                     leaves(logits))
    torch = pytest.importorskip("torch")
    tw = None if w is None else torch.tensor(w)
    check_against_torch(fn, lambda a: torch.nn.functional.cross_entropy(
        a, torch.tensor(target), weight=tw, **options), [logits], dtype)


@given(classification(), st.sampled_from([0.0, 0.2]), dtypes)
def test_cross_entropy_with_probability_targets(problem, label_smoothing, dtype):
    logits, _, _ = problem
    probs = np.random.default_rng(1).dirichlet(np.ones(logits.shape[1]), logits.shape[0])
    fn = lambda a: F.cross_entropy(a, probs.astype(dtype), label_smoothing=label_smoothing)  # noqa
    torch = pytest.importorskip("torch")
    check_against_torch(fn, lambda a: torch.nn.functional.cross_entropy(
        a, torch.tensor(probs.astype(dtype)), label_smoothing=label_smoothing), [logits], dtype)


@given(classification(), st.sampled_from(["mean", "sum", "none"]), dtypes)
def test_nll_loss(problem, reduction, dtype):
    logits, target, weight = problem
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    w = None if weight is None else weight.astype(dtype)
    assert gradcheck(lambda a: F.nll_loss(a, target, weight=weight, reduction=reduction),
                     leaves(logp))
    torch = pytest.importorskip("torch")
    tw = None if w is None else torch.tensor(w)
    check_against_torch(lambda a: F.nll_loss(a, target, weight=w, reduction=reduction),
                        lambda a: torch.nn.functional.nll_loss(a, torch.tensor(target), weight=tw,
                                                               reduction=reduction),
                        [logp], dtype)


def test_losses_are_stable_for_huge_logits():
    logits = cnn.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], np.float32),
                        requires_grad=True)
    target = np.array([1, 1])
    loss = F.cross_entropy(logits, target)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad._data).all()
    np.testing.assert_allclose(loss.item(), 1e4, rtol=1e-6)
    for fn in (F.softmax, F.log_softmax):
        assert np.isfinite(fn(logits, dim=1)._data).all()


@given(shapes, st.sampled_from(["mean", "sum", "none"]), dtypes, st.integers(0, 2**31))
def test_mse_loss(shape, reduction, dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape), rng.standard_normal(shape)]
    fn = lambda a, b: F.mse_loss(a, b, reduction=reduction)  # noqa: E731
    assert gradcheck(fn, leaves(*arrays))
    torch = pytest.importorskip("torch")
    check_against_torch(fn, lambda a, b: torch.nn.functional.mse_loss(a, b, reduction=reduction),
                        arrays, dtype)


@given(st.sampled_from([(4, 3), (4, 3, 5), (2, 3, 4, 4)]), st.booleans(), dtypes,
       st.integers(0, 2**31))
def test_batch_norm(shape, training, dtype, seed):
    rng = np.random.default_rng(seed)
    x, weight, bias = (rng.standard_normal(shape), rng.random(shape[1]) + 0.5,
                       rng.standard_normal(shape[1]))
    mean, var = rng.standard_normal(shape[1]), rng.random(shape[1]) + 0.5

    def ours(a, w, b):
        return F.batch_norm(a, mean.astype(a.dtype).copy(), var.astype(a.dtype).copy(), w, b,
                            training=training)

    assert gradcheck(ours, leaves(x, weight, bias))
    torch = pytest.importorskip("torch")
    check_against_torch(ours, lambda a, w, b: torch.nn.functional.batch_norm(
        a, torch.tensor(mean.astype(dtype)), torch.tensor(var.astype(dtype)), w, b,
        training=training), [x, weight, bias], dtype)


def test_batch_norm_updates_running_statistics_like_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((8, 3, 2, 2)).astype(np.float32)
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    t_mean, t_var = torch.zeros(3), torch.ones(3)
    F.batch_norm(cnn.tensor(x), mean, var, training=True, momentum=0.2)
    torch.nn.functional.batch_norm(torch.tensor(x), t_mean, t_var, training=True, momentum=0.2)
    np.testing.assert_allclose(mean, t_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, t_var.numpy(), rtol=1e-5, atol=1e-6)


def test_batch_norm_in_evaluation_takes_strided_and_read_only_statistics():
    # Every per-channel array as a strided, read-only view: the same result as contiguous
    # copies, and the formula's.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    stats = rng.random((4, 6)).astype(np.float32) + 0.5
    views = [row[::2] for row in stats]
    for view in views:
        view.flags.writeable = False
    got = F.batch_norm(cnn.tensor(x), *views, training=False, eps=1e-3).numpy()
    copies = [np.ascontiguousarray(view) for view in views]
    assert got.tobytes() == F.batch_norm(cnn.tensor(x), *copies, eps=1e-3).numpy().tobytes()
    mean, var, weight, bias = (v.reshape(1, 3, 1).astype(np.float64) for v in copies)
    np.testing.assert_allclose(got, (x - mean) / np.sqrt(var + 1e-3) * weight + bias,
                               rtol=1e-5, atol=1e-6)


def test_dropout():
    cnn.manual_seed(0)
    x = cnn.tensor(np.ones((1000,), np.float32), requires_grad=True)
    y = F.dropout(x, p=0.3)
    kept = y._data != 0
    assert 0.6 < kept.mean() < 0.8 and np.allclose(y._data[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad._data, y._data)
    assert F.dropout(x, p=0.3, training=False) is x
    cnn.manual_seed(0)
    np.testing.assert_array_equal(F.dropout(x, p=0.3)._data, y._data)


def test_flatten():
    x = cnn.tensor(np.zeros((2, 3, 4, 5), np.float32))
    assert F.flatten(x).shape == (120,) and F.flatten(x, 1).shape == (2, 60)
    assert F.flatten(x, 1, 2).shape == (2, 12, 5)


def _t(*shape, dtype=np.float32):
    return cnn.tensor(np.zeros(shape, dtype))


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(4, 2, 3, 3)), ValueError, "channels"),
    (lambda: F.conv2d(_t(1, 4, 8, 8), _t(3, 2, 3, 3), groups=2), ValueError, "groups"),
    (lambda: F.conv2d(_t(1, 1, 2, 2), _t(1, 1, 3, 3)), ValueError, "kernel"),
    (lambda: F.conv2d(_t(8, 8), _t(1, 1, 3, 3)), ValueError, "input"),
    (lambda: F.conv2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), stride=0), ValueError, "stride"),
    (lambda: F.conv2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3), padding=-1), ValueError, "padding"),
    (lambda: F.conv2d(_t(1, 1, 8, 8), _t(2, 1, 3, 3), _t(3)), ValueError, "bias"),
    (lambda: F.conv2d(_t(1, 1, 8, 8), _t(1, 1, 3, 3, dtype=np.float64)), TypeError, "weight"),
    (lambda: F.conv2d(_t(1, 1, 8, 8, dtype=np.int64), _t(1, 1, 3, 3)), TypeError, "input"),
    (lambda: F.conv2d([[1.0]], _t(1, 1, 3, 3)), TypeError, "input"),
    (lambda: F.max_pool2d(_t(1, 1, 4, 4), 2, padding=2), ValueError, "padding"),
    (lambda: F.linear(_t(2, 3), _t(4, 5)), ValueError, "input"),
    (lambda: F.cross_entropy(_t(2, 3), np.array([0, 3])), ValueError, "target"),
    (lambda: F.cross_entropy(_t(2, 3), np.array([0, -1])), ValueError, "target"),
    (lambda: F.cross_entropy(_t(2, 3), np.array([0.0, 1.0])), ValueError, "target"),
    (lambda: F.cross_entropy(_t(2, 3), np.array(["a", "b"])), TypeError, "target"),
    (lambda: F.cross_entropy(_t(2, 3), np.array([0, 1]), reduction="avg"), ValueError,
     "reduction"),
    (lambda: F.cross_entropy(_t(2, 3), np.array([0, 1]), label_smoothing=2), ValueError,
     "label_smoothing"),
    (lambda: F.nll_loss(_t(2, 3), np.array([0.5, 1.0])), TypeError, "target"),
    (lambda: F.mse_loss(_t(2, 3), _t(3, 2)), ValueError, "target"),
    (lambda: F.softmax(_t(2, 3), dim=2), ValueError, "dim"),
    (lambda: F.dropout(_t(2), p=1.5), ValueError, "p"),
    (lambda: F.batch_norm(_t(4, 3), np.zeros(2, np.float32), np.ones(2, np.float32)),
     ValueError, "running_mean"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()
