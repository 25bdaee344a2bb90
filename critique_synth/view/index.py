"""An index of run stores that a page can filter fast: byte offsets and a few small fields.

The JSONL files are streamed once, keeping per line only what filters and the summary need,
in compact arrays (a few dozen bytes a line); a record page reads its one line by offset.
`refresh` reads only what was appended since the last call, so a live run can be viewed; a
line without its newline yet is left for the next refresh. Nothing is ever written here.
Keys seen twice (overlapping shards) count once, as in `export`.
"""

from __future__ import annotations

import json
import logging
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..fingerprint import unit_hash
from ..store import CRITIQUES, REJECTED

log = logging.getLogger(__name__)

RECORD, REJECT = 0, 1
VERDICTS = ("right", "wrong")
REFERENCES = ("none", "process", "final_answer")
_CHUNK = 1 << 23
# column name -> array typecode; -1 (or 0 for steps) stands for "none"
_COLUMNS = {
    "src": "h",
    "offset": "q",
    "length": "l",
    "key": "q",
    "verdict": "b",
    "agrees": "b",
    "step_agrees": "b",
    "reference": "b",
    "teacher": "h",
    "error_kind": "h",
    "reason": "h",
    "group": "l",
    "wrong_step": "h",
    "label_step": "h",
    "problem": "l",
    "cost": "d",
    "prompt_tokens": "q",
    "completion_tokens": "q",
}


def key_id(key: str) -> int:
    """A key as a signed 64-bit int: its first 16 hex digits (as the store counts keys)."""
    try:
        value = int(key[:16], 16) if len(key) >= 16 else unit_hash("key", key)
    except ValueError:
        value = unit_hash("key", key)
    return value - (1 << 64) if value >= 1 << 63 else value


class Names:
    """Interned strings: a small int per distinct name."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}

    def id(self, name: str | None) -> int:
        if name is None:
            return -1
        found = self._ids.get(name)
        if found is None:
            found = self._ids[name] = len(self.names)
            self.names.append(name)
        return found

    def find(self, name: str) -> int | None:
        return self._ids.get(name)


@dataclass
class _File:
    path: Path
    kind: int
    end: int = 0


def _flag(value: bool | None) -> int:
    return -1 if value is None else int(bool(value))


@dataclass
class Index:
    """Every complete line of the run directories' critiques and rejects, in file order."""

    run_dirs: list[Path]
    files: list[_File] = field(default_factory=list)
    version: int = 0
    unreadable: int = 0

    def __post_init__(self) -> None:
        self.files = [_File(d / name, kind) for d in self.run_dirs for name, kind in _FILES]
        self._reset()

    def _reset(self) -> None:
        self.cols = {name: array(code) for name, code in _COLUMNS.items()}
        self.teachers, self.error_kinds, self.reasons = Names(), Names(), Names()
        self.groups, self.problems = Names(), Names()
        self.questions: list[str] = []  # lowercased "problem id\nquestion", by problem
        self._seen: set[int] = set()
        self._np: dict[str, np.ndarray] | None = None
        for f in self.files:
            f.end = 0

    def __len__(self) -> int:
        return len(self.cols["offset"])

    def refresh(self) -> bool:
        """Read what was appended since the last call; True when rows were added."""
        before = len(self)
        if any(f.path.exists() and f.path.stat().st_size < f.end for f in self.files):
            log.warning("a store file shrank; indexing the run directories again")
            self._reset()
            self.version += 1
        for src, f in enumerate(self.files):
            if f.path.exists() and f.path.stat().st_size > f.end:
                self._read(src, f)
        if len(self) != before:
            self.version += 1
            self._np = None
        return len(self) != before

    def _read(self, src: int, f: _File) -> None:
        with f.path.open("rb") as handle:
            handle.seek(f.end)
            while chunk := handle.read(_CHUNK):
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    if len(chunk) < _CHUNK:
                        return
                    raise ValueError(f"{f.path}: a line longer than {_CHUNK} bytes")
                start = f.end
                for line in chunk[: cut + 1].split(b"\n")[:-1]:
                    self._add(src, f.kind, start, line)
                    start += len(line) + 1
                f.end = start
                handle.seek(f.end)

    def _add(self, src: int, kind: int, offset: int, line: bytes) -> None:
        if not line.strip():
            return
        try:
            item = json.loads(line)
            key = key_id(item["key"])
            if key in self._seen:
                return
            values = self._record(item) if kind == RECORD else self._reject(item)
        except (ValueError, KeyError, TypeError, AttributeError):
            self.unreadable += 1
            return
        self._seen.add(key)
        usage = item.get("usage") or {}
        values.update(
            src=src,
            offset=offset,
            length=len(line),
            key=key,
            cost=float(usage.get("cost", 0.0)),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )
        for name, column in self.cols.items():
            column.append(values[name])

    def _problem(self, pid: str, question: str) -> int:
        number = self.problems.id(pid)
        if number == len(self.questions):
            self.questions.append(f"{pid}\n{question}".lower())
        return number

    def _record(self, item: dict[str, Any]) -> dict[str, Any]:
        response, critique, problem = item["response"], item["critique"], item["problem"]
        reference = item.get("reference")
        if reference is None and item.get("gold_agrees") is not None:  # runs before process labels
            reference, item["agrees"] = "final_answer", item["gold_agrees"]
        return {
            "verdict": VERDICTS.index(critique["verdict"]),
            "agrees": _flag(item.get("agrees")),
            "step_agrees": _flag(item.get("step_agrees")),
            "reference": REFERENCES.index(reference or "none"),
            "teacher": self.teachers.id(item["teacher"]),
            "error_kind": self.error_kinds.id(response.get("error_kind")),
            "reason": -1,
            "group": self.groups.id(response["key"]),
            "wrong_step": critique.get("first_wrong_step") or 0,
            "label_step": response.get("first_error_step") or 0,
            "problem": self._problem(problem["id"], problem["question"]),
        }

    def _reject(self, item: dict[str, Any]) -> dict[str, Any]:
        pid = item["problem_id"]
        return {
            "verdict": -1,
            "agrees": -1,
            "step_agrees": -1,
            "reference": 0,
            "teacher": self.teachers.id(item.get("teacher")),
            "error_kind": -1,
            "reason": self.reasons.id(item["reason"]),
            "group": -1,
            "wrong_step": 0,
            "label_step": 0,
            "problem": self._problem(pid, ""),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays (copies, made once per version), plus derived ones."""
        if self._np is None:
            cols = {name: np.array(column) for name, column in self.cols.items()}
            cols["kind"] = (cols["verdict"] < 0).astype(np.int8)
            cols["teachers_disagree"] = _teachers_disagree(
                cols["group"], cols["verdict"], len(self.groups.names)
            )
            self._np = cols
        return self._np

    def read(self, rows: Iterable[int]) -> list[dict[str, Any]]:
        """The stored lines of `rows`, parsed, each with its `_row` and `_kind`."""
        cols = self.cols
        out = []
        for row in rows:
            f = self.files[cols["src"][row]]
            with f.path.open("rb") as handle:
                handle.seek(cols["offset"][row])
                item = json.loads(handle.read(cols["length"][row]))
            item["_row"], item["_kind"] = int(row), "record" if f.kind == RECORD else "reject"
            out.append(item)
        return out

    def search(self, text: str) -> np.ndarray:
        """Problems whose id or question holds `text`, case-insensitive."""
        needle = text.lower()
        return np.array([i for i, q in enumerate(self.questions) if needle in q], dtype=np.int64)


_FILES = ((CRITIQUES, RECORD), (REJECTED, REJECT))


def _teachers_disagree(group: np.ndarray, verdict: np.ndarray, groups: int) -> np.ndarray:
    """Rows whose response got different verdicts from different teachers."""
    records = group >= 0
    low = np.full(groups, 2, dtype=np.int8)
    high = np.full(groups, -1, dtype=np.int8)
    np.minimum.at(low, group[records], verdict[records])
    np.maximum.at(high, group[records], verdict[records])
    out = np.zeros(len(group), dtype=bool)
    out[records] = low[group[records]] != high[group[records]]
    return out
