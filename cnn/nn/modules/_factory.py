"""How layers create their parameters: dtype (the default dtype, float32 unless
``cnn.set_default_dtype`` changed it) and PyTorch's initialisation."""
import math

import numpy as np

from cnn import _aligned
from cnn._dtypes import get_default_dtype
from cnn._validation import FLOAT_DTYPES
from cnn.nn import init
from cnn.nn.parameter import Parameter


def parameter_dtype(dtype):
    """The dtype of a new layer's parameters: the default dtype unless another is asked for."""
    try:
        dtype = np.dtype(get_default_dtype() if dtype is None else dtype)
    except TypeError:
        dtype = repr(dtype)  # not a dtype at all: named in the error below
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
    return dtype


def reset_weight_and_bias(weight, bias):
    """PyTorch's default for Linear and Conv2d: Kaiming-uniform with a=sqrt(5), i.e.
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight, and the same bound for the bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


def add_weight_and_bias(module, weight_shape, bias, dtype, outputs=None):
    """Give `module` (a Linear or a convolution) an uninitialised `weight` of `weight_shape` and
    a `bias` of one value per output (``outputs``, by default ``weight_shape[0]``; or None when
    `bias` is false); reset_parameters fills them."""
    dtype = parameter_dtype(dtype)
    # Aligned: cnn/_aligned.py says what unaligned weights cost the kernels.
    module.weight = Parameter(_aligned.empty(weight_shape, dtype))
    if bias:
        module.bias = Parameter(_aligned.empty(weight_shape[:1] if outputs is None else (outputs,),
                                               dtype))
    else:
        module.register_parameter("bias", None)
