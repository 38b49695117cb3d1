"""RMSprop (PyTorch's single-tensor update rule), in NumPy."""
import numpy as np

from ._rules import followed_gradient, lerp_, zeros_like
from .optimizer import Optimizer, _check_flags, _check_nonnegative, _params_with_grad


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    With learning rate ``lr``, smoothing ``alpha``, ``eps``, weight decay ``lambda`` and momentum
    ``mu``, each step updates every parameter ``theta`` that has a gradient ``g``::

        if maximize:    g = -g
        if lambda != 0: g = g + lambda * theta
        v = alpha * v + (1 - alpha) * g * g
        if centered:    m = m + (1 - alpha) * (g - m);  a = sqrt(v - m * m) + eps
        else:           a = sqrt(v) + eps
        if mu > 0:      b = mu * b + g / a;  theta = theta - lr * b
        else:           theta = theta - lr * g / a

    ``v``, ``m`` and ``b`` start at zero.

    Args:
        params: an iterable of Parameters or of dicts defining parameter groups, or a Module.
        lr (float): learning rate (default: 1e-2).
        alpha (float): smoothing constant (default: 0.99).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): L2 penalty (default: 0).
        momentum (float): momentum factor (default: 0).
        centered (bool): normalise by the estimated variance instead of the second moment.
        capturable, foreach: accepted for PyTorch's signature (capturable must be False).
        maximize (bool): maximize the objective (default: False).

    State:
        ``"step"``, ``"square_avg"``, and ``"momentum_buffer"`` (momentum > 0) and
        ``"grad_avg"`` (centered), per parameter.
    """

    _array_state = ("square_avg", "momentum_buffer", "grad_avg")
    _number_state = ("step",)

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False):
        if capturable:
            raise ValueError("capturable: CUDA graph capture is not supported by cnn (it runs on "
                             "the CPU)")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check_options(self, options):
        _check_nonnegative(options, ("lr", "eps", "momentum", "weight_decay", "alpha"))
        _check_flags(options, ("centered", "maximize"))

    def _required_state(self, group):
        return (("step", "square_avg") + (("momentum_buffer",) if group["momentum"] > 0 else ())
                + (("grad_avg",) if group["centered"] else ()))

    def _update_group(self, group):
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        for p, param, grad in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state.update(step=0.0, square_avg=zeros_like(param))
                if momentum > 0:
                    state["momentum_buffer"] = zeros_like(param)
                if group["centered"]:
                    state["grad_avg"] = zeros_like(param)
            kind = param.dtype.type
            state["step"] += 1
            grad = followed_gradient(grad, param, group["weight_decay"], group["maximize"])
            square_avg = state["square_avg"]
            square_avg *= kind(alpha)
            square_avg += kind(1 - alpha) * grad * grad
            if group["centered"]:
                grad_avg = state["grad_avg"]
                lerp_(grad_avg, grad, 1 - alpha)
                avg = np.sqrt(square_avg - grad_avg * grad_avg)
            else:
                avg = np.sqrt(square_avg)
            avg += kind(eps)
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= kind(momentum)
                buf += grad / avg
                param += kind(-lr) * buf
            else:
                param += kind(-lr) * grad / avg
