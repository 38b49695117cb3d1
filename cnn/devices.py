"""Devices: ``cnn.device("cpu")``, the only place cnn computes.

PyTorch code names devices (``torch.device("cuda" if torch.cuda.is_available() else "cpu")``,
``x.to(device)``, ``model.to(device)``); with ``cnn.cuda.is_available()`` False such code picks
the CPU and runs unchanged. Asking for any other device raises an error that says cnn runs on
the CPU, rather than silently computing somewhere else than asked.
"""
__all__ = ["device", "DeviceUnavailableError"]


class DeviceUnavailableError(RuntimeError, ValueError):
    """A device other than the CPU was asked for. A RuntimeError, as PyTorch raises where it
    lacks a device, and a ValueError, as cnn raises for an argument it cannot take."""


def unavailable(kind, what="device"):
    """The error for asking for device `kind` (``"CUDA"``, ...); `what` names the argument or
    call."""
    return DeviceUnavailableError(
        f"{what}: cnn runs on the CPU only (NumPy arrays and its own CPU kernels); it has no "
        f"{kind} support. Use device 'cpu' (torch.cuda.is_available() is False here, so code "
        "that checks it picks the CPU).")


# The device types PyTorch names; every one but the CPU is refused (unavailable()).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "xla", "meta", "hip", "vulkan", "mtia", "ipu",
                "hpu", "privateuseone")


class device:
    """A device, as ``torch.device``: ``device("cpu")``, ``device("cpu", 0)`` or
    ``device("cpu:0")``.

    Args:
        type (str or device): ``"cpu"`` (optionally ``"cpu:0"``), or a device.
        index (int, optional): 0 or None.

    Attributes:
        type (str): ``"cpu"``.
        index (int or None): The index given, if any.

    Raises:
        DeviceUnavailableError: For ``"cuda"``, ``"mps"`` and any other device kind: cnn runs
            on the CPU (a RuntimeError, and a ValueError).
        ValueError: For a malformed string or an index other than 0.
    """

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu' or a cnn.device, got "
                            f"{type.__class__.__name__} {type!r}")
        kind, _, number = type.partition(":")
        if number:
            if index is not None:
                raise ValueError(f"device: the index is given twice, in {type!r} and as "
                                 f"{index!r}")
            if not number.isdigit():
                raise ValueError(f"device: invalid device string {type!r}")
            index = int(number)
        if kind != "cpu":
            if kind not in DEVICE_TYPES:
                raise ValueError(f"device: expected a device type such as 'cpu', got {type!r}")
            raise unavailable(kind.upper(), f"device {type!r}")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)
                                  or index not in (0, -1)):
            raise ValueError(f"device: the CPU has the one index 0, got {index!r}")
        self.type = "cpu"
        self.index = None if index in (None, -1) else 0

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass


_CPU = device("cpu")


def as_device(value, name="device"):
    """`value` (None, a string, an int index or a device) as the CPU device, or the error
    :class:`device` raises for anything else."""
    if value is None or value is _CPU:
        return _CPU
    if isinstance(value, int) and not isinstance(value, bool):
        raise unavailable("CUDA", f"{name} {value!r}")  # an int names a CUDA device
    if not isinstance(value, (str, device)):
        raise TypeError(f"{name}: expected a device such as 'cpu', got "
                        f"{type(value).__name__} {value!r}")
    return device(value)


def cpu_device():
    """The CPU device (the one every tensor lives on)."""
    return _CPU
