"""``cnn.backends.mps``: Apple's Metal backend is not available."""
__all__ = ["is_available", "is_built"]


def is_available():
    """Return False: cnn computes on the CPU only."""
    return False


def is_built():
    """Return False: cnn has no Metal backend."""
    return False
