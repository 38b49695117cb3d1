from .parameter import Parameter
from .module import Module
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from . import init
from . import functional
from .modules import (ELU, GELU, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool2d,
                      AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, BCELoss, BCEWithLogitsLoss,
                      Conv1d, Conv2d, ConvReLU2d, ConvReLUMaxPool2d, ConvTranspose2d,
                      CrossEntropyLoss, Dropout, Dropout2d, Flatten, GroupNorm, Hardtanh,
                      HuberLoss, Identity, KLDivLoss, L1Loss, LayerNorm, LeakyReLU, Linear,
                      LogSoftmax, MaxPool1d, MaxPool2d, MSELoss, NLLLoss, ReLU, ReLU6, Sigmoid,
                      SiLU, SmoothL1Loss, Softmax, Softplus, Tanh, Upsample)
from . import utils
