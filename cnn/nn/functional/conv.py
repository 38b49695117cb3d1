"""2-D convolution, and its fusion with ReLU and a 2x2 max-pool, through convolution plans.

The public functions check what they are given once: tensor types, dtypes and dimensions here,
the geometry (channels, groups, kernel against the padded input) in the plan that
``cnn._ext.conv_plan`` builds for it on first use and then reuses. Below them nothing checks
again: the Functions hand the arrays to the plan (cnn/_ext/conv.pyx), which runs the kernels
that suit the geometry.
"""
from cnn import _ext
from cnn.autograd import Function
from cnn.threads import kernel_threads

from ._inputs import array_of, float_array_of, same_dtype
from .activation import relu_backward


class Conv2d(Function):
    """Convolution of (N, C, H, W) by weights (F, C/groups, KH, KW), run by the layer's plan:
    direct or Winograd kernels for groups = 1, im2col + a BLAS product per image for grouped
    and 1x1 layers (whose columns are kept for the weight gradient). The input gradient is
    skipped when the input needs none (the first layer).

    cnn.compile folds the ops that alone take a convolution's output into its kernels' last
    step, with the same arithmetic: with `relu`, a ReLU (backward takes the gradient through it
    first, as relu's backward would); with `batch_norm` (running_mean, running_var, weight,
    bias, eps), a batch norm in evaluation mode, before the ReLU (for forward passes without
    gradients only)."""

    per_image = (0,)  # the plan's batch-dependent choice is checked (runs_winograd)
    freezable = True

    @staticmethod
    def forward(ctx, x, weight, bias, plan, *batch_norm, relu=False):
        # Weights that will get a gradient change at the next step: no packing kept for them.
        out, columns = plan.forward(x, weight, bias, relu, keep_columns=ctx.needs_input_grad[1],
                                    num_threads=kernel_threads(), batch_norm=batch_norm or None,
                                    keep_packing=not ctx.needs_input_grad[1])
        ctx.save_for_backward(x, weight, columns, out if relu else None)
        ctx.plan = plan
        ctx.folded = bool(batch_norm)
        return out

    @staticmethod
    def inference(threads, x, weight, bias, plan, *batch_norm, relu=False, frozen=False):
        return plan.forward(x, weight, bias, relu, False, threads, batch_norm or None, None,
                            True, frozen)[0]

    @staticmethod
    def frozen(shape, weight, bias, plan, *batch_norm, relu=False):
        return plan.frozen_forward(shape[0], weight, bias, relu, batch_norm or None)

    @staticmethod
    def backward(ctx, grad_output):
        if ctx.folded:
            raise RuntimeError("Conv2d: a folded batch norm has no backward here (cnn.compile "
                               "folds it only into forward passes without gradients)")
        x, weight, columns, relu_out = ctx.saved_tensors
        threads = kernel_threads()
        if relu_out is not None:
            grad_output = relu_backward(grad_output, relu_out, threads)
        return ctx.plan.backward(x, weight, grad_output, ctx.needs_input_grad[:3], columns,
                                 threads) + (None,)


class Conv2dAddReLU(Function):
    """relu(conv2d(x, w, b) + residual) in one op, forward only: cnn.compile folds a residual
    connection's AddReLU whose first operand a convolution makes (for it alone) into that
    convolution's last step (after the batch norm it may have folded: `batch_norm` as
    Conv2d's), for forward passes without gradients. The same bits as the two ops
    (ConvPlan.forward's residual)."""

    per_image = (0, 4)
    freezable = True

    @staticmethod
    def forward(ctx, x, weight, bias, plan, residual, *batch_norm):
        return Conv2dAddReLU.inference(kernel_threads(), x, weight, bias, plan, residual,
                                       *batch_norm)

    @staticmethod
    def inference(threads, x, weight, bias, plan, residual, *batch_norm, frozen=False):
        return plan.forward(x, weight, bias, True, False, threads, batch_norm or None,
                            residual, True, frozen)[0]

    @staticmethod
    def frozen(shape, weight, bias, plan, *batch_norm):
        return plan.frozen_forward(shape[0], weight, bias, True, batch_norm or None, True)

    @staticmethod
    def backward(ctx, grad_output):
        raise RuntimeError("Conv2dAddReLU: no backward (cnn.compile folds a residual sum into "
                           "a convolution only in forward passes without gradients)")


class ConvReLUMaxPool2d(Function):
    """max_pool2d(relu(conv2d(x, w, b)), 2) as one op, with the values and gradients of the
    three: the fused kernel computes each 2x2 window's four conv outputs in one register tile
    (a 1x1 layer: its output, then max_pool2d's kernel), so the same rules hold (ReLU keeps
    NaN, the first maximum in row-major order wins, a NaN wins). Keeps the input, the weights,
    the pooled output and the argmax indices; backward sends the pooled gradient to each
    window's argmax unless the pooled value is <= 0 (ReLU's mask, by relu's backward rule: a
    NaN passes its gradient), then through the convolution, in the same kernel as Conv2d's
    backward (so the fused and separate layers agree bit for bit, NaN and inf included) and
    without the convolution-sized gradient."""

    per_image = (0,)
    freezable = True

    @staticmethod
    def forward(ctx, x, weight, bias, plan):
        # Without gradients (inference) the kernels skip the argmax indices.
        pooled, indices = plan.forward_relu_pool(x, weight, bias, kernel_threads(),
                                                 with_indices=any(ctx.needs_input_grad[:3]),
                                                 keep_packing=not ctx.needs_input_grad[1])
        ctx.save_for_backward(x, weight, pooled, indices)
        ctx.plan = plan
        return pooled

    @staticmethod
    def inference(threads, x, weight, bias, plan, frozen=False):
        return plan.forward_relu_pool(x, weight, bias, threads, False, True, frozen)[0]

    @staticmethod
    def frozen(shape, weight, bias, plan):
        return plan.frozen_forward(shape[0], weight, bias, pool=True)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight, pooled, indices = ctx.saved_tensors
        return ctx.plan.backward_relu_pool(x, weight, grad_output, pooled, indices,
                                           ctx.needs_input_grad[:3], kernel_threads()) + (None,)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution over an (N, C, H, W) input, or (C, H, W) for one image.

    Args:
        input: Tensor (N, C_in, H, W).
        weight: Tensor (C_out, C_in / groups, KH, KW).
        bias: optional Tensor (C_out,).
        stride, padding, dilation: int or pair of ints (height, width); padding is zeros.
        groups: split the channels into this many independent convolutions.

    Returns:
        Tensor (N, C_out, OH, OW) with OH = (H + 2*padding - dilation*(KH - 1) - 1) // stride + 1
        (likewise OW).
    """
    input, unbatched, plan = _checked(input, weight, bias, stride, padding, dilation, groups)
    out = Conv2d.apply(input, weight, bias, plan)
    return out[0] if unbatched else out


def conv2d_relu_max_pool2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """max_pool2d(relu(conv2d(input, weight, bias, stride, padding, dilation)), 2) in one op.

    Args:
        input: Tensor (N, C_in, H, W), or (C_in, H, W) for one image.
        weight, bias, stride, padding, dilation: as conv2d (groups = 1).

    Returns:
        Tensor (N, C_out, OH // 2, OW // 2), OH and OW being the convolution's output size.
    """
    input, unbatched, plan = _checked(input, weight, bias, stride, padding, dilation, 1)
    out = ConvReLUMaxPool2d.apply(input, weight, bias, plan)
    return out[0] if unbatched else out


def _checked(input, weight, bias, stride, padding, dilation, groups):
    """(input as a batch, whether it was one unbatched image, the plan for the geometry)."""
    x = float_array_of(input, "input", (3, 4))
    w = float_array_of(weight, "weight", (4,))
    same_dtype(w, x, "weight", "input")
    if bias is not None:
        same_dtype(array_of(bias, "bias"), x, "bias", "input")
    unbatched = x.ndim == 3
    if unbatched:
        input = input.reshape(1, *x.shape)
    return input, unbatched, _ext.conv_plan(x.shape, w.shape, stride, padding, dilation, groups,
                                            x.dtype)
