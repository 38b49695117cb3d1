"""``python -m cnn``: the command line (see :mod:`cnn.cli`)."""
import sys

from cnn.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m cnn"))
