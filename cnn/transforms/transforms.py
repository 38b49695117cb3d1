"""The transforms as objects, as ``torchvision.transforms``: built once with their arguments
(checked there), called on every image.

Random transforms draw from ``cnn``'s default generator, which ``cnn.manual_seed`` seeds and
which every DataLoader worker seeds with its own seed, so an augmented run is reproducible.
Deterministic transforms that map a whole batch at once have ``batch_transform(images)``,
taking the stack of the images a dataset gives (``(N, H, W[, C])`` arrays, or Tensors
``(N, C, H, W)``); datasets use it to transform a batch in one call.
"""
import math
import numbers

import numpy as np

from .. import random as _random
from .._validation import flag, real_number
from ..tensor import Tensor, from_numpy
from . import functional as F
from . import _color, _geometry, _resample
from ._image import Planes

__all__ = ["Compose", "ToTensor", "PILToTensor", "ToDtype", "Normalize", "Lambda",
           "RandomCrop", "RandomHorizontalFlip", "RandomVerticalFlip", "CenterCrop", "Resize",
           "Pad", "RandomResizedCrop", "RandomRotation", "ColorJitter", "RandomErasing"]


def _generator():
    return _random.default_generator()


def _probability(p, name="p"):
    p = real_number(p, name)
    if not 0 <= p <= 1:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {p}")
    return p


def _range(value, name):
    """A ``(min, max)`` pair of numbers, min <= max."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: expected a sequence (min, max), got {value!r}")
    low, high = (real_number(v, name) for v in value)
    if low > high:
        raise ValueError(f"{name}: expected (min, max) with min <= max, got {value!r}")
    return (low, high)


class Transform:
    """What every transform shares: calling it is ``forward(img)``, and its repr lists its
    arguments."""

    def __call__(self, img):
        return self.forward(img)

    def forward(self, img):
        raise NotImplementedError

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


class Compose(Transform):
    """Apply `transforms` one after the other.

    Args:
        transforms (list): The transforms (callables).

    Example::

        transforms.Compose([transforms.RandomCrop(32, padding=4),
                            transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                            transforms.Normalize((0.4914, 0.4822, 0.4465),
                                                 (0.2470, 0.2435, 0.2616))])
    """

    def __init__(self, transforms):
        transforms = list(transforms)
        for position, transform in enumerate(transforms):
            if not callable(transform):
                raise TypeError(f"transforms: item {position} is not callable "
                                f"({type(transform).__name__})")
        self.transforms = transforms

    def forward(self, img):
        for transform in self.transforms:
            img = transform(img)
        return img

    def __getattr__(self, name):
        # batch_transform exists only when every member has one.
        if name == "batch_transform" and all(hasattr(t, "batch_transform")
                                             for t in self.__dict__.get("transforms", [None])):
            return self._batch_transform
        raise AttributeError(f"'Compose' object has no attribute '{name}'")

    def _batch_transform(self, images):
        for transform in self.transforms:
            images = transform.batch_transform(images)
        return images

    def __repr__(self):
        lines = "".join(f"\n    {transform}" for transform in self.transforms)
        return f"Compose({lines}\n)"


class ToTensor(Transform):
    """An array ``(H, W[, C])`` or PIL image as a Tensor ``(C, H, W)``, uint8 scaled to float32
    in [0, 1] (:func:`~cnn.transforms.functional.to_tensor`)."""

    def forward(self, pic):
        return F.to_tensor(pic)

    def batch_transform(self, images):
        """Arrays ``(N, H, W[, C])`` -> a Tensor ``(N, C, H, W)``."""
        planes = _batch_planes(images)
        if planes.dtype == np.uint8:
            return from_numpy(np.divide(planes, np.float32(255), dtype=np.float32))
        return from_numpy(np.ascontiguousarray(planes))


def _batch_planes(images):
    images = np.asarray(images)
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        return images.transpose(0, 3, 1, 2)
    raise ValueError(f"images: expected a stack of images (N, H, W[, C]), got shape "
                     f"{images.shape}")


class PILToTensor(Transform):
    """A PIL image (or an array ``(H, W[, C])``) as a Tensor ``(C, H, W)`` of the same dtype
    (:func:`~cnn.transforms.functional.pil_to_tensor`)."""

    def forward(self, pic):
        return F.pil_to_tensor(pic)

    def batch_transform(self, images):
        """Arrays ``(N, H, W[, C])`` -> a Tensor ``(N, C, H, W)``, values unchanged."""
        return from_numpy(np.ascontiguousarray(_batch_planes(images)))


class ToDtype(Transform):
    """Convert an image's dtype; with `scale`, rescale its values to the new range
    (``torchvision.transforms.v2.ToDtype``; ``ToDtype(cnn.float32, scale=True)`` after
    :class:`PILToTensor` is :class:`ToTensor`).

    Args:
        dtype: The dtype (``cnn.float32``, ``numpy.uint8``, ...).
        scale (bool): Rescale as :func:`~cnn.transforms.functional.convert_image_dtype`.
    """

    def __init__(self, dtype, scale=False):
        self.dtype = F._dtype(dtype)
        self.scale = flag(scale, "scale")

    def forward(self, inpt):
        return self.batch_transform(inpt)

    def batch_transform(self, images):
        """Any stack of images: the conversion is value by value."""
        is_tensor = isinstance(images, Tensor)
        array = images._data if is_tensor else np.asarray(images)
        converted = (F.scale_dtype(array, self.dtype) if self.scale
                     else array.astype(self.dtype))
        return from_numpy(converted) if is_tensor else converted

    def extra_repr(self):
        return f"dtype={self.dtype}, scale={self.scale}"


class Normalize(Transform):
    """``(tensor - mean) / std`` per channel of a float Tensor ``(..., C, H, W)``.

    Args:
        mean, std (sequence): One value per channel (or one for all).
        inplace (bool): Write into the input Tensor.
    """

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std = mean, std
        self.inplace = flag(inplace, "inplace")
        sizes = (np.size(mean), np.size(std))
        F.normalize_statistics(mean, std, max(sizes), np.float64)
        self._statistics = {}  # (dtype, channels) -> (mean, std) arrays, made once

    def forward(self, tensor):
        if not isinstance(tensor, Tensor) or tensor._data.dtype.kind != "f" \
                or tensor._data.ndim < 3:
            return F.normalize(tensor, self.mean, self.std, self.inplace)  # its errors
        key = (tensor._data.dtype, tensor._data.shape[-3])
        if key not in self._statistics:
            self._statistics[key] = F.normalize_statistics(self.mean, self.std, key[1], key[0])
        return F.normalize_array(tensor, *self._statistics[key], self.inplace)

    def batch_transform(self, images):
        """A Tensor ``(N, C, H, W)``: the same for every image."""
        return self.forward(images)

    def extra_repr(self):
        return f"mean={self.mean}, std={self.std}"


class Lambda(Transform):
    """Apply a user function `lambd` as a transform."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {repr(type(lambd).__name__)}")
        self.lambd = lambd

    def forward(self, img):
        return self.lambd(img)


class RandomHorizontalFlip(Transform):
    """Mirror the image left to right with probability `p`."""

    def __init__(self, p=0.5):
        self.p = _probability(p)

    def forward(self, img):
        if _generator().random() < self.p:
            return F.hflip(img)
        return img

    def extra_repr(self):
        return f"p={self.p}"


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror the image top to bottom with probability `p`."""

    def forward(self, img):
        if _generator().random() < self.p:
            return F.vflip(img)
        return img


class Pad(Transform):
    """Pad the image (:func:`~cnn.transforms.functional.pad`).

    Args:
        padding: An int (all sides), ``(left/right, top/bottom)`` or ``(left, top, right,
            bottom)``.
        fill: The constant mode's value: a number or one per channel.
        padding_mode (str): ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"``.
    """

    def __init__(self, padding, fill=0, padding_mode="constant"):
        self.padding = padding
        self.widths = F.padding_widths(padding)
        self.fill = F.fill_values(fill)
        self.padding_mode = F.check_padding_mode(padding_mode)

    def forward(self, img):
        planes = Planes(img)
        return planes.back(_geometry.pad_planes(planes.array, *self.widths, fill=self.fill,
                                                mode=self.padding_mode))

    def extra_repr(self):
        return f"padding={self.padding}, fill={self.fill}, padding_mode={self.padding_mode}"


class CenterCrop(Transform):
    """The centred box of `size` (an int or ``(h, w)``), zero-padded where larger."""

    def __init__(self, size):
        self.size = F.size_pair(size, "size")

    def forward(self, img):
        planes = Planes(img)
        return planes.back(_geometry.center_crop_planes(planes.array, *self.size))

    def extra_repr(self):
        return f"size={self.size}"


class RandomCrop(Transform):
    """A box of `size` at a random place, after optional padding, as torchvision's.

    Args:
        size: An int or ``(h, w)``.
        padding (optional): Padding applied first (as :class:`Pad`).
        pad_if_needed (bool): Pad an image smaller than `size` up to it.
        fill, padding_mode: As :class:`Pad`.

    Raises (when called):
        ValueError: If the (padded) image is smaller than `size`.
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0,
                 padding_mode="constant"):
        self.size = F.size_pair(size, "size")
        self.padding = padding
        self.widths = None if padding is None else F.padding_widths(padding)
        self.pad_if_needed = flag(pad_if_needed, "pad_if_needed")
        self.fill = F.fill_values(fill)
        self.padding_mode = F.check_padding_mode(padding_mode)

    @staticmethod
    def get_params(img, output_size):
        """``(i, j, h, w)`` of a random crop of `output_size` from `img`."""
        _, height, width = F.get_dimensions(img)
        return _crop_position(height, width, *output_size)

    def forward(self, img):
        planes = Planes(img)
        array = planes.array
        if self.widths is not None:
            array = self._pad(array, *self.widths)
        height, width = array.shape[-2:]
        if self.pad_if_needed and width < self.size[1]:
            array = self._pad(array, self.size[1] - width, 0, self.size[1] - width, 0)
        if self.pad_if_needed and array.shape[-2] < self.size[0]:
            rows = self.size[0] - array.shape[-2]
            array = self._pad(array, 0, rows, 0, rows)
        i, j, h, w = _crop_position(*array.shape[-2:], *self.size)
        return planes.back(array[..., i:i + h, j:j + w])

    def _pad(self, array, left, top, right, bottom):
        return _geometry.pad_planes(array, left, top, right, bottom, fill=self.fill,
                                    mode=self.padding_mode)

    def extra_repr(self):
        return f"size={self.size}, padding={self.padding}"


def _crop_position(height, width, crop_h, crop_w):
    if height < crop_h or width < crop_w:
        raise ValueError(f"Required crop size {(crop_h, crop_w)} is larger than input image "
                         f"size {(height, width)}")
    if (height, width) == (crop_h, crop_w):
        return 0, 0, height, width
    generator = _generator()
    return (int(generator.integers(0, height - crop_h + 1)),
            int(generator.integers(0, width - crop_w + 1)), crop_h, crop_w)


class Resize(Transform):
    """Resize the image (:func:`~cnn.transforms.functional.resize`).

    Args:
        size: ``(h, w)``, or an int: the smaller edge, the other keeping the aspect ratio.
        interpolation (InterpolationMode): ``BILINEAR``, ``NEAREST`` or ``NEAREST_EXACT``.
        max_size (int, optional): The largest longer edge, with an int `size`.
        antialias (bool): Antialias bilinear shrinking (torchvision's default, True).
    """

    def __init__(self, size, interpolation=F.InterpolationMode.BILINEAR, max_size=None,
                 antialias=True):
        self.size = F.size_pair(size, "size", allow_single=True)
        self.interpolation = F.InterpolationMode(F.interpolation_mode(interpolation))
        if max_size is not None and len(self.size) != 1:
            raise ValueError("max_size should only be passed if size specifies the length of "
                             "the smaller edge")
        self.max_size = max_size
        self.antialias = antialias

    def forward(self, img):
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)

    def extra_repr(self):
        return (f"size={self.size}, interpolation={self.interpolation.value}, "
                f"max_size={self.max_size}, antialias={self.antialias}")


class RandomResizedCrop(Transform):
    """A random box (of a random share `scale` of the area and aspect `ratio`), resized to
    `size`, as torchvision's (10 tries, then a central crop).

    Args:
        size: An int or ``(h, w)``.
        scale (tuple): The range of the box's share of the image's area.
        ratio (tuple): The range of its aspect ratio (width / height), drawn log-uniformly.
        interpolation, antialias: As :class:`Resize`.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=F.InterpolationMode.BILINEAR, antialias=True):
        self.size = F.size_pair(size, "size")
        self.scale = _range(scale, "scale")
        self.ratio = _range(ratio, "ratio")
        if self.ratio[0] <= 0:
            raise ValueError(f"ratio: expected positive aspect ratios, got {ratio!r}")
        self.interpolation = F.InterpolationMode(F.interpolation_mode(interpolation))
        self.antialias = antialias

    @staticmethod
    def get_params(img, scale, ratio):
        """``(i, j, h, w)`` of a random box of `img` (see the class)."""
        _, height, width = F.get_dimensions(img)
        return _resized_crop_box(height, width, scale, ratio)

    def forward(self, img):
        planes = Planes(img)
        i, j, h, w = _resized_crop_box(*planes.size, self.scale, self.ratio)
        box = _geometry.crop_planes(planes.array, i, j, h, w)
        mode = self.interpolation.value
        resized = _resample.resize_planes(box, self.size, mode,
                                          bool(self.antialias) and mode == "bilinear")
        return planes.back(resized)

    def extra_repr(self):
        return (f"size={self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"interpolation={self.interpolation.value}, antialias={self.antialias}")


def _box_tries(generator, area, scale, ratio):
    """torchvision's ten tries at a random box: ``(round(sqrt(a * r)), round(sqrt(a / r)))``
    for an area ``a`` drawn uniformly from `scale` times `area` and an aspect ``r`` drawn
    log-uniformly from `ratio`."""
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * generator.uniform(*scale)
        aspect = math.exp(generator.uniform(*log_ratio))
        yield (int(round(math.sqrt(target_area * aspect))),
               int(round(math.sqrt(target_area / aspect))))


def _resized_crop_box(height, width, scale, ratio):
    generator = _generator()
    for w, h in _box_tries(generator, height * width, scale, ratio):
        if 0 < w <= width and 0 < h <= height:
            return (int(generator.integers(0, height - h + 1)),
                    int(generator.integers(0, width - w + 1)), h, w)
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class RandomRotation(Transform):
    """Rotate by a random angle in `degrees` (:func:`~cnn.transforms.functional.rotate`).

    Args:
        degrees: A number d (the range ``(-d, d)``) or ``(min, max)``.
        interpolation (InterpolationMode): ``NEAREST`` or ``BILINEAR``.
        expand (bool): Grow the output to hold the whole rotated image.
        center (optional): ``(x, y)`` to rotate about; the image centre by default.
        fill: The value (or one per channel) of pixels from outside the image.
    """

    def __init__(self, degrees, interpolation=F.InterpolationMode.NEAREST, expand=False,
                 center=None, fill=0):
        if isinstance(degrees, numbers.Number):
            degrees = real_number(degrees, "degrees", minimum=0)
            degrees = (-degrees, degrees)
        self.degrees = _range(degrees, "degrees")
        self.interpolation = F.InterpolationMode(
            F.interpolation_mode(interpolation, allowed=("nearest", "bilinear")))
        self.expand = flag(expand, "expand")
        if center is not None and (not isinstance(center, (tuple, list)) or len(center) != 2):
            raise ValueError(f"center: expected a pair (x, y), got {center!r}")
        self.center = center
        self.fill = F.fill_values(fill)

    @staticmethod
    def get_params(degrees):
        """A random angle in ``degrees = (min, max)``."""
        return float(_generator().uniform(float(degrees[0]), float(degrees[1])))

    def forward(self, img):
        planes = Planes(img)
        angle = self.get_params(self.degrees)
        return planes.back(F.rotate_array(planes.array, angle, self.interpolation.value,
                                          self.expand, self.center, self.fill))

    def extra_repr(self):
        return (f"degrees={self.degrees}, interpolation={self.interpolation.value}, "
                f"expand={self.expand}, fill={self.fill}")


class ColorJitter(Transform):
    """Change brightness, contrast, saturation and hue by random factors, in a random order,
    as torchvision's.

    Args:
        brightness, contrast, saturation: A number x (the factor drawn from ``[max(0, 1 - x),
            1 + x]``) or ``(min, max)``; 0 leaves that property alone.
        hue: A number x in [0, 0.5] (the shift drawn from ``[-x, x]``) or ``(min, max)``
            within [-0.5, 0.5].
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = self._check_input(brightness, "brightness")
        self.contrast = self._check_input(contrast, "contrast")
        self.saturation = self._check_input(saturation, "saturation")
        self.hue = self._check_input(hue, "hue", center=0, bound=(-0.5, 0.5),
                                     clip_first_on_zero=False)

    @staticmethod
    def _check_input(value, name, center=1, bound=(0, float("inf")), clip_first_on_zero=True):
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            if value < 0:
                raise ValueError(f"If {name} is a single number, it must be non negative.")
            value = [center - float(value), center + float(value)]
            if clip_first_on_zero:
                value[0] = max(value[0], 0.0)
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            value = [real_number(value[0], name), real_number(value[1], name)]
        else:
            raise TypeError(f"{name} should be a single number or a list/tuple with length 2.")
        if not bound[0] <= value[0] <= value[1] <= bound[1]:
            raise ValueError(f"{name} values should be between {bound}, but got {value}.")
        return None if value[0] == value[1] == center else tuple(value)

    @staticmethod
    def get_params(brightness, contrast, saturation, hue):
        """The order of the four adjustments and their factors (None: left alone)."""
        generator = _generator()
        order = generator.permutation(4)
        factors = [None if bounds is None else float(generator.uniform(*bounds))
                   for bounds in (brightness, contrast, saturation, hue)]
        return (order, *factors)

    def forward(self, img):
        planes = Planes(img)
        if planes.channels not in (1, 3):
            raise TypeError(f"Input image tensor permitted channel values are [1, 3], but "
                            f"found {planes.channels}")
        order, *factors = self.get_params(self.brightness, self.contrast, self.saturation,
                                          self.hue)
        adjustments = (_color.adjust_brightness, _color.adjust_contrast,
                       _color.adjust_saturation, _color.adjust_hue)
        array = planes.array
        for index in order:
            if factors[index] is not None:
                array = adjustments[index](array, factors[index])
        return planes.back(array)

    def extra_repr(self):
        return (f"brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue}")


class RandomErasing(Transform):
    """With probability `p`, set a random box of a Tensor image to `value`, as torchvision's
    (Zhong et al., 2017): 10 tries to draw a box of a share `scale` of the area and aspect
    `ratio` that fits, else the image is left as it is.

    Args:
        p (float): The probability of erasing.
        scale (tuple), ratio (tuple): The ranges of the box's area share and aspect ratio.
        value: A number, one per channel, or ``"random"`` (standard normal values).
        inplace (bool): Write into the input Tensor.
    """

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False):
        if isinstance(value, str):
            if value != "random":
                raise ValueError("If value is str, it should be 'random'")
        elif isinstance(value, (tuple, list)):
            value = [real_number(v, "value") for v in value]
        else:
            value = real_number(value, "value")
        self.p = _probability(p, "Random erasing probability")
        self.scale = _range(scale, "scale")
        if self.scale[0] < 0 or self.scale[1] > 1:
            raise ValueError("Scale should be between 0 and 1")
        self.ratio = _range(ratio, "ratio")
        if self.ratio[0] <= 0:
            raise ValueError(f"ratio: expected positive aspect ratios, got {ratio!r}")
        self.value = value
        self.inplace = flag(inplace, "inplace")

    @staticmethod
    def get_params(img, scale, ratio, value=None):
        """``(i, j, h, w, v)`` of a random box of the Tensor `img` and the values to write
        (``value`` None: random normal values)."""
        channels, height, width = img.shape[-3], img.shape[-2], img.shape[-1]
        generator = _generator()
        for h, w in _box_tries(generator, height * width, scale, ratio):
            if not (h < height and w < width):
                continue
            if value is None:
                v = generator.standard_normal((channels, h, w)).astype(np.float32)
            else:
                v = np.asarray(value, np.float32)[:, None, None]
            return (int(generator.integers(0, height - h + 1)),
                    int(generator.integers(0, width - w + 1)), h, w, v)
        return 0, 0, height, width, img

    def forward(self, img):
        if not isinstance(img, Tensor):
            raise TypeError(f"img should be Tensor Image. Got {type(img).__name__}")
        if _generator().random() >= self.p:
            return img
        value = self.value
        if isinstance(value, str):
            value = None
        elif not isinstance(value, list):
            value = [value]
        if value is not None and len(value) not in (1, img._data.shape[-3]):
            raise ValueError("If value is a sequence, it should have either a single value or "
                             f"{img._data.shape[-3]} (number of input channels)")
        i, j, h, w, v = self.get_params(img._data, self.scale, self.ratio, value)
        if v is img._data:  # no box fitted
            return img
        return F.erase_array(img, i, j, h, w, v, self.inplace)

    def extra_repr(self):
        return (f"p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value}, "
                f"inplace={self.inplace}")
