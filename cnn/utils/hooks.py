"""``RemovableHandle``: what registering a hook returns, as ``torch.utils.hooks``."""
import itertools
import weakref

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """A handle that removes one registered hook, as ``torch.utils.hooks.RemovableHandle``.

    The hook lives in ``hooks_dict`` under :attr:`id`; its options (say "called with keyword
    arguments") live under the same id in the ``extra_dict`` s. The handle holds them weakly,
    so it never keeps a module's hook tables alive. It is also a context manager that removes
    the hook on exit::

        with model.register_forward_hook(record):
            model(x)            # record runs
        model(x)                # it does not

    Args:
        hooks_dict (collections.OrderedDict): The table the hook is stored in.
        extra_dict (collections.OrderedDict or list of them, optional): Tables keyed by the
            same id, cleared together with it.

    Attributes:
        id (int): The key of the hook, unique for the process.
    """

    _ids = itertools.count()

    def __init__(self, hooks_dict, *, extra_dict=None):
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = next(RemovableHandle._ids)
        if extra_dict is None:
            extra_dict = []
        elif not isinstance(extra_dict, list):
            extra_dict = [extra_dict]
        self.extra_dict_ref = tuple(weakref.ref(table) for table in extra_dict)

    def remove(self):
        """Remove the hook (and its options); removing it again does nothing."""
        for ref in (self.hooks_dict_ref,) + self.extra_dict_ref:
            table = ref()
            if table is not None:
                table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()

    def __repr__(self):
        return f"<RemovableHandle id={self.id}>"
