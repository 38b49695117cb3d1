"""The error every command raises for a failure the user can fix."""


class CommandError(Exception):
    """A failure the user can fix (missing data, an unreadable checkpoint, a diverged run).

    :func:`cnn.cli.main` prints its message after ``cnn COMMAND: error:``, without a traceback,
    and exits with status 1: a traceback would bury the one line that says what to do.
    """
