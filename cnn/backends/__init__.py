"""``cnn.backends``: what PyTorch code asks of ``torch.backends`` (nothing but the CPU here).

``cnn.backends.mps.is_available()`` and ``cnn.backends.cudnn.is_available()`` are False; the
cuDNN switches scripts set (``cudnn.benchmark = True``, ``cudnn.deterministic = True``) are
plain attributes with nothing to switch: cnn's kernels are deterministic anyway.
"""
from . import cudnn, mps

__all__ = ["cudnn", "mps"]
