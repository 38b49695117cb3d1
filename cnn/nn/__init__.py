from .parameter import Parameter
from .module import Module
from .container import ModuleList, Sequential
from . import init
from . import functional
from .modules import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, ConvReLU2d, ConvReLUMaxPool2d,
                      CrossEntropyLoss, Dropout, Flatten, Identity, LeakyReLU, Linear, LogSoftmax,
                      MaxPool2d, MSELoss, NLLLoss, ReLU, Sigmoid, Softmax, Tanh)
from . import utils
