"""The Tensor and the torch.* functions as PyTorch scripts use them: every differentiable op's
float64 gradcheck and PyTorch parity (values and gradients), type promotion, sizes, indices,
conversions, devices and the factories, each against torch where torch is installed."""
import numpy as np
import pytest

import cnn
from cnn.autograd import gradcheck

rng = np.random.default_rng(0)


def distinct(*shape):
    """Values at least 0.1 apart (no ties for max, sort, clamp kinks)."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0 - 1.0


def positive(*shape):
    return rng.uniform(0.5, 2.0, shape)


# (id, expression of (lib, *tensors), input arrays); `lib` is cnn or torch.
OPS = [
    ("clamp", lambda lib, x: x.clamp(-0.45, 0.35), [distinct(3, 4)]),
    ("clamp-min", lambda lib, x: lib.clamp(x, min=-0.25), [distinct(3, 4)]),
    ("clamp-tensor-bounds", lambda lib, x, lo: x.clamp(min=lo), [distinct(3, 4), distinct(4)]),
    ("abs", lambda lib, x: x.abs(), [distinct(3, 4) + 0.05]),
    ("sqrt", lambda lib, x: lib.sqrt(x), [positive(3, 4)]),
    ("pow", lambda lib, x: x.pow(3) + x ** 0.5, [positive(3, 4)]),
    ("pow-tensor", lambda lib, x, y: lib.pow(x, y), [positive(3, 4), distinct(4)]),
    ("exp-log", lambda lib, x: x.exp().log1p() + x.log2() + x.rsqrt(), [positive(5)]),
    ("sin-cos", lambda lib, x: x.sin() * x.cos() + x.reciprocal(), [positive(5)]),
    ("std", lambda lib, x: x.std(1), [distinct(3, 4)]),
    ("var-biased", lambda lib, x: x.var(0, unbiased=False, keepdim=True), [distinct(3, 4)]),
    ("var-correction", lambda lib, x: x.var(dim=(0, 1), correction=2), [distinct(3, 4)]),
    ("std-all", lambda lib, x: lib.std(x), [distinct(3, 4)]),
    ("norm", lambda lib, x: x.norm() + x.norm(p=1, dim=1).sum() + x.norm(3, 0).sum(),
     [distinct(3, 4) + 0.05]),
    ("min", lambda lib, x: x.min(1).values + x.min(), [distinct(3, 4)]),
    ("max-pair", lambda lib, x, y: lib.max(x, y), [distinct(3, 4), distinct(3, 4) + 0.05]),
    ("amax", lambda lib, x: x.amax((0, 2)) + x.amin(1).sum(), [distinct(2, 3, 4)]),
    ("maximum", lambda lib, x, y: lib.maximum(x, y) - lib.minimum(x, y),
     [distinct(3, 4), distinct(4) + 0.05]),
    ("logsumexp", lambda lib, x: lib.logsumexp(x, 1), [distinct(3, 4) * 10]),
    ("topk", lambda lib, x: x.topk(2, dim=1).values, [distinct(3, 5)]),
    ("topk-smallest", lambda lib, x: lib.topk(x, 3, 0, largest=False)[0], [distinct(4, 2)]),
    ("sort", lambda lib, x: x.sort(dim=0, descending=True).values, [distinct(4, 3)]),
    ("gather", lambda lib, x: x.gather(1, lib.tensor([[0, 2], [1, 1], [3, 0]])),
     [distinct(3, 4)]),
    ("index-select", lambda lib, x: x.index_select(0, lib.tensor([2, 0, 2])), [distinct(3, 4)]),
    ("expand", lambda lib, x: x.expand(2, 3, -1) * 2, [distinct(3, 1)]),
    ("expand-as", lambda lib, x, y: x.expand_as(y) * y, [distinct(1, 4), distinct(3, 4)]),
    ("repeat", lambda lib, x: x.repeat(2, 1, 3), [distinct(3, 2)]),
    ("cat", lambda lib, x, y: lib.cat([x, y, x], dim=1), [distinct(2, 3), distinct(2, 1)]),
    ("stack", lambda lib, x, y: lib.stack((x, y), dim=-1), [distinct(2, 3), distinct(2, 3)]),
    ("flip", lambda lib, x: x.flip(0, 1), [distinct(2, 3)]),
    ("where", lambda lib, x, y: lib.where(x > 0, x, y), [distinct(3, 4) + 0.05, distinct(4)]),
    ("where-scalar", lambda lib, x: lib.where(x > 0, x, 0.0), [distinct(3, 4) + 0.05]),
    ("masked-fill", lambda lib, x: x.masked_fill(x < 0, 2.0), [distinct(3, 4) + 0.05]),
    ("chunk-split", lambda lib, x: lib.cat([x.chunk(3, 1)[2], x.split([1, 4], 1)[1]], 1),
     [distinct(2, 5)]),
    ("unbind-narrow", lambda lib, x: x.unbind(1)[1] + x.narrow(1, 2, 1).squeeze(1),
     [distinct(3, 4)]),
    ("views", lambda lib, x: x.t().contiguous().view(-1).view_as(x.reshape(4, 3)).permute(1, 0),
     [distinct(3, 4)]),
    ("squeeze-unsqueeze", lambda lib, x: x.unsqueeze(0).squeeze(2).unsqueeze(-1),
     [distinct(3, 1, 4)]),
    ("mm-bmm-mv", lambda lib, a, b: (a @ b).sum() + lib.mm(a, b).sum() + a.mv(b[:, 0]).sum()
     + lib.bmm(a.unsqueeze(0), b.unsqueeze(0)).sum(), [distinct(2, 3), distinct(3, 4)]),
    ("dot-outer", lambda lib, a, b: a.dot(b) + lib.outer(a, b).sum(), [distinct(3), distinct(3)]),
    ("addcmul-lerp", lambda lib, x, y, z: x.addcmul(y, z, value=0.5).lerp(y, 0.3)
     + x.addcdiv(y, z + 3, value=2.0), [distinct(3), distinct(3), distinct(3)]),
    ("sub-alpha-div", lambda lib, x, y: x.sub(y, alpha=2) + x.div(y + 3) + x.add(y, alpha=0.5),
     [distinct(3), distinct(3)]),
    ("remainder-floor", lambda lib, x: x.remainder(0.7) + x.floor() + x.ceil() + x.round()
     + x.trunc() + x.sign(), [distinct(3, 4) + 0.013]),
    ("mean-sum-dims", lambda lib, x: x.mean((0, 2), keepdim=True).sum(dim=1), [distinct(2, 3, 4)]),
    ("clone-neg", lambda lib, x: -x.clone() + lib.neg(x).square(), [distinct(2, 3)]),
]


@pytest.mark.parametrize("name, expression, arrays", OPS, ids=[case[0] for case in OPS])
def test_gradcheck(name, expression, arrays):
    inputs = [cnn.tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    assert gradcheck(lambda *xs: expression(cnn, *xs), inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, expression, arrays", OPS, ids=[case[0] for case in OPS])
def test_matches_torch(name, expression, arrays, dtype):
    torch = pytest.importorskip("torch")
    ours = [cnn.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    out, ref = expression(cnn, *ours), expression(torch, *theirs)
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12,
                                                                          atol=1e-12)
    assert out.dtype == dtype and tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **tolerance)
    weights = rng.standard_normal(tuple(out.shape)).astype(dtype)
    (out * cnn.tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(), **tolerance)


def test_indices_of_max_min_topk_sort_match_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[3, 1, 3, 2], [0, 5, 5, 1]], np.float32)  # ties: the first index wins
    ours, theirs = cnn.tensor(x), torch.tensor(x)
    for call in (lambda t: t.max(1).indices, lambda t: t.min(0).indices,
                 lambda t: t.argmax(1), lambda t: t.argmin(), lambda t: t.argsort(1),
                 lambda t: t.sort(dim=1, descending=True, stable=True).indices,
                 lambda t: t.topk(1, 1).indices):
        np.testing.assert_array_equal(call(ours).numpy(), call(theirs).numpy())


# ***** type promotion *****

PROMOTIONS = [
    (np.int64, np.float32), (np.int32, np.float64), (np.uint8, np.int8), (np.bool_, np.int64),
    (np.float32, np.float64), (np.bool_, np.float32), (np.int64, np.int32),
]


@pytest.mark.parametrize("a_dtype, b_dtype", PROMOTIONS)
@pytest.mark.parametrize("op", ["+", "*", "/", "-"])
def test_promotion_matches_torch(a_dtype, b_dtype, op):
    torch = pytest.importorskip("torch")
    if op == "-" and np.dtype(np.bool_) in (np.dtype(a_dtype), np.dtype(b_dtype)):
        pytest.skip("PyTorch refuses to subtract bools")
    a, b = np.array([1, 0, 1]).astype(a_dtype), np.array([2, 1, 3]).astype(b_dtype)
    calls = {"+": lambda x, y: x + y, "*": lambda x, y: x * y, "/": lambda x, y: x / y,
             "-": lambda x, y: x - y}
    scalars = (2, 2.5) if op == "-" else (2, 2.5, True)
    for left, right in ((a, b), (a, b[:1].reshape(()))) + tuple((a, s) for s in scalars):
        ours = calls[op](cnn.tensor(left), cnn.tensor(right) if isinstance(right, np.ndarray)
                         else right)
        theirs = calls[op](torch.tensor(left), torch.tensor(right)
                           if isinstance(right, np.ndarray) else right)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (left, right)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_dtype_names_and_default_dtype():
    assert cnn.float32 is np.float32 and cnn.long is np.int64 and cnn.bool is np.bool_
    assert cnn.float is np.float32 and cnn.double is np.float64 and cnn.int is np.int32
    assert cnn.tensor([1.5]).dtype == cnn.float32 and cnn.tensor([1]).dtype == cnn.long
    assert cnn.tensor([True]).dtype == cnn.bool and isinstance(cnn.float32(1).dtype, cnn.dtype)
    cnn.set_default_dtype(cnn.float64)
    try:
        assert cnn.tensor([1.5]).dtype == cnn.float64 and cnn.zeros(2).dtype == cnn.float64
        assert (cnn.tensor([1, 2]) / 2).dtype == cnn.float64
    finally:
        cnn.set_default_dtype(cnn.float32)
    assert cnn.get_default_dtype() == cnn.float32
    with pytest.raises(TypeError, match="default dtype"):
        cnn.set_default_dtype(cnn.int64)


# ***** sizes, indices, conversions *****

def test_size_and_shape_queries():
    t = cnn.zeros(2, 3, 4)
    assert t.size() == (2, 3, 4) and isinstance(t.shape, cnn.Size)
    assert repr(t.shape) == "cnn.Size([2, 3, 4])" and t.shape.numel() == 24
    assert t.size(-1) == 4 and t.dim() == 3 and t.numel() == t.nelement() == 24
    assert t.shape[1:] == (3, 4) and isinstance(t.shape[1:], cnn.Size)
    assert t.stride() == (12, 4, 1) and t.is_contiguous() and not t.transpose(0, 2).is_contiguous()
    assert t.element_size() == 4 and t.nbytes == 96


def test_zero_dim_tensors_are_python_indices_and_numbers():
    index = cnn.tensor(2)
    assert [10, 20, 30][index] == 30 and list(range(index)) == [0, 1]
    assert cnn.arange(5)[cnn.tensor(3)].item() == 3
    with pytest.raises(TypeError, match="integer tensors"):
        [1, 2][cnn.tensor(1.0)]
    assert cnn.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert cnn.tensor(2.5).tolist() == 2.5 and float(cnn.tensor([3.0])) == 3.0


def test_conversions_and_new_tensors():
    x = cnn.tensor([1.7, -2.2], requires_grad=True)
    assert x.long().tolist() == [1, -2] and x.int().dtype == cnn.int32
    assert x.bool().tolist() == [True, True] and x.double().dtype == cnn.float64
    assert x.type() == "cnn.FloatTensor" and x.type(cnn.float64).dtype == cnn.float64
    assert x.type("torch.LongTensor").dtype == cnn.int64
    assert x.type_as(cnn.zeros(1, dtype=cnn.float64)).dtype == cnn.float64
    assert x.to(cnn.float64).requires_grad and x.to("cpu") is x and x.cpu() is x
    assert x.to("cpu", cnn.float64).dtype == cnn.float64
    assert x.to(cnn.zeros(1, dtype=cnn.int64)).dtype == cnn.int64
    assert x.to(dtype=cnn.float32, copy=True) is not x
    assert x.new_zeros(2, 3).dtype == cnn.float32 and x.new_ones((2,)).tolist() == [1.0, 1.0]
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0] and x.new_tensor([1, 2]).dtype == cnn.float32
    x.double().sum().backward()
    assert x.grad.dtype == cnn.float32 and x.grad.tolist() == [1.0, 1.0]


# ***** devices *****

def test_devices_are_the_cpu_and_cuda_is_refused():
    device = cnn.device("cuda" if cnn.cuda.is_available() else "cpu")
    assert device == cnn.device("cpu") == "cpu" and str(cnn.device("cpu", 0)) == "cpu:0"
    assert not cnn.cuda.is_available() and cnn.cuda.device_count() == 0
    assert not cnn.backends.mps.is_available() and not cnn.accelerator.is_available()
    x = cnn.ones(2)
    assert x.to(device) is x and x.device == device and not x.is_cuda
    model = cnn.nn.Linear(2, 2)
    assert model.to(device) is model
    for ask in (lambda: cnn.device("cuda"), lambda: x.to("cuda"), lambda: x.cuda(),
                lambda: model.to("cuda:0"), lambda: model.cuda(), lambda: cnn.zeros(2, device="mps"),
                lambda: cnn.cuda.synchronize()):
        with pytest.raises(RuntimeError, match="cnn runs on the CPU only"):
            ask()
    with pytest.raises(ValueError, match="device type"):
        cnn.device("gpu")
    cnn.backends.cudnn.benchmark = True  # scripts set it; nothing to switch on the CPU


# ***** factories *****

def test_factories_match_torch():
    torch = pytest.importorskip("torch")
    cases = [
        lambda lib: lib.arange(5), lambda lib: lib.arange(1, 3, 0.5),
        lambda lib: lib.arange(0, 1, 0.1), lambda lib: lib.linspace(-1, 1, 7),
        lambda lib: lib.full((2, 3), 7), lambda lib: lib.full((2,), 1.5),
        lambda lib: lib.zeros_like(lib.ones(2, 3, dtype=lib.int64)),
        lambda lib: lib.ones_like(lib.ones(2)) * 3, lambda lib: lib.eye(3, 2),
        lambda lib: lib.tensor([[1, 2], [3, 4]], dtype=lib.float64),
        lambda lib: lib.as_tensor([1.5, 2.5]), lambda lib: lib.empty(2, 0).float(),
    ]
    for case in cases:
        ours, theirs = case(cnn), case(torch)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_random_factories_are_seeded_and_shaped():
    cnn.manual_seed(3)
    a = (cnn.rand(2, 3), cnn.randn(2), cnn.randint(0, 10, (4,)), cnn.randperm(5))
    cnn.manual_seed(3)
    b = (cnn.rand(2, 3), cnn.randn(2), cnn.randint(0, 10, (4,)), cnn.randperm(5))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert a[0].dtype == cnn.float32 and ((a[0].numpy() >= 0) & (a[0].numpy() < 1)).all()
    assert a[2].dtype == cnn.int64 and sorted(a[3].tolist()) == [0, 1, 2, 3, 4]
    assert cnn.randint(5, (3,)).numpy().max() < 5 and cnn.rand_like(a[0]).shape == (2, 3)
    assert cnn.is_tensor(a[0]) and not cnn.is_tensor(a[0].numpy())


def test_from_numpy_and_as_tensor_share_memory():
    array = np.zeros(3)
    cnn.from_numpy(array).add_(1)
    cnn.as_tensor(array).add_(1)
    assert array.tolist() == [2.0, 2.0, 2.0]
    t = cnn.tensor(array)
    t.add_(1)
    assert array.tolist() == [2.0, 2.0, 2.0]


def test_bool_subtraction_is_refused_as_in_torch():
    with pytest.raises(TypeError, match="Subtraction, the `-` operator, with a bool tensor"):
        cnn.tensor([True]) - cnn.tensor([False])
    with pytest.raises(TypeError, match="logical_not"):
        1 - cnn.tensor([True])


def test_function_errors_name_the_argument():
    with pytest.raises(TypeError, match="must be Tensor"):
        cnn.sum([1, 2])
    with pytest.raises(ValueError, match="sizes of tensors must match"):
        cnn.cat([cnn.zeros(2, 3), cnn.zeros(3, 2)])
    with pytest.raises(ValueError, match="equal size"):
        cnn.stack([cnn.zeros(2), cnn.zeros(3)])
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        cnn.zeros(3, 4).t().view(-1)
    with pytest.raises(TypeError, match="floating point"):
        cnn.tensor([1, 2]).mean()
    with pytest.raises(ValueError, match="at least one of min and max"):
        cnn.zeros(2).clamp()
