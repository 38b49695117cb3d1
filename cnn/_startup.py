"""``python -m cnn`` starting: a Ctrl-C while the package imports ends with one line.

The command line catches Ctrl-C itself once ``cnn/__main__.py`` runs, but the package (NumPy
and the kernels) is imported before that, in about 0.3 s that a user's Ctrl-C may well hit.
Python would print a traceback into NumPy's import machinery, or worse, NumPy turns the
interrupt into an ImportError ("PyCapsule_Import could not import module datetime") that reads
like a broken installation. So ``cnn/__init__.py``, first thing when Python is locating
``-m cnn`` (``sys.argv[0]`` is then ``"-m"``), never when cnn is imported by a program:
- holds SIGINT back (`hold_interrupts`) until ``cnn/__main__.py`` releases it, where a Ctrl-C
  that came meanwhile is caught like any other;
- prints one line for a KeyboardInterrupt that escapes anyway (`quiet_interrupts`).
"""
import signal
import sys


def launched_as_module():
    """True while ``python -m`` is importing the package it was asked to run."""
    return sys.argv[:1] == ["-m"]


def runs_the_command_line():
    """True while ``python -m cnn`` (the command line itself, not ``-m cnn.<module>``) is
    importing the package; False where Python does not say (before 3.10)."""
    command = getattr(sys, "orig_argv", [])
    return launched_as_module() and "-m" in command and \
        command[command.index("-m") + 1:][:1] == ["cnn"]


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


def hold_interrupts():
    """Keep SIGINT pending (blocked in this thread, and in the threads the imports start)
    until `release_interrupts`."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def release_interrupts():
    """Deliver a SIGINT held by `hold_interrupts` (as a KeyboardInterrupt, at once)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
