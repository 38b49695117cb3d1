"""Adadelta (PyTorch's single-tensor update rule), in NumPy."""
import numpy as np

from ._rules import followed_gradient, zeros_like
from .optimizer import Optimizer, _check_flags, _check_nonnegative, _params_with_grad


class Adadelta(Optimizer):
    """Adadelta, as ``torch.optim.Adadelta``.

    With learning rate ``lr``, decay ``rho``, ``eps`` and weight decay ``lambda``, each step
    updates every parameter ``theta`` that has a gradient ``g``::

        if maximize:    g = -g
        if lambda != 0: g = g + lambda * theta
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        theta = theta - lr * delta

    ``v`` (``square_avg``) and ``u`` (``acc_delta``) start at zero.

    Args:
        params: an iterable of Parameters or of dicts defining parameter groups, or a Module.
        lr (float): scale of the delta (default: 1.0).
        rho (float): decay of the running averages, in [0, 1] (default: 0.9).
        eps (float): added inside the square roots (default: 1e-6).
        weight_decay (float): L2 penalty (default: 0).
        foreach: accepted for PyTorch's signature.
        maximize (bool): maximize the objective (default: False).

    State:
        ``"step"``, ``"square_avg"`` and ``"acc_delta"`` per parameter.
    """

    _array_state = ("square_avg", "acc_delta")
    _number_state = ("step",)

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _check_options(self, options):
        _check_nonnegative(options, ("lr", "rho", "eps", "weight_decay"))
        if options["rho"] > 1:
            raise ValueError(f"Invalid rho value: {options['rho']} (rho must be in [0, 1])")
        _check_flags(options, ("maximize",))

    def _required_state(self, group):
        return ("step", "square_avg", "acc_delta")

    def _update_group(self, group):
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        for p, param, grad in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state.update(step=0.0, square_avg=zeros_like(param), acc_delta=zeros_like(param))
            kind = param.dtype.type
            grad = followed_gradient(grad, param, group["weight_decay"], group["maximize"])
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            square_avg *= kind(rho)
            square_avg += kind(1 - rho) * grad * grad
            delta = np.sqrt(acc_delta + kind(eps)) / np.sqrt(square_avg + kind(eps)) * grad
            acc_delta *= kind(rho)
            acc_delta += kind(1 - rho) * delta * delta
            param += kind(-lr) * delta
            state["step"] += 1
