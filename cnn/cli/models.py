"""The networks and datasets ``cnn train`` knows: ``--model`` and ``--dataset``.

Each dataset says how its images look (channels, size), which transforms its training and
test images get (the CIFAR recipe: random crops with 4 pixels of padding, horizontal flips,
per-channel normalisation) and which model and worker count it uses by default. Each model is
built for the images it is given.
"""
from .. import nn, transforms
from ..datasets import CIFAR10, MNIST, FashionMNIST
from .lenet import lenet5

# Per-channel mean and standard deviation of the CIFAR-10 training images.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class DatasetChoice:
    """A ``--dataset`` value: its class, image shape, transforms and defaults."""

    def __init__(self, name, title, cls, shape, default_model, default_workers, train_transform,
                 test_transform, default_root=None):
        self.name, self.title, self.cls, self.shape = name, title, cls, shape
        self.default_model, self.default_workers = default_model, default_workers
        self.train_transform, self.test_transform = train_transform, test_transform
        self.default_root = default_root


def _cifar_train():
    return transforms.Compose([transforms.RandomCrop(32, padding=4),
                               transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                               transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)])


def _cifar_test():
    return transforms.Compose([transforms.ToTensor(),
                               transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)])


DATASETS = {
    "mnist": DatasetChoice("mnist", "MNIST", MNIST, (1, 28, 28), "lenet5", 0,
                           transforms.ToTensor, transforms.ToTensor),
    # Debian's dataset-fashion-mnist package puts the files in /usr/share/datasets/fashion-mnist.
    "fashion-mnist": DatasetChoice("fashion-mnist", "Fashion-MNIST", FashionMNIST, (1, 28, 28),
                                   "lenet5", 0, transforms.ToTensor, transforms.ToTensor,
                                   default_root="/usr/share/datasets"),
    "cifar10": DatasetChoice("cifar10", "CIFAR-10", CIFAR10, (3, 32, 32), "cifar-net", 2,
                             _cifar_train, _cifar_test),
}


def lenet5_for(channels, size):
    """LeNet-5 for `channels` x `size` x `size` images: the command line's own for 1 x 28 x 28
    (first convolution padded by 2), LeCun's unpadded form for 32 x 32."""
    if (channels, size) == (1, 28):
        return lenet5()
    padding = (32 - size) // 2
    return nn.Sequential(
        nn.Conv2d(channels, 6, kernel_size=5, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def cifar_net(channels, size):
    """The small CIFAR network of the figures (SPEC section 7): two 3 x 3 convolutions of 32
    and 64 channels, each with ReLU and a 2 x 2 max-pool, then one linear layer."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, 10))


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3 x 3 convolutions with batch norm, plus the input (a 1 x 1
    projection when the shape changes)."""

    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """He et al.'s ResNet for CIFAR: a 3 x 3 convolution of 16 channels, three stages of
    `blocks` basic blocks (16, 32 and 64 channels, the last two halving the size), a global
    average pool and a linear layer. ``blocks=3`` is ResNet-20."""

    def __init__(self, channels, size, blocks=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 16, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        layers, width = [], 16
        for stage, out in enumerate((16, 32, 64)):
            for block in range(blocks):
                layers.append(BasicBlock(width, out, 2 if stage and not block else 1))
                width = out
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(size // 4)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.layers(self.stem(x)))))


MODELS = {
    "lenet5": ("LeNet-5", lenet5_for),
    "cifar-net": ("the CIFAR net", cifar_net),
    "resnet20": ("ResNet-20", ResNet),
}


def build(model, dataset):
    """The network `model` (a MODELS key) for the images of `dataset` (a DATASETS key)."""
    channels, size, _ = DATASETS[dataset].shape
    return MODELS[model][1](channels, size)
