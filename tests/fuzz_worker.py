"""Hypothesis-driven calls of cnn's public functions, run in a child process by tests/test_fuzz.py.

    python tests/fuzz_worker.py FAMILY EXAMPLES CASE_LOG

runs EXAMPLES generated cases of one FAMILY (see FAMILIES) and prints one JSON object: how many
cases ended in each outcome, and every problem. Before each call, the case's description is
written (and flushed) to CASE_LOG, so that when a call kills the interpreter (a segfault, an
abort) the parent can say which case did it.

Each case is a call with random valid or invalid arguments, and an oracle: what a correct call
gives (the result's shape and dtype) or that the arguments are invalid. An outcome is fine when
it is

* a result, for arguments the oracle finds valid, of the right shape and dtype, finite where
  the inputs are finite (and gradients likewise, when a backward pass is part of the case);
* a ValueError or TypeError with a non-empty message, for arguments the oracle finds invalid
  (MemoryError is also accepted for absurd sizes; IndexError only where Python's indexing
  semantics ask for it, i.e. indexing a tensor).

Anything else is a problem: another exception type, an empty message, a valid call refused, an
invalid call accepted, a wrong shape or dtype, a NaN from finite inputs. Generation is
derandomized (a fixed seed per family), so a run is reproducible.
"""
import gzip
import io
import json
import os
import sys
import tempfile
import threading
import warnings
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import cnn
import cnn.nn.functional as F
import cnn._ext.pooling  # noqa: F401 (the kernels family calls it as cnn._ext.pooling)
from cnn import nn
from cnn.datasets.mnist import read_idx

FLOATS = ("float32", "float64")
OTHER_DTYPES = ("float16", "int64", "int32", "uint8", "bool", "complex64", "object")
LAYOUTS = ("contiguous", "contiguous", "fortran", "strided", "readonly")
# Arguments that are never a valid size, stride, padding or dilation.
BAD_INTEGERS = (1.5, 2.0, "2", None, (1, 2, 3), [1], True)
VALID, INVALID, EITHER = "valid", "invalid", "either"


class Case:
    """One call: `run()` does it; `expect` is VALID, INVALID or EITHER; `check(result)` returns a
    problem (str) or None for a valid call's result; `allowed` are the acceptable exceptions."""

    def __init__(self, description, run, expect, check=None, allowed=(ValueError, TypeError)):
        self.description, self.run, self.expect = description, run, expect
        self.check, self.allowed = check, allowed


# ***** drawing arguments *****

def describe(value):
    """A short text for an argument: arrays by dtype, shape and layout."""
    if isinstance(value, cnn.Tensor):
        return "Tensor(" + describe(value._data) + (", requires_grad" if value.requires_grad
                                                   else "") + ")"
    if isinstance(value, np.ndarray):
        layout = "C" if value.flags.c_contiguous else "F" if value.flags.f_contiguous else "strided"
        ro = "" if value.flags.writeable else ", read-only"
        special = ""
        if value.dtype.kind == "f" and value.size and not np.isfinite(value).all():
            special = ", non-finite"
        return f"array({value.dtype}, {value.shape}, {layout}{ro}{special})"
    if isinstance(value, (list, tuple)) and any(isinstance(v, (np.ndarray, cnn.Tensor))
                                                for v in value):
        return type(value)(describe(v) for v in value).__repr__()
    return repr(value)


def call_text(name, *args, **kwargs):
    parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def array(data, shape, dtype="float32", layout=None, special=None, low=-3.0, high=3.0):
    """A random array of `shape` and `dtype` in one of the layouts (C, Fortran, strided,
    read-only); `special` puts a NaN or an infinity somewhere."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="values"))
    values = rng.uniform(low, high, size=shape)
    if special is None:
        special = data.draw(st.sampled_from([None] * 9 + ["nan", "inf"]), label="special")
    if special and values.size:
        values.flat[rng.integers(values.size)] = np.nan if special == "nan" else np.inf
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        result = np.abs(values).round().astype(dtype) if dtype.kind == "u" else \
            np.nan_to_num(values).round().astype(dtype)
    elif dtype.kind == "b":
        result = values > 0
    elif dtype.kind == "O":
        result = values.astype(object)
    else:
        result = values.astype(dtype)
    result = np.asarray(result)  # a 0-d array, not a NumPy scalar
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout") if layout is None else layout
    if layout == "fortran" and result.ndim >= 2:
        result = np.asfortranarray(result)
    elif layout == "strided" and result.ndim >= 1:
        wide = np.zeros(result.shape[:-1] + (2 * result.shape[-1],), dtype=result.dtype)
        wide[..., ::2] = result
        result = wide[..., ::2]
    elif layout == "readonly":
        result = result.copy()
        result.flags.writeable = False
    return result


def dtype_(data, valid_weight=8):
    return data.draw(st.sampled_from(FLOATS * valid_weight + OTHER_DTYPES), label="dtype")


def wrap(data, value, grad=False):
    """The array as a Tensor (requiring grad when `grad` and possible) or left as an array."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf" or not data.draw(
            st.booleans(), label="as tensor"):
        return value  # (a Tensor cannot hold complex numbers or objects)
    tensor = cnn.from_numpy(value)
    if grad and value.dtype.kind == "f":
        tensor.requires_grad_()
    return tensor


def int_arg(data, minimum, maximum, bad=True):
    """(argument, its value as a pair of ints or None when invalid); an invalid argument only
    when `bad`."""
    kind = data.draw(st.sampled_from(["int"] * 3 + ["numpy int", "pair"] + ["low", "bad"] * bad),
                     label="int kind")
    if kind in ("int", "numpy int"):
        value = data.draw(st.integers(minimum, maximum))
        return (value if kind == "int" else np.int64(value)), (value, value)
    if kind == "pair":
        value = (data.draw(st.integers(minimum, maximum)), data.draw(st.integers(minimum, maximum)))
        return value, value
    if kind == "low":
        return data.draw(st.integers(minimum - 3, minimum - 1)), None
    return data.draw(st.sampled_from(BAD_INTEGERS)), None


def flag_arg(data, bad=True):
    value = data.draw(st.sampled_from([False, True] + [1, "yes", None] * bad))
    return value, isinstance(value, bool)


def finite(value):
    array_ = value._data if isinstance(value, cnn.Tensor) else value
    return not isinstance(array_, np.ndarray) or array_.dtype.kind != "f" or bool(
        np.isfinite(array_).all())


def all_finite(*values):
    return all(finite(v) for v in values if v is not None)


def is_float(*values):
    arrays = [v._data if isinstance(v, cnn.Tensor) else v for v in values]
    return all(isinstance(a, np.ndarray) and a.dtype.name in FLOATS for a in arrays)


def expect_result(shape, dtype, finite_expected, grads=()):
    """A check: the result has `shape` and `dtype`, is finite when `finite_expected`; then, when
    `grads` (tensors requiring grad) are given, backward of the result's sum fills each with a
    gradient of its shape (finite when `finite_expected`)."""
    def check(result):
        values = result._data if isinstance(result, cnn.Tensor) else result
        if not isinstance(values, np.ndarray):
            return f"result is a {type(result).__name__}, not a Tensor or array"
        if values.shape != tuple(shape):
            return f"result shape {values.shape}, expected {tuple(shape)}"
        if values.dtype != np.dtype(dtype):
            return f"result dtype {values.dtype}, expected {np.dtype(dtype)}"
        if finite_expected and not finite(values):
            return "non-finite result from finite inputs"
        needing = [t for t in grads if isinstance(t, cnn.Tensor) and t.requires_grad]
        if needing and isinstance(result, cnn.Tensor) and result.requires_grad:
            result.sum().backward()
            for t in needing:
                if t.grad is None or t.grad.shape != t.shape:
                    return f"gradient {None if t.grad is None else t.grad.shape} for {t.shape}"
                if finite_expected and not finite(t.grad):
                    return "non-finite gradient from finite inputs"
        return None
    return check


# ***** shape oracles (PyTorch's rules, written out independently of cnn's) *****

def conv_size(size, kernel, stride, padding, dilation):
    span = dilation * (kernel - 1) + 1
    return None if span > size + 2 * padding else (size + 2 * padding - span) // stride + 1


def pool_size(size, kernel, stride, padding, dilation, ceil_mode):
    span = dilation * (kernel - 1) + 1
    if padding > kernel // 2 or span > size + 2 * padding:
        return None
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def sizes(function, hw, *pairs):
    """Output (OH, OW) from per-axis pairs, or None when an axis does not fit."""
    out = tuple(function(hw[i], *(p[i] if isinstance(p, tuple) else p for p in pairs))
                for i in range(2))
    return None if None in out else out


# ***** families *****

def fault_(data, *faults):
    """None (a valid call, half of the time) or one of `faults` to build into the call."""
    return data.draw(st.sampled_from([None] * len(faults) + list(faults)), label="fault")


def conv_case(data):
    """F.conv2d (and sometimes its backward), or the fused conv-ReLU-pool op."""
    fault = fault_(data, "channels", "empty", "ndim", "dtype", "mixed", "bias", "stride",
                   "padding", "dilation", "groups", None)
    groups_value = data.draw(st.integers(1, 3))
    per_group = data.draw(st.integers(1, 3))
    channels = per_group * groups_value + (
        data.draw(st.sampled_from([-1, 1])) if fault == "channels" else 0)
    out_channels = data.draw(st.integers(1, 2)) * groups_value
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    h, w = (0 if fault == "empty" else data.draw(st.integers(1, 9))), data.draw(st.integers(1, 9))
    # (Grouped convolution of an empty batch is a known failure: see test_fuzz.KNOWN_PROBLEMS.)
    n = data.draw(st.integers(0 if groups_value == 1 else 1, 3))
    ndim = data.draw(st.sampled_from([3, 4, 4, 4] if fault != "ndim" else [2, 5]))
    shape = ((n, max(channels, 0), h, w) + (2,) * (ndim == 5))[4 - min(ndim, 4):]
    xdtype = dtype_(data, 0) if fault == "dtype" else data.draw(st.sampled_from(FLOATS))
    x = array(data, shape, xdtype)
    wdtype = [t for t in FLOATS if t != xdtype][0] if fault == "mixed" else xdtype
    weight = array(data, (out_channels, per_group, kh, kw), wdtype)
    bias = data.draw(st.sampled_from(["short"] if fault == "bias" else ["none", "ok"]))
    bias = None if bias == "none" else array(
        data, (out_channels - (bias == "short"),), wdtype)
    stride, strides = int_arg(data, 1, 3, fault == "stride")
    padding, pads = int_arg(data, 0, 3, fault == "padding")
    dilation, dilations = int_arg(data, 1, 3, fault == "dilation")
    groups = data.draw(st.sampled_from([0, groups_value + 1, 1.0] if fault == "groups" else
                                       [groups_value]))
    fused = data.draw(st.sampled_from([False] * 3 + [True]))
    groups_used = 1 if fused else groups  # the fused op has no groups argument

    valid = (None not in (strides, pads, dilations) and ndim in (3, 4)
             and is_float(x, weight) and x.dtype == weight.dtype
             and (bias is None or (bias.dtype == x.dtype and bias.shape == (out_channels,)))
             and type(groups_used) is int and groups_used >= 1
             and out_channels % groups_used == 0
             and channels == per_group * groups_used and channels >= 1 and h >= 1)
    out = valid and sizes(conv_size, (h, w), (kh, kw), strides, pads, dilations)
    if out and fused:
        out = (out[0] // 2, out[1] // 2) if min(out) >= 2 else None
    x, weight, bias = wrap(data, x, True), wrap(data, weight, True), wrap(data, bias, True)
    check = None
    if out:
        check = expect_result(shape[:-3] + (out_channels,) + out, x.dtype, all_finite(
            x, weight, bias), (x, weight, bias))
    if fused:
        return Case(call_text("F.conv2d_relu_max_pool2d", x, weight, bias, stride, padding,
                              dilation),
                    lambda: F.conv2d_relu_max_pool2d(x, weight, bias, stride, padding, dilation),
                    VALID if out else INVALID, check)
    return Case(call_text("F.conv2d", x, weight, bias, stride, padding, dilation, groups),
                lambda: F.conv2d(x, weight, bias, stride, padding, dilation, groups),
                VALID if out else INVALID, check)


def pool_case(data):
    """F.max_pool2d (with or without indices) and F.avg_pool2d, and their backward."""
    fault = fault_(data, "ndim", "empty", "dtype", "kernel", "stride", "padding", "dilation",
                   "flag", None)
    ndim = data.draw(st.sampled_from([2, 5] if fault == "ndim" else [3, 4, 4]))
    shape = ((data.draw(st.integers(0, 3)), data.draw(st.integers(1, 3)),
              data.draw(st.integers(0 if fault == "empty" else 1, 9)),
              data.draw(st.integers(1, 9)), 2))[4 - min(ndim, 4):ndim + (ndim < 4)]
    x = array(data, shape, dtype_(data, 0) if fault == "dtype" else
              data.draw(st.sampled_from(FLOATS)))
    kernel, kernels = int_arg(data, 1, 4, fault == "kernel")
    stride = data.draw(st.sampled_from(["default", "given"]))
    stride, strides = (None, kernels) if stride == "default" else int_arg(
        data, 1, 3, fault == "stride")
    padding, pads = int_arg(data, 0, 2, fault == "padding")
    ceil_mode, ceil_ok = flag_arg(data, fault == "flag")
    average = data.draw(st.booleans())
    if average:
        dilation, dilations = 1, (1, 1)
        count_include_pad, count_ok = flag_arg(data, fault == "flag")
    else:
        dilation, dilations = int_arg(data, 1, 2, fault == "dilation")
        count_ok = True
        return_indices = data.draw(st.booleans())
    valid = (None not in (kernels, strides, pads, dilations) and ceil_ok and count_ok
             and ndim in (3, 4) and is_float(x) and min(shape[-3:]) >= 1)
    shape = shape if valid else (0, 0, 0, 0)
    out = valid and sizes(pool_size, shape[-2:], kernels, strides, pads, dilations,
                          bool(ceil_mode))
    x = wrap(data, x, True)
    finite_out = all_finite(x) and dilations == (1, 1)
    check = expect_result(shape[:-2] + out, x.dtype, finite_out, (x,)) if out else None
    if average:
        return Case(call_text("F.avg_pool2d", x, kernel, stride, padding, ceil_mode,
                              count_include_pad),
                    lambda: F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad),
                    VALID if out else INVALID, check)
    if out and return_indices:
        values_check = check

        def check(result):
            values, indices = result
            h, w = shape[-2:]
            if indices.dtype != np.int64 or indices.shape != values.shape:
                return f"indices {indices.dtype} {indices.shape} for values {values.shape}"
            if finite_out and indices._data.size and not (
                    (indices._data >= 0) & (indices._data < h * w)).all():
                return "an index outside its plane"
            return values_check(values)
    return Case(call_text("F.max_pool2d", x, kernel, stride, padding, dilation, ceil_mode,
                          return_indices),
                lambda: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode,
                                     return_indices),
                VALID if out else INVALID, check)


def elementwise_case(data):
    """Linear, the activations, softmax, dropout, flatten and batch norm."""
    op = data.draw(st.sampled_from(["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax",
                                    "log_softmax", "dropout", "flatten", "batch_norm"]))
    ndim = data.draw(st.integers(0, 4))
    shape = tuple(data.draw(st.integers(0, 4)) for _ in range(ndim))
    x = array(data, shape, dtype_(data), low=-30, high=30)
    ok = is_float(x)
    finite_in = all_finite(x)
    if op == "linear":
        in_features = shape[-1] if ndim and data.draw(st.integers(0, 5)) else 3
        out_features = data.draw(st.integers(0, 4))
        weight = array(data, (out_features, in_features), data.draw(
            st.sampled_from([x.dtype] * 6 + ["float32", "int64"])))
        bias = data.draw(st.sampled_from([None, out_features, out_features + 1]))
        bias = None if bias is None else array(data, (bias,), weight.dtype)
        valid = (ok and ndim >= 1 and shape[-1] == in_features and weight.dtype == x.dtype
                 and (bias is None or bias.shape == (out_features,)))
        x, weight, bias = wrap(data, x, True), wrap(data, weight, True), wrap(data, bias)
        return Case(call_text("F.linear", x, weight, bias), lambda: F.linear(x, weight, bias),
                    VALID if valid else INVALID,
                    expect_result(shape[:-1] + (out_features,), x.dtype,
                                  all_finite(x, weight, bias), (x, weight)) if valid else None)
    if op in ("relu", "sigmoid", "tanh", "leaky_relu"):
        args = ()
        if op == "leaky_relu":
            slope = data.draw(st.sampled_from([0.01, 0.2, np.float32(0.1), 0, "x", None, True]))
            args = (slope,)
            ok = ok and not isinstance(slope, (bool, str, type(None)))
        x = wrap(data, x, True)
        return Case(call_text(f"F.{op}", x, *args), lambda: getattr(F, op)(x, *args),
                    VALID if ok else INVALID,
                    expect_result(shape, x.dtype, finite_in, (x,)) if ok else None)
    if op in ("softmax", "log_softmax"):
        dim = data.draw(st.sampled_from([0, 1, -1, 3, -5, None, 1.0]))
        ok = ok and type(dim) is int and -max(ndim, 1) <= dim < max(ndim, 1)
        x = wrap(data, x, True)
        return Case(call_text(f"F.{op}", x, dim), lambda: getattr(F, op)(x, dim),
                    VALID if ok else INVALID,
                    expect_result(shape, x.dtype, finite_in, (x,)) if ok else None)
    if op == "dropout":
        p = data.draw(st.sampled_from([0.0, 0.5, 1.0, 0.3, np.float64(0.2), -0.1, 1.5, "0.5",
                                       float("nan")]))
        training, training_ok = flag_arg(data)
        ok = ok and training_ok and not isinstance(p, str) and 0 <= p <= 1
        x = wrap(data, x, True)
        return Case(call_text("F.dropout", x, p, training), lambda: F.dropout(x, p, training),
                    VALID if ok else INVALID,
                    expect_result(shape, x.dtype, finite_in, (x,)) if ok else None)
    if op == "flatten":
        start, end = data.draw(st.integers(-5, 4)), data.draw(st.integers(-5, 4))
        size = max(ndim, 1)
        ok = isinstance(x, np.ndarray) and x.dtype != object and x.dtype.kind != "c"
        in_range = -size <= start < size and -size <= end < size
        if ok and in_range and ndim and start % ndim > end % ndim:
            in_range = False
        ok = ok and in_range
        if ok and ndim:
            a, b = start % ndim, end % ndim
            flat = shape[:a] + (int(np.prod(shape[a:b + 1])),) + shape[b + 1:]
        else:
            flat = (1,)
        x = wrap(data, x)
        return Case(call_text("F.flatten", x, start, end), lambda: F.flatten(x, start, end),
                    VALID if ok else INVALID,
                    expect_result(flat, x.dtype, finite_in) if ok else None)
    # batch_norm
    channels = shape[1] if ndim >= 2 else 3
    stats_channels = channels + data.draw(st.sampled_from([0] * 6 + [1]))
    training = data.draw(st.sampled_from([True, False, "yes"]))
    momentum = data.draw(st.sampled_from([0.1, 0.0, 1.0, None, "x"]))
    eps = data.draw(st.sampled_from([1e-5, 0.0, 1e-3, -1.0, float("inf")]))
    stats = data.draw(st.sampled_from(["both", "both", "none", "readonly"]))
    dtype = x.dtype if ok else np.dtype("float32")
    mean = var = None
    if stats != "none":
        mean, var = np.zeros(stats_channels, dtype), np.ones(stats_channels, dtype)
        if stats == "readonly":
            mean.flags.writeable = False
    affine = data.draw(st.booleans())
    weight = array(data, (channels,), dtype, special=False) if affine else None
    bias = array(data, (channels,), dtype, special=False) if affine else None
    valid = (ok and 2 <= ndim <= 5 and stats_channels == channels and training in (True, False)
             and isinstance(momentum, float) and eps in (1e-5, 0.0, 1e-3)
             and (stats == "both" or (stats == "readonly" and not training)
                  or (stats == "none" and training))
             and not (training and x.size == channels and channels))
    before = None if mean is None else (mean.copy(), var.copy())
    x = wrap(data, x, True)
    result_check = expect_result(shape, dtype, finite_in and eps > 0 and not training,
                                 (x,)) if valid else None

    def check(result):
        # An empty batch must leave the running statistics as they were.
        if shape and 0 in shape and before is not None and not (
                np.array_equal(before[0], mean) and np.array_equal(before[1], var)):
            return "an empty batch changed the running statistics"
        if training and finite_in and before is not None and not all_finite(mean, var):
            return "non-finite running statistics from finite inputs"
        return result_check(result)
    return Case(call_text("F.batch_norm", x, mean, var, weight, bias, training, momentum, eps),
                lambda: F.batch_norm(x, mean, var, weight, bias, training, momentum, eps),
                VALID if valid else INVALID, check if valid else None)


def loss_case(data):
    """cross_entropy, nll_loss and mse_loss with labels of every kind."""
    op = data.draw(st.sampled_from(["cross_entropy", "cross_entropy", "nll_loss", "mse_loss"]))
    fault = fault_(data, "ndim", "classes", "dtype", "reduction", "labels", "labels",
                   "smoothing", "weight", "ignore_index")
    ndim = data.draw(st.sampled_from([1, 3] if fault == "ndim" else [2, 2, 2, 1]))
    n = data.draw(st.integers(0, 4))
    classes = data.draw(st.sampled_from([0] if fault == "classes" else [3, 3, 1]))
    shape = (n, classes)[2 - ndim:] if ndim <= 2 else (n, classes, 2)
    x = array(data, shape, dtype_(data, 0) if fault == "dtype" else
              data.draw(st.sampled_from(FLOATS)), low=-1e4 if data.draw(st.booleans()) else -3,
              high=3)
    reduction = data.draw(st.sampled_from(["avg", None, 1] if fault == "reduction" else
                                          ["mean", "sum", "none"]))
    reduction_ok = reduction in ("mean", "sum", "none")
    batch = shape[:1] if ndim == 2 else ()
    if op == "mse_loss":
        target = array(data, data.draw(st.sampled_from([shape] * 5 + [shape[:-1] + (2,)])),
                       data.draw(st.sampled_from([x.dtype] * 5 + ["float64", "int64"])))
        valid = reduction_ok and is_float(x, target) and x.dtype == target.dtype and \
            target.shape == shape
        out = shape if reduction == "none" else ()
        finite_out = all_finite(x, target) and (x.size or reduction != "mean")
        x, target = wrap(data, x, True), wrap(data, target)
        return Case(call_text("F.mse_loss", x, target, reduction),
                    lambda: F.mse_loss(x, target, reduction), VALID if valid else INVALID,
                    expect_result(out, x.dtype, finite_out, (x,)) if valid else None)
    kind = data.draw(st.sampled_from(
        ["out of range", "float", "bool", "wrong shape"] if fault == "labels" else
        ["indices", "indices", "probabilities"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    high = max(classes, 1)
    labels = rng.integers(0, high, size=batch).astype(data.draw(
        st.sampled_from(["int64", "int32", "uint8"])))
    ignore_index = data.draw(st.sampled_from(["x", 1.0] if fault == "ignore_index" else
                                             [-100, -100, 0]))
    if kind == "out of range" and labels.size:
        labels.flat[0] = data.draw(st.sampled_from([classes, -1, 2**40])) if \
            labels.dtype == np.int64 else 0
        if labels.dtype != np.int64:
            kind = "indices"
    elif kind == "float":
        labels = labels.astype(np.float32)
    elif kind == "bool":
        labels = labels > 0
    elif kind == "probabilities":
        labels = rng.dirichlet(np.ones(high), size=batch).astype(x.dtype if is_float(x) else
                                                                 np.float32)
        if ndim == 1:
            labels = labels.reshape(high)[:classes]
        else:
            labels = labels.reshape(batch + (high,))[..., :classes]
    elif kind == "wrong shape":
        labels = rng.integers(0, high, size=(n + 1,))
    smoothing = data.draw(st.sampled_from([1.5, True, -0.1] if fault == "smoothing" else
                                          [0.0, 0.0, 0.1, 1.0]))
    weighted = data.draw(st.sampled_from([classes + 1] if fault == "weight" else
                                         [None, classes]))
    weight = None if weighted is None else array(data, (weighted,), "float32", low=0.1, high=2,
                                                 special=False)
    out_of_range = kind == "out of range" and labels.size and (
        labels.flat[0] != ignore_index if isinstance(ignore_index, int) else True)
    probabilities_ok = op == "cross_entropy" and kind == "probabilities" and \
        ignore_index != "x"
    indices_ok = kind in ("indices", "out of range") and not out_of_range
    valid = (reduction_ok and ndim in (1, 2) and is_float(x) and classes >= 1
             and (indices_ok or probabilities_ok) and isinstance(ignore_index, int)
             and (weighted is None or weighted == classes)
             and (op == "nll_loss" or smoothing in (0.0, 0.1, 1.0) and smoothing is not True))
    out = batch if reduction == "none" else ()
    x, labels = wrap(data, x, True), wrap(data, labels)
    finite_out = all_finite(x) and (reduction != "mean" or n >= 1) and (
        kind != "indices" or ignore_index != 0 or reduction != "mean")
    if op == "nll_loss":
        return Case(call_text("F.nll_loss", x, labels, weight, ignore_index, reduction),
                    lambda: F.nll_loss(x, labels, weight, ignore_index, reduction),
                    VALID if valid else INVALID,
                    expect_result(out, x.dtype, finite_out, (x,)) if valid else None)
    return Case(call_text("F.cross_entropy", x, labels, weight, ignore_index, reduction,
                          smoothing),
                lambda: F.cross_entropy(x, labels, weight, ignore_index, reduction, smoothing),
                VALID if valid else INVALID,
                expect_result(out, x.dtype, finite_out and abs(np.asarray(x)).max(initial=0) < 1e3,
                              (x,)) if valid else None)


def module_case(data):
    """Layers built with random arguments, then called on random inputs (the call's outcome
    is only required to be a result or a clear error: the functional cases check the rest)."""
    kind = data.draw(st.sampled_from(["Conv2d", "Linear", "MaxPool2d", "AvgPool2d",
                                      "BatchNorm2d", "BatchNorm1d", "Dropout", "Softmax",
                                      "Flatten", "LeakyReLU", "CrossEntropyLoss", "fused"]))
    small = st.sampled_from([1, 2, 3, 0, -1, 2.0, "3", None])
    positive = lambda v: type(v) is int and v >= 1  # noqa: E731
    if kind in ("Conv2d", "fused"):
        args = dict(in_channels=data.draw(small), out_channels=data.draw(small),
                    kernel_size=int_arg(data, 1, 3)[0], stride=int_arg(data, 1, 2)[0],
                    padding=int_arg(data, 0, 2)[0])
        groups = data.draw(st.sampled_from([1, 1, 1, 2, 0]))
        valid = (positive(args["in_channels"]) and positive(args["out_channels"])
                 and groups >= 1 and args["in_channels"] % groups == 0
                 and args["out_channels"] % groups == 0
                 and all(v is not None for v in (int_arg_value(args["kernel_size"], 1),
                                                 int_arg_value(args["stride"], 1),
                                                 int_arg_value(args["padding"], 0))))

        def build():
            conv = nn.Conv2d(groups=groups, **args)
            if kind == "fused":  # Sequential runs these three as one fused op
                return nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))
            return conv
        text = f"nn.Conv2d(groups={groups}, {args})" + (" + ReLU + MaxPool2d(2)" * (
            kind == "fused"))
        channels = args["in_channels"] if positive(args["in_channels"]) else 2
        shape = (data.draw(st.integers(0, 2)), channels + data.draw(st.sampled_from([0] * 5 + [1])),
                 data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8)))
    elif kind == "Linear":
        args = dict(in_features=data.draw(small), out_features=data.draw(small))
        valid = all(type(v) is int and v >= 0 for v in args.values())
        build, text = (lambda: nn.Linear(**args)), f"nn.Linear({args})"
        features = args["in_features"] if valid else 2
        shape = (data.draw(st.integers(0, 3)), features + data.draw(st.sampled_from([0] * 5 + [1])))
    elif kind in ("MaxPool2d", "AvgPool2d"):
        args = dict(kernel_size=int_arg(data, 1, 3)[0], stride=data.draw(
            st.sampled_from([None, 1, 2, 0])), padding=int_arg(data, 0, 2)[0])
        valid = (int_arg_value(args["kernel_size"], 1) is not None
                 and int_arg_value(args["padding"], 0) is not None and args["stride"] != 0)
        build, text = (lambda: getattr(nn, kind)(**args)), f"nn.{kind}({args})"
        shape = (data.draw(st.integers(0, 2)), 2, data.draw(st.integers(0, 6)),
                 data.draw(st.integers(1, 6)))
    elif kind.startswith("BatchNorm"):
        args = dict(num_features=data.draw(small), eps=data.draw(
            st.sampled_from([1e-5, 0.0, -1.0, "x"])), momentum=data.draw(
            st.sampled_from([0.1, None, "x"])))
        valid = positive(args["num_features"]) and args["eps"] in (1e-5, 0.0) and \
            args["momentum"] != "x"
        build, text = (lambda: getattr(nn, kind)(**args)), f"nn.{kind}({args})"
        features = args["num_features"] if positive(args["num_features"]) else 2
        shape = (data.draw(st.integers(0, 3)), features) + (3, 3) * (kind == "BatchNorm2d")
    elif kind == "Dropout":
        args = dict(p=data.draw(st.sampled_from([0.0, 0.5, 1.0, -1, 2, "x", np.float32(0.5)])))
        valid = not isinstance(args["p"], str) and 0 <= args["p"] <= 1
        build, text = (lambda: nn.Dropout(**args)), f"nn.Dropout({args})"
        shape = (data.draw(st.integers(0, 3)), 4)
    elif kind == "Softmax":
        args = dict(dim=data.draw(st.sampled_from([None, 0, 1, -1, 3, "x", 1.0])))
        valid = args["dim"] is None or type(args["dim"]) is int
        build, text = (lambda: nn.Softmax(**args)), f"nn.Softmax({args})"
        shape = (data.draw(st.integers(0, 3)), 4)
    elif kind == "Flatten":
        args = dict(start_dim=data.draw(st.sampled_from([1, 0, -1, 5, 1.0])),
                    end_dim=data.draw(st.sampled_from([-1, 2, 0])))
        valid = type(args["start_dim"]) is int
        build, text = (lambda: nn.Flatten(**args)), f"nn.Flatten({args})"
        shape = tuple(data.draw(st.integers(0, 3)) for _ in range(data.draw(st.integers(1, 4))))
    elif kind == "LeakyReLU":
        args = dict(negative_slope=data.draw(st.sampled_from([0.01, 0, np.float32(0.2), "x"])))
        valid = not isinstance(args["negative_slope"], str)
        build, text = (lambda: nn.LeakyReLU(**args)), f"nn.LeakyReLU({args})"
        shape = (2, 3)
    else:
        args = dict(reduction=data.draw(st.sampled_from(["mean", "sum", "none", "x"])),
                    label_smoothing=data.draw(st.sampled_from([0.0, 0.2, 2.0, "x"])),
                    ignore_index=data.draw(st.sampled_from([-100, 1, "x"])))
        valid = args["reduction"] != "x" and args["label_smoothing"] in (0.0, 0.2) and \
            args["ignore_index"] != "x"
        build, text = (lambda: nn.CrossEntropyLoss(**args)), f"nn.CrossEntropyLoss({args})"
        shape = (data.draw(st.integers(0, 3)), 3)
    x = wrap(data, array(data, shape, dtype_(data, 3)), True)
    target = cnn.tensor(np.zeros(shape[:1], np.int64))

    def run():
        module = build()
        if not valid:
            return module  # the constructor should have refused
        try:
            return module(x, target) if kind == "CrossEntropyLoss" else module(x)
        except (ValueError, TypeError) as error:
            if not str(error):
                raise AssertionError(f"a {type(error).__name__} without a message") from None
            return error
    check = (lambda result: None if isinstance(result, (cnn.Tensor, ValueError, TypeError))
             else f"the call gave a {type(result).__name__}")
    return Case(f"{text}({describe(x)})", run, VALID if valid else INVALID, check)


def optimizer_case(data):
    """SGD and Adam with random hyperparameters, then one step: a finite update or a clear
    refusal at construction."""
    good_numbers, bad_numbers = [0.1, 0.0, 0.9, np.float32(0.5)], [-1.0, float("inf"),
                                                                  float("nan"), "0.1", None, True]
    sgd = data.draw(st.booleans())
    names = ["lr", "momentum", "dampening", "weight_decay", "nesterov"] if sgd else \
        ["lr", "betas", "eps", "weight_decay", "amsgrad"]
    fault = fault_(data, *names)
    args = {}
    for name in names:
        if name in ("nesterov", "amsgrad"):
            choices = [1, "yes", None] if fault == name else [False, True]
        elif name == "betas":
            choices = [(1.0, 0.9), (0.9,), "x", (0.9, float("nan")), (0.9, -0.1)] \
                if fault == name else [(0.9, 0.999), (0.0, 0.5)]
        elif name == "dampening":  # any finite number (PyTorch does not bound it)
            choices = [float("nan"), "x", None] if fault == name else [0.0, 0.5, -0.5]
        else:
            choices = bad_numbers if fault == name else good_numbers
        args[name] = data.draw(st.sampled_from(choices))
    valid = fault is None
    if valid and sgd and args["nesterov"] and (args["momentum"] <= 0 or args["dampening"] != 0):
        valid = False  # Nesterov needs momentum and no dampening
    make = cnn.optim.SGD if sgd else cnn.optim.Adam
    param = nn.Parameter(np.ones(3, data.draw(st.sampled_from(FLOATS))))

    def run():
        optimizer = make([param], **args)
        param.grad = np.full(3, 0.5, param._data.dtype)
        optimizer.step()
        return param

    def check(result):
        return None if finite(result) else "a step with finite options gave non-finite values"
    return Case(f"{make.__name__}({args})", run, VALID if valid else INVALID, check)


def int_arg_value(value, minimum):
    """What pair() makes of a size argument, or None when it refuses it."""
    values = value if isinstance(value, tuple) and len(value) == 2 else (value,)
    if isinstance(value, (tuple, list)) and len(value) != 2:
        return None
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum
           for v in values):
        return values
    return None


PLAN_METHODS = ("forward", "forward_relu_pool", "backward", "backward_relu_pool", "columns",
                "columns_adjoint")
POOL_ENTRIES = ("max_pool", "max_pool_backward", "avg_pool", "avg_pool_backward")


def kernel_case(data):
    """The kernel floor: convolution plans (built with valid or broken geometry, then called
    with consistent arrays or one of them changed), the pooling entry points with a checked
    geometry, and the compiled pooling loops themselves with arbitrary integers and arrays."""
    op = data.draw(st.sampled_from(PLAN_METHODS + POOL_ENTRIES + ("compiled pool",)))
    if op in PLAN_METHODS:
        return plan_case(data, op)
    if op in POOL_ENTRIES:
        return pool_entry_case(data, op)
    return compiled_pool_case(data)


def changed_args(data, args, forbidden=(), kinds=("shape", "dtype", "argument", "layout")):
    """Change one of `args` (its shape, its dtype, to a bad argument, or its layout, which stays
    valid), or none; returns (args, whether the call is still valid)."""
    args = list(args)
    changed = data.draw(st.sampled_from([None] * 3 + list(kinds)))
    if changed is None:
        return args, True
    position = data.draw(st.integers(0, len(args) - 1))
    value = args[position]
    if position in forbidden:
        return args, True
    if changed == "layout":
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            args[position] = array(data, value.shape, value.dtype)
        return args, True
    if isinstance(value, np.ndarray) and changed == "dtype":
        args[position] = value.astype(data.draw(st.sampled_from(
            [t for t in FLOATS if t != value.dtype] + ["float16", "int64", "int32"])))
    elif isinstance(value, np.ndarray) and changed == "shape":
        new_shape = list(value.shape)
        axis = data.draw(st.integers(0, len(new_shape)))
        if axis == len(new_shape):
            new_shape = new_shape[:-1]
        else:
            new_shape[axis] = max(0, new_shape[axis] + data.draw(st.sampled_from([-1, 1, 7])))
        args[position] = np.zeros(new_shape, value.dtype) if value.dtype.kind != "f" \
            else array(data, tuple(new_shape), value.dtype)
    else:
        args[position] = data.draw(st.sampled_from(
            [0, -1, 2**40, (1, 2, 3), 1.5, None, "x", (2, 2, 2, 2), (0, 3, 3, 3), (-1, 2, 3, 3),
             (2**31, 2**31, 2, 2), [[1.0]]]))
    return args, False


def plan_case(data, method):
    n, c = data.draw(st.integers(0, 2)), data.draw(st.integers(1, 4))
    h, w = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    f = data.draw(st.sampled_from([1, 2, 5, 16, 17]))
    if data.draw(st.booleans()):
        c = data.draw(st.sampled_from([15, 16, 17]))  # the wide-channel gradient path
    fused = method.endswith("relu_pool")
    groups = 1 if fused or c % 2 or f % 2 else data.draw(st.sampled_from([1, 2]))
    dtype = data.draw(st.sampled_from(FLOATS))
    k = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    s = (1, 1) if fused else (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    p = (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)))
    d = (1, 1) if fused else (data.draw(st.integers(1, 2)),) * 2
    conv_out = sizes(conv_size, (h, w), k, s, p, d)
    out = conv_out
    if fused:
        out = (conv_out[0] // 2, conv_out[1] // 2) if conv_out and min(conv_out) >= 2 else None
    plan_args, geometry_valid = changed_args(
        data, [(n, c, h, w), (f, c // groups) + k, s, p, d, groups, dtype], forbidden=(6,))
    valid = geometry_valid and out is not None
    x = array(data, (n, c, h, w), dtype)
    weight = array(data, (f, c // groups) + k, dtype)
    bias = array(data, (f,), dtype) if data.draw(st.booleans()) else None
    out_shape = (n, f) + (out or (1, 1))
    grad = array(data, out_shape, dtype)
    cols = array(data, (n, c * k[0] * k[1], conv_out[0] * conv_out[1] if conv_out else 1), dtype)
    # Forged indices, some out of range: the kernels must ignore those, not crash.
    plane = conv_out[0] * conv_out[1] if conv_out else h * w
    indices = np.random.default_rng(0).integers(-1, plane + 1, size=out_shape)
    needs = data.draw(st.sampled_from([(True, True, True), (True, False, False),
                                       (False, True, True), (1, 0, 0)]))
    args = {"forward": (x, weight, bias), "forward_relu_pool": (x, weight, bias),
            "backward": (x, weight, grad, needs),
            "backward_relu_pool": (x, weight, grad, array(data, out_shape, dtype), indices, needs),
            "columns": (x,), "columns_adjoint": (cols,)}[method]
    args, arrays_valid = changed_args(data, args)
    valid = valid and arrays_valid and all(isinstance(v, bool) for v in needs)
    threads = data.draw(st.integers(1, 3))
    expected = {"forward": [out_shape], "forward_relu_pool": [out_shape],
                "backward": [x.shape, weight.shape, (f,)],
                "backward_relu_pool": [x.shape, weight.shape, (f,)],
                "columns": [cols.shape], "columns_adjoint": [x.shape]}[method]
    finite_inputs = all_finite(*args) if method != "backward_relu_pool" else all_finite(*args[:4])

    def check(result):
        parts = result if isinstance(result, tuple) else (result,)
        if method == "forward_relu_pool" and parts[1].shape != parts[0].shape:
            return f"indices {parts[1].shape} for pooled {parts[0].shape}"
        for part, shape in zip(parts, expected):
            if part is None and method.startswith("backward"):
                continue
            problem = expect_result(shape, dtype, finite_inputs)(part)
            if problem:
                return problem
        return None

    def run():
        plan = cnn._ext.conv_plan(*plan_args)
        return getattr(plan, method)(*args, num_threads=threads)

    return Case(call_text(f"conv_plan{tuple(map(describe, plan_args))}.{method}", *args),
                run, VALID if valid else EITHER, check if valid else None)


def pool_entry_case(data, op):
    """cnn._ext.pooling with a geometry checked by cnn._ext.geometry (valid calls), or with
    one of its arrays changed (an error or a result, never a crash)."""
    n, c = data.draw(st.integers(0, 2)), data.draw(st.integers(1, 4))
    h, w = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    dtype = data.draw(st.sampled_from(FLOATS))
    k = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    s = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    p = (data.draw(st.integers(0, k[0] // 2)), data.draw(st.integers(0, k[1] // 2)))
    d = (data.draw(st.integers(1, 2)),) * 2 if op.startswith("max") else (1, 1)
    ceil_mode = data.draw(st.booleans())
    out = sizes(pool_size, (h, w), k, s, p, d, ceil_mode)
    if out is None:
        return Case(f"pool_geometry({(n, c, h, w)}, {k}, {s}, {p}, {d}, {ceil_mode})",
                    lambda: cnn._ext.geometry.pool_geometry((n, c, h, w), k, s, p, d, ceil_mode),
                    INVALID)
    geometry = cnn._ext.geometry.pool_geometry((n, c, h, w), k, s, p, d, ceil_mode)
    x = array(data, (n, c, h, w), dtype)
    grad = array(data, (n, c) + out, dtype)
    indices = np.random.default_rng(0).integers(-1, h * w + 1, size=grad.shape)
    count_include_pad = data.draw(st.booleans())
    args = {"max_pool": (x, geometry), "max_pool_backward": (grad, indices, x.shape),
            "avg_pool": (x, geometry, count_include_pad),
            "avg_pool_backward": (grad, x.shape, geometry, count_include_pad)}[op]
    # Array in, array out: the entry points take arrays (another kind of argument is a
    # programming error, not an input), so only the arrays' shapes, dtypes and layouts change.
    args, valid = changed_args(data, args, forbidden=tuple(
        i for i, value in enumerate(args) if not isinstance(value, np.ndarray)),
        kinds=("shape", "dtype", "layout"))
    shape = x.shape if op.endswith("backward") else grad.shape
    result_check = expect_result(shape, dtype, all_finite(*args))

    def check(result):
        if op == "max_pool":
            values, found = result
            if found.shape != values.shape or found.dtype != np.int64:
                return f"indices {found.dtype} {found.shape} for values {values.shape}"
            result = values
        return result_check(result)

    return Case(call_text(f"cnn._ext.pooling.{op}", *args),
                lambda: getattr(cnn._ext.pooling, op)(*args, 1), VALID if valid else EITHER,
                check if valid else None)


def compiled_pool_case(data):
    """The compiled pooling loops with any integers and any (float) arrays: each either runs or
    refuses with an error; it never reads or writes outside its arrays."""
    name = data.draw(st.sampled_from(["max_pool_forward", "max_pool_backward",
                                      "avg_pool_forward", "avg_pool_backward"]))
    dtype = data.draw(st.sampled_from(FLOATS))
    small = st.integers(0, 5)
    planes = data.draw(small)

    def plane_stack(ndim, dtype_=dtype):
        shape = (data.draw(st.sampled_from([planes, planes, planes + 1])),) + tuple(
            data.draw(small) for _ in range(ndim - 1))
        return array(data, shape, dtype_, layout="contiguous") if dtype_ != np.int64 else \
            np.random.default_rng(1).integers(-3, 40, size=shape)

    ints = [data.draw(st.integers(-2, 4)) for _ in range(8)]
    threads = data.draw(st.integers(1, 3))
    if name == "max_pool_forward":
        args = (plane_stack(3), plane_stack(3), plane_stack(3, np.int64), *ints, threads)
    elif name == "max_pool_backward":
        args = (plane_stack(2), plane_stack(2, np.int64), plane_stack(2), threads)
    elif name == "avg_pool_forward":
        args = (plane_stack(3), plane_stack(3), *ints[:6], data.draw(st.booleans()), threads)
    else:
        args = (plane_stack(3), plane_stack(3), *ints[:6], data.draw(st.booleans()), threads)
    return Case(call_text(f"cnn._ext.backend.pool.{name}", *args),
                lambda: getattr(cnn._ext.backend.pool, name)(*args), EITHER)


def tensor_case(data):
    """Tensor arithmetic, matmul, reductions, reshaping and indexing."""
    op = data.draw(st.sampled_from(["+", "-", "*", "/", "@", "==", "<", "sum", "mean", "max",
                                    "argmax", "reshape", "transpose", "permute", "flatten",
                                    "squeeze", "unsqueeze", "getitem", "to", "backward"]))
    shape_a = tuple(data.draw(st.integers(0, 4)) for _ in range(data.draw(st.integers(0, 3))))
    a = array(data, shape_a, dtype_(data, 3), special=False)
    tensor = (lambda: cnn.tensor(a))
    if op in ("+", "-", "*", "/", "@", "==", "<"):
        if op == "@" and shape_a and data.draw(st.integers(0, 3)):
            shape_b = (shape_a[-1], data.draw(st.integers(0, 3)))
        else:
            shape_b = tuple(data.draw(st.sampled_from([1, 2, 3] + list(shape_a[-1:])))
                            for _ in range(data.draw(st.integers(0, 3))))
        other = data.draw(st.sampled_from(["tensor", "tensor", "array", "scalar", "complex",
                                           "string"]))
        b = array(data, shape_b, dtype_(data, 3), special=False)
        b = {"tensor": cnn.from_numpy(b) if b.dtype.kind in "biuf" else b, "array": b,
             "scalar": 2.5, "complex": 1j, "string": "x"}[other]
        b_array = b._data if isinstance(b, cnn.Tensor) else np.asarray(b)
        supported = a.dtype.kind in "biuf" and b_array.dtype.kind in "biuf"
        if op == "-" and "b" in (a.dtype.kind, b_array.dtype.kind):
            supported = False  # PyTorch refuses to subtract bools
        ufunc = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
                 "@": np.matmul, "==": np.equal, "<": np.less}[op]
        try:
            with np.errstate(all="ignore"):
                reference = ufunc(a.astype(np.float64) if supported else a,
                                  b_array.astype(np.float64) if supported else b_array)
            shape = np.shape(reference)
        except Exception:  # noqa: BLE001 (numpy's refusal, of whatever type)
            shape = None
        if op == "@" and (a.ndim == 0 or b_array.ndim == 0):
            shape = None
        valid = supported and shape is not None

        def run():
            t = tensor()
            return {"+": t.__add__, "-": t.__sub__, "*": t.__mul__, "/": t.__truediv__,
                    "@": t.__matmul__, "==": t.__eq__, "<": t.__lt__}[op](b)

        def check(result):
            if not isinstance(result, cnn.Tensor) or result.shape != shape:
                return f"result {getattr(result, 'shape', result)}, expected shape {shape}"
            if op in "+-*@" and not finite(result) and result.dtype.kind == "f" and \
                    result.dtype != np.float16:
                return "non-finite result from finite inputs"
            return None
        return Case(f"{describe(a)} {op} {describe(b)}", run, VALID if valid else INVALID,
                    check if valid else None)
    ndim = len(shape_a)
    supported = a.dtype.kind in "biuf"
    in_range = (lambda dim, size=max(ndim, 1): type(dim) is int and -size <= dim < size)
    dim = data.draw(st.sampled_from([None, 0, 1, -1, 2, 3, -4, (0, 1), (0, 0), 1.0, "x"]))
    allowed = (ValueError, TypeError)
    if op in ("sum", "mean"):
        dims = dim if isinstance(dim, tuple) else (dim,)
        # mean needs a floating-point tensor, as in PyTorch.
        valid = supported and (op == "sum" or a.dtype.kind == "f") and (
            dim is None or (all(in_range(d) for d in dims) and len(
                {d % max(ndim, 1) for d in dims}) == len(dims)))
        run = (lambda: getattr(tensor(), op)(dim))
    elif op in ("max", "argmax"):
        valid = supported and (dim is None or in_range(dim)) and (
            a.size > 0 if dim is None or not ndim else shape_a[dim] > 0)
        run = (lambda: getattr(tensor(), op)(dim) if dim is not None else getattr(tensor(), op)())
    elif op in ("reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute"):
        arg = data.draw(st.sampled_from([(-1,), (a.size,), (2, -1), (1.5,), ("x",), (0, 1),
                                         (1, 0), (5,), (-1, -1), ()]))
        run = (lambda: getattr(tensor(), op)(*arg))
        valid = None  # either: checked for a clear error or a result of the right size
    elif op == "getitem":
        index = data.draw(st.sampled_from([0, -1, 5, slice(None, 2), (0, 0), 1.5, "x",
                                           np.array([0, 0]), np.array([True]), None, ...]))
        run = (lambda: tensor()[index])
        valid, allowed = None, (ValueError, TypeError, IndexError)
    elif op == "to":
        target = data.draw(st.sampled_from(["float64", "float16", "int64", "complex64", "junk",
                                            "cpu", np.float32]))
        run = (lambda: tensor().to(target))
        valid = supported and target not in ("complex64", "junk")
    else:
        gradient = data.draw(st.sampled_from(["none", "ones", "complex", "string", "wrong"]))
        valid = a.dtype.kind == "f" and (gradient == "ones" or gradient == "none" and a.size == 1)

        def run():
            t = tensor().requires_grad_()
            out = t * 2
            g = {"none": None, "ones": np.ones(a.shape), "complex": np.ones(a.shape, complex),
                 "string": "x", "wrong": np.ones(a.shape + (2,))}[gradient]
            out.backward(g)
            return t.grad
    size = a.size

    def check(result):
        if isinstance(result, tuple):
            result = result[0]
        if op in ("reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute") and (
                not isinstance(result, cnn.Tensor) or result._data.size != size):
            return f"{op} changed the number of elements to {getattr(result, 'shape', None)}"
        return None if isinstance(result, cnn.Tensor) else f"a {type(result).__name__}"
    return Case(f"{describe(a)}.{op}({dim if op in ('sum', 'mean', 'max', 'argmax') else ''})",
                run, EITHER if valid is None else VALID if valid else INVALID, check, allowed)


def loader_case(data):
    """read_idx, cnn.load, Sequential.load_model, Module.load_state_dict and an optimizer's
    load_state_dict on damaged input: an error must name the file, and a failed load must
    leave the model and the optimizer exactly as they were."""
    kind = data.draw(st.sampled_from(["idx", "load", "load_model", "state_dict", "optimizer"]))
    source = data.draw(st.sampled_from(["good", "truncated", "flipped", "extended", "random"]))
    model = cnn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    optimizer = cnn.optim.Adam(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = np.ones_like(p._data)
    optimizer.step()
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))

    def damaged(good):
        raw = bytearray(good)
        if source == "truncated":
            del raw[rng.integers(0, max(len(raw), 1)):]
        elif source == "flipped" and raw:
            for position in rng.integers(0, len(raw), size=rng.integers(1, 6)):
                raw[position] ^= int(rng.integers(1, 256))
        elif source == "extended":
            raw += rng.bytes(int(rng.integers(1, 40)))
        elif source == "random":
            raw = bytearray(rng.bytes(int(rng.integers(0, 200))))
        return bytes(raw)

    if kind in ("state_dict", "optimizer"):
        state = model.state_dict() if kind == "state_dict" else optimizer.state_dict()
        state = damaged_state(rng, state, source)
        target = model if kind == "state_dict" else optimizer
        snapshot = snapshot_of(model, optimizer)

        def run():
            try:
                return target.load_state_dict(state)
            except (ValueError, TypeError):
                if snapshot_of(model, optimizer) != snapshot:
                    raise AssertionError("a failed load changed the model or the optimizer")
                raise
        return Case(f"{type(target).__name__}.load_state_dict({source} state)", run, EITHER,
                    lambda result: None)
    folder = tempfile.mkdtemp(prefix="cnn-fuzz-")
    path = os.path.join(folder, "file.bin")
    if kind == "idx":
        shape = tuple(int(v) for v in rng.integers(1, 4, size=rng.integers(1, 4)))
        good = b"\0\0\x08" + bytes([len(shape)]) + b"".join(v.to_bytes(4, "big") for v in shape)
        good += rng.bytes(int(np.prod(shape)))
        if data.draw(st.booleans()):
            good = gzip.compress(good)
    else:
        buffer = io.BytesIO()
        cnn.save({"model": model.state_dict(), "epoch": 3} if kind == "load" else
                 model.state_dict(), buffer)
        good = buffer.getvalue()
    with open(path, "wb") as file:
        file.write(damaged(good))
    snapshot = snapshot_of(model, optimizer)

    def run():
        try:
            if kind == "idx":
                return read_idx(path)
            if kind == "load":
                return cnn.load(path)
            return model.load_model(path)
        except (ValueError, TypeError) as error:
            if path not in str(error):
                raise AssertionError(f"the error does not name the file: {error}") from None
            if snapshot_of(model, optimizer) != snapshot:
                raise AssertionError("a failed load changed the model") from None
            raise
        finally:
            os.remove(path)
            os.rmdir(folder)
    return Case(f"{kind}({source} file of {len(good)} bytes)", run,
                VALID if source == "good" else EITHER, lambda result: None)


def damaged_state(rng, state, source):
    """A copy of a state dict (a model's or an optimizer's) with one thing wrong, or none."""
    state = {key: (dict(value) if isinstance(value, dict) else value)
             for key, value in state.items()}
    if source == "good":
        return state
    flat = [(state, key) for key in state]
    for key in ("state", "param_groups"):  # an optimizer's nested entries
        if key in state:
            inner = state[key]
            items = inner.items() if isinstance(inner, dict) else enumerate(inner)
            for sub_key, value in list(items):
                if isinstance(value, dict):
                    inner[sub_key] = dict(value)
                    flat.extend((inner[sub_key], name) for name in value)
    holder, key = flat[rng.integers(len(flat))]
    value = holder[key]
    change = rng.integers(6)
    if change == 0:
        del holder[key]
    elif change == 1:
        holder["unexpected"] = np.zeros(1)
    elif change == 2 and isinstance(value, np.ndarray):
        holder[key] = np.zeros(value.shape + (1,), value.dtype)
    elif change == 3 and isinstance(value, np.ndarray):
        holder[key] = value.astype(complex)
    elif change == 4:
        holder[key] = rng.choice(np.array(["x", None, -1, 1.5, [1, 2], np.nan], object))
    else:
        holder[key] = np.array(["text"])
    return state


def snapshot_of(model, optimizer):
    """Everything a load could change, as comparable bytes."""
    parts = [(k, v.tobytes()) for k, v in model.state_dict().items()]
    for group in optimizer.param_groups:
        parts.append(repr(sorted((k, v) for k, v in group.items() if k != "params")))
    for p, entry in optimizer.state.items():
        parts.extend((k, v.tobytes() if isinstance(v, np.ndarray) else v)
                     for k, v in sorted(entry.items()))
    return repr(parts)


# ***** issue 16: masked logits, threads, ranks that disagree *****

def reference_log_softmax(x):
    """PyTorch's log_softmax along the last axis, written out in float64: -inf stays -inf, and a
    row with only -inf, a +inf or a nan is nan throughout."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        shifted = x - x.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reference_loss(logp, target, weight, ignore_index, smoothing, reduction):
    """PyTorch's nll_loss / cross_entropy with class indices, term by term: the target's term,
    and with label smoothing every class's, for counted samples only."""
    n, classes = logp.shape
    w = np.ones(classes) if weight is None else weight.astype(np.float64)
    counted = target != ignore_index
    losses, divisor = np.zeros(n), 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(n):
            if not counted[i]:
                continue
            t = target[i]
            losses[i] = -(1 - smoothing) * w[t] * logp[i, t]
            if smoothing:
                losses[i] -= smoothing / classes * (w * logp[i]).sum()
            divisor += w[t]
        if reduction == "none":
            return losses
        total = losses.sum()
        return total if reduction == "sum" else (total / divisor if n else np.nan)


def masked_logits_case(data):
    """cross_entropy, nll_loss, log_softmax and softmax on logits with -inf (masked classes),
    rows of only -inf, +inf and nan: PyTorch's values (a written-out reference), no warnings."""
    op = data.draw(st.sampled_from(["cross_entropy", "cross_entropy", "nll_loss", "log_softmax",
                                    "softmax"]))
    fault = fault_(data, *{"log_softmax": ["dim"], "softmax": ["dim"], "nll_loss": ["label"]}.get(
        op, ["label", "smoothing"]))
    n, classes = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    dtype = data.draw(st.sampled_from(FLOATS))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-3, 3, (n, classes))
    x[rng.random((n, classes)) < data.draw(st.sampled_from([0.0, 0.3, 0.7]))] = -np.inf
    special = data.draw(st.sampled_from([None, None, "row", "nan", "inf"]))
    row = rng.integers(n)
    if special == "row":
        x[row] = -np.inf
    elif special in ("nan", "inf"):
        x[row, rng.integers(classes)] = np.nan if special == "nan" else np.inf
    x = x.astype(dtype)
    tensor = cnn.tensor(x, requires_grad=True)
    if op in ("log_softmax", "softmax"):
        dim = data.draw(st.sampled_from([2, -3] if fault == "dim" else [1, -1]))
        expected = reference_log_softmax(x.astype(np.float64))
        if op == "softmax":
            expected = np.exp(expected)
        call = lambda: getattr(F, op)(tensor, dim)  # noqa: E731
        valid = fault != "dim"
    else:
        ignore_index = data.draw(st.sampled_from([-100, 0]))
        target = rng.integers(0, classes, n)
        if fault == "label":
            target[0] = classes
        smoothing = 0.0 if op == "nll_loss" else data.draw(st.sampled_from(
            [-0.5, 2.0] if fault == "smoothing" else [0.0, 0.0, 0.1, 0.5]))
        weight = None if data.draw(st.booleans()) else rng.uniform(0, 2, classes).astype(dtype)
        reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
        valid = fault != "label" and (fault != "smoothing" or op == "nll_loss")
        logp = x.astype(np.float64) if op == "nll_loss" else reference_log_softmax(
            x.astype(np.float64))
        expected = reference_loss(logp, target, weight, ignore_index, smoothing, reduction) \
            if valid else None
        if op == "nll_loss":
            call = lambda: F.nll_loss(tensor, target, weight, ignore_index,  # noqa: E731
                                      reduction)
        else:
            call = lambda: F.cross_entropy(tensor, target, weight, ignore_index,  # noqa: E731
                                           reduction, smoothing)
    tolerance = 1e-5 if dtype == "float32" else 1e-12

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NumPy's "invalid value" would be a finding
            out = call()
            # Not out.sum(): NumPy warns on inf + -inf there, a sum this case does not test.
            out.backward(cnn.ones_like(out))
        return out

    def check(out):
        if out._data.shape != np.shape(expected):
            return f"shape {out._data.shape}, expected {np.shape(expected)}"
        try:
            np.testing.assert_allclose(out._data, expected, rtol=tolerance, atol=tolerance)
        except AssertionError as error:
            return f"not PyTorch's values: {str(error).strip().splitlines()[-2:]}"
        return None

    return Case(f"F.{op} on {describe(x)} with {special or 'masks only'}", run,
                VALID if valid else INVALID, check if valid else None)


THREAD_OPS = ("conv2d", "fused", "linear", "train")


def draw_thread_problem(data):
    """One thread's work, as numbers: an op on a random geometry and batch."""
    return {"op": data.draw(st.sampled_from(THREAD_OPS)), "batch": data.draw(st.integers(1, 6)),
            "channels": data.draw(st.integers(1, 3)), "size": data.draw(st.integers(4, 10)),
            "kernel": data.draw(st.integers(1, 3)), "seed": data.draw(st.integers(0, 2**16))}


def build_thread_work(spec, index):
    """The work `spec` describes, as a function that runs it 3 times; built serially (the
    weights come from the one process-wide generator)."""
    op, batch, channels = spec["op"], spec["batch"], spec["channels"]
    size, kernel = spec["size"], spec["kernel"]
    rng = np.random.default_rng(spec["seed"])
    x = rng.standard_normal((batch, channels, size, size)).astype(np.float32)
    labels = rng.integers(0, 4, batch)
    cnn.manual_seed(index)
    conv = nn.Conv2d(channels, 4, kernel)
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2)) if op in ("fused", "train") else conv
    linear = nn.Linear(channels * size * size, 5)
    optimizer = cnn.optim.Adam(model.parameters(), lr=0.01)

    def work():
        outputs = []
        for _ in range(3):
            if op == "linear":
                out = linear(cnn.tensor(x).flatten(1))
            elif op == "train":
                optimizer.zero_grad()
                out = model(cnn.tensor(x)).sum(dim=(2, 3))
                F.cross_entropy(out, labels).backward()
                optimizer.step()
            else:
                out = model(cnn.tensor(x))
            outputs.append(out._data.copy())
        return outputs

    return work


def run_together(functions):
    """Run each function in its own thread, released together; results (or exceptions)."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)

    def body(i):
        barrier.wait()
        try:
            results[i] = functions[i]()
        except Exception as error:  # noqa: BLE001 (returned to the case)
            results[i] = error

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def threads_case(data):
    """2 or 3 threads at once, each a random geometry, batch and op (conv, fused, linear, a
    training step), against the same work done serially: the same bits. Or a bad thread count
    set from a thread: a clear error there."""
    count = data.draw(st.integers(2, 3))
    if data.draw(st.integers(0, 2**32 - 1)) % 3 == 0:  # a third of the cases
        bad = data.draw(st.sampled_from([0, -1, cnn.threads.max_threads()[0] + 1, 1.5, "2",
                                         None]))

        def run():
            result = run_together([lambda: cnn.set_num_threads(bad)] * count)
            raise next(r for r in result if isinstance(r, Exception))
        return Case(f"set_num_threads({bad!r}) from {count} threads", run, INVALID)
    specs = [draw_thread_problem(data) for _ in range(count)]
    described = [f"{p['op']}(batch {p['batch']}, {p['channels']}x{p['size']}x{p['size']}, "
                 f"kernel {p['kernel']})" for p in specs]
    # Built twice, identically: once for the serial run, once for the threads.
    serial_work = [build_thread_work(spec, i) for i, spec in enumerate(specs)]
    threaded_work = [build_thread_work(spec, i) for i, spec in enumerate(specs)]

    def run():
        serial = [work() for work in serial_work]
        threaded = run_together(threaded_work)
        for outputs in threaded:
            if isinstance(outputs, Exception):
                raise outputs
        return serial, threaded

    def check(result):
        for i, (ours, reference) in enumerate(zip(result[1], result[0])):
            if any(a.tobytes() != b.tobytes() for a, b in zip(ours, reference)):
                return f"thread {i} ({described[i]}) differs from its serial run"
        return None

    return Case(f"threads: {'; '.join(described)}", run, VALID, check)


def disagreement_case(data):
    """cnn.distributed's agreement and size checks on a fake communicator of 2 to 4 ranks:
    identical settings (sizes) pass, any difference is a DisagreementError on this rank whose
    message names each differing setting (collective) and the ranks."""
    from cnn import distributed as dist
    world = data.draw(st.integers(2, 4))
    kind = data.draw(st.sampled_from(["settings", "sizes"]))
    differ = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    if kind == "settings":
        keys = ["--seed", "--lr", "--batch-size", "training images", "parameter shapes",
                "cnn version"]
        base = {key: [0, 0.5, "v", [3, 4], None][int(rng.integers(5))] for key in keys}
        per_rank = [dict(base) for _ in range(world)]
        changed = set()
        if differ:
            for _ in range(int(rng.integers(1, 3))):
                key, rank_ = keys[int(rng.integers(len(keys)))], int(rng.integers(world))
                per_rank[rank_][key] = f"other {rank_}"
                changed.add(key)
            if rng.random() < 0.2:
                del per_rank[int(rng.integers(world))]["--seed"]
                changed.add("--seed")
        texts = [json.dumps(s, sort_keys=True) for s in per_rank]
        fake = _FakeComm(texts=texts)
        call = lambda: dist.agree(per_rank[0])  # noqa: E731
        words = sorted(changed) if any(t != texts[0] for t in texts) else None
    else:
        sizes = [int(rng.integers(0, 5))] * world
        dtypes = [np.float32] * world
        if differ:
            rank_ = int(rng.integers(world))
            if rng.random() < 0.5:
                sizes[rank_] += 1
            else:
                dtypes[rank_] = np.float64
        rows = [[dist._KINDS.index("Allreduce of a metric"), sizes[r], np.dtype(dtypes[r]).num]
                for r in range(world)]
        fake = _FakeComm(rows=rows)
        buffer = np.zeros(sizes[0], dtypes[0])
        call = lambda: dist._sized_collective(  # noqa: E731
            "Allreduce of a metric", buffer, lambda: "reduced")
        words = ["out of step"] if rows.count(rows[0]) != world else None

    def run():
        saved = dist._comm, dist._size, dist._rank
        dist._comm, dist._size, dist._rank = fake, world, 0
        try:
            return call()
        finally:
            dist._comm, dist._size, dist._rank = saved

    def check(result):
        return None if kind == "settings" or result == "reduced" else f"returned {result!r}"

    case = Case(f"{kind} on {world} ranks, {'differing' if words else 'equal'}", run,
                INVALID if words else VALID, check, allowed=(dist.DisagreementError,))
    if words:
        case.run = _expect_words(run, words + ["rank"])
    return case


class _FakeComm:
    """Rank 0's view of a communicator: what the other ranks contribute is given up front."""

    def __init__(self, texts=None, rows=None):
        self.texts, self.rows = texts, rows

    def allgather(self, text):
        return [text] + self.texts[1:]

    def Allgather(self, mine, everyone):  # noqa: N802 (mpi4py's name)
        everyone[0] = mine
        everyone[1:] = self.rows[1:]


def _expect_words(run, words):
    """`run`, whose error message must name every one of `words` (else a ValueError-free
    failure the outcome reports)."""
    def checked():
        from cnn import distributed as dist
        try:
            return run()
        except dist.DisagreementError as error:
            missing = [word for word in words if word not in str(error)]
            if missing:
                raise AssertionError(f"the message {error} lacks {missing}") from None
            raise
    return checked


FAMILIES = {"conv": conv_case, "pool": pool_case, "elementwise": elementwise_case,
            "loss": loss_case, "modules": module_case, "optimizers": optimizer_case,
            "kernels": kernel_case, "tensor": tensor_case, "loaders": loader_case,
            "masked": masked_logits_case, "threads": threads_case,
            "disagreement": disagreement_case}


# ***** running *****

def outcome(case):
    """(outcome name, problem or None) of running one case."""
    try:
        result = case.run()
    except MemoryError:
        return "memory error", None
    except case.allowed as error:
        if not str(error).strip():
            return "bad", f"{type(error).__name__} with an empty message"
        if case.expect == VALID:
            return "bad", f"a valid call raised {type(error).__name__}: {error}"
        return "error", None
    except Exception as error:  # noqa: BLE001 (any other exception is a finding)
        return "bad", f"{type(error).__name__}: {error}"
    if case.expect == INVALID:
        return "bad", "an invalid call was accepted"
    if case.check is not None:
        try:
            problem = case.check(result)
        except Exception as error:  # noqa: BLE001
            problem = f"checking the result raised {type(error).__name__}: {error}"
        if problem:
            return "bad", problem
    return "ok", None


def main(family, examples, log_path):
    warnings.simplefilter("ignore")
    counts, problems = Counter(), []
    draw_case = FAMILIES[family]
    with open(log_path, "w", buffering=1) as log:
        @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(st.data())
        def run(data):
            case = draw_case(data)
            log.write(case.description + "\n")
            log.flush()
            name, problem = outcome(case)
            counts[name] += 1
            if problem and len(problems) < 20:
                problems.append({"case": case.description, "problem": problem})
        run()
    print(json.dumps({"family": family, "counts": counts, "problems": problems}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
