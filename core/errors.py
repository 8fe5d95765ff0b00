"""One base error for everything a user can cause: its message is meant for them.

Pages show ``str(error)`` as one sentence; command-line entries print it and exit
non-zero. Anything that is not a ``StudioError`` is a bug and goes to the log.
"""


class StudioError(ValueError):
    """Bad input, settings, files or data, explained in one sentence for the user."""
