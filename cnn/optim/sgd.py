"""Stochastic gradient descent, optionally with momentum (PyTorch's update rule)."""
import numpy as np

from . import updates
from ..threads import kernel_threads
from .._validation import real_number
from .optimizer import Optimizer, _check_flags, _check_number, _params_with_grad


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum, as ``torch.optim.SGD``.

    With learning rate ``lr``, momentum ``mu``, dampening ``tau`` and weight decay ``lambda``, each
    step updates every parameter ``theta`` that has a gradient ``g``::

        if maximize:    g = -g
        if lambda != 0: g = g + lambda * theta
        if mu != 0:
            b = g                          at the parameter's first step
            b = mu * b + (1 - tau) * g     afterwards
            g = g + mu * b  if nesterov  else  b
        theta = theta - lr * g

    As in PyTorch (and unlike Sutskever et al.), ``lr`` scales the whole velocity rather than each
    gradient, and the buffer starts as a copy of the first gradient, so dampening applies from the
    second step on.

    Args:
        params: an iterable of Parameters or of dicts defining parameter groups, or a Module.
        lr (float): learning rate (default: 1e-3).
        momentum (float): momentum factor (default: 0).
        dampening (float): dampening of momentum (default: 0).
        weight_decay (float): weight decay, an L2 penalty (default: 0).
        nesterov (bool): use Nesterov momentum; needs momentum > 0 and zero dampening (default: False).
        maximize (bool): maximize the objective instead of minimizing it (default: False).

    State:
        ``"momentum_buffer"`` per parameter, when momentum is non-zero.

    Example::

        >>> optimizer = cnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> optimizer.zero_grad()
        >>> loss_fn(model(input), target).backward()
        >>> optimizer.step()
    """

    _array_state = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        _check_number(options["lr"], "lr", "learning rate")
        _check_number(options["momentum"], "momentum", "momentum value")
        _check_number(options["weight_decay"], "weight_decay", "weight_decay value")
        real_number(options["dampening"], "dampening")
        _check_flags(options, ("nesterov", "maximize"))
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update_group(self, group):
        # One kernel call per parameter (cnn/_ext/optim.pyx), in the parameter's dtype.
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        dampening = float(group["dampening"])
        weight_decay = float(group["weight_decay"])
        nesterov = group["nesterov"]
        maximize = group["maximize"]
        threads = kernel_threads()
        for p, param, grad in _params_with_grad(group):
            buf = self.state.get(p, {}).get("momentum_buffer") if momentum != 0 else None
            first = buf is None
            if momentum != 0 and first:
                buf = np.empty_like(param, order="C")  # the kernel fills it on this first step
            updates.sgd_update(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov,
                               maximize, first, threads)
            if momentum != 0 and first:
                # Kept only once filled: an update that raised leaves no half-made state.
                self.state.setdefault(p, {})["momentum_buffer"] = buf
