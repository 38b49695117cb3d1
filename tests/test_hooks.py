"""Module forward hooks and pre-hooks, with torch.nn.Module's semantics (checked against torch)."""
import warnings

import numpy as np
import pytest

import cnn
from cnn import nn
from cnn.utils.hooks import RemovableHandle


class Scale(nn.Module):
    """y = x * factor + shift, with a keyword argument to see kwargs travel."""

    def __init__(self, factor=2.0):
        super().__init__()
        self.factor = factor

    def forward(self, x, shift=0.0):
        return x * self.factor + shift


class Fails(nn.Module):
    def forward(self, x):
        raise ValueError("forward failed")


def test_no_hooks_means_the_forward_call_alone(monkeypatch):
    module = Scale()

    def refuse(*args):
        raise AssertionError("the hook path ran without hooks")

    monkeypatch.setattr(nn.Module, "_call_with_hooks", refuse)
    assert module(cnn.tensor([1.0])).item() == 2.0
    handle = module.register_forward_hook(lambda m, a, o: None)
    with pytest.raises(AssertionError, match="hook path"):
        module(cnn.tensor([1.0]))
    handle.remove()
    assert module(cnn.tensor([1.0])).item() == 2.0


def test_pre_hook_sees_the_arguments_and_may_replace_them():
    module = Scale()
    seen = []
    module.register_forward_pre_hook(lambda m, args: seen.append((m, args)))
    x = cnn.tensor([1.0])
    module(x)
    assert seen == [(module, (x,))]
    handle = module.register_forward_pre_hook(lambda m, args: args[0] * 10)  # a single value
    assert module(x).item() == 20.0
    handle.remove()
    module.register_forward_pre_hook(lambda m, args: (args[0] + 1,))  # a tuple
    assert module(x).item() == 4.0


def test_forward_hook_sees_the_replaced_arguments_and_may_replace_the_output():
    module = Scale()
    seen = []
    module.register_forward_pre_hook(lambda m, args: (args[0] + 1,))
    module.register_forward_hook(lambda m, args, out: seen.append((args[0].item(), out.item())))
    module.register_forward_hook(lambda m, args, out: out * 100)
    module.register_forward_hook(lambda m, args, out: seen.append(out.item()))
    assert module(cnn.tensor([1.0])).item() == 400.0
    assert seen == [(2.0, 4.0), 400.0]


def test_with_kwargs():
    module = Scale()
    seen = []

    def pre(m, args, kwargs):
        return args, {**kwargs, "shift": kwargs.get("shift", 0.0) + 1}

    module.register_forward_pre_hook(pre, with_kwargs=True)
    module.register_forward_hook(lambda m, args, kwargs, out: seen.append(dict(kwargs)),
                                 with_kwargs=True)
    assert module(cnn.tensor([1.0]), shift=5.0).item() == 8.0
    assert seen == [{"shift": 6.0}]
    module.register_forward_pre_hook(lambda m, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"tuple of \(new_args, new_kwargs\)"):
        module(cnn.tensor([1.0]))


def test_order_and_prepend():
    module = Scale()
    order = []
    for name, prepend in (("a", False), ("b", True), ("c", False), ("d", True)):
        module.register_forward_pre_hook(lambda m, args, name=name: order.append("pre " + name),
                                         prepend=prepend)
        module.register_forward_hook(lambda m, args, out, name=name: order.append(name),
                                     prepend=prepend)
    module(cnn.tensor([1.0]))
    assert order == ["pre d", "pre b", "pre a", "pre c", "d", "b", "a", "c"]


def test_handles_remove_once_and_work_as_context_managers():
    module = Scale()
    calls = []
    handle = module.register_forward_hook(lambda m, a, o: calls.append(1))
    assert isinstance(handle, RemovableHandle)
    with module.register_forward_pre_hook(lambda m, a: calls.append(0), with_kwargs=False):
        module(cnn.tensor([1.0]))
    assert calls == [0, 1]
    handle.remove()
    handle.remove()  # a second remove does nothing
    module(cnn.tensor([1.0]))
    assert calls == [0, 1]
    assert not module._forward_hooks and not module._forward_pre_hooks
    other = module.register_forward_hook(lambda m, a, o: None, with_kwargs=True,
                                         always_call=True)
    assert other.id != handle.id
    other.remove()
    assert not module._forward_hooks_with_kwargs and not module._forward_hooks_always_called


def test_always_call_runs_when_forward_raises():
    module = Fails()
    seen = []
    module.register_forward_hook(lambda m, a, out: seen.append("plain"))
    module.register_forward_hook(lambda m, a, out: seen.append(("always", out)), always_call=True)
    with pytest.raises(ValueError, match="forward failed"):
        module(cnn.tensor([1.0]))
    assert seen == [("always", None)]


def test_an_always_called_hook_that_fails_too_only_warns():
    module = Fails()

    def broken(m, a, out):
        raise KeyError("hook failed")

    module.register_forward_hook(broken, always_call=True)
    with pytest.warns(UserWarning, match="always_call=True.*hook failed"):
        with pytest.raises(ValueError, match="forward failed"):
            module(cnn.tensor([1.0]))


def test_hooks_are_per_instance_and_copied_with_the_module():
    import copy
    first, second = Scale(), Scale()
    first.register_forward_hook(lambda m, a, out: out + 1)
    assert first(cnn.tensor([1.0])).item() == 3.0
    assert second(cnn.tensor([1.0])).item() == 2.0
    assert copy.deepcopy(first)(cnn.tensor([1.0])).item() == 3.0


def test_same_calls_and_values_as_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)

    def run(module, wrap):
        log = []

        def pre_double(m, args):
            log.append(("pre", tuple(np.asarray(a.detach() if hasattr(a, "detach") else a)
                                     .shape for a in args)))
            return args[0] * 2

        def pre_kwargs(m, args, kwargs):
            log.append(("pre kwargs", sorted(kwargs)))
            return None

        def post(m, args, out):
            log.append(("post", float(np.asarray(args[0].detach() if hasattr(args[0], "detach")
                                                else args[0]).sum())))
            return out + 1

        def post_first(m, args, kwargs, out):
            log.append(("post first", sorted(kwargs)))

        handles = [module.register_forward_pre_hook(pre_double),
                   module.register_forward_pre_hook(pre_kwargs, with_kwargs=True, prepend=True),
                   module.register_forward_hook(post),
                   module.register_forward_hook(post_first, with_kwargs=True, prepend=True)]
        out = module(wrap(x))
        handles[0].remove()
        with handles[2]:
            pass
        plain = module(wrap(x))
        return log, np.asarray(out.detach() if hasattr(out, "detach") else out), \
            np.asarray(plain.detach() if hasattr(plain, "detach") else plain)

    ours = nn.ReLU()
    theirs = torch.nn.ReLU()
    log, out, plain = run(ours, cnn.tensor)
    torch_log, torch_out, torch_plain = run(theirs, torch.tensor)
    assert log == torch_log
    np.testing.assert_array_equal(out, torch_out)
    np.testing.assert_array_equal(plain, torch_plain)


def test_always_call_matches_torch():
    torch = pytest.importorskip("torch")

    class TorchFails(torch.nn.Module):
        def forward(self, x):
            raise ValueError("forward failed")

    results = []
    for module in (Fails(), TorchFails()):
        seen = []
        module.register_forward_pre_hook(lambda m, a: seen.append("pre"))
        module.register_forward_hook(lambda m, a, out: seen.append("plain"))
        module.register_forward_hook(lambda m, a, out: seen.append(("always", out)),
                                     always_call=True)
        with warnings.catch_warnings(), pytest.raises(ValueError):
            warnings.simplefilter("error")
            module(np.zeros(1))
        results.append(seen)
    assert results[0] == results[1] == ["pre", ("always", None)]
