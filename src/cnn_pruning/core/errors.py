"""The project's errors that are the user's input or environment rather than a bug.

A bad setting, bad data, a diverging loss or an unreachable tracking server is one of these (or a ValueError /
FileNotFoundError); cnn_pruning.core.cli reports them as one line and exit status 1. Anything else (a KeyError, say)
is a
bug and keeps its traceback: params are validated before any stage runs, so a stage never meets a malformed section.
"""


class UserError(Exception):
    """Base of the project's errors that are not bugs (data, checkpoints, config, training, tracking)."""


EXPECTED = (UserError, ValueError, FileNotFoundError)
