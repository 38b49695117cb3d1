"""cnn.transforms: each transform against a NumPy reference of torchvision's formula, on uint8
HWC arrays and CHW Tensors, its randomness (cnn's generator), its argument checks, and against
torchvision itself where it is installed (skipped otherwise)."""
import colorsys
import math

import numpy as np
import pytest

import cnn
import cnn.transforms as T
import cnn.transforms.functional as F
from cnn.transforms import InterpolationMode


@pytest.fixture
def image():
    """A uint8 HWC image, as the datasets give (odd sizes catch off-by-one errors)."""
    return np.random.default_rng(0).integers(0, 256, (13, 17, 3)).astype(np.uint8)


def chw(image):
    return cnn.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def both_kinds(function, image, *args):
    """`function` on the HWC array and on the CHW Tensor: the same pixels, each in its kind."""
    from_array = function(image, *args)
    from_tensor = function(chw(image), *args)
    assert type(from_array) is np.ndarray and isinstance(from_tensor, cnn.Tensor)
    np.testing.assert_array_equal(from_array.transpose(2, 0, 1), from_tensor.numpy())
    return from_array


# ***** conversions *****

def test_to_tensor_and_pil_to_tensor(image):
    tensor = T.ToTensor()(image)
    assert isinstance(tensor, cnn.Tensor) and tensor.shape == (3, 13, 17)
    assert tensor.dtype == np.float32
    np.testing.assert_array_equal(tensor.numpy(), image.transpose(2, 0, 1) / np.float32(255))
    assert T.ToTensor()(image[..., 0]).shape == (1, 13, 17)  # (H, W): one channel
    floats = np.random.default_rng(1).random((4, 5, 2))
    np.testing.assert_array_equal(T.ToTensor()(floats).numpy(), floats.transpose(2, 0, 1))
    raw = T.PILToTensor()(image)
    assert raw.dtype == np.uint8 and np.array_equal(raw.numpy(), image.transpose(2, 0, 1))
    with pytest.raises(TypeError, match="pic should be PIL Image or ndarray"):
        T.ToTensor()(chw(image))


def test_to_dtype_and_convert_image_dtype(image):
    scaled = T.ToDtype(cnn.float32, scale=True)(chw(image))
    np.testing.assert_array_equal(scaled.numpy(), T.ToTensor()(image).numpy())
    assert T.ToDtype(np.int16)(chw(image)).numpy().max() == image.max()  # no scaling
    back = F.convert_image_dtype(scaled, np.uint8)
    np.testing.assert_array_equal(back.numpy(), image.transpose(2, 0, 1))  # (x*255.999) cut
    wide = F.convert_image_dtype(chw(image), np.int16).numpy()
    np.testing.assert_array_equal(wide, image.transpose(2, 0, 1).astype(np.int16) * 128)
    with pytest.raises(RuntimeError, match="cannot be performed safely"):
        F.convert_image_dtype(scaled, np.int32)


def test_normalize():
    x = cnn.from_numpy(np.random.default_rng(2).random((2, 3, 4, 5)).astype(np.float32))
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    expected = (x.numpy() - np.array(mean, np.float32)[:, None, None]) / np.array(
        std, np.float32)[:, None, None]
    out = T.Normalize(mean, std)(x)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    assert out is not x and T.Normalize(mean, std, inplace=True)(x) is x
    with pytest.raises(TypeError, match="float tensor"):
        T.Normalize(mean, std)(cnn.from_numpy(np.zeros((3, 2, 2), np.uint8)))
    with pytest.raises(TypeError, match="Tensor Image"):
        T.Normalize(mean, std)(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="division by zero"):
        T.Normalize((0.0,), (0.0,))


def test_compose_lambda_and_batch_transform(image):
    recipe = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.25,) * 3)])
    batch = np.stack([image, image[::-1]])
    together = recipe.batch_transform(batch)
    assert together.shape == (2, 3, 13, 17)
    np.testing.assert_array_equal(together.numpy()[1], recipe(image[::-1]).numpy())
    assert not hasattr(T.Compose([T.ToTensor(), T.RandomHorizontalFlip()]), "batch_transform")
    assert T.Lambda(lambda img: img[:2])(image).shape == (2, 17, 3)
    with pytest.raises(TypeError, match="lambd should be callable"):
        T.Lambda(3)
    with pytest.raises(TypeError, match="item 1 is not callable"):
        T.Compose([T.ToTensor(), 5])
    assert "RandomCrop(size=(32, 32), padding=4)" in repr(T.Compose([T.RandomCrop(32, 4)]))


# ***** geometry *****

def test_flips_crop_and_pad_against_numpy(image):
    np.testing.assert_array_equal(both_kinds(F.hflip, image), image[:, ::-1])
    np.testing.assert_array_equal(both_kinds(F.vflip, image), image[::-1])
    np.testing.assert_array_equal(both_kinds(F.crop, image, 2, 3, 5, 6), image[2:7, 3:9])
    outside = both_kinds(F.crop, image, -2, 15, 4, 4)  # zeros where the box leaves the image
    expected = np.zeros((4, 4, 3), np.uint8)
    expected[2:, :2] = image[:2, 15:]
    np.testing.assert_array_equal(outside, expected)
    for mode in ("constant", "edge", "reflect", "symmetric"):
        padded = both_kinds(F.pad, image, [1, 2, 3, 4], 9, mode)
        reference = np.pad(image, [(2, 4), (1, 3), (0, 0)], mode=mode,
                           **({"constant_values": 9} if mode == "constant" else {}))
        np.testing.assert_array_equal(padded, reference)
    per_channel = T.Pad(1, fill=(1, 2, 3))(image)
    assert per_channel[0, 0].tolist() == [1, 2, 3]


def test_center_crop(image):
    np.testing.assert_array_equal(T.CenterCrop(5)(image), image[4:9, 6:11])
    grown = T.CenterCrop((15, 20))(image)  # larger than the image: zero-padded around it
    assert grown.shape == (15, 20, 3)
    np.testing.assert_array_equal(grown[1:14, 1:18], image)
    assert grown[0].sum() == 0 and grown[:, 19].sum() == 0


def reference_resize(planes, out_h, out_w, antialias):
    """torch's bilinear weights (PIL's filter when antialiasing), applied pixel by pixel."""
    def taps(in_size, out_size):
        scale = in_size / out_size
        rows = []
        for i in range(out_size):
            if antialias:
                support = max(scale, 1.0)
                center = scale * (i + 0.5)
                low = max(int(center - support + 0.5), 0)
                high = min(int(center + support + 0.5), in_size)
                weights = {j: max(0.0, 1 - abs((j - center + 0.5) / max(scale, 1.0)))
                           for j in range(low, high)}
                total = sum(weights.values())
                rows.append({j: w / total for j, w in weights.items()})
            else:
                source = max(scale * (i + 0.5) - 0.5, 0.0)
                low = int(source)
                high = min(low + 1, in_size - 1)
                fraction = source - low
                row = {low: 1 - fraction}
                row[high] = row.get(high, 0.0) + fraction
                rows.append(row)
        return rows

    rows, columns = taps(planes.shape[1], out_h), taps(planes.shape[2], out_w)
    out = np.zeros((planes.shape[0], out_h, out_w))
    for y, row in enumerate(rows):
        for x, column in enumerate(columns):
            for j, wy in row.items():
                for i, wx in column.items():
                    out[:, y, x] += wy * wx * planes[:, j, i]
    return out


@pytest.mark.parametrize("size", [(7, 9), (20, 30), (13, 25)])
@pytest.mark.parametrize("antialias", [True, False])
def test_resize_bilinear_against_a_pixel_loop(image, size, antialias):
    planes = image.transpose(2, 0, 1).astype(np.float64)
    floats = cnn.from_numpy(planes / 255)
    ours = F.resize(floats, list(size), antialias=antialias).numpy()
    np.testing.assert_allclose(ours, reference_resize(planes / 255, *size, antialias),
                               atol=1e-12)
    rounded = both_kinds(F.resize, image, list(size), InterpolationMode.BILINEAR, None,
                         antialias)
    expected = np.rint(reference_resize(planes, *size, antialias)).transpose(1, 2, 0)
    assert np.abs(rounded.astype(int) - expected).max() <= 1


def test_resize_nearest_and_sizes(image):
    out = both_kinds(F.resize, image, [5, 6], InterpolationMode.NEAREST)
    rows, cols = np.floor(np.arange(5) * 13 / 5).astype(int), np.floor(np.arange(6) * 17 / 6)
    np.testing.assert_array_equal(out, image[rows][:, cols.astype(int)])
    exact = F.resize(image, [5, 6], InterpolationMode.NEAREST_EXACT)
    rows = np.floor((np.arange(5) + 0.5) * 13 / 5).astype(int)
    cols = np.floor((np.arange(6) + 0.5) * 17 / 6).astype(int)
    np.testing.assert_array_equal(exact, image[rows][:, cols])
    assert T.Resize(26)(image).shape == (26, 34, 3)  # the smaller edge; the ratio kept
    assert T.Resize(26, max_size=30)(image).shape == (22, 30, 3)
    assert T.Resize((13, 17))(image) is image
    with pytest.raises(ValueError, match="bicubic interpolation is not supported"):
        T.Resize(8, InterpolationMode.BICUBIC)


def reference_rotate_nearest(planes, angle):
    """Each output pixel's centre mapped back by the inverse rotation, nearest pixel, zero
    outside (torchvision's rotate about the centre, not expanded); and where the source falls
    so close to halfway between pixels that float32 rounding may pick either."""
    channels, height, width = planes.shape
    out = np.zeros_like(planes)
    tie = np.zeros((height, width), bool)
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    for y in range(height):
        for x in range(width):
            dx, dy = x - width / 2 + 0.5, y - height / 2 + 0.5
            sx = cos * dx - sin * dy + width / 2 - 0.5
            sy = sin * dx + cos * dy + height / 2 - 0.5
            tie[y, x] = min(abs(sx % 1 - 0.5), abs(sy % 1 - 0.5)) < 1e-4
            i, j = int(np.rint(sy)), int(np.rint(sx))
            if 0 <= i < height and 0 <= j < width:
                out[:, y, x] = planes[:, i, j]
    return out, tie


def test_rotate_against_a_pixel_loop(image):
    planes = image.transpose(2, 0, 1)
    for angle in (90, 30, -70):
        ours = F.rotate(chw(image), angle).numpy()
        expected, tie = reference_rotate_nearest(planes, angle)
        np.testing.assert_array_equal(ours[:, ~tie], expected[:, ~tie])
    np.testing.assert_array_equal(F.rotate(image, 360.0), image)
    turned = F.rotate(chw(image), 90, expand=True)
    assert turned.shape == (3, 17, 13)
    np.testing.assert_array_equal(turned.numpy(), np.rot90(planes, 1, axes=(1, 2)))
    filled = F.rotate(image, 45, fill=[7, 8, 9])
    assert filled[0, 0].tolist() == [7, 8, 9]  # a corner comes from outside the image


# ***** colour *****

def luma(planes):
    return 0.2989 * planes[0] + 0.587 * planes[1] + 0.114 * planes[2]


def test_brightness_contrast_saturation_against_their_blends(image):
    planes = image.transpose(2, 0, 1).astype(np.float64)
    grey = np.trunc(luma(planes))
    cases = {F.adjust_brightness: lambda f: f * planes,
             F.adjust_contrast: lambda f: f * planes + (1 - f) * grey.mean(),
             F.adjust_saturation: lambda f: f * planes + (1 - f) * grey}
    for function, blend in cases.items():
        for factor in (0.0, 0.5, 1.0, 1.8):
            ours = function(chw(image), factor).numpy().astype(int)
            expected = np.trunc(np.clip(blend(factor), 0, 255))
            assert np.abs(ours - expected).max() <= 1, (function.__name__, factor)
    np.testing.assert_array_equal(F.adjust_brightness(image, 1.0), image)
    gray = F.rgb_to_grayscale(chw(image)).numpy()
    assert gray.shape == (1, 13, 17) and np.abs(gray[0] - np.trunc(luma(planes))).max() <= 1


def test_hue_against_colorsys(image):
    for factor in (-0.5, -0.2, 0.0, 0.3):
        ours = F.adjust_hue(image, factor).astype(int)
        expected = np.empty_like(ours)
        for index in np.ndindex(image.shape[:2]):
            h, s, v = colorsys.rgb_to_hsv(*(image[index] / 255))
            rgb = colorsys.hsv_to_rgb((h + factor) % 1.0, s, v)
            expected[index] = np.trunc(np.array(rgb) * 255.999)
        assert np.abs(ours - expected).max() <= 1
    grey = image[..., :1]
    assert F.adjust_hue(grey, 0.3) is not None and np.array_equal(F.adjust_hue(grey, 0.3), grey)
    with pytest.raises(ValueError, match="hue_factor"):
        F.adjust_hue(image, 0.7)


# ***** random transforms *****

def test_random_crop_is_a_box_of_the_padded_image(image):
    crop = T.RandomCrop((13, 17), padding=4)
    padded = np.pad(image, [(4, 4), (4, 4), (0, 0)])
    cnn.manual_seed(0)
    seen = set()
    for _ in range(40):
        out = crop(image)
        matches = [(i, j) for i in range(9) for j in range(9)
                   if np.array_equal(padded[i:i + 13, j:j + 17], out)]
        assert matches
        seen.add(matches[0])
    assert len(seen) > 10


def test_random_crop_pads_if_needed_and_refuses_too_small(image):
    assert T.RandomCrop((20, 25), pad_if_needed=True)(image).shape == (20, 25, 3)
    with pytest.raises(ValueError, match="larger than input image size"):
        T.RandomCrop(20)(image)
    i, j, h, w = T.RandomCrop.get_params(image, (5, 5))
    assert 0 <= i <= 8 and 0 <= j <= 12 and (h, w) == (5, 5)


def test_flips_follow_p(image):
    assert T.RandomHorizontalFlip(p=0.0)(image) is image
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(image), image[:, ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(image), image[::-1])
    cnn.manual_seed(1)
    flips = [T.RandomHorizontalFlip()(image)[0, 0].tolist() == image[0, -1].tolist()
             for _ in range(200)]
    assert 70 < sum(flips) < 130
    with pytest.raises(ValueError, match="probability"):
        T.RandomHorizontalFlip(p=1.5)


def test_random_resized_crop(image):
    cnn.manual_seed(2)
    for _ in range(20):
        i, j, h, w = T.RandomResizedCrop.get_params(image, (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 <= i and i + h <= 13 and 0 <= j and j + w <= 17 and h > 0 and w > 0
    out = T.RandomResizedCrop(8)(chw(image))
    assert out.shape == (3, 8, 8) and out.dtype == np.uint8
    # No box fits: the central crop of the allowed ratio (torchvision's fallback).
    assert T.RandomResizedCrop.get_params(image, (2.0, 2.0), (1.0, 1.0)) == (0, 2, 13, 13)


def test_random_rotation_and_color_jitter(image):
    cnn.manual_seed(3)
    angles = [T.RandomRotation.get_params((-10, 20)) for _ in range(100)]
    assert -10 <= min(angles) and max(angles) <= 20
    assert T.RandomRotation(30, expand=True)(image).shape[0] > 13
    assert T.RandomRotation((0, 0))(image).tolist() == image.tolist()
    order, b, c, s, h = T.ColorJitter.get_params((0.5, 1.5), None, (1, 1), (-0.1, 0.1))
    assert sorted(order.tolist()) == [0, 1, 2, 3] and 0.5 <= b <= 1.5 and c is None
    assert -0.1 <= h <= 0.1
    jitter = T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    assert jitter.brightness == (0.6, 1.4) and jitter.hue == (-0.1, 0.1)
    assert T.ColorJitter()(image).tolist() == image.tolist()
    assert jitter(chw(image)).dtype == np.uint8
    with pytest.raises(ValueError, match="hue values should be between"):
        T.ColorJitter(hue=0.6)


def test_random_erasing():
    x = cnn.from_numpy(np.ones((3, 20, 20), np.float32))
    cnn.manual_seed(4)
    erased = T.RandomErasing(p=1.0, value=(0.0, 0.5, 2.0))(x).numpy()
    box = erased[0] == 0
    assert box.any() and not box.all()
    rows, cols = np.nonzero(box)
    assert box.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # one rectangle
    assert np.all(erased[1][box] == 0.5) and np.all(erased[2][box] == 2.0)
    assert np.all(x.numpy() == 1)  # not in place by default
    assert T.RandomErasing(p=0.0)(x) is x
    random_values = T.RandomErasing(p=1.0, value="random")(x).numpy()
    assert np.count_nonzero(random_values != 1) > 0
    with pytest.raises(TypeError, match="Tensor Image"):
        T.RandomErasing()(np.ones((4, 4, 3)))
    with pytest.raises(ValueError, match="'random'"):
        T.RandomErasing(value="noise")


def test_random_transforms_are_reproducible(image):
    recipe = T.Compose([T.RandomResizedCrop(9), T.RandomHorizontalFlip(),
                        T.ColorJitter(0.3, 0.3, 0.3, 0.05), T.RandomRotation(15)])
    cnn.manual_seed(7)
    first = [recipe(image) for _ in range(5)]
    cnn.manual_seed(7)
    assert all(np.array_equal(a, recipe(image)) for a in first)


@pytest.mark.parametrize("call, error, message", [
    (lambda: T.RandomCrop(0), ValueError, "size"),
    (lambda: T.RandomCrop(8, padding=(1, 2, 3)), ValueError, "Padding must be"),
    (lambda: T.Pad(1, padding_mode="wrap"), ValueError, "padding_mode"),
    (lambda: T.Resize("big"), ValueError, "size"),
    (lambda: T.RandomRotation(-5), ValueError, "degrees"),
    (lambda: T.RandomResizedCrop(8, scale=(0.9, 0.1)), ValueError, "scale"),
    (lambda: T.ColorJitter(brightness=-1), ValueError, "non negative"),
    (lambda: F.hflip([[1, 2]]), TypeError, "img: expected"),
    (lambda: F.hflip(np.zeros(5)), ValueError, r"\(H, W\)"),
    (lambda: F.adjust_brightness(np.zeros((2, 2, 2), np.uint8), 1.0), TypeError, "channel"),
])
def test_arguments_are_checked(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_pil_images_are_accepted(image):
    Image = pytest.importorskip("PIL.Image")
    pil = Image.fromarray(image)
    np.testing.assert_array_equal(T.ToTensor()(pil).numpy(), T.ToTensor()(image).numpy())
    np.testing.assert_array_equal(T.CenterCrop(5)(pil), T.CenterCrop(5)(image))  # as an array


# ***** torchvision parity (skipped without it) *****

def torchvision_functional():
    pytest.importorskip("torchvision")
    import torch
    import torchvision.transforms.functional as TF
    return torch, TF


def assert_close_to(ours, theirs, image_dtype):
    ours, theirs = np.asarray(ours, np.float64), theirs.numpy().astype(np.float64)
    assert ours.shape == theirs.shape
    if image_dtype == np.uint8:  # the same float32 sums may round to the next level, rarely
        assert np.abs(ours - theirs).max() <= 1 and np.mean(ours != theirs) < 0.01
    else:
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_functional_ops_match_torchvision(image, dtype):
    torch, TF = torchvision_functional()
    from torchvision.transforms import InterpolationMode as TM
    planes = image.transpose(2, 0, 1).copy()
    if dtype == np.float32:
        planes = (planes / 255).astype(np.float32)
    ours, theirs = cnn.from_numpy(planes), torch.from_numpy(planes)
    cases = [("hflip", (), ()), ("vflip", (), ()), ("crop", (-2, 3, 9, 20), None),
             ("center_crop", ([9, 21],), None), ("pad", ([1, 2, 3, 4], 0, "reflect"), None),
             ("pad", ([2, 1], 0, "symmetric"), None), ("pad", (3, 1, "constant"), None),
             ("rgb_to_grayscale", (), ()), ("adjust_brightness", (1.3,), None),
             ("adjust_contrast", (0.6,), None), ("adjust_saturation", (1.7,), None),
             ("adjust_hue", (-0.27,), None)]
    for size in ([7, 9], [30, 11], [10]):
        for antialias in (True, False):
            cases.append(("resize", (size, InterpolationMode.BILINEAR, None, antialias),
                          (size, TM.BILINEAR, None, antialias)))
        cases.append(("resize", (size, InterpolationMode.NEAREST), (size, TM.NEAREST)))
    for angle, expand in ((33.0, False), (-120.0, True)):
        for mode, torch_mode in ((InterpolationMode.NEAREST, TM.NEAREST),
                                 (InterpolationMode.BILINEAR, TM.BILINEAR)):
            cases.append(("rotate", (angle, mode, expand, None, [0.2, 0.5, 1.0]),
                          (angle, torch_mode, expand, None, [0.2, 0.5, 1.0])))
    for name, args, torch_args in cases:
        torch_args = args if torch_args is None else torch_args or args
        assert_close_to(getattr(F, name)(ours, *args).numpy(),
                        getattr(TF, name)(theirs, *torch_args), dtype)


def test_conversions_and_recipe_params_match_torchvision(image):
    torch, TF = torchvision_functional()
    import torchvision.transforms as TT
    np.testing.assert_array_equal(F.to_tensor(image).numpy(), TF.to_tensor(image).numpy())
    x = np.random.default_rng(5).random((3, 6, 7)).astype(np.float32)
    np.testing.assert_allclose(
        F.normalize(cnn.from_numpy(x), (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)).numpy(),
        TF.normalize(torch.from_numpy(x), (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)),
        rtol=1e-6)
    # The random transforms apply torchvision's functional op with their drawn parameters.
    cnn.manual_seed(9)
    i, j, h, w = T.RandomResizedCrop.get_params(image, (0.08, 1.0), (3 / 4, 4 / 3))
    cnn.manual_seed(9)
    ours = T.RandomResizedCrop(10)(chw(image)).numpy()
    theirs = TF.resized_crop(torch.from_numpy(image.transpose(2, 0, 1).copy()), i, j, h, w,
                             [10, 10])
    assert_close_to(ours, theirs, np.uint8)
    erased = TT.RandomErasing(p=1.0, value=0.5)
    assert erased.scale == T.RandomErasing().scale and erased.ratio == T.RandomErasing().ratio
