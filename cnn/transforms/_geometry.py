"""Cropping and padding planes ``(..., C, H, W)``, with torchvision's rules."""
import numpy as np

# torchvision's padding modes and NumPy's names for them.
PADDING_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect",
                 "symmetric": "symmetric"}


def pad_planes(planes, left, top, right, bottom, fill=0, mode="constant"):
    """`planes` padded by the given widths; negative widths crop (as torchvision's pad).

    Args:
        fill: The constant mode's value: a number, or one per channel.
        mode (str): ``"constant"``, ``"edge"``, ``"reflect"`` (the edge pixel not repeated) or
            ``"symmetric"`` (repeated).
    """
    height, width = planes.shape[-2:]
    planes = planes[..., max(-top, 0):height - max(-bottom, 0),
                    max(-left, 0):width - max(-right, 0)]
    left, top, right, bottom = (max(x, 0) for x in (left, top, right, bottom))
    if not (left or top or right or bottom):
        return planes
    if mode != "constant":
        widths = [(0, 0)] * (planes.ndim - 2) + [(top, bottom), (left, right)]
        return np.pad(planes, widths, mode=PADDING_MODES[mode])
    # Not np.pad: its generality costs ten times this for an image of CIFAR's size.
    height, width = planes.shape[-2:]
    out = np.empty(planes.shape[:-2] + (height + top + bottom, width + left + right),
                   planes.dtype)
    fills = np.asarray(fill, dtype=np.float64).reshape(-1)
    out[...] = _stored(fills if fills.size > 1 else fills[0], planes.dtype).reshape(
        (-1, 1, 1) if fills.size > 1 else ())
    out[..., top:top + height, left:left + width] = planes
    return out


def _stored(value, dtype):
    # A fill as the image stores it: cut towards zero into an integer type, as torch does.
    dtype = np.dtype(dtype)
    return np.trunc(value).astype(dtype) if dtype.kind in "iub" else np.asarray(value, dtype)


def crop_planes(planes, top, left, height, width):
    """The box of `planes` at ``(top, left)`` of ``(height, width)``; parts of the box outside
    the image are zeros (torchvision's crop)."""
    image_h, image_w = planes.shape[-2:]
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > image_w or bottom > image_h:
        inside = planes[..., max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)]
        return pad_planes(inside, max(-left + min(0, right), 0), max(-top + min(0, bottom), 0),
                          max(right - max(image_w, left), 0), max(bottom - max(image_h, top), 0))
    return planes[..., top:bottom, left:right]


def center_crop_planes(planes, height, width):
    """The centred box of ``(height, width)``, zero-padded where larger than the image."""
    image_h, image_w = planes.shape[-2:]
    if width > image_w or height > image_h:
        planes = pad_planes(planes, (width - image_w) // 2 if width > image_w else 0,
                            (height - image_h) // 2 if height > image_h else 0,
                            (width - image_w + 1) // 2 if width > image_w else 0,
                            (height - image_h + 1) // 2 if height > image_h else 0)
        image_h, image_w = planes.shape[-2:]
        if (image_h, image_w) == (height, width):
            return planes
    return crop_planes(planes, int(round((image_h - height) / 2.0)),
                       int(round((image_w - width) / 2.0)), height, width)
