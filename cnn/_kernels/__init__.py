"""Checked wrappers around the compiled kernels of `cnn._ext`.

Each wrapper validates shapes, dtypes and arguments (raising ValueError or TypeError that names the
argument), makes its inputs C-contiguous, allocates the output and calls the kernel chosen for this
CPU. A kernel never sees an unchecked shape. Arrays in, arrays out: no autograd here.
"""
from .im2col import col2im, im2col
from .pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

__all__ = ["im2col", "col2im", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
           "avg_pool2d_backward"]
