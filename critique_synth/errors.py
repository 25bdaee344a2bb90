"""The one exception type that means 'the user can fix this'.

The CLI prints its message as a single line and exits with code 2; every other exception is
a bug. Messages name the file, line or field and what to do, and never contain a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class UserError(Exception):
    """Bad input or configuration: a clear message, no traceback."""


def explain(exc: ValidationError) -> str:
    """A pydantic error as one line that names each field: the form every config, option and
    teacher-reply error takes."""
    problems = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "the value"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{field}' (check its spelling against the README)")
        else:
            problems.append(f"'{field}': {err['msg']}")
    return "; ".join(problems)
