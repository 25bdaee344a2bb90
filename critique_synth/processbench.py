"""Rows of ProcessBench (Qwen/ProcessBench) and of labelled problem files, as step labels.

ProcessBench rows as published carry `problem`, `steps` (a list of strings), `label` (0-based
index of the first wrong step, -1 when every step is right) and `final_answer_correct`. They
become a problem whose response is the steps one per line, written so that
`steps.split_steps` numbers them exactly as ProcessBench does: step k there is step k here,
and a teacher's `first_wrong_step` can be scored against the published label.

Other files give a `label` (right by process or not) and a 1-based `first_error_step` per row;
their spellings are read here too, so one bad value is one error naming the row and the field.
"""

from __future__ import annotations

import re
from typing import Any

from .config import FieldMap
from .errors import UserError
from .steps import split_steps

_TRUE = frozenset({"true", "1", "correct", "right"})
_FALSE = frozenset({"false", "0", "incorrect", "wrong"})
_NONE = frozenset({"", "none", "null"})
_EMPTY_STEP = "(empty step)"
_DIGITS_RE = re.compile("[0-9]{1,9}")


def is_processbench(row: dict[str, Any]) -> bool:
    label = row.get("label")
    return (
        isinstance(row.get("steps"), list)
        and isinstance(label, int)
        and not isinstance(label, bool)
        and isinstance(row.get("problem"), str)
    )


def join_steps(steps: list[str]) -> str:
    """The steps one per line. A step's own line breaks become spaces and its indentation goes,
    so each is one line; where the plain lines would still group (a `- ` line after a numbered
    one joins that item in steps.py), every line gets an explicit `Step k:` label instead."""
    lines = [" ".join(p.strip() for p in step.splitlines() if p.strip()) or _EMPTY_STEP for step in steps]
    text = "\n".join(lines)
    if [s.text for s in split_steps(text)] != lines:
        text = "\n".join(f"Step {number}: {line}" for number, line in enumerate(lines, start=1))
    return text


def convert(row: dict[str, Any], fields: FieldMap, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ProcessBench row as a problem row under `fields`' column names, and its labels."""
    steps, label = row["steps"], row["label"]
    if not all(isinstance(step, str) for step in steps):
        raise UserError(f"{where}: field 'steps' must be a list of strings (ProcessBench row)")
    if not -1 <= label < len(steps):
        raise UserError(
            f"{where}: field 'label' is {label}, expected -1 (all steps right) or a 0-based step index "
            f"below {len(steps)} (ProcessBench row)"
        )
    final = row.get("final_answer_correct")
    if final is not None and not isinstance(final, bool):
        raise UserError(f"{where}: field 'final_answer_correct' must be true or false (ProcessBench row)")
    converted = {key: value for key, value in row.items() if key not in ("label", "steps")}
    converted[fields.question] = row["problem"]
    if fields.response:
        converted[fields.response] = join_steps(steps)
    labels = {
        "response_label": label == -1,
        "response_first_error_step": label + 1 if label >= 0 else None,
        "response_final_correct": final,
        "label_source": "processbench",
    }
    return converted, labels


def row_labels(row: dict[str, Any], fields: FieldMap, where: str) -> dict[str, Any]:
    """The labels a problem row gives its response, under `fields`' column names ({} if none)."""
    label = _bool(row, fields.label, where)
    step = _step(row, fields.first_error_step, where)
    kind = row.get(fields.error_kind) if fields.error_kind else None
    if kind is not None and not isinstance(kind, str):
        raise UserError(
            f"{where}: field {fields.error_kind!r} (error_kind) must be text; fix that row or map "
            "another column with problems.fields.error_kind"
        )
    if label is None and step is None:
        return {"response_error_kind": kind or None} if kind else {}
    if label is True and step is not None:
        raise UserError(
            f"{where}: field {fields.label!r} says the response is right but field "
            f"{fields.first_error_step!r} names step {step} as wrong; fix one of them"
        )
    return {
        "response_label": False if label is None else label,
        "response_first_error_step": step,
        "response_error_kind": kind or None,
        "label_source": "data",
    }


def _bool(row: dict[str, Any], column: str | None, where: str) -> bool | None:
    value = row.get(column) if column else None
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in _NONE:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UserError(
        f"{where}: field {column!r} (label) holds {_shown(value)}; expected true/false, 1/0, "
        "correct/incorrect or right/wrong; fix that row, or map another column with problems.fields.label "
        "('--field label=' if that column means something else)"
    )


def _step(row: dict[str, Any], column: str | None, where: str) -> int | None:
    value = row.get(column) if column else None
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in _NONE:
        return None
    if isinstance(value, str) and _DIGITS_RE.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise UserError(
        f"{where}: field {column!r} (first_error_step) holds {_shown(value)}; expected a 1-based step "
        "number, or null when every step is right; fix that row or map another column with "
        "problems.fields.first_error_step"
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
