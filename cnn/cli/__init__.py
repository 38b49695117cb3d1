"""The command line: ``python -m cnn COMMAND`` or ``cnn COMMAND``.

Commands (``--help`` on each tells more):

* ``train``: LeNet-5 on MNIST, with a checkpoint after every epoch and an exact ``--resume``;
* ``evaluate``: a checkpoint's test accuracy and confusion matrix (cnn's or PyTorch's);
* ``classify``: a 6 x 6 grid of test digits with the predictions (needs matplotlib);
* ``profile``: forward and backward time per layer of LeNet-5;
* ``summary``: LeNet-5's layers, output shapes and parameter counts;
* ``export``: a trained LeNet-5 as an ONNX file (needs the onnx package).

Only the command line imports tqdm and matplotlib; ``import cnn`` needs nothing but NumPy.
"""
import argparse
import os
import signal
import sys
import threading

from .. import distributed
from ..version import __version__
from . import classify, evaluate, export, profile, summary, train
from .errors import CommandError, EveryRankError, Terminated, exit_status, raise_terminated

__all__ = ["main", "build_parser", "CommandError"]

_COMMANDS = (train, evaluate, classify, profile, summary, export)


def build_parser(prog="cnn"):
    """The argument parser of every command.

    Args:
        prog (str): The program's name in usage lines and messages.
    """
    parser = argparse.ArgumentParser(
        prog=prog, description="Train, evaluate, draw, profile and export LeNet-5 on MNIST "
                                "with cnn.",
        epilog=f"'{prog} COMMAND --help' describes a command.")
    parser.add_argument("--version", action="version", version=f"cnn {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.register(subparsers)
    return parser


def main(argv=None, prog=None):
    """Run the command line; return the exit status.

    Args:
        argv (list of str, optional): The arguments (default: ``sys.argv[1:]``).
        prog (str, optional): The program's name (default: ``cnn``).

    Returns:
        int: 0 on success, 1 after an error the message explains (or when the reader of the
        output went away), 130 after Ctrl-C, 143 after SIGTERM (2, for bad arguments, comes
        from argparse's SystemExit).
    """
    if threading.current_thread() is not threading.main_thread():
        return _main(argv, prog or "cnn")
    # SIGTERM (kill, a scheduler's time limit) stops a command as cleanly as Ctrl-C; the
    # caller's handler is back once the command ends (main may be called from a program).
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return _main(argv, prog or "cnn")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv, prog):
    try:
        parser = build_parser(prog)
        args = parser.parse_args(argv)
    except KeyboardInterrupt as error:  # Ctrl-C while starting up
        return _interrupted(prog, error)
    args.prog = parser.prog
    # Data-parallel (``mpirun -n N ... train``), a rank that fails must take the job down with
    # it: the others would otherwise wait for it forever in their next collective. A failure
    # of every rank at once (they disagree) ends each rank by itself.
    with distributed.abort_on_error():
        status = _run(parser, args)
        if status and distributed.world_size() > 1 and not args.every_rank_failed:
            distributed.abort(status)
        return status


def _interrupted(where, error):
    """Print that `where` stopped on a signal; return its exit status: 143 for SIGTERM, else
    130 (Ctrl-C)."""
    terminated = isinstance(error, Terminated)
    print(f"\n{where}: {'terminated (SIGTERM)' if terminated else 'interrupted'}",
          file=sys.stderr)
    return exit_status(error)


def _report(parser, args, error):
    """Print the CommandError `error` (once, from rank 0, when every rank raised it); return 1."""
    args.every_rank_failed = isinstance(error, EveryRankError)
    if args.every_rank_failed and not distributed.is_root():
        return 1
    where = (f"rank {distributed.rank()}: "
             if distributed.world_size() > 1 and not args.every_rank_failed else "")
    print(f"{where}{parser.prog} {args.command}: error: {error}", file=sys.stderr)
    return 1


def _run(parser, args):
    args.every_rank_failed = False
    try:
        status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return status
    except distributed.DisagreementError as error:  # out of step mid-run, on every rank
        return _report(parser, args, EveryRankError(str(error)))
    except CommandError as error:
        return _report(parser, args, error)
    except KeyboardInterrupt as error:
        return _interrupted(f"{parser.prog} {args.command}", error)
    except MemoryError:
        print(f"{parser.prog} {args.command}: error: out of memory (a file or a setting asks for "
              "more memory than this machine has)", file=sys.stderr)
        return 1
    except RecursionError:
        print(f"{parser.prog} {args.command}: error: a structure nested too deeply to handle "
              "(a damaged or hostile file?)", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`cnn evaluate ... | head`): stop quietly, as Unix tools do.
        # Point stdout at devnull so that Python's own flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
