"""Dropout layer."""
from cnn.nn import functional as F
from cnn.nn.functional.dropout import check_probability
from cnn.nn.module import Module


class Dropout(Module):
    """Zero each element with probability p in training mode (scaling the rest by 1/(1-p));
    the identity in evaluation mode. `inplace` is accepted and computed out of place."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        check_probability(p)
        self.p = p
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zero whole channels of (N, C, H, W) with probability p in training mode (scaling the
    rest by 1/(1-p)); the identity in evaluation mode."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training)
