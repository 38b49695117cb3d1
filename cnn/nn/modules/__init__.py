"""The layers of cnn.nn: thin modules whose forward is one cnn.nn.functional call."""
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .dropout import Dropout
from .fused import ConvReLU2d, ConvReLUMaxPool2d
from .linear import Flatten, Identity, Linear
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .pooling import AvgPool2d, MaxPool2d
