"""Loss layers: CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCELoss,
BCEWithLogitsLoss, KLDivLoss."""
from cnn.nn import functional as F
from cnn.nn.functional._inputs import float_array_of
from cnn._validation import integer, real_number
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


class L1Loss(MSELoss):
    """Mean absolute error ('mean'), summed ('sum') or per element ('none')."""

    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(Module):
    """Squared error below ``beta`` (divided by it), absolute error above (minus beta / 2)."""

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.beta = real_number(beta, "beta", minimum=0)

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(Module):
    """Squared error (halved) below ``delta``, delta * (absolute error - delta / 2) above."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.delta = real_number(delta, "delta")
        if self.delta <= 0:
            raise ValueError(f"delta: must be positive, got {delta}")

    def forward(self, input, target):
        return F.huber_loss(input, target, self.reduction, self.delta)


class BCELoss(Module):
    """Binary cross-entropy of probabilities (N, *) against targets of the same shape.

    Args:
        weight: optional rescaling of each element's loss (broadcast to the input).
        reduction: 'mean', 'sum' or 'none'.
    """

    def __init__(self, weight=None, reduction="mean"):
        super().__init__()
        self.register_buffer("weight", None if weight is None else
                             float_array_of(weight, "weight"))
        self.reduction = check_reduction(reduction)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy of sigmoid(logits) against targets, computed stably from logits.

    Args:
        weight: optional rescaling of each element's loss (broadcast to the input).
        reduction: 'mean', 'sum' or 'none'.
        pos_weight: optional weight of the positive term, per class (broadcast along the last
            dim).
    """

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__()
        self.register_buffer("weight", None if weight is None else
                             float_array_of(weight, "weight"))
        self.register_buffer("pos_weight", None if pos_weight is None else
                             float_array_of(pos_weight, "pos_weight"))
        self.reduction = check_reduction(reduction)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  self.pos_weight)


class KLDivLoss(Module):
    """Kullback-Leibler divergence of targets from log-probabilities.

    Args:
        reduction: 'mean' (over elements), 'batchmean' (the sum over the batch size: the
            divergence's true mean), 'sum' or 'none'.
        log_target: the targets are log-probabilities too.
    """

    def __init__(self, reduction="mean", log_target=False):
        super().__init__()
        if reduction not in ("mean", "batchmean", "sum", "none"):
            raise ValueError(f"reduction: expected one of ('mean', 'batchmean', 'sum', 'none'), "
                             f"got {reduction!r}")
        self.reduction = reduction
        self.log_target = bool(log_target)

    def forward(self, input, target):
        return F.kl_div(input, target, self.reduction, self.log_target)
