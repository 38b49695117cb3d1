"""Adam and AdamW (PyTorch's single-tensor update rules); AdamW is Adam with decoupled weight decay."""
import numpy as np

from . import updates
from ..threads import kernel_threads
from .optimizer import Optimizer, _check_betas, _check_flags, _check_number, _params_with_grad


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``.

    With learning rate ``lr``, ``betas = (beta1, beta2)``, ``eps`` and weight decay ``lambda``,
    step ``t`` (counted per parameter, from 1) updates every parameter ``theta`` that has a
    gradient ``g``::

        if maximize:    g = -g
        if lambda != 0:
            theta = theta * (1 - lr * lambda)   if decoupled_weight_decay (AdamW)
            g = g + lambda * theta              otherwise
        m = m + (1 - beta1) * (g - m)           (a lerp, as PyTorch computes it)
        v = beta2 * v + (1 - beta2) * g * g
        if amsgrad: v_max = max(v_max, v), used for v below
        theta = theta - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``m``, ``v`` and ``v_max`` start at zero.

    Args:
        params: an iterable of Parameters or of dicts defining parameter groups, or a Module.
        lr (float): learning rate (default: 1e-3).
        betas (tuple of two floats): decay rates of the running averages of the gradient and of
            its square, each in [0, 1) (default: (0.9, 0.999)).
        eps (float): added to the denominator for numerical stability (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        amsgrad (bool): use the AMSGrad variant, which normalizes by the largest ``v`` so far
            (default: False).
        maximize (bool): maximize the objective instead of minimizing it (default: False).
        decoupled_weight_decay (bool): shrink the parameters directly instead of adding the L2
            gradient, which makes this AdamW (default: False).

    State:
        ``"step"`` (a number), ``"exp_avg"`` (m), ``"exp_avg_sq"`` (v) and, with amsgrad,
        ``"max_exp_avg_sq"`` (v_max), per parameter.
    """

    _array_state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _number_state = ("step",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, options):
        _check_number(options["lr"], "lr", "learning rate")
        _check_number(options["eps"], "eps", "epsilon value")
        _check_betas(options)
        _check_number(options["weight_decay"], "weight_decay", "weight_decay value")
        _check_flags(options, ("amsgrad", "maximize", "decoupled_weight_decay"))

    def _required_state(self, group):
        names = ("step", "exp_avg", "exp_avg_sq")
        return names + ("max_exp_avg_sq",) if group["amsgrad"] else names

    def _update_group(self, group):
        # One kernel call per parameter (cnn/_ext/optim.pyx), in the parameter's dtype.
        lr = float(group["lr"])
        beta1, beta2 = (float(beta) for beta in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        amsgrad = group["amsgrad"]
        maximize = group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        threads = kernel_threads()
        for p, param, grad in _params_with_grad(group):
            state = self.state.setdefault(p, {})
            if not state:
                state["step"] = 0.0
                state["exp_avg"] = np.zeros_like(param, order="C")
                state["exp_avg_sq"] = np.zeros_like(param, order="C")
                if amsgrad:
                    state["max_exp_avg_sq"] = np.zeros_like(param, order="C")
            step = state["step"] + 1
            updates.adam_update(param, grad, state["exp_avg"], state["exp_avg_sq"],
                                state.get("max_exp_avg_sq"), lr, beta1, beta2, eps, weight_decay,
                                step, amsgrad, maximize, decoupled, threads)
            state["step"] = step  # counted once the update went through


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam whose weight decay shrinks the parameters directly.

    Each step first multiplies every parameter that has a gradient by ``1 - lr * weight_decay``,
    then applies Adam's update without weight decay (see :class:`Adam` for the rule and state).

    Args:
        params, lr, betas, eps, amsgrad, maximize: as for :class:`Adam`.
        weight_decay (float): decoupled weight decay coefficient (default: 1e-2).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def _check_options(self, options):
        super()._check_options(options)
        # As in PyTorch, AdamW stays AdamW whatever a loaded state dict says.
        options["decoupled_weight_decay"] = True
