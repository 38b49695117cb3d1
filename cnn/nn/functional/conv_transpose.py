"""Transposed 2-D convolution (``F.conv_transpose2d``): the gradient of a convolution with
respect to its input, used as a layer that upsamples.

Every input pixel scatters ``weight[c_in]`` (a (C_out/groups, KH, KW) stamp, scaled by the
pixel) into the output at ``stride`` spacing; ``padding`` then crops the borders and
``output_padding`` adds rows and columns at the far ends. Computed as one matrix product per
kernel position (NumPy's BLAS): channels in by channels out, over all pixels at once.
"""
import numpy as np

from cnn._validation import integer, pair
from cnn.autograd import Function
from cnn.tensor import Tensor

from ._inputs import array_of, float_array_of, same_dtype


class ConvTranspose2d(Function):
    """(N, C_in, H, W) by weights (C_in, C_out / groups, KH, KW) -> (N, C_out, OH, OW)."""

    @staticmethod
    def forward(ctx, x, weight, bias, geometry):
        stride, padding, output_padding, dilation, groups, out_size = geometry
        n, _, h, w = x.shape
        cin_g, cout_g, kh, kw = weight.shape[0] // groups, weight.shape[1], *weight.shape[2:]
        canvas = np.zeros((n, cout_g * groups) + _canvas_size(geometry, (h, w), (kh, kw)),
                          x.dtype)
        for g in range(groups):
            xg = x[:, g * cin_g:(g + 1) * cin_g]
            wg = weight[g * cin_g:(g + 1) * cin_g]
            for ki in range(kh):
                for kj in range(kw):
                    # (N, H, W, C_out/groups): every pixel times this kernel position's weights.
                    stamp = np.tensordot(xg, wg[:, :, ki, kj], axes=([1], [0]))
                    canvas[(slice(None), slice(g * cout_g, (g + 1) * cout_g))
                           + _taps(geometry, (ki, kj), (h, w))] += stamp.transpose(0, 3, 1, 2)
        out = canvas[:, :, padding[0]:padding[0] + out_size[0],
                     padding[1]:padding[1] + out_size[1]]
        if bias is not None:
            out = out + bias.reshape(1, -1, 1, 1)
        ctx.save_for_backward(x, weight)
        ctx.geometry = geometry
        return np.ascontiguousarray(out)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        stride, padding, output_padding, dilation, groups, out_size = ctx.geometry
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        n, _, h, w = x.shape
        cin_g, cout_g, kh, kw = weight.shape[0] // groups, weight.shape[1], *weight.shape[2:]
        canvas = np.zeros(grad_output.shape[:2] + _canvas_size(ctx.geometry, (h, w), (kh, kw)),
                          grad_output.dtype)
        canvas[:, :, padding[0]:padding[0] + out_size[0],
               padding[1]:padding[1] + out_size[1]] = grad_output
        grad_x = np.zeros_like(x) if need_x else None
        grad_w = np.zeros_like(weight) if need_w else None
        for g in range(groups):
            xg = x[:, g * cin_g:(g + 1) * cin_g]
            wg = weight[g * cin_g:(g + 1) * cin_g]
            for ki in range(kh):
                for kj in range(kw):
                    # (N, C_out/groups, H, W): the output gradient where this position stamped.
                    taps = canvas[(slice(None), slice(g * cout_g, (g + 1) * cout_g))
                                  + _taps(ctx.geometry, (ki, kj), (h, w))]
                    if need_x:
                        grad_x[:, g * cin_g:(g + 1) * cin_g] += np.tensordot(
                            taps, wg[:, :, ki, kj], axes=([1], [1])).transpose(0, 3, 1, 2)
                    if need_w:
                        grad_w[g * cin_g:(g + 1) * cin_g, :, ki, kj] = np.tensordot(
                            xg, taps, axes=([0, 2, 3], [0, 2, 3]))
        grad_b = grad_output.sum(axis=(0, 2, 3)) if need_b else None
        return grad_x, grad_w, grad_b, None


def _canvas_size(geometry, size_in, kernel):
    """The uncropped output: every stamp, and room for output_padding beyond the crop."""
    stride, padding, output_padding, dilation, _, out_size = geometry
    return tuple(max((s - 1) * st + d * (k - 1) + 1, p + o)
                 for s, st, d, k, p, o in zip(size_in, stride, dilation, kernel, padding,
                                              out_size))


def _taps(geometry, position, size_in):
    """The canvas slices (rows, columns) that kernel position (ki, kj) stamps into."""
    stride, _, _, dilation = geometry[:4]
    return tuple(slice(k * d, k * d + st * (s - 1) + 1, st)
                 for k, d, st, s in zip(position, dilation, stride, size_in))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-D convolution of (N, C_in, H, W) (or one (C_in, H, W) image).

    Args:
        input: Tensor (N, C_in, H, W).
        weight: Tensor (C_in, C_out / groups, KH, KW).
        bias: optional Tensor (C_out,).
        stride, padding, output_padding, dilation: int or pair; output_padding must be smaller
            than stride or dilation.
        groups: split the channels into this many independent convolutions.

    Returns:
        Tensor (N, C_out, OH, OW), OH = (H - 1) * stride - 2 * padding + dilation * (KH - 1) +
        output_padding + 1 (likewise OW).
    """
    x = float_array_of(input, "input", (3, 4))
    w = float_array_of(weight, "weight", (4,))
    same_dtype(w, x, "weight", "input")
    groups = integer(groups, "groups", 1)
    stride, padding = pair(stride, "stride", 1), pair(padding, "padding", 0)
    output_padding, dilation = pair(output_padding, "output_padding", 0), \
        pair(dilation, "dilation", 1)
    channels = x.shape[-3]
    if w.shape[0] != channels or channels % groups:
        raise ValueError(f"weight: expected {channels} input channels (weight.shape[0]) "
                         f"divisible by groups={groups}, got weight of shape {w.shape}")
    if bias is not None:
        b = array_of(bias, "bias")
        same_dtype(b, x, "bias", "input")
        if b.shape != (w.shape[1] * groups,):
            raise ValueError(f"bias: expected shape ({w.shape[1] * groups},), got {b.shape}")
    for o, s, d in zip(output_padding, stride, dilation):
        if o >= max(s, d):
            raise ValueError(f"output_padding: must be smaller than either stride or dilation, "
                             f"got output_padding={output_padding}, stride={stride}, "
                             f"dilation={dilation}")
    out_size = tuple((size - 1) * s - 2 * p + d * (k - 1) + o + 1 for size, s, p, d, k, o in
                     zip(x.shape[-2:], stride, padding, dilation, w.shape[2:], output_padding))
    if min(out_size) < 1:
        raise ValueError(f"input: the output size {out_size} of the transposed convolution is "
                         f"too small (input {x.shape[-2:]}, padding {padding})")
    if not isinstance(input, Tensor):
        input = Tensor(x)
    unbatched = x.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    out = ConvTranspose2d.apply(input, weight, bias, (stride, padding, output_padding, dilation,
                                                      groups, out_size))
    return out[0] if unbatched else out
