"""RAdam (PyTorch's single-tensor update rule), in NumPy."""
import math

import numpy as np

from ._rules import adam_gradient, update_moments, zeros_like
from .optimizer import (Optimizer, _check_betas, _check_flags, _check_nonnegative,
                        _params_with_grad)


class RAdam(Optimizer):
    """RAdam (rectified Adam), as ``torch.optim.RAdam``.

    With learning rate ``lr``, ``betas = (beta1, beta2)``, ``eps`` and weight decay ``lambda``,
    step ``t`` (per parameter, from 1) updates every parameter ``theta`` that has a gradient
    ``g``::

        if maximize:    g = -g
        if lambda != 0:
            theta = theta * (1 - lr * lambda)   if decoupled_weight_decay
            g = g + lambda * theta              otherwise
        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2 ** t / (1 - beta2 ** t)
        if rho_t > 5:
            r = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
            theta = theta - lr * m_hat * sqrt(1 - beta2 ** t) / (sqrt(v) + eps) * r
        else:
            theta = theta - lr * m_hat

    Args:
        params: an iterable of Parameters or of dicts defining parameter groups, or a Module.
        lr (float): learning rate (default: 1e-3).
        betas (tuple of two floats): in [0, 1) (default: (0.9, 0.999)).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        decoupled_weight_decay (bool): shrink the parameters directly, as AdamW.
        foreach: accepted for PyTorch's signature.
        maximize (bool): maximize the objective (default: False).

    State:
        ``"step"``, ``"exp_avg"`` and ``"exp_avg_sq"`` per parameter.
    """

    _array_state = ("exp_avg", "exp_avg_sq")
    _number_state = ("step",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _check_options(self, options):
        _check_nonnegative(options, ("lr", "eps", "weight_decay"))
        _check_betas(options)
        _check_flags(options, ("decoupled_weight_decay", "maximize"))

    def _required_state(self, group):
        return ("step", "exp_avg", "exp_avg_sq")

    def _update_group(self, group):
        lr, eps = group["lr"], group["eps"]
        beta1, beta2 = group["betas"]
        for p, param, grad in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state.update(step=0.0, exp_avg=zeros_like(param), exp_avg_sq=zeros_like(param))
            kind = param.dtype.type
            state["step"] = step = state["step"] + 1
            grad = adam_gradient(grad, param, group)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            update_moments(exp_avg, exp_avg_sq, grad, group["betas"])
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            corrected = exp_avg / kind(bias_correction1)
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
            if rho_t > 5.0:
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                                 / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                adaptive = kind(bias_correction2 ** 0.5) / (np.sqrt(exp_avg_sq) + kind(eps))
                param -= corrected * kind(lr) * adaptive * kind(rect)
            else:
                param -= corrected * kind(lr)
