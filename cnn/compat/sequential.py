"""``Sequential`` with the original library's extras: checkpoints, per-layer timing and the
parameter count in ``print(model)``."""
from .. import profiler
from ..nn import Sequential as _Sequential
from .checkpoints import load_model, save_model

__all__ = ["Sequential"]


class Sequential(_Sequential):
    """:class:`cnn.nn.Sequential` with the original library's methods (``cnn.Sequential``).

    It runs, fuses, indexes and saves its state exactly as :class:`cnn.nn.Sequential` and adds
    :meth:`save_model` / :meth:`load_model`, the per-layer timing (:meth:`enable_profiling`,
    :attr:`forward_time`, :attr:`backward_time`, :meth:`print_profile`) and ``print(model)``
    ending with ``"Number of parameters : N"``. ``repr(model)`` stays PyTorch's.
    """

    def __str__(self):
        count = sum(param._data.size for param in self.parameters())
        return f"{self!r}\nNumber of parameters : {count}"

    # ----- checkpoints -----

    def save_model(self, name):
        """Save the state dict to ``name + ".npy"``, atomically and without pickle.

        The file is an ``.npz`` archive (see :func:`cnn.save`) carrying the original's ``.npy``
        name.

        Args:
            name (str or os.PathLike): The file name; ``.npy`` is appended unless present.

        Returns:
            str: The path written.
        """
        return save_model(self, name)

    def load_model(self, path, allow_pickle=False):
        """Load a checkpoint written by :meth:`save_model` or :func:`cnn.save`, in place.

        Everything is validated before anything changes: a failed load leaves the model as it
        was. With ``allow_pickle=True`` it also reads the original library's pickled
        checkpoints; unpickling runs code stored in the file, so pass True only for a file you
        trust. See :func:`cnn.compat.load_model`.

        Args:
            path (str or os.PathLike): The checkpoint.
            allow_pickle (bool): Allow the original library's pickled format.

        Returns:
            Sequential: self

        Raises:
            OSError: If the file cannot be read.
            ValueError: If it is not a checkpoint for this model, or is pickled and
                `allow_pickle` is False.
            TypeError: If its values have dtypes the model cannot take.
        """
        return load_model(self, path, allow_pickle=allow_pickle)

    # ----- per-layer timing (see cnn.profiler) -----

    def enable_profiling(self, reset=True):
        """Start timing each layer's forward and backward (see :mod:`cnn.profiler`).

        Args:
            reset (bool): Start from zero rather than continue the previous timings.

        Returns:
            cnn.profiler.LayerProfile: The timings being recorded.
        """
        return profiler.enable(self, reset=reset)

    def disable_profiling(self):
        """Stop timing the layers; :attr:`forward_time` and :attr:`backward_time` are kept.

        Returns:
            cnn.profiler.LayerProfile or None: The timings, None if never profiled.
        """
        return profiler.disable(self)

    @property
    def forward_time(self):
        """list of float: Seconds spent in each layer's forward while profiling was enabled.

        One entry per layer (see :mod:`cnn.profiler`), all zero before profiling is first
        enabled with :meth:`enable_profiling`.
        """
        return self._layer_profile().forward_time

    @property
    def backward_time(self):
        """list of float: Seconds spent in each layer's backward while profiling was enabled.

        One entry per layer, all zero before profiling is first enabled.
        """
        return self._layer_profile().backward_time

    def print_profile(self, file=None):
        """Print the table of forward and backward seconds per layer.

        Args:
            file (file object, optional): Where to print; standard output by default.

        Raises:
            RuntimeError: If profiling was never enabled for this model.
        """
        profile = profiler.get_profile(self)
        if profile is None:
            raise RuntimeError("profiling was never enabled for this model: call "
                               "model.enable_profiling() (or use cnn.profiler.profile(model)) "
                               "before running it")
        print(profile.table(), file=file)

    def _layer_profile(self):
        return profiler.get_profile(self) or profiler.blank_profile(self)
