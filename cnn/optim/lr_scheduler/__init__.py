"""Learning-rate schedules (PyTorch's ``torch.optim.lr_scheduler`` semantics and formulas)."""
from .base import LRScheduler
from .composite import ChainedScheduler, SequentialLR
from .cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts, OneCycleLR
from .decay import (ConstantLR, ExponentialLR, LambdaLR, LinearLR, MultiplicativeLR,
                    MultiStepLR, StepLR)
from .plateau import ReduceLROnPlateau

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
           "LinearLR", "ExponentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
           "OneCycleLR", "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler"]
