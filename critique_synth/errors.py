"""The one exception type that means 'the user can fix this'.

The CLI prints its message as a single line and exits with code 2; every other exception is
a bug. Messages name the file, line or field and what to do, and never contain a secret.
"""


class UserError(Exception):
    """Bad input or configuration: a clear message, no traceback."""
