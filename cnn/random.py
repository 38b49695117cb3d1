"""The library's random number generator.

Every random draw in ``cnn`` (``randn``, weight initialisation, dropout, shuffling) comes from
one module-level :class:`numpy.random.Generator` on a PCG64 bit generator, so
``cnn.manual_seed(seed)`` makes a whole run reproducible, and its state can be saved and
restored for an exact resume.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cnn._validation import integer

# Seeded from OS entropy until manual_seed() is called. The object itself never changes, so
# references handed out by default_generator() stay valid across manual_seed().
_generator = np.random.Generator(np.random.PCG64())


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator to a fixed seed.

    Args:
        seed: A non-negative integer.

    Returns:
        numpy.random.Generator: The default generator, now seeded.
    """
    seed = integer(seed, "seed", minimum=0, maximum=None)
    _generator.bit_generator.state = np.random.PCG64(seed).state
    return _generator


def default_generator() -> np.random.Generator:
    """Return the generator used when no ``generator`` argument is given.

    Returns:
        numpy.random.Generator: The module-level PCG64 generator.
    """
    return _generator


def get_rng_state() -> Mapping[str, Any]:
    """Return the default generator's state.

    Returns:
        dict: The PCG64 bit generator state; pass it to :func:`set_rng_state` to resume.
    """
    return _generator.bit_generator.state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore a state returned by :func:`get_rng_state`.

    Args:
        state: The PCG64 bit generator state dict.
    """
    _generator.bit_generator.state = state
