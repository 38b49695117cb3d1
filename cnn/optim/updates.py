"""One optimizer update per parameter through the compiled kernels (cnn/_ext/optim.pyx).

The optimizers call these at every step with the parameter, its gradient and their own state
arrays, checked here because a user may have replaced ``p.data`` or ``p.grad`` since the last step.

The parameter and its state are updated in place. A parameter that is not C-contiguous (a user
may have set ``p.data`` to a strided view) is updated through a contiguous copy, written back.
"""
import numpy as np

from cnn import _ext


def _flat(array, name, like):
    """array (shaped and typed like `like`) as a 1-D view for the kernel."""
    if not isinstance(array, np.ndarray) or array.shape != like.shape or array.dtype != like.dtype:
        raise ValueError(f"{name}: expected an array of shape {like.shape} and dtype "
                         f"{like.dtype}, got {getattr(array, 'shape', type(array).__name__)}")
    return np.ascontiguousarray(array).reshape(-1)


def _state(array, name, like):
    """A state array (the optimizer's own: contiguous and writeable) as a 1-D view."""
    flat = _flat(array, name, like)
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise ValueError(f"{name}: expected a writeable C-contiguous array")
    return flat


def _update(kernel, param, arrays, *options):
    if param.dtype not in (np.float32, np.float64):
        raise TypeError(f"param: expected float32 or float64, got {param.dtype}")
    if not param.flags.writeable:
        raise ValueError("param: the parameter's array is read-only")
    target = param if param.flags.c_contiguous else np.ascontiguousarray(param)
    kernel(target.reshape(-1), *arrays, *options)
    if target is not param:
        param[...] = target


def sgd_update(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
               maximize, first_step, num_threads=1):
    """One cnn.optim.SGD step for `param`; `momentum_buffer` is ignored without momentum."""
    buf = _state(momentum_buffer, "momentum_buffer", param) if momentum != 0 else \
        np.empty(0, param.dtype)
    _update(_ext.backend.optim.sgd_update, param, (_flat(grad, "grad", param), buf),
            float(lr), float(momentum), float(dampening), float(weight_decay), bool(nesterov),
            bool(maximize), bool(first_step), num_threads)


def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps,
                weight_decay, step, amsgrad, maximize, decoupled, num_threads=1):
    """One cnn.optim.Adam (or AdamW, `decoupled`) step for `param`; `max_exp_avg_sq` is used
    with amsgrad only."""
    moments = (_state(exp_avg, "exp_avg", param), _state(exp_avg_sq, "exp_avg_sq", param),
               _state(max_exp_avg_sq, "max_exp_avg_sq", param) if amsgrad
               else np.empty(0, param.dtype))
    _update(_ext.backend.optim.adam_update, param, (_flat(grad, "grad", param),) + moments,
            float(lr), float(beta1), float(beta2), float(eps), float(weight_decay),
            float(step), bool(amsgrad), bool(maximize), bool(decoupled), num_threads)
