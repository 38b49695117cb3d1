"""NAdam (PyTorch's single-tensor update rule), in NumPy."""
import numpy as np

from ._rules import adam_gradient, update_moments, zeros_like
from .optimizer import (Optimizer, _check_betas, _check_flags, _check_nonnegative,
                        _params_with_grad)


class NAdam(Optimizer):
    """NAdam (Adam with Nesterov momentum), as ``torch.optim.NAdam``.

    With learning rate ``lr``, ``betas = (beta1, beta2)``, ``eps``, weight decay ``lambda`` and
    ``momentum_decay`` ``psi``, step ``t`` (per parameter, from 1) updates every parameter
    ``theta`` that has a gradient ``g``::

        if maximize:    g = -g
        if lambda != 0:
            theta = theta * (1 - lr * lambda)   if decoupled_weight_decay
            g = g + lambda * theta              otherwise
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * psi));  P = P * mu_t   (P: mu_product)
        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2 ** t)) + eps
        theta = theta - lr * (1 - mu_t) / (1 - P) * g / d
                      - lr * mu_{t+1} / (1 - P * mu_{t+1}) * m / d

    ``m`` and ``v`` start at zero, ``P`` at one. As in PyTorch (whose ``mu_product`` is a
    float32 tensor), ``P`` is kept in float32.

    Args:
        params: an iterable of Parameters or of dicts defining parameter groups, or a Module.
        lr (float): learning rate (default: 2e-3).
        betas (tuple of two floats): in [0, 1) (default: (0.9, 0.999)).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        momentum_decay (float): psi (default: 4e-3).
        decoupled_weight_decay (bool): shrink the parameters directly, as AdamW (NAdamW).
        foreach: accepted for PyTorch's signature.
        maximize (bool): maximize the objective (default: False).

    State:
        ``"step"``, ``"mu_product"``, ``"exp_avg"`` and ``"exp_avg_sq"`` per parameter.
    """

    _array_state = ("exp_avg", "exp_avg_sq")
    _number_state = ("step", "mu_product")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _check_options(self, options):
        _check_nonnegative(options, ("lr", "eps", "weight_decay", "momentum_decay"))
        _check_betas(options)
        _check_flags(options, ("decoupled_weight_decay", "maximize"))

    def _required_state(self, group):
        return ("step", "mu_product", "exp_avg", "exp_avg_sq")

    def _update_group(self, group):
        lr, eps, psi = group["lr"], group["eps"], group["momentum_decay"]
        beta1, beta2 = group["betas"]
        for p, param, grad in _params_with_grad(group):
            state = self.state[p]
            if not state:
                state.update(step=0.0, mu_product=1.0, exp_avg=zeros_like(param),
                             exp_avg_sq=zeros_like(param))
            kind = param.dtype.type
            state["step"] = step = state["step"] + 1
            grad = adam_gradient(grad, param, group)
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
            mu_product = float(np.float32(state["mu_product"]) * np.float32(mu))
            state["mu_product"] = mu_product
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            update_moments(exp_avg, exp_avg_sq, grad, group["betas"])
            denom = np.sqrt(exp_avg_sq / kind(1 - beta2 ** step)) + kind(eps)
            param += kind(-lr * (1.0 - mu) / (1.0 - mu_product)) * grad / denom
            param += kind(-lr * mu_next / (1.0 - mu_product * mu_next)) * exp_avg / denom
