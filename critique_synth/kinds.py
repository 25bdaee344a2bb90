"""The kinds of error the injecting student plants: a light module, so the config can name them
without importing the injector."""

from __future__ import annotations

from typing import Literal, get_args

ErrorKind = Literal[
    "computation",
    "operand_misread",
    "wrong_operation",
    "skipped_step",
    "dropped_conversion",
    "intermediate_answer",
    "off_by_one",
    "final_answer",
]
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)
