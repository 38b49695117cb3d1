"""The fusion pass of `Sequential`: which runs of its children execute as one fused module.

A fused module class (cnn/nn/modules/fused.py) says which chain of layers it computes as one
op: ``fuses``, the exact classes of the chain, and ``accepts(modules)``, whether a given chain
of such layers has settings it supports. Those registered here with :func:`register` are fused
automatically: :func:`segments` walks a Sequential's children and returns what to run, each
child on its own or a fused module built over a run of them.

The fused module holds the very children it replaces (sharing their parameters) and is never
registered in the Sequential, so the Sequential's children, their names and its state_dict
keys stay as they were. Only the exact library classes fuse (a subclass may override forward),
and a module with forward hooks never does, so that its hooks fire (this is how
:mod:`cnn.profiler` times each layer on its own).
"""
__all__ = ["register", "segments"]

# The registered fused classes, by the class of the first module of their chain.
_by_first_type = {}


def register(fused_class):
    """Have Sequential run every chain that `fused_class` accepts as one `fused_class`.

    A class decorator.

    Args:
        fused_class (type): A fused module class with ``fuses`` (the chain's classes), a
            classmethod ``accepts(modules)`` and a constructor taking the chain's modules.

    Returns:
        type: `fused_class`.
    """
    _by_first_type.setdefault(fused_class.fuses[0], []).append(fused_class)
    return fused_class


def _hooked(chain):
    """Whether a module of `chain` has forward hooks (a loop: this runs every forward)."""
    for module in chain:
        if module._forward_pre_hooks or module._forward_hooks:
            return True
    return False


def segments(modules, built):
    """Return what runs `modules` in order: each module, or a fused module over a chain.

    Args:
        modules (tuple of Module): The modules, in order.
        built (dict): Fused modules made by earlier calls, by their chain (a tuple of the
            modules); reused when the same chain fuses again, added to, and cleared of
            chains that no longer fuse. The caller keeps it between calls.

    Returns:
        list of Module: The segments; applying them in order equals applying `modules`.
    """
    # Runs on every Sequential forward: one dict lookup per module that cannot start a
    # chain, and the modules between chains copied as slices.
    result = []
    done = 0  # modules[:done] are in result
    fused_count = 0
    count = len(modules)
    for i, module in enumerate(modules):
        kinds = _by_first_type.get(type(module))
        if kinds is None or i < done:
            continue
        for fused_class in kinds:
            stop = i + len(fused_class.fuses)
            chain = modules[i:stop]
            if stop <= count and fused_class.accepts(chain) and not _hooked(chain):
                fused = built.get(chain)
                if fused is None:  # setdefault: two threads building at once keep one
                    fused = built.setdefault(chain, fused_class(*chain))
                result += modules[done:i]
                result.append(fused)
                fused_count += 1
                done = stop
                break
    result += modules[done:]
    if len(built) != fused_count:  # drop chains that changed, so they are not kept alive
        used = {id(segment) for segment in result}
        # A copy of the items and pop: another thread may be changing `built` meanwhile.
        for chain in [chain for chain, fused in list(built.items()) if id(fused) not in used]:
            built.pop(chain, None)
    return result
