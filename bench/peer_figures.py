"""The figures of bench_peers.py: what each one runs in cnn and in every installed peer.

A figure is a network, a kind and a batch size:

- "train": one SGD-momentum training step (forward, cross-entropy, backward, update) in cnn,
  PyTorch eager and JAX (the whole step under one jax.jit);
- "infer": eval-mode forward passes over a set of images in batches of `batch`, in cnn,
  PyTorch (no_grad), JAX (jit) and ONNX Runtime;
- "latency": the same for a single image, batch 1.

Each builder returns the callables to time and a check that they compute the same thing: all
start from cnn's weights (drawn after cnn.manual_seed(0)), and their first losses (training:
the first two, so the gradients and the update are checked too) or outputs must agree with
cnn's to float32 tolerance.
"""
from collections import namedtuple

import numpy as np

import eager
import peer_jax
import peer_ort
from nets import NETS

Figure = namedtuple("Figure", "id net kind batch")

_SIZES = {"lenet": [("train", 10), ("train", 64), ("train", 256), ("infer", 1000),
                    ("latency", 1)],
          "cifar": [("train", 64), ("infer", 1000), ("latency", 1)],
          "resnet8": [("train", 64), ("infer", 1000), ("latency", 1)],
          "vgg": [("train", 32), ("infer", 1000), ("latency", 1)]}
FIGURES = [Figure(f"{net}-{kind}-b{batch}", net, kind, batch)
           for net, sizes in _SIZES.items() for kind, batch in sizes]

# Agreement with cnn, float32: |peer - cnn| <= ATOL + RTOL * max|cnn| over the compared values.
ATOL, RTOL = 1e-4, 1e-3


def title(fig, images):
    """The figure's name in the table, e.g. 'LeNet-5 train b64'."""
    name = NETS[fig.net].title
    if fig.kind == "train":
        return f"{name} train step b{fig.batch}"
    if fig.kind == "latency":
        return f"{name} latency b1"
    return f"{name} infer {images} img b{fig.batch}"


def _agreement(reference, values):
    """Max |value - reference| and whether it is within float32 tolerance."""
    reference = np.asarray(reference, np.float64)
    diff = float(np.max(np.abs(np.asarray(values, np.float64) - reference)))
    return diff, diff <= ATOL + RTOL * float(np.max(np.abs(reference)))


def _check(results):
    """{peer: {"max_abs_diff", "agrees"}} of every contender's results against cnn's."""
    reference = results.pop("cnn")
    out = {}
    for label, values in results.items():
        diff, ok = _agreement(reference, values)
        out[label] = {"max_abs_diff": diff, "agrees": ok}
    return out


def train(ctx, fig):
    """(callables, check) of one training step at fig.batch in cnn, torch and JAX."""
    net = NETS[fig.net]
    x, y = ctx.data.train(net, fig.batch)
    ctx.cnn.manual_seed(0)
    model = net.builder(ctx.cnn.nn)
    peers = ctx.peers
    fns = {}
    # JAX and torch copy the weights before cnn's first step changes them.
    if peers.jax is not None:
        fns["jax"] = peer_jax.JaxModel(peers.jax, model).training_step(x, y)
    if peers.torch is not None:
        twin = eager.torch_copy(peers.torch, model, net.builder)
        fns["torch"] = eager.training_step(peers.torch, twin, x, y)
    fns["cnn"] = eager.training_step(ctx.cnn, model, x, y)
    # Two steps each: the second loss depends on the first step's gradients and update. They
    # are warm-up calls too (JAX compiles here).
    losses = {label: [float(fn().item()) for _ in range(2)] for label, fn in fns.items()}
    check = _check(dict(losses))
    for label, item in check.items():
        item["losses"], item["cnn_losses"] = losses[label], losses["cnn"]
    return _ordered(fns), check


class InferenceModels:
    """One network, ready for inference in cnn and every installed peer, cnn's weights in all.

    Built once per network and shared by its "infer" and "latency" figures (the ONNX export
    and the JAX compilations are the slow part).
    """

    def __init__(self, ctx, net):
        self.net = net
        ctx.cnn.manual_seed(0)
        self.cnn = net.builder(ctx.cnn.nn).eval()
        peers = ctx.peers
        self.torch = self.jax = self.ort = None
        if peers.torch is not None:
            self.torch = eager.torch_copy(peers.torch, self.cnn, net.builder).eval()
        if peers.jax is not None:
            self.jax = peer_jax.JaxModel(peers.jax, self.cnn)
        if peers.ort is not None:
            # The dynamic batch dimension needs an example batch of at least 2.
            sample = np.zeros((2,) + net.input, np.float32)
            self.ort = peer_ort.session(peers.ort, peer_ort.export(peers.torch, self.torch, sample),
                                        ctx.threads)

    def callables(self, ctx, batches):
        """Label -> callable running the forward pass over `batches` (a list of arrays)."""
        fns = {"cnn": eager.inference(ctx.cnn, self.cnn, batches)}
        if self.torch is not None:
            fns["torch"] = eager.inference(ctx.peers.torch, self.torch, batches)
        if self.jax is not None:
            fns["jax"] = self.jax.inference(batches)
        if self.ort is not None:
            fns["ort"] = peer_ort.inference(self.ort, batches)
        return fns


def infer(ctx, fig):
    """(callables, check) of the forward pass over the figure's images at fig.batch."""
    net = NETS[fig.net]
    images = ctx.data.test(net, ctx.infer_images(fig))
    batches = [images[i:i + fig.batch] for i in range(0, len(images), fig.batch)]
    fns = ctx.inference_models(net).callables(ctx, batches)
    # The first call, compared, is a warm-up call too (JAX compiles for this shape here).
    outputs = {label: np.concatenate([np.asarray(o) for o in fn()]) for label, fn in fns.items()}
    return fns, _check(outputs)


def _ordered(fns):
    """cnn first, then the peers in the report's order."""
    return {label: fns[label] for label in ("cnn", "torch", "jax", "ort") if label in fns}


BUILDERS = {"train": train, "infer": infer, "latency": infer}
