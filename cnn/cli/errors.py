"""The error every command raises for a failure the user can fix, and SIGTERM as an exception."""


class CommandError(Exception):
    """A failure the user can fix (missing data, an unreadable checkpoint, a diverged run).

    :func:`cnn.cli.main` prints its message after ``cnn COMMAND: error:``, without a traceback,
    and exits with status 1: a traceback would bury the one line that says what to do.
    """


class EveryRankError(CommandError):
    """A failure every rank of a data-parallel run raises at the same moment (the ranks
    disagree): rank 0 prints it, and each rank exits by itself, without aborting the job."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the handler :func:`cnn.cli.main` installs.

    A KeyboardInterrupt, so that every clean stop Ctrl-C gets (a temporary file removed, the
    message on where a run stopped) comes with it; the exit status is 143 (128 + SIGTERM), not
    130.
    """


def raise_terminated(signum, frame):
    """The SIGTERM handler: raise :class:`Terminated` in the main thread."""
    raise Terminated


def exit_status(error):
    """The exit status after the KeyboardInterrupt `error`: 143 for SIGTERM, 130 for Ctrl-C."""
    return 143 if isinstance(error, Terminated) else 130
