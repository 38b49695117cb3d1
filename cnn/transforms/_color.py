"""Colour adjustments of planes ``(..., C, H, W)``, with torchvision's tensor formulas.

Brightness, contrast and saturation blend the image with black, its mean grey and its grey
image: ``ratio * img + (1 - ratio) * other``, clamped to the dtype's range and, for an
integer image, cut towards zero (``.to(uint8)``). Hue goes through HSV in float32. Integer
images compute in float32 as torch does, so the results agree bit for bit or to one level.
"""
import numpy as np

from ._image import max_value, to_dtype_of


def _work_dtype(dtype):
    return np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float32)


def grayscale(planes):
    """The grey image ``(..., 1, H, W)`` of RGB `planes` (ITU-R 601-2 luma), in their dtype;
    one-channel planes are returned as they are."""
    if planes.shape[-3] == 1:
        return planes
    work = _work_dtype(planes.dtype).type
    red, green, blue = (planes[..., k, :, :].astype(work) for k in range(3))
    luma = work(0.2989) * red + work(0.587) * green + work(0.114) * blue
    return to_dtype_of(luma, planes.dtype)[..., None, :, :]


def blend(planes, other, ratio):
    """``ratio * planes + (1 - ratio) * other``, clamped to the dtype's range, in its dtype."""
    work = _work_dtype(planes.dtype).type
    mixed = work(ratio) * planes.astype(work) + work(1.0 - ratio) * np.asarray(other, work)
    return to_dtype_of(np.clip(mixed, 0, max_value(planes.dtype)), planes.dtype)


def adjust_brightness(planes, factor):
    return blend(planes, 0, factor)


def adjust_contrast(planes, factor):
    work = _work_dtype(planes.dtype)
    mean = grayscale(planes).astype(work).mean(axis=(-3, -2, -1), keepdims=True, dtype=work)
    return blend(planes, mean, factor)


def adjust_saturation(planes, factor):
    if planes.shape[-3] == 1:  # as PIL: a grey image has no saturation
        return planes
    return blend(planes, grayscale(planes), factor)


def adjust_hue(planes, factor):
    if planes.shape[-3] == 1:
        return planes
    dtype = planes.dtype
    if dtype.kind == "f":
        values = planes.astype(np.float32)
    else:
        values = planes.astype(np.float32) / np.float32(max_value(dtype))
    hue, saturation, value = _rgb_to_hsv(values)
    hue = np.mod(hue + np.float32(factor), np.float32(1.0))
    rgb = _hsv_to_rgb(hue, saturation, value)
    if dtype.kind == "f":
        return rgb.astype(dtype)
    # convert_image_dtype's float -> int: (max + 1 - eps) spreads [0, 1] evenly over the levels
    return to_dtype_of(rgb * np.float32(max_value(dtype) + 1.0 - 1e-3), dtype)


def _rgb_to_hsv(values):
    red, green, blue = values[..., 0, :, :], values[..., 1, :, :], values[..., 2, :, :]
    top, bottom = values.max(axis=-3), values.min(axis=-3)
    equal = top == bottom
    spread = top - bottom
    one = np.float32(1)
    saturation = spread / np.where(equal, one, top)
    divisor = np.where(equal, one, spread)
    rc, gc, bc = (top - red) / divisor, (top - green) / divisor, (top - blue) / divisor
    hue = ((top == red) * (bc - gc) + ((top == green) & (top != red)) * (2 + rc - bc)
           + ((top != green) & (top != red)) * (4 + gc - rc))
    hue = np.fmod(hue / np.float32(6) + one, one).astype(np.float32)
    return hue, saturation.astype(np.float32), top


def _hsv_to_rgb(hue, saturation, value):
    sector = np.floor(hue * np.float32(6))
    fraction = hue * np.float32(6) - sector
    sector = sector.astype(np.int32) % 6
    p = np.clip(value * (1 - saturation), 0, 1)
    q = np.clip(value * (1 - saturation * fraction), 0, 1)
    t = np.clip(value * (1 - saturation * (1 - fraction)), 0, 1)
    choices = [(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value),
               (value, p, q)]
    channels = [np.choose(sector, [choice[k] for choice in choices]) for k in range(3)]
    return np.stack(channels, axis=-3).astype(np.float32)
