"""``cnn.accelerator``: there is none (``torch.accelerator``'s queries, for code that asks)."""
__all__ = ["is_available", "current_accelerator", "device_count"]


def is_available():
    """Return False: cnn computes on the CPU only."""
    return False


def current_accelerator(check_available=False):
    """Return None: no accelerator."""
    return None


def device_count():
    """Return 0: no accelerator devices."""
    return 0
