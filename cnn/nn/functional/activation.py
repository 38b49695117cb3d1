"""Element-wise activations and (log-)softmax."""
import numpy as np

from cnn import _ext
from cnn._validation import dimension, real_number
from cnn.autograd import Function
from cnn.threads import kernel_threads

from ._inputs import float_array_of


def _contiguous(array):
    """array in C order, of its own shape (np.ascontiguousarray would make a 0-d array 1-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


class ReLU(Function):
    """max(x, 0), one pass of cnn/_ext/elementwise.pyx each way; keeps only its output (the
    gradient passes where the output is not <= 0, as torch's threshold_backward)."""

    per_image = (0,)

    @staticmethod
    def forward(ctx, x):
        x = _contiguous(x)
        out = np.empty_like(x)
        _ext.backend.elementwise.relu(x.reshape(-1), out.reshape(-1), kernel_threads())
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        return relu_backward(grad_output, out, kernel_threads())


class AddReLU(Function):
    """relu(a + b) in one pass, for arrays of one shape and dtype: a residual connection's sum
    and its ReLU (cnn.compile fuses them); the values and gradients of Add and ReLU."""

    per_image = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        a, b = _contiguous(a), _contiguous(b)
        out = np.empty_like(a)
        _ext.backend.elementwise.add_relu(a.reshape(-1), b.reshape(-1), out.reshape(-1),
                                          kernel_threads())
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        grad = relu_backward(grad_output, out, kernel_threads())
        return grad, grad


def relu_backward(grad_output, out, num_threads):
    """The gradient through a ReLU whose output is `out`: grad_output where out > 0, else 0."""
    grad_output = _contiguous(grad_output)
    grad_input = np.empty_like(out)
    _ext.backend.elementwise.relu_backward(grad_output.reshape(-1), out.reshape(-1),
                                           grad_input.reshape(-1), num_threads)
    return grad_input


class LeakyReLU(Function):
    """x where x > 0, else negative_slope * x."""

    @staticmethod
    def forward(ctx, x, negative_slope):
        slope = x.dtype.type(negative_slope)
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.slope = slope
        return np.where(positive, x, x * slope)

    @staticmethod
    def backward(ctx, grad_output):
        (positive,) = ctx.saved_tensors
        return np.where(positive, grad_output, grad_output * ctx.slope), None


class Sigmoid(Function):
    """1 / (1 + exp(-x)), computed without overflow; keeps its output."""

    @staticmethod
    def forward(ctx, x):
        # exp of a non-positive number never overflows: use exp(-|x|) on both sides.
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        return grad_output * out * (1 - out)


class Tanh(Function):
    """tanh(x); keeps its output."""

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        return grad_output * (1 - out * out)


def log_softmax_array(x, dim):
    """log(softmax(x)) along `dim`, shifted by the row maximum so that no exp overflows.

    A -inf (a masked class) gives -inf and leaves the rest finite; a row of only -inf, or with
    a +inf or a nan, gives nan throughout, as in PyTorch (and without NumPy's warnings).
    """
    if x.size == 0:  # nothing to normalise (and no maximum to shift by)
        return np.empty_like(x)
    with np.errstate(invalid="ignore"):  # -inf - -inf and inf - inf: nan, as PyTorch's
        shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


class Softmax(Function):
    """exp(x) / sum(exp(x)) along dim; backward y * (g - sum(g * y))."""

    @staticmethod
    def forward(ctx, x, dim):
        out = np.exp(log_softmax_array(x, dim))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        inner = (grad_output * out).sum(axis=ctx.dim, keepdims=True)
        return out * (grad_output - inner), None


class LogSoftmax(Function):
    """x - logsumexp(x) along dim; backward g - softmax * sum(g)."""

    @staticmethod
    def forward(ctx, x, dim):
        out = log_softmax_array(x, dim)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        total = grad_output.sum(axis=ctx.dim, keepdims=True)
        return grad_output - np.exp(out) * total, None


def relu(input, inplace=False):
    """Rectified linear unit, max(input, 0). `inplace` is accepted and computed out of place
    (the same values)."""
    float_array_of(input, "input")
    return ReLU.apply(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """input where positive, negative_slope * input elsewhere. `inplace` is accepted and
    computed out of place (the same values)."""
    float_array_of(input, "input")
    return LeakyReLU.apply(input, real_number(negative_slope, "negative_slope"))


def sigmoid(input):
    """The logistic function 1 / (1 + exp(-input))."""
    float_array_of(input, "input")
    return Sigmoid.apply(input)


def tanh(input):
    """Hyperbolic tangent."""
    float_array_of(input, "input")
    return Tanh.apply(input)


def softmax(input, dim):
    """exp(input) normalised to sum to 1 along `dim` (stable for any magnitude)."""
    x = float_array_of(input, "input")
    return Softmax.apply(input, dimension(dim, x.ndim))


def log_softmax(input, dim):
    """log(softmax(input, dim)), computed with log-sum-exp (no overflow, no log(0))."""
    x = float_array_of(input, "input")
    return LogSoftmax.apply(input, dimension(dim, x.ndim))
