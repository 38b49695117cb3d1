"""Write the small PyTorch checkpoints of tests/data/ that tests/test_pt_checkpoints.py reads.

The files let the reader be tested against real ``torch.save`` output on machines without
PyTorch. They were written once, with PyTorch 2.13.0, by::

    python tests/make_pt_files.py

and are kept in the repository; run it again only to add a file (torch.save puts a random
serialization id in each file, so the bytes change every time, the contents do not). Every
value is a formula that the test computes again with NumPy (``expected_*`` there):

* ``tensors.pt`` and ``tensors_legacy.pt`` (the zip format and the legacy one): one tensor of
  each dtype a state dict holds (bfloat16 included), strided views sharing one storage (a
  transpose and a slice with an offset and a step), a 0-d and an empty tensor, a Parameter,
  and plain values;
* ``checkpoint.pt``: a training checkpoint ``{"model", "optimizer", "epoch"}`` of a small net
  with batch norm (its state dict, an SGD state dict with momentum buffers after one step).
"""
from collections import OrderedDict
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent / "data"


def tensors():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1
    return OrderedDict([
        ("float32", base),
        ("transposed", base.t()),
        ("sliced", base[1:3, ::2]),
        ("float64", base.double() / 3),
        ("float16", base.half()),
        ("bfloat16", base.bfloat16()),
        ("int64", torch.arange(-3, 3)),
        ("int32", torch.arange(-3, 3, dtype=torch.int32) * 1000),
        ("int8", torch.arange(-3, 3, dtype=torch.int8)),
        ("uint8", torch.arange(250, 256, dtype=torch.uint8)),
        ("bool", base > 0),
        ("scalar", torch.tensor(2.5)),
        ("empty", torch.zeros(0, 3)),
        ("parameter", torch.nn.Parameter(torch.full((2,), 0.5))),
        ("plain", {"epoch": 3, "name": "lenet", "betas": (0.9, 0.999), "none": None,
                   "flags": [True, False], "big": 2 ** 70}),
    ])


def small_net():
    """Conv2d(1, 2, 3) -> BatchNorm2d(2) -> Flatten -> Linear(8, 3), weights from formulas."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.dtype.is_floating_point:
                count = tensor.numel()
                tensor.copy_((torch.arange(count, dtype=torch.float32) / count - 0.5)
                             .reshape(tensor.shape))
        net[1].running_var.fill_(2.0)
        net[1].num_batches_tracked.fill_(7)
    return net


def checkpoint():
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for parameter in net.parameters():
        parameter.grad = torch.ones_like(parameter)
    optimizer.step()  # momentum buffers: ones; the weights move by -0.1
    return {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}


def main():
    DATA.mkdir(exist_ok=True)
    torch.save(tensors(), DATA / "tensors.pt")
    torch.save(tensors(), DATA / "tensors_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(checkpoint(), DATA / "checkpoint.pt")
    for path in sorted(DATA.glob("*.pt")):
        print(f"{path.relative_to(DATA.parent.parent)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
