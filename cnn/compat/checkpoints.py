"""The original library's checkpoints: ``save_model`` / ``load_model`` and its pickled format."""
import os
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from .. import serialization
from ..nn import Conv2d, Linear

__all__ = ["save_model", "load_model", "state_dict_from_seed"]


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
            problems.append(f"entry {position} for {key!r}: expected shape "
                            f"{tuple(param.shape)}, got {given}")
        state[key] = value
    if problems:
        raise ValueError(f"{name} does not fit the model:\n\t" + "\n\t".join(problems))
    return state
