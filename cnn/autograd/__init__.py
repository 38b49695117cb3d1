"""Automatic differentiation (``torch.autograd``): Functions, grad mode, the backward engine
and the gradient checker."""
from . import engine, function, grad_mode, inplace, ops
from .engine import backward, grad
from .function import Function
from .gradcheck import GradcheckError, gradcheck
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                        no_grad, set_grad_enabled)

__all__ = ["Function", "GradcheckError", "backward", "enable_grad", "grad", "gradcheck",
           "inference_mode", "is_grad_enabled", "is_inference_mode_enabled", "no_grad",
           "set_grad_enabled"]
