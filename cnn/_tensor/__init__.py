"""The methods of ``cnn.Tensor``, by family: each module holds one mixin class.

``shaping`` (views, reshapes, indexing, concatenation helpers), ``math`` (arithmetic and
elementwise functions, comparisons, matrix products), ``reductions`` (sums, extremes,
statistics, sorting), ``inplace`` (``add_``, ``+=``, ``fill_``, ...), ``conversion`` (dtypes,
devices, new tensors like this one). ``cnn/tensor.py`` combines them with the class's state.

Like the engine, these modules know the Tensor class through
:func:`cnn.autograd.function.register_tensor_class`, since ``cnn.tensor`` imports them.
"""
