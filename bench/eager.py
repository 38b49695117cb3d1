"""Training steps and inference in a library with PyTorch's interface: cnn, or torch eager.

The same code runs on both (cnn has PyTorch's interface), so what is timed is the same
sequence of calls in each: zero_grad, forward, cross_entropy, backward, SGD-momentum step.
"""
import numpy as np

LR, MOMENTUM = 0.01, 0.9


def sgd_trainer(library, model):
    """`step(x, y)`: one SGD-momentum training step of `model` on a batch (optimizer made once).

    `library` is cnn or torch. Returns the loss (a tensor of the library).
    """
    F = library.nn.functional
    optimizer = library.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step(x, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return step


def training_step(library, model, x, y):
    """One training step on arrays x, y as a callable without arguments (for the timer)."""
    step = sgd_trainer(library, model)
    x, y = library.from_numpy(x), library.from_numpy(y)
    return lambda: step(x, y)


def inference(library, model, batches):
    """A callable running `model` in eval mode without autograd over each array in `batches`;
    it returns the list of outputs (tensors of the library)."""
    model.eval()
    batches = [library.from_numpy(b) for b in batches]

    def infer():
        with library.no_grad():
            return [model(b) for b in batches]
    return infer


def torch_copy(torch, model, build):
    """`build(torch.nn)` holding `model`'s (a cnn model's) parameters and buffers."""
    copy = build(torch.nn)
    copy.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    return copy


class Pair:
    """The same network in cnn and (when there is PyTorch) in torch, with identical weights:
    cnn's, drawn after cnn.manual_seed(0)."""

    def __init__(self, ctx, build):
        ctx.cnn.manual_seed(0)
        self.cnn = build(ctx.cnn.nn)
        self.torch = None if ctx.torch is None else torch_copy(ctx.torch, self.cnn, build)
