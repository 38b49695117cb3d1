"""Optimizer update kernels (cnn/_ext/optim.pyx, through cnn/optim/updates.py) against NumPy
references of the formulas."""
import itertools

import numpy as np
import pytest

from cnn.optim import updates as optim
from cnn.nn import Parameter
from cnn.optim import SGD

SGD_OPTIONS = [dict(momentum=m, dampening=d, weight_decay=w, nesterov=n, maximize=x)
               for m, d, w, n, x in itertools.product([0, 0.9], [0, 0.2], [0, 0.01],
                                                      [False, True], [False, True])
               if not n or (m > 0 and d == 0)]
ADAM_OPTIONS = [dict(weight_decay=w, amsgrad=a, maximize=x, decoupled=c)
                for w, a, x, c in itertools.product([0, 0.1], [False, True], [False, True],
                                                    [False, True])]


def sgd_reference(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, maximize,
                  first_step):
    g = -grad if maximize else grad
    if weight_decay:
        g = g + weight_decay * param
    if momentum:
        buf[...] = g if first_step else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    param -= lr * g


def adam_reference(param, grad, m, v, vmax, lr, b1, b2, eps, weight_decay, step, amsgrad,
                   maximize, decoupled):
    g = -grad if maximize else grad
    if weight_decay:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * param
    m += (g - m) * (1 - b1)
    v[...] = v * b2 + g * (1 - b2) * g
    second = np.maximum(vmax, v, out=vmax) if amsgrad else v
    param += m / (np.sqrt(second) / np.sqrt(1 - b2**step) + eps) * -(lr / (1 - b1**step))


def _run(update, reference, arrays, options, steps=4):
    """Apply `update` and `reference` to copies of `arrays` for a few steps; compare."""
    ours = [a.copy() for a in arrays]
    theirs = [a.copy() for a in arrays]
    rng = np.random.default_rng(1)
    for step in range(1, steps + 1):
        grad = rng.standard_normal(arrays[0].shape)
        update(ours[0], grad, *ours[1:], step, **options)
        reference(theirs[0], grad, *theirs[1:], step, **options)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("options", SGD_OPTIONS)
def test_sgd_update_matches_the_formula(isa, options):
    param = np.random.default_rng(0).standard_normal((7, 5))

    def through(kernel):
        return lambda p, g, buf, step, **o: kernel(p, g, buf, 0.1, first_step=step == 1, **o)
    _run(through(optim.sgd_update), through(sgd_reference), [param, np.zeros_like(param)],
         options)


@pytest.mark.parametrize("options", ADAM_OPTIONS)
def test_adam_update_matches_the_formula(isa, options):
    param = np.random.default_rng(0).standard_normal(37)

    def through(kernel):
        return lambda p, g, m, v, vmax, step, **o: kernel(p, g, m, v, vmax, 1e-2, 0.9, 0.999,
                                                          1e-8, step=step, **o)
    _run(through(optim.adam_update), through(adam_reference),
         [param, np.zeros_like(param), np.zeros_like(param), np.zeros_like(param)], options)


def _large_run(update, arrays, threads, steps=3):
    """`update` on copies of `arrays` (a parameter and its state) for a few steps of random
    gradients, on `threads` threads: the arrays afterwards."""
    arrays = [a.copy() for a in arrays]
    rng = np.random.default_rng(2)
    for step in range(1, steps + 1):
        update(arrays, rng.standard_normal(arrays[0].shape).astype(arrays[0].dtype), step,
               threads)
    return arrays


# Large enough for the kernels to share the loop among the threads (MIN_PARALLEL_ELEMENTS).
LARGE = 40_003


@pytest.mark.parametrize("options", SGD_OPTIONS)
def test_a_large_sgd_update_has_the_same_bits_on_two_threads(isa, options):
    param = np.random.default_rng(0).standard_normal(LARGE).astype(np.float32)

    def update(arrays, grad, step, threads):
        optim.sgd_update(arrays[0], grad, arrays[1], 0.1, first_step=step == 1,
                         num_threads=threads, **options)
    one, two = (_large_run(update, [param, np.zeros_like(param)], n) for n in (1, 2))
    for a, b in zip(one, two):
        assert a.tobytes() == b.tobytes()
    reference = _large_run(lambda arrays, grad, step, _: sgd_reference(
        arrays[0], grad, arrays[1], 0.1, first_step=step == 1, **options),
        [param, np.zeros_like(param)], 1)
    np.testing.assert_allclose(one[0], reference[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", ADAM_OPTIONS)
def test_a_large_adam_update_has_the_same_bits_on_two_threads(isa, options):
    param = np.random.default_rng(0).standard_normal(LARGE).astype(np.float32)
    state = [param] + [np.zeros_like(param) for _ in range(3)]

    def update(arrays, grad, step, threads):
        optim.adam_update(arrays[0], grad, *arrays[1:], 1e-2, 0.9, 0.999, 1e-8, step=step,
                          num_threads=threads, **options)
    one, two = (_large_run(update, state, n) for n in (1, 2))
    for a, b in zip(one, two):
        assert a.tobytes() == b.tobytes()
    reference = _large_run(lambda arrays, grad, step, _: adam_reference(
        arrays[0], grad, *arrays[1:], 1e-2, 0.9, 0.999, 1e-8, step=step, **options), state, 1)
    np.testing.assert_allclose(one[0], reference[0], rtol=1e-4, atol=1e-5)


def test_amsgrad_keeps_a_nan_as_np_maximum_does(isa):
    param, grad = np.ones(3), np.array([1.0, np.nan, 1.0])
    state = [np.zeros(3), np.zeros(3), np.array([np.nan, 0.0, 0.0])]
    optim.adam_update(param, grad, *state, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1, True, False, False)
    np.testing.assert_array_equal(np.isnan(state[2]), [True, True, False])
    np.testing.assert_array_equal(np.isnan(param), [True, True, False])


def test_a_strided_parameter_is_updated_in_place():
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    p = Parameter(np.zeros((3, 2)))
    p._data = base[:, ::2]  # a view that is not C-contiguous
    p.grad = np.ones((3, 2))
    SGD([p], lr=0.5, momentum=0.9).step()
    np.testing.assert_array_equal(base[:, ::2], np.arange(12).reshape(3, 4)[:, ::2] - 0.5)
    np.testing.assert_array_equal(base[:, 1::2], np.arange(12).reshape(3, 4)[:, 1::2])


def test_a_read_only_parameter_is_refused():
    param = np.ones(3)
    param.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.sgd_update(param, np.ones(3), None, 0.1, 0, 0, 0, False, False, True)


def test_state_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="momentum_buffer"):
        optim.sgd_update(np.ones(3), np.ones(3), np.ones(4), 0.1, 0.9, 0, 0, False, False, False)
