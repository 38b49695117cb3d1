"""The original library's names, kept working.

``cnn`` grew from a pure-NumPy teaching library whose README trained LeNet-5 like this::

    from cnn import (Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Cross_entropy, SGD,
                     DataLoader)

    model = Sequential(Conv2d(in_channels=1, out_channels=6, kernel_size=5, padding=2), ReLU(),
                       ...)
    optimizer = SGD(model, lr=1e-3)
    for images, labels in DataLoader(train_images, train_labels, batch_size=10, shuffle=True):
        loss = Cross_entropy(model, images, labels)
        loss.backward()
        optimizer.step()
    model.save_model("pretrained_model")          # writes pretrained_model.npy
    model.load_model("pretrained_model.npy")

That code runs unchanged. The layers, ``Sequential`` and ``SGD`` are the library's own
PyTorch-style classes (``cnn.optim.SGD`` accepts a model as its parameters). This module holds
what has no PyTorch counterpart:

* :class:`Cross_entropy`, a loss object that runs the forward pass and whose ``backward()``
  replaces the previous gradients, so a loop without ``zero_grad()`` trains correctly;
* :class:`DataLoader`, which also accepts the original's ``(images, labels, batch_size,
  shuffle)`` form;
* :func:`save_model` / :func:`load_model` behind ``Sequential.save_model`` and
  ``Sequential.load_model``: safe ``.npz`` checkpoints under the original's ``.npy`` name, and
  reading the original's pickled checkpoints on explicit request.

The per-layer timing the original kept always on is :mod:`cnn.profiler`, switched on with
``model.enable_profiling()``.
"""
import inspect
import operator
import os
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from . import data, serialization
from .nn import Conv2d, Linear
from .nn import functional as F
from .tensor import Tensor

__all__ = ["Cross_entropy", "DataLoader", "save_model", "load_model", "state_dict_from_seed"]


# ***** the loss *****

class Cross_entropy:  # noqa: N801 (the original library's name)
    """The original library's loss: runs the model and holds the mean cross-entropy.

    ``loss.backward()`` first sets every parameter's gradient to None, so each step's
    gradients replace the previous step's, as in the original library. That makes a training
    loop without ``optimizer.zero_grad()`` correct. (PyTorch's ``loss.backward()`` adds to the
    gradients instead; use ``F.cross_entropy`` or ``nn.CrossEntropyLoss`` for that behaviour.)

    Args:
        model (Module): The network; called once on `images` here.
        images: Its input, e.g. ``(N, 1, 28, 28)`` float32 (a NumPy array or Tensor).
        labels: The class indices ``(N,)``, an array (or Tensor) of any integer dtype.

    Attributes:
        loss (Tensor): The loss, a 0-d Tensor recorded for backward.
        model (Module): The model whose parameters ``backward()`` fills.

    Raises:
        TypeError: If `model` is not a Module, or `labels` are not integers (the message names
            the dtype).
        ValueError: If `labels` have the wrong shape or a class out of range.

    Example::

        loss = Cross_entropy(model, images, labels)
        loss.backward()
        optimizer.step()
        print(loss)          # 2.3012...
    """

    def __init__(self, model, images, labels):
        if not callable(model) or not hasattr(model, "parameters"):
            raise TypeError(f"model: expected a cnn.nn.Module, got {type(model).__name__}")
        self.model = model
        self.loss = F.cross_entropy(model(images), _class_indices(labels))

    def backward(self):
        """Compute the gradients of the loss, replacing the parameters' previous gradients."""
        for param in self.model.parameters():
            param.grad = None
        self.loss.backward()

    def item(self):
        """Return the loss as a Python float."""
        return self.loss.item()

    def __float__(self):
        return self.item()

    def __format__(self, spec):
        return format(self.item(), spec)

    def __str__(self):
        return str(self.item())

    def __repr__(self):
        return f"Cross_entropy({self.item()})"


def _class_indices(labels):
    """Integer labels as int64 (the original accepted any integer array, e.g. MNIST's uint8)."""
    array = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if array.dtype.kind not in "iu":
        raise TypeError(f"labels: expected integer class indices, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


# ***** the data loader *****

def _seed_form(images, labels, batch_size=1, shuffle=False, drop_last=True, seed=None,
               dtype=np.float32, as_tensor=False):
    """The signature of the original library's form of :class:`DataLoader` (bound, not run)."""


_SEED_SIGNATURE = inspect.signature(_seed_form)


class DataLoader(data.DataLoader):
    """:class:`cnn.data.DataLoader`, which also accepts the original library's arguments.

    Two forms, told apart by the second argument (an array of labels, or ``labels=``):

    * ``DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, ...)``:
      exactly :class:`cnn.data.DataLoader`.
    * ``DataLoader(images, labels, batch_size=1, shuffle=False, drop_last=True, seed=None,
      dtype=numpy.float32, as_tensor=False)``: the original library's form. `images` is
      ``(N, H, W)`` (or ``(N, C, H, W)``) of any real dtype, uint8 included; `labels` is
      ``(N,)``. Each batch is a list ``[images (B, 1, H, W), labels (B,)]``: images are cast to
      `dtype` without rescaling (the original trained on raw 0-255 pixels) one batch at a time,
      so uint8 data stays uint8 in memory. As in the original, a last incomplete batch is
      dropped (``drop_last=True``).

    In both forms the loader also behaves like the original's list of batches: ``len(loader)``
    is the number of batches and ``loader[i]`` is the i-th batch of the current epoch's order
    (the order of the latest iteration, or of the next one if none has started), and every new
    iteration reshuffles (with ``shuffle=True``).

    Raises:
        TypeError: For arguments neither form accepts, images of a non-numeric dtype, or a
            `dtype` that is not floating point.
        ValueError: For images that are not 3-d or 4-d, labels that are not 1-d, or different
            numbers of images and labels.
    """

    def __init__(self, dataset, *args, **kwargs):
        if "labels" in kwargs or (args and _is_array_like(args[0])):
            bound = _SEED_SIGNATURE.bind(dataset, *args, **kwargs)
            bound.apply_defaults()
            options = bound.arguments
            dataset = _ImagesAndLabels(options["images"], options["labels"], options["dtype"])
            super().__init__(dataset, options["batch_size"], options["shuffle"],
                             drop_last=options["drop_last"], seed=options["seed"],
                             as_tensor=options["as_tensor"])
        else:
            super().__init__(dataset, *args, **kwargs)
        self._order = None
        self._drawn_for_indexing = False

    def set_epoch(self, epoch):
        """As :meth:`cnn.data.DataLoader.set_epoch`; an order drawn by indexing is dropped."""
        super().set_epoch(epoch)
        if self._drawn_for_indexing:
            self._order, self._drawn_for_indexing = None, False

    def __iter__(self):
        if not self._drawn_for_indexing:
            self._order = self._next_order()
        self._drawn_for_indexing = False
        return self._batches(self._order)

    def __getitem__(self, index):
        """Return batch `index` (an int, negative counting from the end, or a slice).

        Raises:
            IndexError: If `index` is out of range.
        """
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = operator.index(index)
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"batch index {index} is out of range for a DataLoader of "
                             f"{count} batches")
        if self._order is None:
            self._order = self._next_order()
            self._drawn_for_indexing = True
        start = (index % count) * self.batch_size
        return next(self._batches(self._order[start:start + self.batch_size]))

    def _next_order(self):
        order = self._epoch_order(self.epoch)
        self.epoch += 1
        return order


def _is_array_like(value):
    """Whether `value` can be the labels array (a batch size is an integer, not an array)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        operator.index(value)
    except TypeError:
        return isinstance(value, (np.ndarray, Tensor, list, tuple))
    return False


class _ImagesAndLabels(data.Dataset):
    """Images and labels in memory; a batch is ``[images (B, C, H, W) dtype, labels (B,)]``."""

    supports_batch_indexing = True

    def __init__(self, images, labels, dtype):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype.kind not in "biuf":
            raise TypeError(f"images: expected a numeric array, got dtype {images.dtype}")
        if images.ndim not in (3, 4):
            raise ValueError(f"images: expected shape (N, H, W) or (N, C, H, W), got "
                             f"{images.shape}")
        if labels.ndim != 1:
            raise ValueError(f"labels: expected shape (N,), got {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"images and labels: expected as many labels as images, got "
                             f"{len(images)} images and {len(labels)} labels")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype: expected a floating-point dtype, got {dtype}")
        self.images, self.labels, self.dtype = images, labels, dtype

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        pixels = self.images[index]
        if self.images.ndim == 3:
            pixels = pixels[..., None, :, :]
        return [pixels.astype(self.dtype), self.labels[index]]


# ***** checkpoints *****

def save_model(model, name):
    """Write `model`'s state dict to ``name + ".npy"`` (atomically; see :func:`cnn.save`).

    The content is an ``.npz`` archive without pickle, under the original library's ``.npy``
    name; ``numpy.load`` recognises it by its content and :func:`load_model` reads it back.

    Args:
        model (Module): The model.
        name (str or os.PathLike): The file name; ``.npy`` is appended unless already there.

    Returns:
        str: The path written.
    """
    path = os.fspath(name)
    if not path.endswith(".npy"):
        path += ".npy"
    serialization.save(model.state_dict(), path)
    return path


def load_model(model, path, allow_pickle=False):
    """Load a checkpoint into `model`, validating everything before changing anything.

    Reads what :func:`save_model` or :func:`cnn.save` wrote (a state dict, or a dict holding
    it under ``"model"``), a ``numpy.savez`` archive of a state dict, and, with
    ``allow_pickle=True``, the original library's checkpoints: a pickled object array of the
    parameters in layer order (see :func:`state_dict_from_seed`).

    Args:
        model (Module): The model to fill, in place.
        path (str or os.PathLike): The checkpoint file.
        allow_pickle (bool): Allow reading the original library's pickled checkpoints.
            Unpickling runs code stored in the file: pass True only for files you trust.

    Returns:
        Module: `model`.

    Raises:
        OSError: If the file cannot be opened.
        ValueError: If the file is not a checkpoint, holds pickled objects while `allow_pickle`
            is False, or does not fit the model (missing or unexpected keys, other shapes); the
            message names the file. The model is then unchanged.
        TypeError: If the checkpoint's values have dtypes the model cannot take.
    """
    name = repr(os.fspath(path))
    with open(path, "rb") as file:
        kind = serialization._sniff(file)
    if kind == "npy-objects":
        if not allow_pickle:
            raise ValueError(
                f"{name} contains pickled Python objects (the original library's checkpoint "
                "format). Unpickling runs code stored in the file, so it is refused by "
                "default: pass allow_pickle=True only for a file you trust.")
        try:
            params = np.load(path, allow_pickle=True)
        # Unpickling a damaged file can fail in any way (UnpicklingError, EOFError,
        # AttributeError, ImportError, ...): all of them mean the same thing here.
        except Exception as error:  # noqa: BLE001
            raise ValueError(f"{name}: cannot read the original library's pickled checkpoint "
                             f"(truncated or corrupted?): {type(error).__name__}: "
                             f"{error}") from None
        state = state_dict_from_seed(model, params, name)
    else:
        state = serialization.load(path)
        if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
            state = state["model"]
        if not isinstance(state, Mapping):
            raise ValueError(f"{name}: holds a {type(state).__name__}, not a state dict")
    try:
        model.load_state_dict(state)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{name}: {error}") from None
    return model


def state_dict_from_seed(model, params, name="the checkpoint"):
    """Map the original library's parameter list onto `model`'s Conv2d and Linear layers.

    The original saved, for each Conv2d and Linear layer in order, its weight then its bias:
    conv kernel ``(out, in, k, k)``, conv bias ``(out,)``, linear weight ``(in, out)`` and
    linear bias ``(1, out)``. Linear weights are transposed to PyTorch's ``(out, in)`` and
    biases flattened. Everything is checked before anything is returned.

    Args:
        model (Module): The architecture the parameters belong to.
        params: The parameter arrays in layer order (e.g. the loaded object array).
        name (str): How error messages refer to the source.

    Returns:
        OrderedDict: A state dict for ``model.load_state_dict``.

    Raises:
        ValueError: If the number of arrays or any shape does not fit the model (every
            problem is listed).
        TypeError: If an entry is not a numeric array.
    """
    slots = []  # (state_dict key, parameter, is a Linear weight)
    for prefix, module in model.named_modules():
        if isinstance(module, (Conv2d, Linear)):
            dot = prefix + "." if prefix else ""
            slots.append((dot + "weight", module.weight, isinstance(module, Linear)))
            if module.bias is not None:
                slots.append((dot + "bias", module.bias, False))
    try:
        arrays = list(params)
    except TypeError:  # e.g. a 0-d array
        raise TypeError(f"{name}: expected a sequence of parameter arrays, got "
                        f"{type(params).__name__}") from None
    if len(arrays) != len(slots):
        raise ValueError(f"{name} holds {len(arrays)} parameter arrays, but the model's "
                         f"Conv2d and Linear layers have {len(slots)} parameters (weight, then "
                         f"bias, per layer in order): {', '.join(key for key, _, _ in slots)}")
    state, problems = OrderedDict(), []
    for position, ((key, param, transpose), array) in enumerate(zip(slots, arrays)):
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
            raise TypeError(f"{name}: entry {position} (for {key!r}) is not a numeric array, "
                            f"got {type(array).__name__}")
        value = array.T if transpose else array
        if key.endswith("bias") and value.ndim == 2 and 1 in value.shape:
            value = value.reshape(-1)
        if value.shape != param.shape:
            given = f"{array.shape} (transposed: {value.shape})" if transpose else array.shape
            problems.append(f"entry {position} for {key!r}: expected shape {param.shape}, got "
                            f"{given}")
        state[key] = value
    if problems:
        raise ValueError(f"{name} does not fit the model:\n\t" + "\n\t".join(problems))
    return state
