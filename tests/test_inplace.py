"""In-place operations with PyTorch's rules, the version counter, tensor hooks and
autograd.grad, against PyTorch where it is installed."""
import numpy as np
import pytest

import cnn
from cnn.autograd import gradcheck

rng = np.random.default_rng(0)


def pair(torch, *arrays, requires_grad=True):
    """The same float64 arrays as cnn and torch leaves."""
    ours = [cnn.tensor(a, requires_grad=requires_grad) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=requires_grad) for a in arrays]
    return ours, theirs


# ***** the leaf rules and no_grad *****

def test_a_hand_written_sgd_step_updates_parameters_in_place():
    w = cnn.nn.Parameter(cnn.tensor([1.0, -2.0]))
    array = w.numpy()
    (w * w).sum().backward()
    with cnn.no_grad():
        w -= w.grad * 0.1
        w.grad.zero_()
    assert w.numpy() is array and w.tolist() == pytest.approx([0.8, -1.6])
    assert w.is_leaf and w.requires_grad and w.grad.tolist() == [0.0, 0.0]


def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    w = cnn.zeros(3, requires_grad=True)
    for write in (lambda: w.add_(1), lambda: w.zero_(), lambda: w.__iadd__(1),
                  lambda: w.__setitem__(0, 1.0), lambda: w.normal_()):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                               "in an in-place operation"):
            write()
    with pytest.raises(RuntimeError, match="a view of a leaf Variable"):
        w[1:].mul_(2)
    assert w.tolist() == [0.0, 0.0, 0.0] and w._version == 0


def test_plus_equals_is_in_place_on_tensors_and_views():
    x = cnn.zeros(2, 3)
    alias, row = x, x[0]
    x += 1
    row *= 3
    x[1] = cnn.tensor([7.0, 8.0, 9.0])
    assert alias is x and x.tolist() == [[3, 3, 3], [7, 8, 9]] and x._version == 3
    with pytest.raises(TypeError, match="can't be cast to the desired output type"):
        cnn.zeros(2, dtype=cnn.int64).add_(0.5)
    with pytest.raises(ValueError, match="doesn't match the broadcast shape|broadcast with it"):
        cnn.zeros(3).add_(cnn.zeros(2, 3))
    with pytest.raises(RuntimeError, match="read-only"):
        cnn.zeros(3, 1).expand(3, 2).add_(1)


# ***** recorded in-place operations: gradients *****

INPLACE = [
    ("add_sub", lambda x, y: _chain(x).add_(y, alpha=2).sub_(y * y)),
    ("mul_div", lambda x, y: _chain(x).mul_(y).div_(y + 3)),
    ("pow_clamp", lambda x, y: _chain(x).abs_().pow_(1.5).clamp_(0.2, 1.1)),
    ("unary", lambda x, y: _chain(x).mul_(0.5).exp_() + _chain(x).abs_().sqrt_()
     + _chain(x).abs_().log_().neg_()),
    ("addcmul_addcdiv_lerp", lambda x, y: _chain(x).addcmul_(y, y, value=0.3)
     .addcdiv_(y, y * y + 1, value=-2).lerp_(y, 0.25)),
    ("masked_fill", lambda x, y: _chain(x).masked_fill_(y > 0, 0.5)),
    ("copy_fill", lambda x, y: _chain(x).copy_(y * 2) + _chain(x).fill_(2.0) + _chain(x).zero_()),
    ("setitem", lambda x, y: _set(_chain(x), y)),
    ("iadd", lambda x, y: _iadd(_chain(x), y)),
    ("relu_sigmoid_tanh", lambda x, y: _chain(x).relu_() + _chain(x).sigmoid_()
     + _chain(x).tanh_()),
]


def _chain(x):
    """A computed (non-leaf) copy of x, so that in-place operations are allowed and recorded."""
    return x * 1.0


def _set(t, y):
    t[0] = y[1] * 3
    t[1:, 1] = 0.0
    return t


def _iadd(t, y):
    t += y
    t *= y
    return t


@pytest.mark.parametrize("name, expression", INPLACE, ids=[case[0] for case in INPLACE])
def test_recorded_in_place_gradients(name, expression):
    x = rng.uniform(0.3, 1.0, (3, 4)) * rng.choice([-1, 1], (3, 4))
    y = rng.uniform(0.3, 1.0, (3, 4)) * rng.choice([-1, 1], (3, 4))
    inputs = [cnn.tensor(x, requires_grad=True), cnn.tensor(y, requires_grad=True)]
    assert gradcheck(expression, inputs)
    torch = pytest.importorskip("torch")
    ours, theirs = pair(torch, x, y)
    out, ref = expression(*ours), expression(*theirs)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12)
    weights = rng.standard_normal(x.shape)
    (out * cnn.tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for mine, reference in zip(ours, theirs):
        assert (mine.grad is None) == (reference.grad is None)
        if mine.grad is not None:
            np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(), rtol=1e-12)


def test_a_residual_block_with_out_plus_equals_shortcut_trains_like_torch():
    torch = pytest.importorskip("torch")
    (x, w), (tx, tw) = pair(torch, rng.standard_normal((2, 3)), rng.standard_normal((3, 3)))

    def block(lib, x, w):
        out = (x @ w).relu()
        out = out * 2.0  # stands for a batch norm, which saves its input, not its output
        out += x  # the shortcut, in place
        return lib.nn.functional.relu(out).sum()

    block(cnn, x, w).backward()
    block(torch, tx, tw).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)


def test_earlier_uses_keep_the_values_they_saw():
    torch = pytest.importorskip("torch")
    (x,), (tx,) = pair(torch, rng.standard_normal(4))
    for lib, leaf in ((cnn, x), (torch, tx)):
        h = leaf * 2
        before = h * 3  # Mul keeps nothing of h (3 is a constant): h may change after
        h += leaf
        (before.sum() + (h * h).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


# ***** the version counter *****

MODIFIED = "modified by an inplace operation"


def test_modifying_a_saved_input_raises_at_backward():
    w = cnn.tensor([1.0, 2.0], requires_grad=True)
    x = cnn.tensor([3.0, 4.0])
    y = (w * x).sum()
    x.mul_(2)
    with pytest.raises(RuntimeError, match=MODIFIED + ".*input 1 of MulBackward"):
        y.backward()


def test_modifying_a_saved_output_raises_at_backward():
    w = cnn.tensor([1.0, 2.0], requires_grad=True)
    y = w.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED + ".*output of ExpBackward"):
        y.sum().backward()


def test_modifying_through_a_view_or_detach_raises_too():
    w = cnn.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    x = cnn.tensor([[1.0, 1.0], [2.0, 2.0]])
    y = (w * x).sum()
    x[0].zero_()
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()
    x = cnn.tensor([[1.0, 1.0], [2.0, 2.0]])
    y = (w * x).sum()
    x.detach().add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()
    assert x._version == 1


def test_modifying_what_nothing_saved_is_fine():
    w = cnn.tensor([1.0, 2.0], requires_grad=True)
    x = cnn.tensor([3.0, 4.0])
    y = (w + x).sum()  # Add keeps no values
    x.mul_(2)
    y.backward()
    assert w.grad.tolist() == [1.0, 1.0]


# ***** hooks and autograd.grad *****

def test_tensor_hooks_see_and_replace_gradients_like_torch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (cnn, torch):
        w = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        seen = []
        h = w * w
        h.register_hook(lambda g: seen.append(g.tolist()))
        handle = w.register_hook(lambda g: g * 10)
        h.sum().backward(retain_graph=True)
        handle.remove()
        h.sum().backward()
        results.append((seen, w.grad.tolist()))
    assert results[0] == results[1]
    with pytest.raises(RuntimeError, match="doesn't require"):
        cnn.zeros(2).register_hook(print)


def test_retain_grad_keeps_a_computed_tensors_gradient():
    x = cnn.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [6.0, 12.0] and x.grad.tolist() == [18.0, 36.0]


def test_autograd_grad_matches_torch_and_leaves_grad_alone():
    torch = pytest.importorskip("torch")
    (x, w), (tx, tw) = pair(torch, rng.standard_normal(3), rng.standard_normal(3))
    results = []
    for lib, a, b in ((cnn, x, w), (torch, tx, tw)):
        h = a * b
        out = (h.exp() * a).sum() + (b * b).sum()
        grads = lib.autograd.grad(out, [a, h], retain_graph=True)
        (only_b,) = lib.autograd.grad([out, (b * 2).sum()], b, grad_outputs=[
            lib.tensor(2.0, dtype=lib.float64), lib.tensor(1.0, dtype=lib.float64)])
        results.append([g.detach().numpy() for g in grads] + [only_b.detach().numpy()])
        assert a.grad is None and b.grad is None
    for mine, reference in zip(*results):
        np.testing.assert_allclose(mine, reference, rtol=1e-12)


def test_autograd_grad_refusals():
    x = cnn.tensor([1.0], requires_grad=True)
    unused = cnn.tensor([1.0], requires_grad=True)
    out = (x * 2).sum()
    with pytest.raises(ValueError, match="not used"):
        cnn.autograd.grad(out, [x, unused], retain_graph=True)
    assert cnn.autograd.grad(out, [x, unused], allow_unused=True, retain_graph=True)[1] is None
    with pytest.raises(NotImplementedError, match="first-order"):
        cnn.autograd.grad(out, x, create_graph=True)
    with pytest.raises(NotImplementedError, match="first-order"):
        out.backward(create_graph=True)


def test_backward_inputs_and_several_roots():
    a, b = cnn.tensor([1.0], requires_grad=True), cnn.tensor([2.0], requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    assert a.grad.tolist() == [2.0] and b.grad is None
    cnn.autograd.backward([(a * 3).sum(), (b * 4).sum()])
    assert a.grad.tolist() == [5.0] and b.grad.tolist() == [4.0]


def test_grad_modes():
    x = cnn.ones(2, requires_grad=True)
    with cnn.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    with cnn.inference_mode():
        assert not (x * 2).requires_grad and cnn.is_inference_mode_enabled()

    @cnn.inference_mode
    def infer(t):
        return t * 2

    @cnn.set_grad_enabled(False)
    def frozen(t):
        return t * 2

    assert not infer(x).requires_grad and not frozen(x).requires_grad and cnn.is_grad_enabled()
    cnn.set_grad_enabled(False)
    try:
        assert not cnn.is_grad_enabled()
    finally:
        cnn.set_grad_enabled(True)


# ***** .data *****

def test_data_is_a_tensor_sharing_memory_outside_the_graph():
    w = cnn.nn.Parameter(cnn.tensor([1.0, 2.0]))
    data = w.data
    assert isinstance(data, cnn.Tensor) and not isinstance(data, cnn.nn.Parameter)
    assert not data.requires_grad and data.is_leaf and np.shares_memory(data.numpy(), w.numpy())
    assert isinstance(w.numpy(), np.ndarray) and np.asarray(w) is not None
    y = (w * w).sum()
    w.data.mul_(3)  # not seen by autograd: PyTorch's documented hazard of .data
    assert w._version == 0
    y.backward()
    assert w.tolist() == [3.0, 6.0] and w.grad.tolist() == [6.0, 12.0]


def test_the_idioms_of_older_scripts_work_through_data():
    model = cnn.nn.Linear(3, 2)
    model.weight.data.normal_(0, 0.01)
    model.bias.data.fill_(0)
    out = model(cnn.ones(4, 3))
    out.sum().backward()
    for p in model.parameters():
        p.data.add_(p.grad.data, alpha=-0.1)
        p.grad.data.zero_()
    assert model.bias.tolist() == pytest.approx([-0.4, -0.4])
    assert model.weight.grad.abs().sum().item() == 0
    _, predicted = cnn.max(out.data, 1)
    assert predicted.shape == (4,)


def test_assigning_data_replaces_the_memory():
    p = cnn.nn.Parameter(cnn.zeros(2))
    optimizer = cnn.optim.SGD([p], lr=1.0)
    p.data = cnn.tensor([5.0, 6.0, 7.0])
    assert p.shape == (3,) and p.requires_grad
    p.grad = np.ones(3, np.float32)
    optimizer.step()
    assert p.tolist() == [4.0, 5.0, 6.0]
    with pytest.raises(TypeError, match="data: expected a Tensor"):
        p.data = [1.0]
    with pytest.raises(TypeError, match="floating-point"):
        p.data = cnn.tensor([1, 2])
