"""The autograd engine: every op against central differences, the engine's rules, grad mode.

Gradient checks run in float64 (see cnn.autograd.gradcheck); PyTorch parity tests are skipped
when torch is not installed.
"""
import threading

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cnn
from cnn.autograd import Function, GradcheckError, enable_grad, gradcheck, is_grad_enabled, no_grad
from cnn.tensor import Tensor, tensor

few_examples = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                    min_side=1, max_side=3)


def leaf(shape, seed, low=-2.0, high=2.0):
    """A float64 tensor that requires grad, with values drawn uniformly from [low, high)."""
    return tensor(np.random.default_rng(seed).uniform(low, high, shape), requires_grad=True)


def away_from_zero(shape, seed):
    """Values in +-[0.5, 2): safe as divisors."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return tensor(values, requires_grad=True)


def distinct(shape, seed):
    """Values at least 0.1 apart: a unique maximum, and no tie within the difference quotient."""
    size = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(size) * 0.1
    return tensor(values.reshape(shape), requires_grad=True)


# ***** gradcheck on every op *****

BINARY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("op", BINARY_OPS.values(), ids=BINARY_OPS.keys())
@few_examples
@given(pair=broadcast_pairs, seed=seeds)
def test_binary_ops_with_broadcasting(op, pair, seed):
    shape_a, shape_b = pair.input_shapes
    assert gradcheck(op, (leaf(shape_a, seed), away_from_zero(shape_b, seed + 1)))


@few_examples
@given(pair=broadcast_pairs, seed=seeds)
def test_pow_of_two_tensors(pair, seed):
    shape_a, shape_b = pair.input_shapes
    base = leaf(shape_a, seed, low=0.5, high=2.0)
    assert gradcheck(lambda a, b: a ** b, (base, leaf(shape_b, seed + 1)))


SCALAR_OPS = {
    "add": lambda x: x + 2.0,
    "radd": lambda x: 2.0 + x,
    "sub": lambda x: x - 3,
    "rsub": lambda x: 3.0 - x,
    "mul": lambda x: x * 2.5,
    "rmul": lambda x: -1.5 * x,
    "div": lambda x: x / 4.0,
    "rdiv": lambda x: 1 / x,
    "square": lambda x: x ** 2,
    "cube": lambda x: x ** 3,
    "inverse": lambda x: x ** -1,
    "scalar_base": lambda x: 2.0 ** x,
    "neg": lambda x: -x,
    "exp": lambda x: x.exp(),
    "log_abs": lambda x: (x * x).log(),
    "array_left": lambda x: np.linspace(1.0, 2.0, x.shape[-1] if x.ndim else 1) * x,
    "array_right": lambda x: x - np.full(x.shape, 0.5),
}


@pytest.mark.parametrize("op", SCALAR_OPS.values(), ids=SCALAR_OPS.keys())
@few_examples
@given(shape=shapes, seed=seeds)
def test_ops_with_constants_and_unary_ops(op, shape, seed):
    assert gradcheck(op, away_from_zero(shape, seed))


def test_fractional_power_of_positive_values():
    assert gradcheck(lambda x: x ** 0.5, leaf((3, 2), 0, low=0.5, high=2.0))


@st.composite
def matmul_shapes(draw):
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    kind_a, kind_b = draw(st.sampled_from(["vector", "matrix", "batched"])), draw(
        st.sampled_from(["vector", "matrix", "batched"]))
    shape_a = {"vector": (k,), "matrix": (m, k), "batched": batch.input_shapes[0] + (m, k)}[kind_a]
    shape_b = {"vector": (k,), "matrix": (k, n), "batched": batch.input_shapes[1] + (k, n)}[kind_b]
    return shape_a, shape_b


@few_examples
@given(shapes_ab=matmul_shapes(), seed=seeds)
def test_matmul_vectors_matrices_and_batches(shapes_ab, seed):
    shape_a, shape_b = shapes_ab
    a, b = leaf(shape_a, seed), leaf(shape_b, seed + 1)
    np.testing.assert_allclose((a @ b)._data, a._data @ b._data)
    assert gradcheck(lambda a, b: a @ b, (a, b))


def test_matmul_with_a_constant_array_on_either_side():
    x = leaf((3, 4), 0)
    assert gradcheck(lambda x: np.ones((2, 3)) @ x @ np.arange(4.0), x)


@st.composite
def shape_and_dims(draw):
    """A shape and a reduction dim: None, an int (maybe negative) or a tuple of distinct ints."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    ndim = len(shape)
    dim = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)))
    return shape, dim


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@few_examples
@given(case=shape_and_dims(), keepdim=st.booleans(), seed=seeds)
def test_sum_and_mean(reduction, case, keepdim, seed):
    shape, dim = case
    x = leaf(shape, seed)
    result = getattr(x, reduction)(dim, keepdim)
    expected = getattr(np, reduction)(x._data, axis=dim, keepdims=keepdim)
    np.testing.assert_allclose(result._data, expected)
    assert gradcheck(lambda x: getattr(x, reduction)(dim=dim, keepdim=keepdim), x)


SHAPE_OPS = {
    "reshape": lambda x: x.reshape(-1),
    "reshape_varargs": lambda x: x.reshape(2, -1),
    "view": lambda x: x.view((x.numel(),)),
    "flatten": lambda x: x.flatten(),
    "flatten_from_1": lambda x: x.flatten(1),
    "transpose": lambda x: x.transpose(0, -1),
    "T": lambda x: x.T,
    "permute": lambda x: x.permute(2, 0, 1),
    "squeeze": lambda x: x.unsqueeze(1).squeeze(1),
    "getitem_slices": lambda x: x[1:, ::2, -1],
    "getitem_ellipsis_none": lambda x: x[..., None, 0],
    "getitem_repeated_ints": lambda x: x[[0, 1, 0, 1, 1]],
    "getitem_tuple_of_arrays": lambda x: x[np.array([0, 1, 1]), :, np.array([2, 0, 2])],
    "getitem_int_tensor": lambda x: x[tensor([1, 1, 0])],
    "getitem_mask": lambda x: x[x._data > 0],
}


@pytest.mark.parametrize("op", SHAPE_OPS.values(), ids=SHAPE_OPS.keys())
def test_shape_and_indexing_ops(op):
    assert gradcheck(op, leaf((2, 3, 4), 7))


@few_examples
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data(), seed=seeds)
def test_getitem_with_random_integer_arrays(shape, data, seed):
    rows = st.integers(0, shape[0] - 1)
    index = data.draw(hnp.arrays(np.int64, st.integers(1, 6), elements=rows))
    assert gradcheck(lambda x: x[index], leaf(shape, seed))


@few_examples
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data(), seed=seeds)
def test_max_over_everything_and_along_a_dim(shape, data, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    x = distinct(shape, seed)
    assert gradcheck(lambda x: x.max(), x)
    assert gradcheck(lambda x: x.max(dim, keepdim).values, x)
    values, indices = x.max(dim, keepdim)
    np.testing.assert_array_equal(values._data, np.max(x._data, axis=dim, keepdims=keepdim))
    np.testing.assert_array_equal(indices._data, np.argmax(x._data, axis=dim, keepdims=keepdim))


def test_max_ties_send_the_gradient_to_the_first_maximum():
    x = tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad._data, [[0, 1, 0], [0, 0, 0]])
    x.grad = None
    values, indices = x.max(dim=1)
    values.sum().backward()
    np.testing.assert_array_equal(indices._data, [1, 0])
    np.testing.assert_array_equal(x.grad._data, [[0, 1, 0], [1, 0, 0]])


def test_composite_expression():
    x, w, b = leaf((4, 3), 0), leaf((3, 2), 1), leaf((2,), 2)

    def model(x, w, b):
        logits = x @ w + b
        shifted = logits - logits.max(1, keepdim=True).values
        return (shifted.exp().sum(1).log() - shifted[np.arange(4), [0, 1, 1, 0]]).mean()

    assert gradcheck(model, (x, w, b))


# ***** gradcheck itself *****

class WrongSquare(Function):
    """x ** 2 with a backward that forgets the factor 2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad * x


def test_gradcheck_fails_on_a_wrong_backward_naming_input_and_index():
    x = tensor([[1.0, 2.0], [3.0, 4.0]], dtype=np.float64, requires_grad=True)
    y = leaf((2, 2), 0)
    with pytest.raises(GradcheckError, match=r"input 1 differs at index \(0, 0\): analytic") as err:
        gradcheck(lambda y, x: y + WrongSquare.apply(x), (y, x))
    assert isinstance(err.value, AssertionError)
    assert "numeric" in str(err.value)


def test_gradcheck_wants_float64_and_leaves_inputs_alone():
    x32 = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="input 1 has dtype float32"):
        gradcheck(lambda a, b: a * b, (leaf((2,), 0), x32))
    x = leaf((3,), 1)
    x.grad = np.full(3, 7.0)
    data = x._data.copy()
    assert gradcheck(lambda x: x * x, x) is True
    np.testing.assert_array_equal(x.grad._data, 7.0)
    np.testing.assert_array_equal(x._data, data)


def test_gradcheck_needs_an_input_that_requires_grad_and_a_tensor_result():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda x: x * 2, tensor([1.0], dtype=np.float64))
    with pytest.raises(TypeError, match="fn must return a Tensor, got ndarray"):
        gradcheck(lambda x: x._data * 2, leaf((2,), 0))


# ***** the engine *****

def test_gradients_accumulate_across_backward_calls_until_cleared():
    x = tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad._data, 2 * x._data + 3)
    x.grad = None
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad._data, [3.0, 3.0])


def test_leaf_gradient_is_never_an_alias_of_an_ops_array():
    x = tensor([1.0, 2.0], requires_grad=True)
    upstream = np.array([5.0, 6.0], dtype=np.float32)
    x.reshape(2).backward(upstream)
    x.backward(upstream)
    np.testing.assert_array_equal(upstream, [5.0, 6.0])
    np.testing.assert_array_equal(x.grad._data, [10.0, 12.0])


def test_a_tensor_used_twice_gets_both_gradients():
    x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    (y * y + y).sum().backward()
    np.testing.assert_allclose(x.grad._data, 8 * x._data + 2)


def test_only_leaves_receive_grad():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    y.sum().backward()
    assert y.grad is None and not y.is_leaf and x.is_leaf
    assert repr(y.grad_fn) == "<MulBackward>"


def test_retain_graph_allows_a_second_backward():
    x = tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad._data, 4 * x._data)
    with pytest.raises(ValueError, match="retain_graph=True"):
        loss.backward()


def test_backward_needs_a_gradient_for_non_scalars():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\), expected .* \(2,\)"):
        (x * 2.0).backward(np.ones(3))
    (x * 2.0).backward(tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad._data, [2.0, 20.0])


def test_backward_on_a_tensor_without_grad_fails():
    with pytest.raises(ValueError, match="does not require grad"):
        tensor([1.0]).backward()


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x.sum()

    @staticmethod
    def backward(ctx, grad):
        return np.ones(3)


class TooManyGradients(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


def test_engine_checks_the_shape_of_every_gradient_and_names_the_op():
    x = tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"WrongShapeBackward returned a gradient of shape \(3,\) "
                                         r"for an input of shape \(2, 3\)"):
        WrongShape.apply(x).backward()
    with pytest.raises(ValueError, match="TooManyGradientsBackward returned 2 gradients for 1"):
        TooManyGradients.apply(x).sum().backward()


class Scale(Function):
    """``x * factor`` where factor is a plain argument and the result keeps the context."""

    @staticmethod
    def forward(ctx, x, factor, keyword=None):
        ctx.factor = factor
        ctx.seen = (ctx.needs_input_grad, keyword)
        ctx.save_for_backward(x)
        Scale.last_ctx = ctx
        return x * factor

    @staticmethod
    def backward(ctx, grad):
        # A float64 gradient for a float32 input: the engine casts it back.
        return (grad * ctx.factor).astype(np.float64), None


def test_function_apply_unwraps_tensors_and_passes_other_arguments():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = Scale.apply(x, 3.0, keyword="k")
    assert Scale.last_ctx.seen == ((True, False), "k")
    assert len(Scale.last_ctx.saved_tensors) == 1
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad._data, [3.0, 3.0])


def test_nothing_is_recorded_or_saved_without_grad():
    x = tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        y = Scale.apply(x, 2.0)
    assert not y.requires_grad and y.grad_fn is None
    assert Scale.last_ctx.saved_tensors == () and Scale.last_ctx.seen[0] == (False, False)
    z = Scale.apply(tensor([1.0, 2.0]), 2.0)
    assert not z.requires_grad and z.grad_fn is None and Scale.last_ctx.saved_tensors == ()


def test_deep_graphs_do_not_hit_the_recursion_limit():
    x = tensor([1.0], dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad._data, [1.0001 ** 5000])


def test_detach_leaves_the_graph_and_shares_data():
    x = tensor([1.0, 2.0], requires_grad=True)
    doubled = x * 2.0
    y = doubled.detach()
    assert not y.requires_grad and y.grad_fn is None and y._data is doubled._data
    (y * x).sum().backward()
    np.testing.assert_allclose(x.grad._data, [2.0, 4.0])


def test_casts_are_differentiable_and_keep_each_dtype():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad._data, [2.0, 4.0])
    assert x.float() is x
    assert not x.long().requires_grad


# ***** grad mode *****

def test_no_grad_as_context_manager_and_decorator():
    x = tensor([1.0], requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        assert not (x * 2.0).requires_grad
        with enable_grad():
            assert (x * 2.0).requires_grad
        assert not is_grad_enabled()
    assert is_grad_enabled()

    @no_grad()
    def with_parentheses(t):
        return t * 2.0

    @no_grad
    def bare(t):
        """Doubles."""
        return t * 2.0

    assert not with_parentheses(x).requires_grad and not bare(x).requires_grad
    assert bare.__doc__ == "Doubles." and is_grad_enabled()


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError
    assert is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    with no_grad():
        thread = threading.Thread(target=lambda: seen.append(is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


# ***** PyTorch parity *****

def composite(lib, x, w, b, labels):
    """The same expression in cnn and torch: a linear layer, a log-softmax loss, extras."""
    logits = (x @ w + b) * 0.5 - 1.0 / (x.exp().sum(1, keepdim=True))
    log_probs = logits - (logits.exp().sum(1, keepdim=True)).log()
    picked = log_probs[lib.arange(x.shape[0]), labels]
    extras = (w ** 2).sum() * 1e-2 + logits.max(1).values.mean() + (w.T[0] / 2.0).sum()
    return -picked.mean() + extras


@pytest.mark.parametrize("dtype, forward_tol, grad_tol", [
    ("float32", dict(rtol=1e-4, atol=1e-5), dict(rtol=1e-3, atol=1e-4)),
    ("float64", dict(rtol=1e-10, atol=1e-10), dict(rtol=1e-10, atol=1e-10)),
])
def test_values_and_gradients_match_pytorch(dtype, forward_tol, grad_tol):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in [(8, 5), (5, 4), (4,)]]
    labels = rng.integers(0, 4, 8)

    ours = [tensor(a, requires_grad=True) for a in arrays]
    loss = composite(np, *ours, labels)
    loss.backward()

    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    expected = composite(torch, *theirs, torch.tensor(labels))
    expected.backward()

    assert loss.dtype == np.dtype(dtype)
    np.testing.assert_allclose(loss.item(), expected.item(), **forward_tol)
    for mine, reference in zip(ours, theirs):
        assert mine.grad.dtype == np.dtype(dtype)
        np.testing.assert_allclose(mine.grad._data, reference.grad.numpy(), **grad_tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [10, 1 << 17])  # NumPy's sum, the kernels' team's
def test_gradients_of_a_tensor_used_twice_are_summed_bit_for_bit(dtype, size):
    # A residual block's input feeds the convolution and the shortcut: its gradient is the
    # sum of the two, the same bits whoever adds them, eager or replayed (cnn.compile).
    rng = np.random.default_rng(size)
    x_values = rng.standard_normal(size).astype(dtype)
    a, b = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    x = cnn.tensor(x_values, requires_grad=True)
    ((x * cnn.tensor(a)).sum() + (x * cnn.tensor(b)).sum()).backward()
    assert x.grad.numpy().tobytes() == (a + b).tobytes()
    model = cnn.compile(_TwoUses(a, b))
    x2 = cnn.tensor(x_values, requires_grad=True)
    for _ in range(2):  # the capture, then a replay
        x2.grad = None
        model(x2).backward()
        assert x2.grad.numpy().tobytes() == (a + b).tobytes()


class _TwoUses(cnn.nn.Module):
    """x * a + x * b, summed: x's gradient is a + b, from two ops."""

    def __init__(self, a, b):
        super().__init__()
        self.register_buffer("a", cnn.tensor(a))
        self.register_buffer("b", cnn.tensor(b))

    def forward(self, x):
        return (x * self.a).sum() + (x * self.b).sum()
