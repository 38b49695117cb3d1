"""The image kinds the transforms take, seen as one: planes ``(..., C, H, W)`` of an array.

* A NumPy array is an image as the datasets give it (and PIL's ``numpy.asarray`` does):
  ``(H, W)`` or ``(H, W, C)``, channels last; it stays one.
* A ``cnn.Tensor`` is an image (or a batch) ``(..., C, H, W)``, channels first (a 2-d Tensor is
  ``(H, W)``); it stays one.
* A PIL image, when Pillow is installed, is read as its array and comes out as an array.

Every transform works on the planes view and hands its result back in the input's kind.
"""
import numpy as np

from ..tensor import Tensor, from_numpy


def is_pil_image(img):
    """Whether `img` is a PIL image (without importing Pillow)."""
    return any(cls.__module__.startswith("PIL.") and cls.__name__ == "Image"
               for cls in type(img).__mro__)


class Planes:
    """`img` seen as an array of planes ``(..., C, H, W)``, and the way back to its kind.

    Args:
        img: An array ``(H, W)``/``(H, W, C)``, a Tensor ``(..., C, H, W)``/``(H, W)``, or a
            PIL image.
        name (str): The argument's name, for errors.

    Attributes:
        array (numpy.ndarray): The planes (a view where possible, never a copy of a Tensor's).
        kind (str): ``"array"`` or ``"tensor"``.

    Raises:
        TypeError: If `img` is none of those kinds.
        ValueError: If it has too few or too many dimensions.
    """

    __slots__ = ("array", "kind", "flat")

    def __init__(self, img, name="img"):
        if is_pil_image(img):
            img = np.asarray(img)
        if isinstance(img, Tensor):
            array = img._data
            if array.ndim < 2:
                raise ValueError(f"{name}: expected a Tensor image of shape (..., C, H, W) or "
                                 f"(H, W), got shape {array.shape}")
            self.kind, self.flat = "tensor", array.ndim == 2
            self.array = array[None] if self.flat else array
        elif isinstance(img, np.ndarray):
            if img.ndim not in (2, 3):
                raise ValueError(f"{name}: expected an array image of shape (H, W) or (H, W, C), "
                                 f"got shape {img.shape}")
            self.kind, self.flat = "array", img.ndim == 2
            self.array = img[None] if self.flat else img.transpose(2, 0, 1)
        else:
            raise TypeError(f"{name}: expected a NumPy array (H, W[, C]), a cnn.Tensor "
                            f"(..., C, H, W) or a PIL image, got {type(img).__name__}")

    @property
    def channels(self):
        return self.array.shape[-3]

    @property
    def size(self):
        """``(H, W)``."""
        return self.array.shape[-2:]

    def back(self, planes):
        """`planes` ``(..., C, H, W)`` as an image of the input's kind."""
        if self.kind == "tensor":
            return from_numpy(np.ascontiguousarray(planes[0] if self.flat else planes))
        if self.flat:
            return np.ascontiguousarray(planes[0])
        return np.ascontiguousarray(planes.transpose(1, 2, 0))


def max_value(dtype):
    """The largest value of an image of `dtype`: 1.0 for floats, the top of an integer type."""
    dtype = np.dtype(dtype)
    return 1.0 if dtype.kind == "f" else (True if dtype.kind == "b" else np.iinfo(dtype).max)


def to_dtype_of(values, dtype):
    """Float `values` stored as `dtype`: cut towards zero into an integer type (torch's
    ``.to(dtype)``, which the tensor transforms end with), or cast to a float type."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        return np.trunc(values).astype(dtype)
    return values.astype(dtype, copy=False)
