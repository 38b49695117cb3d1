"""``cnn.backends.cudnn``: cuDNN is not available; its switches are kept as plain attributes.

Scripts set ``cudnn.benchmark`` and ``cudnn.deterministic`` before training; with no GPU they
change nothing (cnn's kernels are deterministic: the same inputs give the same bits).
"""
__all__ = ["is_available", "version", "enabled", "benchmark", "deterministic"]

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available():
    """Return False: cnn computes on the CPU only."""
    return False


def version():
    """Return None: no cuDNN."""
    return None
