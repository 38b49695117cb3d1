"""``cnn.cuda``: CUDA is never available (``torch.cuda``'s queries, for code that asks).

cnn runs on the CPU. The queries answer as PyTorch's do on a machine without CUDA, and seeding
does nothing (as in PyTorch, where "it is safe to call this function if CUDA is not
available"); anything that would need a GPU raises an error that says cnn runs on the CPU.
"""
from .devices import unavailable

__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all",
           "is_bf16_supported", "current_device", "synchronize", "empty_cache", "set_device"]


def is_available():
    """Return False: cnn has no CUDA support."""
    return False


def device_count():
    """Return 0: no CUDA devices."""
    return 0


def is_bf16_supported(including_emulation=True):
    """Return False: no CUDA device, hence no bfloat16 on one."""
    return False


def manual_seed(seed):
    """Do nothing (there is no CUDA generator); ``cnn.manual_seed`` seeds cnn's generator."""


def manual_seed_all(seed):
    """Do nothing (there is no CUDA generator); ``cnn.manual_seed`` seeds cnn's generator."""


def empty_cache():
    """Do nothing: there is no CUDA memory to release."""


def _no_cuda(*args, **kwargs):
    raise unavailable("CUDA", "cnn.cuda")


def current_device():
    """Raise: there is no CUDA device."""
    _no_cuda()


def synchronize(device=None):
    """Raise: there is no CUDA device to wait for."""
    _no_cuda()


def set_device(device):
    """Raise: there is no CUDA device to select."""
    _no_cuda()
