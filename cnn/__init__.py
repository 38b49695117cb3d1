"""cnn: convolutional networks with PyTorch's interface, NumPy at run time and Cython kernels."""
from .config import __version__, show_config
from .parallel import get_num_threads, openmp_enabled, set_num_threads

__all__ = ["__version__", "show_config", "get_num_threads", "set_num_threads", "openmp_enabled"]
