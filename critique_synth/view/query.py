"""Filters and the summary, computed on the index's columns (numpy masks, no line is read).

A filter is a few query parameters; each one narrows a boolean mask over every row, so a
filter on 200,000 rows costs a few milliseconds and the page asks only for one page of rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .index import REFERENCES, Index, key_id

AGREEMENTS = ("agree", "disagree", "unknown", "step_disagree", "teachers_disagree")
AUDIT = "audit.json"
AUDIT_LINES = "audit.jsonl"


@dataclass(frozen=True)
class Filter:
    """What the list shows; empty strings mean any."""

    kind: str = ""  # record | reject
    verdict: str = ""  # right | wrong
    agreement: str = ""  # one of AGREEMENTS
    teacher: str = ""
    error_kind: str = ""  # a kind, or "none"
    reason: str = ""
    review: str = ""  # keep | drop | unreviewed
    q: str = ""

    @classmethod
    def from_query(cls, query: Any) -> Filter:
        return cls(**{f.name: str(query.get(f.name, "")).strip() for f in fields(cls)})


def select(index: Index, flt: Filter, decisions: dict[str, str]) -> np.ndarray:
    """Rows that pass the filter, in file order."""
    cols = index.arrays()
    mask = np.ones(len(cols["offset"]), dtype=bool)
    if flt.kind:
        mask &= cols["kind"] == (1 if flt.kind == "reject" else 0)
    if flt.verdict:
        mask &= cols["verdict"] == (1 if flt.verdict == "wrong" else 0 if flt.verdict == "right" else 9)
    if flt.agreement:
        mask &= _agreement(cols, flt.agreement)
    for name, names, value in (
        ("teacher", index.teachers, flt.teacher),
        ("error_kind", index.error_kinds, flt.error_kind),
        ("reason", index.reasons, flt.reason),
    ):
        if value:
            wanted = -1 if value == "none" else names.find(value)
            mask &= cols[name] == (-2 if wanted is None else wanted)
    if flt.review:
        mask &= _reviewed(cols["key"], flt.review, decisions)
    if flt.q:
        mask &= np.isin(cols["problem"], index.search(flt.q))
    return np.flatnonzero(mask)


def _agreement(cols: dict[str, np.ndarray], value: str) -> np.ndarray:
    records = cols["kind"] == 0
    if value == "agree":
        return cols["agrees"] == 1
    if value == "disagree":
        return cols["agrees"] == 0
    if value == "unknown":
        return records & (cols["agrees"] == -1)
    if value == "step_disagree":
        return cols["step_agrees"] == 0
    if value == "teachers_disagree":
        return cols["teachers_disagree"]
    raise UserError(f"agreement must be one of {', '.join(AGREEMENTS)}, not {value!r}")


def _reviewed(keys: np.ndarray, value: str, decisions: dict[str, str]) -> np.ndarray:
    marked = {
        d: np.array([key_id(k) for k, v in decisions.items() if v == d], dtype=np.int64)
        for d in ("keep", "drop")
    }
    if value in marked:
        return np.isin(keys, marked[value])
    if value == "unreviewed":
        return ~np.isin(keys, np.concatenate(list(marked.values())))
    raise UserError(f"review must be keep, drop or unreviewed, not {value!r}")


def summary(index: Index, decisions: dict[str, str]) -> dict[str, Any]:
    """Counts, verdict balance, agreement by reference, rejects, cost, teachers, audit."""
    cols = index.arrays()
    records = cols["kind"] == 0
    by_reference = {}
    for number, name in enumerate(REFERENCES):
        rows = records & (cols["reference"] == number)
        if rows.any():
            by_reference[name] = _agreement_counts(cols, rows)
    reasons = np.bincount(cols["reason"][~records], minlength=len(index.reasons.names))
    return {
        "run_dirs": [str(d) for d in index.run_dirs],
        "runs": [_run_json(d) for d in index.run_dirs],
        "version": index.version,
        "critiques": int(records.sum()),
        "rejected": int((~records).sum()),
        "unreadable_lines": index.unreadable,
        "verdicts": {
            v: int((records & (cols["verdict"] == i)).sum()) for i, v in enumerate(("right", "wrong"))
        },
        "agreement_by_reference": by_reference,
        "step_agreement": _counts(cols["step_agrees"][records]),
        "teachers_disagree": int(cols["teachers_disagree"].sum()),
        "reject_reasons": dict(
            sorted(zip(index.reasons.names, map(int, reasons), strict=True), key=lambda kv: -kv[1])
        ),
        "usage": _usage(cols, np.ones(len(records), dtype=bool)),
        "teachers": _teachers(index, cols),
        "teacher_pairs": _pairs(index, cols),
        "error_kinds": _error_kinds(index, cols),
        "review": {d: sum(1 for v in decisions.values() if v == d) for d in ("keep", "drop")},
        "audit": _audit(index.run_dirs),
        "filters": {
            "teachers": index.teachers.names,
            "error_kinds": index.error_kinds.names,
            "reasons": index.reasons.names,
            "agreements": list(AGREEMENTS),
        },
    }


def _counts(flags: np.ndarray) -> dict[str, int]:
    return {
        "agree": int((flags == 1).sum()),
        "disagree": int((flags == 0).sum()),
        "unknown": int((flags == -1).sum()),
    }


def _agreement_counts(cols: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, int]:
    return _counts(cols["agrees"][rows])


def _usage(cols: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, float | int]:
    return {
        "cost": float(cols["cost"][rows].sum()),
        "prompt_tokens": int(cols["prompt_tokens"][rows].sum()),
        "completion_tokens": int(cols["completion_tokens"][rows].sum()),
    }


def _teachers(index: Index, cols: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    out = {}
    for number, name in enumerate(index.teachers.names):
        mine = cols["teacher"] == number
        rows = mine & (cols["kind"] == 0)
        out[name] = {
            "critiques": int(rows.sum()),
            "rejected": int((mine & (cols["kind"] == 1)).sum()),
            "right": int((rows & (cols["verdict"] == 0)).sum()),
            "wrong": int((rows & (cols["verdict"] == 1)).sum()),
            "agreement": _agreement_counts(cols, rows),
            "step_agreement": _counts(cols["step_agrees"][rows]),
            "usage": _usage(cols, rows),
        }
    return out


def _pairs(index: Index, cols: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """For each two teachers, on the responses both critiqued: how often their verdicts match."""
    names, groups = index.teachers.names, len(index.groups.names)
    if len(names) < 2:
        return []
    verdict_of = []
    for number in range(len(names)):
        by_group = np.full(groups, -1, dtype=np.int8)
        rows = (cols["teacher"] == number) & (cols["kind"] == 0)
        by_group[cols["group"][rows]] = cols["verdict"][rows]
        verdict_of.append(by_group)
    out = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            both = (verdict_of[a] >= 0) & (verdict_of[b] >= 0)
            shared = int(both.sum())
            if shared:
                same = int((verdict_of[a][both] == verdict_of[b][both]).sum())
                out.append({"a": names[a], "b": names[b], "shared": shared, "same_verdict": same})
    return out


def _error_kinds(index: Index, cols: dict[str, np.ndarray]) -> dict[str, dict[str, dict[str, int]]]:
    """Per error kind and teacher: critiques of such responses, and how many the teacher missed."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for kind_number, kind in enumerate(index.error_kinds.names):
        rows = cols["error_kind"] == kind_number
        for number, teacher in enumerate(index.teachers.names):
            mine = rows & (cols["teacher"] == number)
            if mine.any():
                missed = int((mine & (cols["agrees"] == 0)).sum())
                out.setdefault(kind, {})[teacher] = {"critiques": int(mine.sum()), "missed": missed}
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _run_json(run_dir: Path) -> dict[str, Any]:
    run = _read_json(run_dir / "run.json") or {}
    keep = ("teacher", "students", "finished", "started_at", "updated_at", "config_fingerprint")
    return {k: run[k] for k in keep if k in run} | {"requests": run.get("counts", {}).get("requests")}


def _audit(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Audit results where `audit` wrote them: shown as they are (key/values), not interpreted."""
    out = []
    for run_dir in run_dirs:
        metrics = _read_json(run_dir / AUDIT)
        lines = run_dir / AUDIT_LINES
        if metrics is not None or lines.exists():
            count = sum(1 for _ in lines.open("rb")) if lines.exists() else 0
            out.append({"run_dir": str(run_dir), "metrics": metrics, "lines": count})
    return out
