"""The benchmarked networks, written once for any library with PyTorch's `nn` interface.

Each builder takes `nn` (cnn.nn or torch.nn) and returns the model, so cnn and PyTorch run the
very same definition and their state_dict keys match. JAX and ONNX Runtime get their versions
from the cnn model (bench/peer_jax.py walks its modules; bench/peer_ort.py exports the PyTorch
copy), so no network is written twice.

Only what cnn has today is used: Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, Linear,
Flatten, Identity, Sequential, Module and functional.relu. The global average pool is an
AvgPool2d whose kernel covers the whole 8x8 map (cnn has no adaptive pooling).
"""
from collections import namedtuple

# name: builder(nn) -> model; input: one sample's shape (C, H, W); mnist: LeNet-5 runs on the
# MNIST images (the others on random CIFAR-shaped data).
Net = namedtuple("Net", "name title builder input mnist")


def lenet(nn):
    """LeNet-5 of SPEC section 4 (61,706 parameters)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def cifar_net(nn):
    """The CIFAR-sized net of SPEC section 7."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4096, 10))


def residual_wiring(run, relu, x):
    """out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    `run(name, value)` applies the block's layer of that name. cnn and PyTorch pass the
    layers themselves (the `+` is then Tensor addition); bench/peer_jax.py passes their JAX
    translations, so the block's wiring exists once.
    """
    out = relu(run("bn1", run("conv1", x)))
    out = run("bn2", run("conv2", out))
    return relu(out + run("shortcut", x))


_BLOCKS = {}


def residual_block(nn):
    """The ResNet basic block class of library `nn` (made once per library)."""
    if nn not in _BLOCKS:
        class BasicBlock(nn.Module):
            """Two 3x3 conv-BN layers and a shortcut: a 1x1 conv-BN projection where the
            shape changes (stride or channels), the identity elsewhere."""

            wiring = staticmethod(residual_wiring)

            def __init__(self, cin, cout, stride):
                super().__init__()
                # No conv bias before a BatchNorm: its shift would cancel it.
                self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(cout)
                self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
                self.bn2 = nn.BatchNorm2d(cout)
                if stride != 1 or cin != cout:
                    self.shortcut = nn.Sequential(
                        nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
                else:
                    self.shortcut = nn.Identity()

            def forward(self, x):
                return residual_wiring(lambda name, v: getattr(self, name)(v),
                                       nn.functional.relu, x)

        _BLOCKS[nn] = BasicBlock
    return _BLOCKS[nn]


def resnet8(nn):
    """ResNet-8 for 3x32x32: a 3x3 conv-BN-ReLU stem (16 channels), one basic block per stage
    at 16, 32 and 64 channels (strides 1, 2, 2), a global 8x8 average pool, a linear layer."""
    block = residual_block(nn)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        block(16, 16, 1), block(16, 32, 2), block(32, 64, 2),
        nn.AvgPool2d(8), nn.Flatten(), nn.Linear(64, 10))


def vgg(nn):
    """A VGG-style net for 3x32x32: three blocks of [conv3x3-ReLU, conv3x3-ReLU, maxpool 2] at
    32, 64 and 128 channels, then a linear layer (2048 -> 10).

    Without BatchNorm: ResNet-8 already measures BatchNorm, and this way the net stays the
    plain conv/ReLU/pool stack whose second conv of each block cnn fuses with its ReLU and pool.
    """
    layers, cin = [], 3
    for cout in (32, 64, 128):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                   nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        cin = cout
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * 4 * 4, 10))


NETS = {net.name: net for net in (
    Net("lenet", "LeNet-5", lenet, (1, 28, 28), True),
    Net("cifar", "CIFAR net", cifar_net, (3, 32, 32), False),
    Net("resnet8", "ResNet-8", resnet8, (3, 32, 32), False),
    Net("vgg", "VGG-style", vgg, (3, 32, 32), False),
)}
