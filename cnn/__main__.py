"""``python -m cnn``: the command line (see :mod:`cnn.cli`)."""
import sys


def _main():
    # Ctrl-C while the command line's modules load is a clean stop too, not a traceback; so
    # is one that came while the package imported (held until now: cnn/_startup.py).
    try:
        from cnn import _startup
        _startup.release_interrupts()
        from cnn.cli import main
    except KeyboardInterrupt:
        print("\npython -m cnn: interrupted", file=sys.stderr)
        return 130
    return main(prog="python -m cnn")


if __name__ == "__main__":
    sys.exit(_main())
