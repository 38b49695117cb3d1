"""cnn.onnx.export: graphs onnx.checker accepts and ONNX Runtime runs to cnn's outputs, at every
batch size, for the four reference nets and every exportable op; clear errors otherwise."""
import io
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import cnn
import cnn.nn as nn
import cnn.nn.functional as F
from cnn.autograd.function import tracing
from cnn.cli import models
from cnn.cli.lenet import lenet5
from cnn.cli.models import BasicBlock
from cnn.onnx import UnsupportedOperatorError

from test_replay import AddsInPlace

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

README = Path(__file__).resolve().parent.parent / "README.md"
BATCHES = (1, 3, 5)  # traced at 2: every other size runs on the dynamic batch dim


# ***** the nets *****

# LeNet-5, the CIFAR net and the ResNet block are the command line's own (cnn/cli/models.py).

def cifar_net():
    """SPEC section 7's CIFAR-sized net."""
    return models.cifar_net(3, 32)


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        self.layers = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2),
                                    BasicBlock(32, 64, 2))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(x.mean((2, 3)))


def vgg_net():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), nn.Flatten(),
                         nn.Linear(128 * 4 * 4, 64), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(64, 10))


def randomize_batch_norm(model, rng):
    """Running statistics and affine parameters away from their identity defaults."""
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.running_mean[...] = rng.standard_normal(module.running_mean.shape) * 0.1
            module.running_var[...] = rng.uniform(0.5, 2.0, module.running_var.shape)
            module.weight._data[...] = rng.uniform(0.5, 1.5, module.weight.shape)
            module.bias._data[...] = rng.standard_normal(module.bias.shape) * 0.1
    return model


def exported(model, example, **options):
    """The model exported to memory, checked, and an ONNX Runtime session on it."""
    buffer = io.BytesIO()
    proto = cnn.onnx.export(model, example, buffer, **options)
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()), full_check=True)
    return proto, ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])


def assert_runs_like_cnn(model, shape, batches=BATCHES, opset_version=None, seed=0):
    """Export with a dynamic batch, then compare ONNX Runtime with cnn at several batch sizes."""
    rng = np.random.default_rng(seed)
    example = cnn.tensor(rng.standard_normal((2,) + shape).astype(np.float32))
    proto, session = exported(model, example, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                              opset_version=opset_version)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert model.training  # export ran it in eval mode and gave the mode back
    model.eval()
    for batch in batches:
        x = rng.standard_normal((batch,) + shape).astype(np.float32)
        with cnn.no_grad():
            expected = model(cnn.tensor(x)).numpy()
        (got,) = session.run(["y"], {"x": x})
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    model.train()
    return proto


NETS = {
    "lenet5": (lenet5, (1, 28, 28)),
    "cifar": (cifar_net, (3, 32, 32)),
    "resnet": (ResNet, (3, 16, 16)),
    "vgg": (vgg_net, (3, 32, 32)),
}


@pytest.mark.parametrize("net", list(NETS))
def test_reference_nets_run_in_onnx_runtime_like_cnn(net):
    build, shape = NETS[net]
    cnn.manual_seed(0)
    model = randomize_batch_norm(build(), np.random.default_rng(1))
    proto = assert_runs_like_cnn(model, shape)
    ops = {node.op_type for node in proto.graph.node}
    assert {"Conv", "Relu"} <= ops
    assert {"resnet": {"BatchNormalization", "Add", "ReduceMean"},
            "vgg": {"BatchNormalization", "MaxPool", "Gemm"},
            "lenet5": {"MaxPool", "Gemm", "Reshape"},
            "cifar": {"MaxPool", "Gemm"}}[net] <= ops
    # Parameters and buffers are initializers named by their state-dict keys.
    initializers = {tensor.name for tensor in proto.graph.initializer}
    assert set(model.state_dict()) - initializers <= {
        key for key in model.state_dict() if key.endswith("num_batches_tracked")}


def test_lenet_graph_is_the_fused_chain_and_names_its_values():
    cnn.manual_seed(0)
    proto, _ = exported(lenet5(), cnn.randn(2, 1, 28, 28), input_names=["images"],
                        output_names=["logits"])
    assert [node.op_type for node in proto.graph.node] == [
        "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Reshape", "Gemm", "Relu",
        "Gemm", "Relu", "Gemm"]
    assert [i.name for i in proto.graph.input] == ["images"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert proto.producer_name == "cnn" and proto.opset_import[0].version == 17
    shape = [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert shape == [2, 10]  # no dynamic axes: the traced sizes


@pytest.mark.parametrize("opset_version", [13, 18, 21])
def test_opset_versions(opset_version):
    cnn.manual_seed(0)
    model = randomize_batch_norm(ResNet(), np.random.default_rng(1))
    proto = assert_runs_like_cnn(model, (3, 8, 8), batches=(3,), opset_version=opset_version)
    assert proto.opset_import[0].version == opset_version


# ***** every exportable op *****

class EveryOp(nn.Module):
    """One forward through every op export knows, on (N, 3, 8, 8) inputs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=(1, 2), dilation=(1, 2), groups=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.avgpool = nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)
        self.bn = nn.BatchNorm1d(6)
        self.linear = nn.Linear(6, 4)
        self.leaky = nn.LeakyReLU(0.2)
        self.dropout = nn.Dropout(0.3)
        self.scale = nn.Parameter(cnn.tensor(np.linspace(0.5, 1.5, 4, dtype=np.float32)))

    def forward(self, x):
        y = self.leaky(self.conv(x))                        # (N, 6, 4, 4)
        y = self.avgpool(self.maxpool(y))                   # (N, 6, 3, 3)
        y = F.avg_pool2d(y, 2, ceil_mode=True) + y[:, :, ::2, 1:][..., :2, :1]
        v = self.bn(y.sum(dim=(2, 3)))                      # (N, 6)
        h = self.linear(self.dropout(F.tanh(v)))
        z = self.linear(F.sigmoid(v).unsqueeze(1))          # Linear on 3-d: MatMul + Add
        z = z.squeeze(1) * self.scale - h / 2 + h ** 2      # (N, 4)
        w = (z @ self.linear.weight).exp().log() - v.max(dim=1, keepdim=True).values
        t = w.reshape(-1, 2, 3).permute(0, 2, 1).transpose(1, 2).flatten(1)  # (N, 6)
        t = t[:, 1:] - t[:, :-1]                            # (N, 5)
        u = F.log_softmax(t, dim=1) + F.softmax(t.T, dim=0).T + (-t).mean(1, keepdim=True)
        return F.relu(u[:, None, :, None][:, 0, -1].max() + u) + t.double().float()


def test_every_exportable_op_runs_like_cnn():
    cnn.manual_seed(0)
    model = randomize_batch_norm(EveryOp(), np.random.default_rng(2))
    proto = assert_runs_like_cnn(model, (3, 8, 8))
    ops = {node.op_type for node in proto.graph.node}
    assert {"Conv", "LeakyRelu", "MaxPool", "AveragePool", "Slice", "ReduceSum",
            "BatchNormalization", "Tanh", "Gemm", "Sigmoid", "Unsqueeze", "MatMul",
            "Squeeze", "Mul", "Sub", "Div", "Pow", "Exp", "Log", "ReduceMax", "Reshape",
            "Transpose", "LogSoftmax", "Softmax", "Neg", "ReduceMean", "Relu", "Add",
            "Cast"} <= ops


class Indexing(nn.Module):
    def forward(self, x):
        rows = x[cnn.tensor(np.array([2, 0], np.int64))]     # Gather on the first dim
        return (x[-1, ..., None, 1:3] + x[:3, -2, None, :2], rows[0, ::-1], x[..., -1])


def test_indexing_and_several_outputs():
    x = cnn.randn(4, 3, 5)
    proto, session = exported(Indexing(), x, output_names=["a", "b"])
    assert [o.name for o in proto.graph.output] == ["a", "b", "output_2"]
    with cnn.no_grad():
        expected = [out.numpy() for out in Indexing()(x)]
    for got, want in zip(session.run(None, {"input": x.numpy()}), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)



def test_an_in_place_operation_is_refused_not_left_out(tmp_path):
    # Traced without autograd, `out += x` is no op: the graph would lack the sum.
    with pytest.raises(ValueError, match=r"in place \(add_\)"):
        cnn.onnx.export(AddsInPlace(), (cnn.randn(2, 4),), str(tmp_path / "model.onnx"))


def test_several_inputs_and_an_output_that_is_an_input():
    class Pair(nn.Module):
        def forward(self, a, b):
            return a @ b, a

    a, b = cnn.randn(2, 3), cnn.randn(3, 4)
    proto, session = exported(Pair(), (a, b.numpy()), input_names=["a"])
    assert [i.name for i in proto.graph.input] == ["a", "input_1"]
    product, same = session.run(None, {"a": a.numpy(), "input_1": b.numpy()})
    np.testing.assert_allclose(product, (a @ b).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(same, a.numpy())


def test_a_hooked_unfused_chain_exports_like_the_fused_one():
    cnn.manual_seed(0)
    model = lenet5()
    hooked = lenet5()
    hooked.load_state_dict(model.state_dict())
    hooked[0].register_forward_hook(lambda module, args, out: None)  # no fusion there
    x = cnn.randn(2, 1, 28, 28)
    first, session = exported(model, x)
    second, _ = exported(hooked, x)
    assert [n.op_type for n in first.graph.node] == [n.op_type for n in second.graph.node]
    with cnn.no_grad():
        np.testing.assert_allclose(session.run(None, {"input": x.numpy()})[0],
                                   hooked(x).numpy(), rtol=1e-4, atol=1e-5)


def test_explicit_dropout_is_the_identity_and_unbatched_input_works():
    class Unbatched(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, image):  # (1, H, W): conv2d adds and removes the batch dim
            return F.max_pool2d(self.conv(F.dropout(image, 0.5, training=True)), 2)

    cnn.manual_seed(0)
    model, image = Unbatched(), cnn.randn(1, 8, 8)
    proto, session = exported(model, image)
    assert "Identity" in {node.op_type for node in proto.graph.node}
    with cnn.no_grad():
        expected = F.max_pool2d(model.conv(image), 2).numpy()
    np.testing.assert_allclose(session.run(None, {"input": image.numpy()})[0], expected,
                               rtol=1e-5, atol=1e-6)


def test_writes_a_file_atomically(tmp_path):
    cnn.manual_seed(0)
    path = tmp_path / "lenet.onnx"
    proto = cnn.onnx.export(lenet5(), cnn.randn(2, 1, 28, 28), str(path))
    assert onnx.load(str(path)) == proto
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.onnx"]


# ***** what export refuses *****

def test_an_op_without_onnx_equivalent_is_named():
    class WithLoss(nn.Module):
        def forward(self, x):
            return F.cross_entropy(x, np.zeros(len(x), np.int64))

    with pytest.raises(UnsupportedOperatorError, match="CrossEntropy"):
        cnn.onnx.export(WithLoss(), cnn.randn(2, 3), io.BytesIO())


def test_batch_norm_in_training_mode_is_refused():
    class Explicit(nn.Module):
        def forward(self, x):
            return F.batch_norm(x, None, None, training=True)

    with pytest.raises(UnsupportedOperatorError, match="BatchNorm in training mode"):
        cnn.onnx.export(Explicit(), cnn.randn(4, 3), io.BytesIO())


def test_boolean_index_is_refused():
    class Masked(nn.Module):
        def forward(self, x):
            return x[np.array([True, False, True])]

    with pytest.raises(UnsupportedOperatorError, match="GetItem"):
        cnn.onnx.export(Masked(), cnn.randn(3, 2), io.BytesIO())


def test_values_computed_outside_the_ops_are_refused_not_frozen():
    class Leaky(nn.Module):
        def forward(self, x):
            return x - cnn.tensor(x.numpy().mean())  # a constant of this input only

    class Argmax(nn.Module):
        def forward(self, x):
            return x.argmax(1)

    class Branches(nn.Module):
        def forward(self, x):
            return x.exp() if x[0, 0].item() > 0 else -x

    with pytest.raises(ValueError, match="changes with the input"):
        cnn.onnx.export(Leaky(), cnn.randn(4, 3), io.BytesIO())
    with pytest.raises(ValueError, match="output 'output' is not computed"):
        cnn.onnx.export(Argmax(), cnn.randn(4, 3), io.BytesIO())
    # The second pass adds noise to the input (0.126 to its first element here): the branch
    # stays the same for the first input and changes for the second.
    cnn.onnx.export(Branches(), cnn.tensor(np.full((4, 3), 5.0, np.float32)), io.BytesIO())
    with pytest.raises(ValueError, match="different ops"):
        cnn.onnx.export(Branches(), cnn.tensor(np.full((4, 3), -0.1, np.float32)), io.BytesIO())


@pytest.mark.parametrize("arguments, error, words", [
    ({"model": lambda x: x}, TypeError, "model: expected a cnn.nn.Module"),
    ({"args": [1.0]}, TypeError, "args: expected Tensors"),
    ({"args": ()}, ValueError, "args: expected at least one"),
    ({"f": 3}, TypeError, "f: expected a path"),
    ({"opset_version": 7}, ValueError, "opset_version: expected 13 to"),
    ({"opset_version": "17"}, TypeError, "opset_version: expected an integer"),
    ({"export_params": False}, ValueError, "export_params"),
    ({"verbose": "yes"}, TypeError, "verbose: expected True or False"),
    ({"input_names": ["a", "b"]}, ValueError, "input_names: 2 names for 1 input"),
    ({"input_names": "x"}, TypeError, "input_names: expected a list"),
    ({"output_names": ["input"]}, ValueError, "output_names: 'input' is also an input name"),
    ({"dynamic_axes": {"nope": [0]}}, ValueError, "'nope' is neither"),
    ({"dynamic_axes": {"input": {4: "b"}}}, ValueError, "axis 4 is not an axis"),
    ({"dynamic_axes": {"input": {0: 1}}}, TypeError, "expected a dim name"),
    ({"dynamic_axes": [0]}, TypeError, "dynamic_axes: expected a dict"),
])
def test_arguments_are_checked(arguments, error, words):
    call = {"model": nn.Linear(3, 2), "args": cnn.randn(2, 3), "f": io.BytesIO()}
    call.update(arguments)
    with pytest.raises(error, match=words):
        cnn.onnx.export(call.pop("model"), call.pop("args"), call.pop("f"), **call)


def test_dynamic_axes_as_a_list_get_generated_names():
    proto, session = exported(nn.Linear(3, 2), cnn.randn(2, 3), dynamic_axes={"input": [0]})
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == \
        "input_dynamic_axes_1"
    assert session.run(None, {"input": np.ones((6, 3), np.float32)})[0].shape == (6, 2)


def test_without_the_onnx_package_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'cnn\[onnx\]'"):
        cnn.onnx.export(nn.Linear(3, 2), cnn.randn(2, 3), io.BytesIO())


# ***** the tracing hook *****

def test_tracing_sees_every_op_of_its_thread_only_and_does_not_nest():
    seen = []
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    other = threading.Thread(target=lambda: model(cnn.randn(1, 3)))
    with tracing(lambda function, args, kwargs, out: seen.append(
            (function.__name__, threading.get_ident()))):
        model(cnn.randn(1, 3))
        with pytest.raises(RuntimeError, match="do not nest"):
            with tracing(lambda *a: None):
                pass
        other.start()
        other.join()
    mine = [name for name, thread in seen if thread == threading.get_ident()]
    assert mine == ["Linear", "ReLU"]
    seen.clear()
    model(cnn.randn(1, 3))  # off again
    assert seen == []


# ***** the README *****

def test_readme_onnx_runtime_snippet_runs_and_matches_cnn(tmp_path, monkeypatch):
    section = README.read_text().split("## Deploying with ONNX", 1)[1].split("\n## ", 1)[0]
    snippets = re.findall(r"```python\n(.*?)```", section, re.S)
    runtime = next(s for s in snippets if "onnxruntime" in s)
    code_lines = [line for line in runtime.splitlines() if line.strip()]
    assert len(code_lines) == 5
    cnn.manual_seed(0)
    model = lenet5()
    cnn.save(model.state_dict(), tmp_path / "lenet_mnist.npz")
    monkeypatch.chdir(tmp_path)
    from cnn.cli import main
    assert main(["export", "--model", "lenet_mnist.npz", "--out", "lenet.onnx"]) == 0
    namespace = {}
    exec(compile(runtime, "README.md", "exec"), namespace)
    with cnn.no_grad():
        expected = model.eval()(cnn.tensor(namespace["images"])).numpy()
    assert namespace["logits"].shape == (8, 10)
    np.testing.assert_allclose(namespace["logits"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape, op_types", [((2, 3), ["Gemm", "Relu"]),
                                             ((2, 4, 3), ["Transpose", "MatMul", "Add", "Relu"])])
def test_a_linear_with_its_relu_folded_exports_with_a_relu(shape, op_types):
    # Linear's relu form (cnn.compile folds the ReLU that alone takes its output) is the layer
    # then ONNX's Relu.
    from cnn.onnx import graph, ops
    g = graph.Graph(13, {})
    x = cnn.tensor(np.ones(shape, np.float32))
    g.bind(x, "x")
    weight, bias = np.ones((5, 3), np.float32), np.zeros(5, np.float32)
    name = ops.linear_(g, None, x, weight, bias, relu=True)
    assert [node.op_type for node in g.nodes] == op_types
    assert g.nodes[-1].output[0] == name


def test_a_compiled_model_exports_as_the_model_it_compiles():
    # cnn.compile's wrapper (and a compiled part of a model) runs its ops eagerly inside the
    # export's trace, so the graph is the plain model's (named by the wrapper's state-dict keys).
    cnn.manual_seed(0)
    model = cnn.compile(lenet5())
    proto = assert_runs_like_cnn(model, (1, 28, 28))
    assert {init.name for init in proto.graph.initializer} >= {"_orig_mod.0.weight"}
    cnn.manual_seed(0)
    partly = nn.Sequential(cnn.compile(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())),
                           nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    assert_runs_like_cnn(partly, (3, 32, 32))
