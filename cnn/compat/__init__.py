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

That code runs unchanged. The layers and ``SGD`` are the library's own PyTorch-style classes
(``cnn.optim.SGD`` accepts a model as its parameters). This package holds, in one place, what
the original had and PyTorch has not; ``cnn``'s top-level names ``Sequential``,
``Cross_entropy`` and ``DataLoader`` are these:

* :class:`Sequential` (sequential.py): :class:`cnn.nn.Sequential` plus the original's
  methods: ``save_model`` / ``load_model``, the per-layer timing (``enable_profiling``,
  ``forward_time``, ``backward_time``, ``print_profile``, on :mod:`cnn.profiler`) and
  ``print(model)`` ending with the parameter count;
* :class:`Cross_entropy` (loss.py), a loss object that runs the forward pass and whose
  ``backward()`` replaces the previous gradients, so a loop without ``zero_grad()`` trains
  correctly;
* :class:`DataLoader` (loader.py), which also accepts the original's ``(images, labels,
  batch_size, shuffle)`` form and, like the original's list, has ``len()`` and indexing;
* :func:`save_model` / :func:`load_model` (checkpoints.py): safe ``.npz`` checkpoints under the
  original's ``.npy`` name, and reading the original's pickled checkpoints on explicit request.
"""
from .checkpoints import load_model, save_model, state_dict_from_seed
from .loader import DataLoader
from .loss import Cross_entropy
from .sequential import Sequential

__all__ = ["Sequential", "Cross_entropy", "DataLoader", "save_model", "load_model",
           "state_dict_from_seed"]
