"""``cnn export``: a trained LeNet-5 as an ONNX file, for ONNX Runtime, OpenVINO and the like."""
from .. import onnx
from ..tensor import zeros
from .errors import CommandError
from .lenet import load_lenet5
from .options import add_model_option, check_output_path, positive_int

INPUT_NAME, OUTPUT_NAME = "images", "logits"
IMAGE_SHAPE = (1, 28, 28)


def register(subparsers):
    """Add the ``export`` command to `subparsers`."""
    parser = subparsers.add_parser(
        "export", help="write a trained LeNet-5 as an ONNX model",
        description="Export a trained LeNet-5 to ONNX (needs the onnx package: pip install "
                    "'cnn[onnx]'). The graph takes float32 images 'images' (batch, 1, 28, 28), "
                    "any batch size, and gives 'logits' (batch, 10).",
        epilog="example: %(prog)s --model lenet_mnist.npz --out lenet.onnx")
    add_model_option(parser)
    parser.add_argument("--out", default="lenet.onnx", metavar="FILE",
                        help="the ONNX file to write (default: %(default)s)")
    parser.add_argument("--opset", type=positive_int, default=onnx.DEFAULT_OPSET, metavar="N",
                        help="the ONNX opset version (default: %(default)s)")
    parser.set_defaults(run=run)


def run(args):
    """Run ``cnn export``; return the exit status."""
    check_output_path(args.out, "--out")
    model, _ = load_lenet5(args.model)
    # A batch of 2 traces the batch dim apart from the dims of size 1.
    example = zeros((2,) + IMAGE_SHAPE)
    try:
        onnx.export(model, example, args.out, input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME], opset_version=args.opset,
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    except ImportError as error:
        raise CommandError(str(error)) from None
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot export to {args.out}: {error}") from None
    print(f"LeNet-5 from {args.model} exported to {args.out} (ONNX opset {args.opset}): input "
          f"'{INPUT_NAME}' float32 (batch, {', '.join(map(str, IMAGE_SHAPE))}), output "
          f"'{OUTPUT_NAME}' (batch, 10)")
    return 0
