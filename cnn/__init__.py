"""cnn: convolutional networks with PyTorch's interface, NumPy at run time and Cython kernels.

The floors, each importing only from those below (ARCHITECTURE.md): kernels (``cnn._ext``),
autograd (``cnn.tensor``, ``cnn.autograd``), ``cnn.nn.functional``, the library (``cnn.nn``,
``cnn.optim``, ``cnn.utils.data``, ``cnn.datasets``, checkpoints), front ends (``cnn.compat``,
the command line).

Where a differentiable op lives: an op PyTorch offers as a ``Tensor`` method or a ``torch.*``
function (arithmetic, reductions, shapes, indexing, casts) is a Function in
``cnn/autograd/ops.py``; an op of ``torch.nn.functional`` (a layer's math: convolution, pooling,
activations, normalization, losses, dropout) is a Function in ``cnn/nn/functional/<family>.py``,
beside the public function that checks its arguments. Where both exist, the functional home
wins and the Tensor method calls it.
"""
import sys as _sys

from . import _malloc

_malloc.tune()  # before the first step's arrays: see cnn/_malloc.py

from . import autograd
from .autograd import enable_grad, is_grad_enabled, no_grad
from .runtime_info import show_config
from .version import __version__
from .threads import get_num_threads, openmp_enabled, set_num_threads
from .random import get_rng_state, manual_seed, set_rng_state
from . import nn, optim  # noqa: E402  (after Tensor: both build on it)
from . import utils
from .utils import data
from . import compat, datasets, profiler, serialization, transforms
from . import onnx  # noqa: E402  (needs the onnx package only when export runs)
from .compat import Cross_entropy, DataLoader, Sequential
from .nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from .optim import SGD
from .replay import compile
from .serialization import load, save
from .tensor import (Tensor, float16, float32, float64, from_numpy, int32, int64, ones,
                     ones_like, randn, tensor, uint8, zeros, zeros_like)

__all__ = [
    "__version__", "show_config", "get_num_threads", "set_num_threads", "openmp_enabled",
    "Tensor", "tensor", "from_numpy", "zeros", "ones", "zeros_like", "ones_like", "randn",
    "float16", "float32", "float64", "int32", "int64", "uint8",
    "no_grad", "enable_grad", "is_grad_enabled", "autograd", "nn", "optim",
    "manual_seed", "get_rng_state", "set_rng_state",
    "utils", "data", "datasets", "transforms", "profiler", "compat", "serialization", "save",
    "load", "onnx", "compile",
    # the original library's names (SPEC section 4)
    "Sequential", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "Cross_entropy", "SGD",
    "DataLoader",
]

# cnn.data is cnn.utils.data (PyTorch's dotted path) under its first name: the very same module
# objects, so that `import cnn.data.loader` does not load a second copy of the classes.
for _name, _module in list(_sys.modules.items()):
    if _name == "cnn.utils.data" or _name.startswith("cnn.utils.data."):
        _sys.modules["cnn.data" + _name[len("cnn.utils.data"):]] = _module
del _name, _module
