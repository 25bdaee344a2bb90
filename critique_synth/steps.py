"""What a *step* of a solution is: one definition for the injector, the critic, the teacher
prompt, the labels and the exported CFT input, so "step 3" means the same text everywhere.

A step is a non-empty line of the solution, with two refinements that keep numbers pointing at
what a reader calls a step:

- where the solution numbers its own items (`1.`, `2)`, `Step 3:`), a line that continues an
  item (a bullet `-`, `*`, `•`, or an indented line) belongs to that item's step;
- a solution written as a single paragraph is split into sentences (unless it is labelled as
  one numbered step, as a one-step ProcessBench row is).

The `#### N` answer line, where present, is a step of its own, so an error there has a number.
Steps carry character spans into the original text, so an edit at any offset maps to its step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

_NUMBERED_RE = re.compile(r"^\s*(?:step\s*\d+\s*[:.)]|\(?\d+[.)]\s|\*\*step\s*\d+)", re.IGNORECASE)
_BULLET_RE = re.compile(r"^\s*(?:[-*•·]\s|\+\s)")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$\\(])")


@dataclass(frozen=True)
class Step:
    """One step: its 1-based number, its text and its span [start, end) in the solution."""

    number: int
    text: str
    start: int
    end: int


def _lines(text: str) -> list[tuple[int, int]]:
    """Spans of the non-empty lines, without their line breaks."""
    spans, offset = [], 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if body.strip():
            spans.append((offset, offset + len(body)))
        offset += len(line)
    return spans


def _continues(line: str) -> bool:
    return bool(_BULLET_RE.match(line)) or (line[:1] in (" ", "\t") and not _NUMBERED_RE.match(line))


@lru_cache(maxsize=4096)
def split_steps(text: str) -> tuple[Step, ...]:
    """The steps of a solution, in order, numbered from 1 (cached: the prompt, the cross-check
    and the critic all number the same response)."""
    lines = _lines(text)
    if len(lines) == 1 and not _NUMBERED_RE.match(text[lines[0][0] : lines[0][1]]):
        return _sentences(text, *lines[0])
    numbered = any(_NUMBERED_RE.match(text[s:e]) for s, e in lines)
    groups: list[list[int]] = []
    in_item = False
    for start, end in lines:
        line = text[start:end]
        if numbered and groups and in_item and _continues(line):
            groups[-1][1] = end
            continue
        in_item = bool(_NUMBERED_RE.match(line))
        groups.append([start, end])
    return tuple(Step(i, text[s:e].strip(), s, e) for i, (s, e) in enumerate(groups, start=1))


def _sentences(text: str, start: int, end: int) -> tuple[Step, ...]:
    steps, cursor = [], start
    for match in _SENTENCE_END_RE.finditer(text, start, end):
        steps.append((cursor, match.start()))
        cursor = match.end()
    steps.append((cursor, end))
    return tuple(
        Step(i, text[s:e].strip(), s, e) for i, (s, e) in enumerate(steps, start=1) if text[s:e].strip()
    )


def step_at(steps: Sequence[Step], offset: int) -> int | None:
    """The number of the step that holds character `offset`, or None outside every step."""
    for step in steps:
        if step.start <= offset < step.end:
            return step.number
    return None


def number_steps(text: str) -> str:
    """The solution with each step on its own line(s) under a `Step k:` label: what the teacher
    reads and what the exported CFT input shows, so critiques and data point at the same text."""
    parts = []
    for step in split_steps(text):
        body = "\n".join(line.rstrip() for line in text[step.start : step.end].strip().splitlines())
        parts.append(f"Step {step.number}: {body}")
    return "\n".join(parts) if parts else text
