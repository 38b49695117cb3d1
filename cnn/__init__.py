"""cnn: convolutional networks with PyTorch's interface, NumPy at run time and Cython kernels.

The floors, each importing only from those below (ARCHITECTURE.md): kernels (``cnn._ext``),
autograd (``cnn.tensor``, ``cnn.autograd``), ``cnn.nn.functional``, the library (``cnn.nn``,
``cnn.optim``, ``cnn.utils.data``, ``cnn.datasets``, checkpoints), front ends (``cnn.compat``,
the command line).

Where a differentiable op lives: an op PyTorch offers as a ``Tensor`` method or a ``torch.*``
function (arithmetic, reductions, shapes, indexing, casts) is a Function in
``cnn/autograd/ops/``; an op of ``torch.nn.functional`` (a layer's math: convolution, pooling,
activations, normalization, losses, dropout) is a Function in ``cnn/nn/functional/<family>.py``,
beside the public function that checks its arguments. Where both exist, the functional home
wins and the Tensor method calls it (``cnn.nn.functional`` attaches those methods).

``import cnn as torch`` gives a PyTorch script the names it uses at the top level: the
``torch.*`` functions (:mod:`cnn.functions`, :mod:`cnn.creation`), the dtypes
(``cnn.float32``, ``cnn.long``, ...), grad modes, ``cnn.device`` and the ``cuda`` /
``backends`` / ``accelerator`` queries (all answering that cnn runs on the CPU).
"""
import sys as _sys

from . import _startup

if _startup.launched_as_module():  # `python -m cnn`: see cnn/_startup.py
    _startup.quiet_interrupts()
    if _startup.runs_the_command_line():
        _startup.hold_interrupts()  # released by cnn/__main__.py

import numpy as _np

from . import _malloc

_malloc.tune()  # before the first step's arrays: see cnn/_malloc.py

from . import autograd
from .autograd import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                       no_grad, set_grad_enabled)
from .runtime_info import show_config
from .version import __version__
from .threads import get_num_threads, openmp_enabled, set_num_threads
from .random import get_rng_state, manual_seed, set_rng_state
from .tensor import Size, Tensor
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, ones, ones_like, rand, rand_like, randint, randint_like, randn,
                       randn_like, randperm, tensor, zeros, zeros_like)
from .functions import *  # noqa: F401,F403  (the torch.* functions: cat, stack, where, max, ...)
from .functions import __all__ as _function_names
from .devices import device
from . import accelerator, backends, cuda
from . import nn, optim  # noqa: E402  (after Tensor: both build on it)
from .nn.functional import log_softmax, relu, sigmoid, softmax, tanh
from . import utils
from .utils import data
from . import compat, datasets, profiler, serialization, transforms
from . import onnx  # noqa: E402  (needs the onnx package only when export runs)
from .compat import Cross_entropy, DataLoader, Sequential
from .nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from .optim import SGD
from .replay import compile
from .serialization import load, save
# Last: `float`, `int` and `bool` are dtype names here, as in torch.
from ._dtypes import (  # noqa: A004  (the dtype names shadow builtins, as torch's do)
    bool, double, float, float16, float32, float64, get_default_dtype, half, int, int8, int16,
    int32, int64, is_floating_point, long, set_default_dtype, short, uint8)

dtype = _np.dtype  # torch.dtype: what `tensor.dtype` is an instance of

__all__ = [
    "__version__", "show_config", "get_num_threads", "set_num_threads", "openmp_enabled",
    "Tensor", "Size", "device", "dtype", "tensor", "as_tensor", "from_numpy", "zeros", "ones",
    "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like", "rand", "randn",
    "randint", "randperm", "rand_like", "randn_like", "randint_like", "arange", "linspace",
    "eye", "bool", "uint8", "int8", "int16", "short", "int32", "int", "int64", "long",
    "float16", "half", "float32", "float", "float64", "double", "get_default_dtype",
    "set_default_dtype", "is_floating_point", "relu", "sigmoid", "tanh", "softmax",
    "log_softmax", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
    "is_grad_enabled", "is_inference_mode_enabled", "autograd", "nn", "optim", "cuda",
    "backends", "accelerator", "manual_seed", "get_rng_state", "set_rng_state",
    "utils", "data", "datasets", "transforms", "profiler", "compat", "serialization", "save",
    "load", "onnx", "compile",
    # the original library's names (SPEC section 4)
    "Sequential", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "Cross_entropy", "SGD",
    "DataLoader",
] + _function_names

# cnn.data is cnn.utils.data (PyTorch's dotted path) under its first name: the very same module
# objects, so that `import cnn.data.loader` does not load a second copy of the classes.
for _name, _module in list(_sys.modules.items()):
    if _name == "cnn.utils.data" or _name.startswith("cnn.utils.data."):
        _sys.modules["cnn.data" + _name[len("cnn.utils.data"):]] = _module
del _name, _module
