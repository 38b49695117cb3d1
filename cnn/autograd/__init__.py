"""Automatic differentiation: Functions, grad mode and the gradient checker."""
from .function import Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck

__all__ = ["Function", "GradcheckError", "enable_grad", "gradcheck", "is_grad_enabled", "no_grad"]
