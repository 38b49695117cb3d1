"""The transforms as functions, as ``torchvision.transforms.functional``.

Every function takes an image as the datasets give it (a NumPy array ``(H, W)`` or
``(H, W, C)``, channels last, usually uint8), a ``cnn.Tensor`` ``(..., C, H, W)`` (channels
first; a batch too), or a PIL image when Pillow is installed, and returns the same kind (a PIL
image comes back as an array). The formulas are torchvision's tensor ones, also for arrays;
integer images are computed in float32 and rounded or cut as torchvision's are.
"""
import enum
import numbers

import numpy as np

from .._validation import integer, real_number
from ..tensor import Tensor, from_numpy
from . import _color, _geometry, _resample
from ._image import Planes, is_pil_image, max_value

__all__ = ["InterpolationMode", "get_dimensions", "get_image_size", "get_image_num_channels",
           "to_tensor", "pil_to_tensor", "to_dtype", "convert_image_dtype", "normalize",
           "hflip", "vflip", "crop", "center_crop", "pad", "resize", "resized_crop", "rotate",
           "rgb_to_grayscale", "adjust_brightness", "adjust_contrast", "adjust_saturation",
           "adjust_hue", "erase"]


class InterpolationMode(enum.Enum):
    """Interpolation modes, as ``torchvision.transforms.InterpolationMode``.

    ``NEAREST``, ``NEAREST_EXACT`` and ``BILINEAR`` are supported; the others are named so that
    code using them gets an error saying so rather than an AttributeError.
    """

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def interpolation_mode(value, name="interpolation", allowed=("nearest", "nearest-exact",
                                                             "bilinear")):
    """`value` (an InterpolationMode or its string) as a supported mode's string."""
    if isinstance(value, InterpolationMode):
        value = value.value
    if not isinstance(value, str) or value not in {m.value for m in InterpolationMode}:
        raise TypeError(f"{name}: expected an InterpolationMode, got {value!r}")
    if value not in allowed:
        raise ValueError(f"{name}: {value} interpolation is not supported by cnn.transforms "
                         f"here; use one of {', '.join(allowed)}")
    return value


def size_pair(size, name, allow_single=False):
    """`size` (an int, or a sequence of one or two ints) as ``(h, w)``; with `allow_single`
    an int or one-element sequence is kept as ``(s,)`` (resize's smaller edge)."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size,)
    if not isinstance(size, (tuple, list)) or len(size) not in (1, 2):
        raise ValueError(f"{name}: expected an int or a sequence of one or two ints, got "
                         f"{size!r}")
    values = tuple(integer(value, name, minimum=1) for value in size)
    if len(values) == 1 and not allow_single:
        return values * 2
    return values


def padding_widths(padding, name="padding"):
    """torchvision's padding (an int, or a sequence of 1, 2 or 4 ints) as (left, top, right,
    bottom)."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        padding = [padding]
    if not isinstance(padding, (tuple, list)):
        raise TypeError(f"{name}: expected an int or a sequence of ints, got "
                        f"{type(padding).__name__}")
    if len(padding) not in (1, 2, 4):
        raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not a "
                         f"{len(padding)} element tuple")
    values = [integer(value, name) for value in padding]
    if len(values) == 1:
        return values * 4
    if len(values) == 2:
        return [values[0], values[1], values[0], values[1]]
    return values


def fill_values(fill, name="fill"):
    """A fill: a number, a sequence of numbers (one per channel), or None (zeros)."""
    if fill is None:
        return 0
    if isinstance(fill, (tuple, list)):
        return [real_number(value, name) for value in fill]
    return real_number(fill, name)


def check_padding_mode(mode):
    """`mode` checked to be one of torchvision's padding modes."""
    if mode not in _geometry.PADDING_MODES:
        raise ValueError(f"padding_mode: expected constant, edge, reflect or symmetric, got "
                         f"{mode!r}")
    return mode


# ***** what an image is *****

def get_dimensions(img):
    """``[channels, height, width]`` of `img`."""
    planes = Planes(img)
    return [planes.channels, *planes.size]


def get_image_size(img):
    """``[width, height]`` of `img`."""
    _, height, width = get_dimensions(img)
    return [width, height]


def get_image_num_channels(img):
    """The number of channels of `img`."""
    return get_dimensions(img)[0]


# ***** conversions *****

def to_tensor(pic):
    """An array ``(H, W[, C])`` or PIL image as a Tensor ``(C, H, W)``; uint8 values are
    scaled to float32 in [0, 1], other dtypes are kept (torchvision's ``to_tensor``).

    Raises:
        TypeError: If `pic` is a Tensor or not an image.
    """
    if isinstance(pic, Tensor) or not (isinstance(pic, np.ndarray) or is_pil_image(pic)):
        raise TypeError(f"pic should be PIL Image or ndarray. Got {type(pic).__name__}")
    planes = Planes(pic, "pic").array
    if planes.dtype == np.uint8:
        # A true division gives the same float32 values as torchvision.
        return from_numpy(np.divide(planes, np.float32(255), dtype=np.float32))
    return from_numpy(np.ascontiguousarray(planes))


def pil_to_tensor(pic):
    """A PIL image (or an array ``(H, W[, C])``, the datasets' form of one) as a Tensor
    ``(C, H, W)`` of the same dtype, values unchanged."""
    if isinstance(pic, Tensor) or not (isinstance(pic, np.ndarray) or is_pil_image(pic)):
        raise TypeError(f"pic should be PIL Image or ndarray. Got {type(pic).__name__}")
    return from_numpy(np.ascontiguousarray(Planes(pic, "pic").array))


def convert_image_dtype(image, dtype=np.float32):
    """A Tensor image converted to `dtype` with its values rescaled (torchvision's
    ``convert_image_dtype``: integers to [0, 1] floats and back, between integer types by
    powers of two)."""
    if not isinstance(image, Tensor):
        raise TypeError(f"image: expected a Tensor, got {type(image).__name__}")
    return from_numpy(scale_dtype(image._data, _dtype(dtype)))


def to_dtype(inpt, dtype=np.float32, scale=False):
    """`inpt` (an image array or Tensor) as `dtype`; with `scale`, its values rescaled to the
    new dtype's range as :func:`convert_image_dtype` (torchvision.transforms.v2's
    ``to_dtype``)."""
    dtype = _dtype(dtype)
    planes = Planes(inpt, "inpt")
    array = planes.array
    converted = scale_dtype(array, dtype) if scale else array.astype(dtype)
    return planes.back(converted)


def _dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a dtype (cnn.float32, numpy.uint8, ...), got "
                        f"{dtype!r}") from None
    if dtype.kind not in "biuf":
        raise TypeError(f"dtype: expected a numeric dtype, got {dtype}")
    return dtype


def scale_dtype(array, dtype):
    """`array` as `dtype` with its values moved to the new type's range (see
    :func:`convert_image_dtype`)."""
    if array.dtype == dtype:
        return array
    if array.dtype.kind == "f":
        if dtype.kind == "f":
            return array.astype(dtype)
        if (array.dtype == np.float32 and dtype in (np.int32, np.int64)) or (
                array.dtype == np.float64 and dtype == np.int64):
            raise RuntimeError(f"The cast from {array.dtype} to {dtype} cannot be performed "
                               "safely.")
        return np.trunc(array * (float(max_value(dtype)) + 1.0 - 1e-3)).astype(dtype)
    input_max = float(max_value(array.dtype))
    if dtype.kind == "f":
        return (array.astype(dtype) / dtype.type(input_max)).astype(dtype)
    output_max = float(max_value(dtype))
    if input_max > output_max:
        return (array // int((input_max + 1) // (output_max + 1))).astype(dtype)
    return array.astype(dtype) * dtype.type(int((output_max + 1) // (input_max + 1)))


def normalize(tensor, mean, std, inplace=False):
    """``(tensor - mean) / std`` per channel of a float Tensor ``(..., C, H, W)``.

    Raises:
        TypeError: If `tensor` is not a float Tensor.
        ValueError: If a `std` is zero, or `mean`/`std` do not match the channels.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(tensor).__name__}")
    if tensor._data.dtype.kind != "f":
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor._data.dtype}.")
    if tensor._data.ndim < 3:
        raise ValueError("Expected tensor to be a tensor image of size (..., C, H, W). Got "
                         f"tensor.size() = {tensor._data.shape}")
    mean, std = normalize_statistics(mean, std, tensor._data.shape[-3], tensor._data.dtype)
    return normalize_array(tensor, mean, std, inplace)


def normalize_statistics(mean, std, channels, dtype):
    """`mean` and `std` as arrays ``(C, 1, 1)`` of `dtype`, checked."""
    mean = np.asarray(mean, dtype=dtype).reshape(-1, 1, 1)
    std = np.asarray(std, dtype=dtype).reshape(-1, 1, 1)
    if np.any(std == 0):
        raise ValueError(f"std evaluated to zero after conversion to {dtype}, leading to "
                         "division by zero.")
    for name, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise ValueError(f"{name}: expected 1 or {channels} values (one per channel), got "
                             f"{len(values)}")
    return mean, std


def normalize_array(tensor, mean, std, inplace):
    """``(tensor - mean) / std`` with checked statistics, in place or into a new Tensor."""
    out = tensor._data if inplace else np.empty_like(tensor._data)
    np.subtract(tensor._data, mean, out=out)
    np.divide(out, std, out=out)
    return tensor if inplace else from_numpy(out)


# ***** geometry *****

def hflip(img):
    """`img` mirrored left to right."""
    planes = Planes(img)
    return planes.back(planes.array[..., ::-1])


def vflip(img):
    """`img` mirrored top to bottom."""
    planes = Planes(img)
    return planes.back(planes.array[..., ::-1, :])


def crop(img, top, left, height, width):
    """The box of `img` at ``(top, left)`` of ``(height, width)``; zeros where it leaves the
    image."""
    planes = Planes(img)
    box = [integer(top, "top"), integer(left, "left"), integer(height, "height", minimum=0),
           integer(width, "width", minimum=0)]
    return planes.back(_geometry.crop_planes(planes.array, *box))


def center_crop(img, output_size):
    """The centred box of `output_size` (an int or ``(h, w)``), zero-padded where larger."""
    planes = Planes(img)
    height, width = size_pair(output_size, "output_size")
    return planes.back(_geometry.center_crop_planes(planes.array, height, width))


def pad(img, padding, fill=0, padding_mode="constant"):
    """`img` padded by `padding` (an int, ``(left/right, top/bottom)`` or ``(left, top,
    right, bottom)``) with `fill` (constant mode) or by ``edge``, ``reflect`` or
    ``symmetric`` copies."""
    planes = Planes(img)
    widths = padding_widths(padding)
    mode = check_padding_mode(padding_mode)
    return planes.back(_geometry.pad_planes(planes.array, *widths, fill=fill_values(fill),
                                            mode=mode))


def resized_size(image_size, size, max_size=None):
    """torchvision's output size ``(h, w)`` of resizing an image of `image_size` to `size`
    (``(h, w)``, or ``(s,)`` for the smaller edge, the other keeping the aspect ratio)."""
    height, width = image_size
    if len(size) == 2:
        return size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size[0], int(size[0] * long / short)
    if max_size is not None:
        if max_size <= size[0]:
            raise ValueError(f"max_size = {max_size} must be strictly greater than the "
                             f"requested size for the smaller edge size = {size}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """`img` resized to `size`: ``(h, w)``, or an int for the smaller edge (the other keeps the
    aspect ratio, at most `max_size`), by bilinear (antialiased when shrinking, unless
    `antialias` is False) or nearest interpolation."""
    planes = Planes(img)
    size = size_pair(size, "size", allow_single=True)
    mode = interpolation_mode(interpolation)
    if max_size is not None:
        max_size = integer(max_size, "max_size", minimum=1)
        if len(size) != 1:
            raise ValueError("max_size should only be passed if size specifies the length of "
                             "the smaller edge")
    output = resized_size(planes.size, size, max_size)
    if tuple(output) == tuple(planes.size):
        return img
    return planes.back(_resample.resize_planes(planes.array, output, mode,
                                               bool(antialias) and mode == "bilinear"))


def resized_crop(img, top, left, height, width, size, interpolation=InterpolationMode.BILINEAR,
                 antialias=True):
    """:func:`crop` then :func:`resize` to `size`."""
    return resize(crop(img, top, left, height, width), size, interpolation,
                  antialias=antialias)


def rotate(img, angle, interpolation=InterpolationMode.NEAREST, expand=False, center=None,
           fill=None):
    """`img` rotated by `angle` degrees counter-clockwise about `center` (``(x, y)`` in pixels,
    the image centre by default); `expand` grows the output to hold the whole rotated image;
    pixels from outside take `fill` (zeros when None)."""
    planes = Planes(img)
    angle = real_number(angle, "angle")
    mode = interpolation_mode(interpolation, allowed=("nearest", "bilinear"))
    fill = None if fill is None else fill_values(fill)
    return planes.back(rotate_array(planes.array, angle, mode, bool(expand), center, fill))


def rotate_array(planes, angle, mode, expand, center, fill):
    height, width = planes.shape[-2:]
    offset = (0.0, 0.0)
    if center is not None:
        if not isinstance(center, (tuple, list)) or len(center) != 2:
            raise ValueError(f"center: expected a pair (x, y), got {center!r}")
        offset = (float(center[0]) - width * 0.5, float(center[1]) - height * 0.5)
    matrix = _resample.inverse_rotation(angle, offset)
    out_size = _resample.expanded_size(matrix, width, height) if expand else (width, height)
    if fill is not None:
        fill = np.broadcast_to(np.asarray(fill, np.float64).reshape(-1),
                               (planes.shape[-3],)).tolist()
    return _resample.rotate_planes(planes, matrix, out_size, mode, fill)


# ***** colour *****

def rgb_to_grayscale(img, num_output_channels=1):
    """The grey image of `img` (ITU-R 601-2 luma), with 1 or 3 channels."""
    planes = Planes(img)
    if num_output_channels not in (1, 3):
        raise ValueError("num_output_channels should be either 1 or 3")
    _check_channels(planes)
    grey = _color.grayscale(planes.array)
    if num_output_channels == 3:
        grey = np.broadcast_to(grey, grey.shape[:-3] + (3,) + grey.shape[-2:])
    return planes.back(grey)


def _check_channels(planes):
    if planes.channels not in (1, 3):
        raise TypeError(f"Input image tensor permitted channel values are [1, 3], but found "
                        f"{planes.channels}")


def _adjust(adjustment, name, lowest, highest=None):
    def adjust(img, factor):
        planes = Planes(img)
        factor = real_number(factor, name)
        if factor < lowest or (highest is not None and factor > highest):
            bounds = f"in [{lowest}, {highest}]" if highest is not None else "non-negative"
            raise ValueError(f"{name} ({factor}) is not {bounds}.")
        _check_channels(planes)
        return planes.back(adjustment(planes.array, factor))
    adjust.__name__ = adjustment.__name__
    return adjust


adjust_brightness = _adjust(_color.adjust_brightness, "brightness_factor", 0)
adjust_brightness.__doc__ = """`img` times `brightness_factor` (0 gives black, 1 the image)."""
adjust_contrast = _adjust(_color.adjust_contrast, "contrast_factor", 0)
adjust_contrast.__doc__ = """`img` blended with its mean grey (0 gives grey, 1 the image)."""
adjust_saturation = _adjust(_color.adjust_saturation, "saturation_factor", 0)
adjust_saturation.__doc__ = """`img` blended with its grey image (0 gives grey, 1 the image)."""
adjust_hue = _adjust(_color.adjust_hue, "hue_factor", -0.5, 0.5)
adjust_hue.__doc__ = """`img` with its hue shifted by `hue_factor` turns, in [-0.5, 0.5]."""


def erase(img, i, j, h, w, v, inplace=False):
    """`img` (a Tensor ``(..., C, H, W)``) with the box at ``(i, j)`` of ``(h, w)`` set to `v`
    (a value, or values broadcasting to ``(C, h, w)``)."""
    if not isinstance(img, Tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(img).__name__}")
    box = [integer(i, "i"), integer(j, "j"), integer(h, "h", minimum=0),
           integer(w, "w", minimum=0)]
    return erase_array(img, *box, np.asarray(v), bool(inplace))


def erase_array(img, i, j, h, w, v, inplace):
    target = img._data if inplace else img._data.copy()
    target[..., i:i + h, j:j + w] = _stored_values(v, target.dtype)
    return img if inplace else from_numpy(target)


def _stored_values(values, dtype):
    # Float values into an integer image are cut towards zero, as torch's assignment does.
    if np.dtype(dtype).kind in "iub" and values.dtype.kind == "f":
        return np.trunc(values)
    return values
