"""Tensor: factories, dtypes, NumPy interop, properties, errors, repr; cnn.random; Parameter."""
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cnn import random
from cnn.nn import Parameter
from cnn.tensor import (Tensor, float32, float64, from_numpy, int64, ones, ones_like, randn,
                        tensor, zeros, zeros_like)

# ***** factories *****


def test_tensor_infers_pytorch_default_dtypes_and_copies():
    assert tensor([1.0, 2.0]).dtype == np.float32
    assert tensor(3.5).dtype == np.float32
    assert tensor([1, 2]).dtype == np.int64
    assert tensor([True, False]).dtype == np.bool_
    assert tensor([1, 2.5]).dtype == np.float32
    assert tensor([1, 2], dtype=float64).dtype == np.float64
    array = np.arange(3, dtype=np.float64)
    t = tensor(array)
    assert t.dtype == np.float64 and not np.shares_memory(t._data, array)
    assert tensor(np.float64(1.0)).dtype == np.float64
    assert tensor(t)._data is not t._data
    assert tensor(3.0).shape == () and isinstance(tensor(3.0)._data, np.ndarray)


def test_from_numpy_shares_memory_and_keeps_dtype():
    array = np.zeros((2, 2), dtype=np.float64)
    t = from_numpy(array)
    array[0, 0] = 5.0
    assert t._data is array and t.dtype == np.float64 and t[0, 0].item() == 5.0
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        from_numpy([1.0])


@pytest.mark.parametrize("factory, value", [(zeros, 0.0), (ones, 1.0)])
def test_zeros_and_ones(factory, value):
    assert factory(2, 3).shape == (2, 3) and factory((2, 3)).shape == (2, 3)
    assert factory([4]).shape == (4,) and factory().shape == ()
    t = factory(2, dtype=float64, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad
    assert factory(2).dtype == np.float32 and np.all(factory(2)._data == value)
    with pytest.raises(ValueError, match=r"size must be non-negative, got \(2, -1\)"):
        factory(2, -1)
    with pytest.raises(TypeError, match="size must be ints"):
        factory(2.5)


def test_like_factories_follow_the_input():
    x = tensor(np.ones((2, 3), dtype=np.float64))
    assert zeros_like(x).shape == (2, 3) and zeros_like(x).dtype == np.float64
    assert ones_like(x, dtype=float32).dtype == np.float32


def test_randn_is_reproducible_with_manual_seed():
    random.manual_seed(123)
    first = randn(3, 4)
    random.manual_seed(123)
    second = randn((3, 4))
    assert first.dtype == np.float32 and first.shape == (3, 4)
    np.testing.assert_array_equal(first._data, second._data)
    assert randn(2, dtype=float64).dtype == np.float64
    assert randn(2, dtype=np.float16).dtype == np.float16
    with pytest.raises(TypeError, match="randn: dtype must be floating point"):
        randn(2, dtype=int64)


def test_randn_uses_a_given_generator():
    a = randn(5, generator=np.random.default_rng(1))
    b = randn(5, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(a._data, b._data)


def test_rng_state_round_trip_resumes_exactly():
    random.manual_seed(0)
    randn(3)
    state = random.get_rng_state()
    expected = randn(4)._data
    randn(10)
    random.set_rng_state(state)
    np.testing.assert_array_equal(randn(4)._data, expected)


def test_manual_seed_keeps_the_default_generator_object():
    generator = random.default_generator()
    assert random.manual_seed(7) is generator
    assert generator.standard_normal() == np.random.Generator(np.random.PCG64(7)).standard_normal()


@pytest.mark.parametrize("data", [[1j], np.array([1, 2], dtype=object), "text", [None]])
def test_unsupported_dtypes_are_rejected_naming_the_dtype(data):
    with pytest.raises(TypeError, match="unsupported dtype"):
        tensor(data)


def test_unsupported_requested_dtype_is_rejected():
    with pytest.raises(TypeError, match="dtype: unsupported dtype complex128"):
        tensor([1.0], dtype=np.complex128)


# ***** dtypes through ops *****

SCALAR_EXPRESSIONS = [
    lambda t: t * 2.0, lambda t: 2.0 * t, lambda t: t + 1, lambda t: 1 - t, lambda t: t / 3.0,
    lambda t: 1 / t, lambda t: t ** 2, lambda t: t ** 0.5, lambda t: 2 ** t,
    lambda t: t * np.float64(2.0), lambda t: np.float64(3.0) - t, lambda t: t + np.int64(1),
    lambda t: -t, lambda t: t.exp(), lambda t: t.log(), lambda t: t.mean(),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("expression", SCALAR_EXPRESSIONS)
def test_python_and_numpy_scalars_never_change_a_float_dtype(dtype, expression):
    t = tensor([1.0, 2.0], dtype=dtype, requires_grad=True)
    result = expression(t)
    assert result.dtype == dtype
    result.sum().backward()
    assert t.grad.dtype == dtype


def test_integer_tensors_keep_integer_arithmetic():
    t = tensor([1, 2, 3])
    assert (t + 1).dtype == np.int64 and (t * t).dtype == np.int64
    assert not (t * 2).requires_grad


# ***** NumPy interop *****

def test_numpy_functions_accept_tensors():
    logits = tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    labels = np.array([1, 0])
    np.testing.assert_array_equal(np.asarray(logits), logits._data)
    assert np.asarray(logits, dtype=np.float64).dtype == np.float64
    assert np.all(np.argmax(logits, axis=1) == labels)
    assert np.squeeze(tensor([[1.0], [2.0]])).shape == (2,)
    assert logits.numpy() is logits._data
    assert logits.cpu() is logits and logits.to("cpu") is logits


def test_arrays_on_the_left_give_tensors():
    t = tensor([1.0, 2.0], requires_grad=True)
    array = np.array([3.0, 4.0], dtype=np.float32)
    for result in (array + t, array - t, array * t, array / t, array ** t):
        assert isinstance(result, Tensor) and result.requires_grad
    assert isinstance(np.eye(2, dtype=np.float32) @ t, Tensor)
    comparison = array == t
    assert isinstance(comparison, Tensor) and comparison.dtype == np.bool_


def test_comparisons_give_bool_tensors_without_grad():
    t = tensor([1.0, 2.0, 3.0], requires_grad=True)
    results = (t == 2.0, t != tensor([1.0, 0.0, 3.0]), t < 2, t <= np.array([1, 1, 1]),
               t > 1, t >= 3)
    for result in results:
        assert result.dtype == np.bool_ and not result.requires_grad
    np.testing.assert_array_equal((t > 1.5)._data, [False, True, True])
    assert (t == None) is False and (t != None) is True  # noqa: E711


def test_tensors_hash_by_identity():
    a, b = tensor([1.0]), tensor([1.0])
    assert len({a, b}) == 2 and {a: 1}[a] == 1


# ***** properties *****

def test_shape_properties_and_conversions():
    t = tensor(np.arange(6.0).reshape(2, 3))
    assert t.shape == (2, 3) and t.size() == (2, 3) and t.size(1) == 3 and t.size(-1) == 3
    assert t.ndim == 2 and t.dim() == 2 and t.numel() == 6 and len(t) == 2
    scalar = t.sum()
    assert scalar.item() == 15.0 and float(scalar) == 15.0 and int(scalar) == 15
    assert f"{scalar:.2f}" == "15.00"
    assert [row.shape for row in t] == [(3,), (3,)]
    with pytest.raises(TypeError):
        len(scalar)
    with pytest.raises(TypeError, match="0-d"):
        iter(scalar)
    with pytest.raises(ValueError):
        bool(t)


def test_requires_grad_rules():
    assert tensor([1.0]).requires_grad is False
    t = tensor([1.0])
    assert t.requires_grad_() is t and t.requires_grad
    with pytest.raises(TypeError, match="only floating-point .* got dtype int64"):
        tensor([1, 2], requires_grad=True)
    y = t * 2.0
    with pytest.raises(ValueError, match="only leaf tensors"):
        y.requires_grad = False


def test_grad_setter_checks_shape_and_dtype():
    t = tensor([1.0, 2.0], requires_grad=True)
    t.grad = np.array([1.0, 1.0], dtype=np.float32)
    assert isinstance(t.grad, Tensor) and not t.grad.requires_grad
    t.grad = tensor([3.0, 4.0])
    np.testing.assert_array_equal(t.grad._data, [3.0, 4.0])
    with pytest.raises(ValueError, match=r"grad: shape \(3,\) does not match"):
        t.grad = np.zeros(3, dtype=np.float32)
    with pytest.raises(TypeError, match="grad: dtype float64 does not match"):
        t.grad = np.zeros(2)
    with pytest.raises(TypeError, match="grad: expected a Tensor"):
        t.grad = [1.0, 2.0]
    t.grad = None
    assert t.grad is None


def test_max_and_argmax():
    t = tensor([[1.0, 5.0, 5.0], [7.0, 0.0, 7.0]])
    values, indices = t.max(dim=1)
    np.testing.assert_array_equal(values._data, [5.0, 7.0])
    assert indices.dtype == np.int64 and list(indices._data) == [1, 0]
    assert t.max(1, keepdim=True).values.shape == (2, 1)
    assert t.max().item() == 7.0 and t.max().shape == ()
    assert t.argmax().item() == 3 and list(t.argmax(dim=0)._data) == [1, 0, 1]
    assert t.argmax(1, keepdim=True).shape == (2, 1)
    with pytest.raises(ValueError, match="max: cannot take the maximum over an empty dim"):
        zeros(0).max()


@settings(max_examples=25, deadline=None)
@given(array=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
                        elements=st.floats(-10, 10, width=32)))
def test_shape_ops_match_numpy(array):
    t = tensor(array)
    np.testing.assert_array_equal(t.reshape(-1)._data, array.reshape(-1))
    np.testing.assert_array_equal(t.flatten()._data, array.reshape(-1))
    np.testing.assert_array_equal(t.T._data, array.T)
    np.testing.assert_array_equal(t.transpose(0, -1)._data, np.swapaxes(array, 0, -1))
    np.testing.assert_array_equal(t.squeeze()._data, np.squeeze(array))
    np.testing.assert_array_equal(t.unsqueeze(-1)._data, array[..., None])
    np.testing.assert_array_equal(t.sum(0)._data, array.sum(0))
    assert t.T.dtype == np.float32 and t.sum().dtype == np.float32


def test_flatten_and_view_forms():
    t = zeros(2, 3, 4)
    assert t.flatten().shape == (24,) and t.flatten(1).shape == (2, 12)
    assert t.flatten(0, 1).shape == (6, 4) and tensor(1.0).flatten().shape == (1,)
    assert t.view(4, 6).shape == (4, 6) and t.view((4, -1)).shape == (4, 6)
    assert t.squeeze(0).shape == (2, 3, 4) and zeros(2, 1).squeeze(-1).shape == (2,)


def test_indexing_with_tensors_and_tuples():
    t = tensor(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(t[tensor([2, 0])]._data, t._data[[2, 0]])
    np.testing.assert_array_equal(t[tensor([0, 2]), tensor([1, 3])]._data, [1.0, 11.0])
    np.testing.assert_array_equal(t[t > 9]._data, [10.0, 11.0])
    with pytest.raises(IndexError):
        t[3]


# ***** errors *****

@pytest.mark.parametrize("op, name", [
    (lambda a, b: a + b, "add"), (lambda a, b: a - b, "subtract"),
    (lambda a, b: a * b, "multiply"), (lambda a, b: a / b, "divide"),
    (lambda a, b: a ** b, "power"), (lambda a, b: a == b, "equal"),
])
def test_mismatched_shapes_name_the_op_and_both_shapes(op, name):
    with pytest.raises(ValueError, match=rf"{name}: operands of shapes \(2, 3\) and \(4,\)"):
        op(ones(2, 3), ones(4))


def test_matmul_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not match"):
        ones(2, 3) @ ones(4, 5)
    with pytest.raises(ValueError, match=r"the batch dims of shapes \(2, 1, 3\) and \(3, 3, 1\)"):
        ones(2, 1, 3) @ ones(3, 3, 1)
    with pytest.raises(ValueError, match="matmul: both operands need at least one dimension"):
        ones(3) @ 2.0


def test_reshape_error_names_shapes():
    message = r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into shape \(4,\)"
    with pytest.raises(ValueError, match=message):
        ones(2, 3).reshape(4)


def test_complex_operands_are_rejected():
    with pytest.raises(TypeError, match="other: unsupported dtype complex128"):
        ones(2) * np.array([1j, 2j])


# ***** repr *****

def test_repr_follows_pytorch():
    assert repr(tensor([[1.0, 2.0]], requires_grad=True)) == (
        "tensor([[1., 2.]], requires_grad=True)")
    assert repr(tensor([1.5, 2.0])) == "tensor([1.5000, 2.0000])"
    assert repr(tensor([1.0], dtype=float64)) == "tensor([1.], dtype=cnn.float64)"
    assert repr(tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tensor(2.5)) == "tensor(2.5000)"
    assert repr(tensor([1.0], requires_grad=True) * 2.0) == "tensor([2.], grad_fn=<MulBackward>)"
    assert repr(zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert repr(tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"


# ***** Parameter *****

def test_parameter_is_a_leaf_tensor_that_requires_grad():
    data = np.ones((2, 2), dtype=np.float32)
    p = Parameter(data)
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf and p._data is data
    assert not Parameter(tensor([1.0]), requires_grad=False).requires_grad
    assert repr(Parameter(tensor([1.0, 2.0]))) == (
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    (p * 3.0).sum().backward()
    np.testing.assert_array_equal(p.grad._data, np.full((2, 2), 3.0))
