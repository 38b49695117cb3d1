"""Merging samples into batches, and arrays into Tensors, as ``torch.utils.data``'s
``default_collate`` and ``default_convert``.

The loader collates into NumPy arrays first (:func:`collate_arrays`): arrays are what worker
processes put in shared memory. The arrays become Tensors at the very end, in the process that
iterates (:func:`arrays_to_tensors`, without copying).
"""
import collections.abc
import numbers

import numpy as np

from ...tensor import Tensor, from_numpy

__all__ = ["default_collate", "default_convert", "collate_arrays", "arrays_to_tensors",
           "map_structure"]


def default_collate(batch):
    """Merge a list of samples into one batch of Tensors, as PyTorch's ``default_collate``.

    Arrays and Tensors are stacked along a new first dimension; Python and NumPy numbers become
    a 1-d Tensor (ints int64, floats float64, bools bool, NumPy scalars keep their dtype);
    dicts are collated key by key, named tuples field by field, and other tuples and lists
    element by element into a list (PyTorch's rule); strings stay a list.

    Args:
        batch: A non-empty list of samples of the same structure.

    Returns:
        The batch: a Tensor, or the samples' container type holding Tensors.

    Raises:
        TypeError: For an element type it cannot collate.
        ValueError: If there are no samples, or sequence samples differ in length.

    Example::

        >>> default_collate([(np.zeros(3), 1), (np.ones(3), 2)])
        [tensor(...) of shape (2, 3), tensor([1, 2])]
    """
    return arrays_to_tensors(collate_arrays(batch))


def collate_arrays(batch):
    """:func:`default_collate`, leaving the batch as NumPy arrays (Tensors are read as arrays)."""
    if not len(batch):
        raise ValueError("batch: expected at least one sample to collate, got none")
    first = batch[0]
    if isinstance(first, (np.ndarray, Tensor)):
        arrays = [np.asarray(sample) for sample in batch]
        _check_collatable(arrays[0].dtype)
        return np.stack(arrays)
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, (np.generic, numbers.Number)):
        # Python ints/floats go through np.array's own promotion: int64 and float64.
        merged = np.array(batch)
        _check_collatable(merged.dtype)
        return merged
    if isinstance(first, collections.abc.Mapping):
        return {key: collate_arrays([sample[key] for sample in batch]) for key in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # a named tuple
        return type(first)(*(collate_arrays(list(field)) for field in _transpose(batch)))
    if isinstance(first, collections.abc.Sequence):
        return [collate_arrays(list(field)) for field in _transpose(batch)]
    raise TypeError("default_collate: batch must contain tensors, numpy arrays, numbers, "
                    f"dicts or lists; found {type(first).__name__}")


def _transpose(batch):
    lengths = {len(sample) for sample in batch}
    if len(lengths) > 1:
        raise ValueError("each element in list of batch should be of equal size (default_collate "
                         f"got samples of lengths {sorted(lengths)})")
    return zip(*batch)


def _check_collatable(dtype):
    # Strings and objects are not numbers: PyTorch's collate refuses them too.
    if dtype.kind not in "biufc":
        raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                        f"dicts or lists; found arrays of dtype {dtype}")


def default_convert(data):
    """Turn NumPy arrays into Tensors (no copy), keeping containers, as PyTorch's
    ``default_convert``: what the loader applies to each sample when batching is off
    (``batch_size=None``).

    Args:
        data: A sample: an array, a number, a string, or a dict, list or tuple of them.

    Returns:
        The sample with every non-object array as a Tensor; tuples become lists (PyTorch's
        rule), named tuples stay named tuples, numbers stay numbers.
    """
    return arrays_to_tensors(data, tuples_as_lists=True)


def arrays_to_tensors(data, tuples_as_lists=False):
    """Wrap every numeric NumPy array inside `data` in a Tensor (sharing memory), keeping the
    containers (tuples as lists when `tuples_as_lists`)."""
    return map_structure(data, _as_tensor, tuples_as_lists)


def _as_tensor(leaf):
    if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "biuf":
        return from_numpy(leaf)
    return leaf


def map_structure(data, function, tuples_as_lists=False):
    """`data` with `function` applied to everything that is not a list, tuple or dict inside
    it, the containers rebuilt (named tuples as themselves, other tuples as lists when
    `tuples_as_lists`)."""
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(map_structure(item, function, tuples_as_lists) for item in data))
    if isinstance(data, (list, tuple)):
        items = [map_structure(item, function, tuples_as_lists) for item in data]
        return items if isinstance(data, list) or tuples_as_lists else tuple(items)
    if isinstance(data, dict):
        return {key: map_structure(item, function, tuples_as_lists)
                for key, item in data.items()}
    return function(data)
