"""``python -m cnn`` starting: a Ctrl-C while the package imports ends with one line.

The command line catches Ctrl-C itself once ``cnn/__main__.py`` runs, but the package (NumPy
and the kernels) is imported before that, in about 0.3 s that a user's Ctrl-C may well hit;
Python would print a traceback into NumPy's import machinery. ``cnn/__init__.py`` calls
`quiet_interrupts()` first thing when Python is locating ``-m cnn`` (``sys.argv[0]`` is then
``"-m"``), never when cnn is imported by a program.
"""
import sys


def launched_as_module():
    """True while ``python -m`` is importing the package it was asked to run."""
    return sys.argv[:1] == ["-m"]


def quiet_interrupts():
    """Print one line instead of a traceback for an uncaught KeyboardInterrupt (Python then
    still ends the process as killed by SIGINT, the exit status of a Ctrl-C)."""
    previous = sys.excepthook

    def hook(kind, value, traceback):
        if issubclass(kind, KeyboardInterrupt):
            print("\npython -m cnn: interrupted", file=sys.stderr)
        else:
            previous(kind, value, traceback)

    sys.excepthook = hook
