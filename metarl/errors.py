"""``CLIError``: a user error that the ``metarl`` command prints as one line (exit code 2)."""


class CLIError(Exception):
    """A user error: printed as one line, exit code 2, no traceback."""
