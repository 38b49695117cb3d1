"""Loss layers: CrossEntropyLoss, NLLLoss, MSELoss."""
from cnn.nn import functional as F
from cnn.nn.functional._inputs import float_array_of
from cnn._validation import integer
from cnn.nn.functional.loss import check_label_smoothing, check_reduction
from cnn.nn.module import Module


class _WeightedLoss(Module):
    """Keeps optional per-class weights as a buffer (so they appear in state_dict, as in PyTorch)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__()
        self.register_buffer("weight", None if weight is None else
                             float_array_of(weight, "weight", (1,)))
        self.ignore_index = integer(ignore_index, "ignore_index")
        self.reduction = check_reduction(reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy of logits (N, C) and class indices (N,) or probabilities (N, C).

    Args:
        weight: optional per-class weights (C,).
        ignore_index: a target index that contributes nothing.
        reduction: 'mean', 'sum' or 'none'.
        label_smoothing: in [0, 1].
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(weight, ignore_index, reduction)
        check_label_smoothing(label_smoothing)
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (N, C) at class indices (N,)."""

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(Module):
    """Mean squared error ('mean'), summed ('sum') or per element ('none')."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)
