"""Adagrad (PyTorch's single-tensor update rule), in NumPy."""
import numpy as np

from ._rules import followed_gradient
from .optimizer import Optimizer, _check_flags, _check_nonnegative, _params_with_grad


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``.

    With learning rate ``lr``, decay ``lr_decay``, ``eps`` and weight decay ``lambda``, step ``t``
    (counted per parameter, from 1) updates every parameter ``theta`` that has a gradient ``g``::

        if maximize:    g = -g
        if lambda != 0: g = g + lambda * theta
        s = s + g * g
        theta = theta - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    ``s`` (``sum``) starts at ``initial_accumulator_value`` (the constructor's argument, not a
    group's); as in PyTorch, every parameter's state is made when the optimizer is.

    Args:
        params: an iterable of Parameters or of dicts defining parameter groups, or a Module.
        lr (float): learning rate (default: 1e-2).
        lr_decay (float): learning rate decay (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        initial_accumulator_value (float): the start of every sum (default: 0).
        eps (float): added to the denominator (default: 1e-10).
        foreach: accepted for PyTorch's signature.
        maximize (bool): maximize the objective (default: False).

    State:
        ``"step"`` and ``"sum"`` per parameter.
    """

    _array_state = ("sum",)
    _number_state = ("step",)

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      maximize=maximize))
        # As PyTorch, the constructor's value starts every sum, whatever a group says.
        for group in self.param_groups:
            for p in group["params"]:
                self._initial_state(p, initial_accumulator_value)

    def _check_options(self, options):
        _check_nonnegative(options, ("lr", "lr_decay", "weight_decay",
                                     "initial_accumulator_value", "eps"))
        _check_flags(options, ("maximize",))

    def _required_state(self, group):
        return ("step", "sum")

    def _initial_state(self, p, initial_value):
        state = self.state[p]
        if not state:
            state.update(step=0.0, sum=np.full(p.shape, initial_value, p.dtype))
        return state

    def _update_group(self, group):
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        for p, param, grad in _params_with_grad(group):
            # A group added later starts from its own initial_accumulator_value.
            state = self._initial_state(p, group["initial_accumulator_value"])
            kind = param.dtype.type
            state["step"] += 1
            grad = followed_gradient(grad, param, group["weight_decay"], group["maximize"])
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            total = state["sum"]
            total += grad * grad
            param += kind(-clr) * grad / (np.sqrt(total) + kind(eps))
