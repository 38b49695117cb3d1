"""LeNet-5 as the command line trains it, loading it from a checkpoint, and its predictions."""
import os
from collections.abc import Mapping

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..utils.data import DataLoader
from ..serialization import load
from .errors import CommandError

# What a checkpoint of `cnn train` says it is (its "format" entry).
TRAIN_CHECKPOINT = "cnn train checkpoint"
# Where `cnn train` writes its checkpoint, and where `evaluate` and `classify` look by default.
DEFAULT_CHECKPOINT = "lenet_mnist.npz"
# Where PyTorch training scripts usually put the model in a checkpoint dict.
_MODEL_KEYS = ("model", "state_dict", "model_state_dict")


def lenet5():
    """LeNet-5 for 1 x 28 x 28 images, exactly the original library's (SPEC section 4).

    A Sequential, so that each Conv2d -> ReLU -> MaxPool2d(2) runs as one fused op. Its
    weights come from ``cnn``'s generator: call ``cnn.manual_seed`` first for a reproducible
    start. 61,706 parameters.
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def load_lenet5(path):
    """LeNet-5 with the weights of `path`.

    Args:
        path: A checkpoint of ``cnn train``, a plain state dict of LeNet-5 saved with
            ``cnn.save(model.state_dict(), path)`` or ``model.save_model(name)``, or a PyTorch
            checkpoint of the same architecture (``torch.save(model.state_dict(), path)``, or a
            dict holding it under ``"model"``, ``"state_dict"`` or ``"model_state_dict"``).

    Returns:
        tuple: ``(model, checkpoint)``: the model in eval mode, and the whole checkpoint that
        held the state dict (``cnn train``'s has ``"epoch"``, ``"args"``, ...) or None for a
        plain state dict.

    Raises:
        CommandError: If the file cannot be read or does not hold LeNet-5's weights; the
            message names the file.
    """
    if not os.path.exists(path):
        hint = (" (`train` writes it)" if os.path.basename(path) == DEFAULT_CHECKPOINT
                else "")
        raise CommandError(f"no model {path} in {os.path.abspath(os.path.dirname(path))}"
                           f"{hint}: train one first, or pass --model FILE")
    try:
        saved = load(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read the model {path}: {error}") from None
    checkpoint = None
    model = lenet5()
    if isinstance(saved, Mapping) and saved.get("format") == TRAIN_CHECKPOINT:
        checkpoint, saved = saved, saved.get("model")
    elif isinstance(saved, Mapping) and not set(model.state_dict()) & set(saved):
        inner = [key for key in _MODEL_KEYS if isinstance(saved.get(key), Mapping)]
        if inner:
            checkpoint, saved = saved, saved[inner[0]]
    try:
        model.load_state_dict(saved)
    except (TypeError, ValueError, KeyError) as error:
        raise CommandError(f"{path} does not hold LeNet-5's weights: {error}") from None
    return model.eval(), checkpoint


def predict(model, dataset, batch_size=1000):
    """The predicted class of every image of `dataset`, as an int64 array.

    The model is switched to eval mode and back to the mode it was in; no graph is recorded.
    """
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            batches = [np.asarray(model(images)).argmax(axis=1)
                       for images, _ in DataLoader(dataset, batch_size=batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(batches) if batches else np.empty(0, np.int64)
