"""ONNX Runtime as an inference peer: the PyTorch copy of a model, exported to ONNX.

The export uses torch.onnx.export's default (torch.export-based) exporter, which needs the
`onnxscript` package, with a dynamic batch dimension, so that one session serves batch 1 and
batch 1000. The session runs on the CPU provider with `intra_op_num_threads` = the benchmark's
thread count, one inter-op thread and sequential execution; everything else (graph
optimisations such as folding BatchNorm into the convolutions, thread spinning) stays at
ONNX Runtime's defaults, which are its fast settings.
"""
import contextlib
import importlib.util
import io
import logging
import warnings

import numpy as np


def load():
    """(onnxruntime module or None, why not). The exporter's needs are checked too."""
    try:
        import onnxruntime
    except ImportError as error:
        return None, f"not installed ({error})"
    # Looked up, not imported: onnxscript takes about a second to import, and the exporter
    # imports it when it first runs.
    for needed in ("onnx", "onnxscript"):
        if importlib.util.find_spec(needed) is None:
            return None, f"{needed} is missing, which torch's ONNX exporter needs"
    return onnxruntime, None


def versions(ort):
    """Versions of ONNX Runtime and the exporter's packages, for the report."""
    import onnx
    import onnxscript
    return {"onnxruntime": ort.__version__, "onnx": onnx.__version__,
            "onnxscript": onnxscript.__version__, "providers": ["CPUExecutionProvider"]}


def export(torch, model, sample):
    """The ONNX bytes of torch `model` (eval mode) for inputs shaped like `sample` (an array
    whose first dimension, at least 2, becomes dynamic)."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(sample))
    # The exporter logs and prints progress (and warns that torchvision is absent): keep
    # stdout for the report and stderr for real problems.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (x,), None, input_names=["x"], output_names=["y"],
                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False)
    finally:
        quiet.setLevel(level)
    return program.model_proto.SerializeToString()


def session(ort, onnx_bytes, threads):
    """An InferenceSession on the CPU: `threads` intra-op threads, 1 inter-op, sequential."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def inference(sess, batches):
    """A callable running the session over each array in `batches`; returns the outputs."""
    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in batches]
    return lambda: [sess.run(None, {"x": b})[0] for b in batches]

