"""Tensors handed to NumPy (``np.asarray``, ``np.array``, NumPy functions) on every NumPy cnn
accepts: the 1.x releases call ``__array__(dtype)``, NumPy 2 adds ``copy`` (CI runs this file,
with the rest of the suite, against the oldest NumPy pyproject.toml declares)."""
import numpy as np
import pytest

import cnn

NUMPY_2 = int(np.__version__.split(".")[0]) >= 2


@pytest.fixture
def t():
    return cnn.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])


def test_asarray_shares_the_data_and_array_copies_it(t):
    assert np.asarray(t) is t._data
    copied = np.array(t)
    assert not np.shares_memory(copied, t._data)
    assert copied.tolist() == t._data.tolist() and copied.dtype == np.float32


def test_a_dtype_converts(t):
    converted = np.asarray(t, dtype=np.float64)
    assert converted.dtype == np.float64 and converted.tolist() == t._data.tolist()
    assert np.asarray(t, dtype=np.float32) is t._data


@pytest.mark.skipif(not NUMPY_2, reason="copy=False means 'never copy' from NumPy 2 on")
def test_copy_false_never_copies(t):
    assert np.shares_memory(np.array(t, copy=False), t._data)
    with pytest.raises(ValueError, match="without a copy"):
        np.array(t, dtype=np.float64, copy=False)


def test_numpy_functions_take_tensors(t):
    assert np.argmax(t, axis=1).tolist() == [1, 0]
    assert np.squeeze(cnn.ones(1, 3, 1)).shape == (3,)
    assert np.concatenate([t, t]).shape == (4, 3)
    assert (np.argmax(t, axis=1) == np.array([1, 0])).all()


def test_training_outputs_convert_after_backward():
    # `cnn train` converted its logits with np.asarray after the first epoch and crashed on
    # NumPy 1.25 (np.array refuses copy=None there).
    x = cnn.randn(4, 3, requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    assert np.asarray(x.grad).shape == (4, 3)
    assert float(np.asarray(loss)) == pytest.approx(float((x._data ** 2).sum()), rel=1e-6)
