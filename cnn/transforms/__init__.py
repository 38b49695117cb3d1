"""Image transforms, as ``torchvision.transforms`` (``import cnn.transforms as transforms``).

They take the images the datasets give (NumPy arrays ``(H, W)`` or ``(H, W, C)``, usually
uint8), ``cnn.Tensor`` images ``(..., C, H, W)``, or PIL images when Pillow is installed (Pillow
is not required; a PIL image comes out as an array), and return the same kind, with
torchvision's semantics, argument names and formulas (its tensor formulas, for arrays too).
Random transforms draw from ``cnn``'s generator (``cnn.manual_seed``; every DataLoader worker
seeds its own). The functions are in :mod:`cnn.transforms.functional`.

Example: the standard CIFAR-10 training recipe::

    transform_train = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    ])
"""
from . import functional
from .functional import InterpolationMode
from .transforms import (CenterCrop, ColorJitter, Compose, Lambda, Normalize, Pad,
                         PILToTensor, RandomCrop, RandomErasing, RandomHorizontalFlip,
                         RandomResizedCrop, RandomRotation, RandomVerticalFlip, Resize,
                         ToDtype, ToTensor)

__all__ = ["functional", "InterpolationMode", "Compose", "ToTensor", "PILToTensor", "ToDtype",
           "Normalize", "Lambda", "RandomCrop", "RandomHorizontalFlip", "RandomVerticalFlip",
           "CenterCrop", "Resize", "Pad", "RandomResizedCrop", "RandomRotation", "ColorJitter",
           "RandomErasing"]
