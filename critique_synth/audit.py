"""Measure a teacher on labelled responses before paying for a run with it.

The CFT paper's own teacher is wrong on about one critique in five, and a run never finds out:
its responses have no labels. An audit runs the same pipeline (dataset students, export off)
on responses whose labels are known, in a run directory of its own so it resumes like
`generate`, and scores each teacher the way ProcessBench does:

- on erroneous rows a teacher is right when it says 'wrong' *and* names the first wrong step;
- on correct rows it is right when it says 'right';
- F1 is the harmonic mean of those two accuracies; a rejected row (no parseable critique)
  counts as not right, as ProcessBench counts unparseable output.

Rows whose only label is the final answer are judged on the verdict alone (see labels.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from .calibration import calibration_rows
from .config import AuditConfig, ExportOptions, FieldMap, ProblemsConfig, RunConfig, StudentsConfig
from .errors import UserError
from .fingerprint import unit_key
from .pipeline import build_parts, iter_run, plan_problems
from .records import CritiqueRecord, Rejection, Response, Usage
from .sources import RejectedRow, describe_source, iter_problems, select
from .stats import Stats
from .store import outcomes as newest_outcomes

log = logging.getLogger(__name__)

AUDIT_JSON = "audit.json"
AUDIT_ROWS = "audit.jsonl"
CALIBRATION_FILE = "calibration.jsonl"
CALIBRATION_ROWS = 160
CALIBRATION_FIELDS = FieldMap(
    id="id",
    question="question",
    answer="answer",
    solution=None,
    response="response",
    label="process_correct",
    first_error_step="first_error_step",
    error_kind="error_kind",
)
CLEAN = "clean"


@dataclass(frozen=True)
class RowResult:
    """One labelled response as one teacher judged it (`audit.jsonl` holds one per line)."""

    id: str
    teacher: str
    label: bool | None
    reference: str | None
    first_error_step: int | None
    error_kind: str | None
    final_correct: bool | None
    label_source: str | None
    verdict: str | None
    first_wrong_step: int | None
    rejected: str | None
    correct: bool | None
    verdict_correct: bool | None


@dataclass
class AuditReport:
    """Scores per teacher, the rows behind them, and where both were written."""

    out: Path
    data: str
    teachers: dict[str, dict[str, Any]]
    rows: list[RowResult] = field(default_factory=list)
    input_rejected: int = 0

    @property
    def path(self) -> Path:
        return self.out / AUDIT_JSON

    def summary(self) -> dict[str, Any]:
        return {"data": self.data, "input_rejected": self.input_rejected, "teachers": self.teachers}


def audit(
    config: RunConfig,
    out: str | Path,
    *,
    data: str | None = None,
    fields: FieldMap | None = None,
    split: str | None = None,
    sample: int | None = None,
    project: int | None = None,
    allow_config_change: bool = False,
) -> AuditReport:
    """Audit the teacher(s) of `config` on labelled rows (default: the bundled calibration set)."""
    return asyncio.run(
        aaudit(
            config,
            Path(out),
            data=data,
            fields=fields,
            split=split,
            sample=sample,
            project=project,
            allow_config_change=allow_config_change,
        )
    )


async def aaudit(
    config: RunConfig,
    out: Path,
    *,
    data: str | None = None,
    fields: FieldMap | None = None,
    split: str | None = None,
    sample: int | None = None,
    project: int | None = None,
    allow_config_change: bool = False,
    on_stats: Callable[[Stats], None] | None = None,
) -> AuditReport:
    """The async form of `audit`: run (or resume) the audit in `out`, score it, write its files."""
    cfg = audit_config(config, out, data=data, fields=fields, split=split, sample=sample)
    async for _ in iter_run(cfg, out, allow_config_change=allow_config_change, on_stats=on_stats):
        pass
    rows, input_rejected, usage = await _collect(cfg, out)
    teachers = {name: score(rows_of, usage[name], project) for name, rows_of in _by_teacher(rows).items()}
    report = AuditReport(out, describe_source(cfg.problems), teachers, rows, input_rejected)
    _write(report)
    return report


async def check_gate(config: RunConfig, out: Path) -> AuditReport | None:
    """Before a run: audit a sample with the run's teacher(s) into OUT/audit and refuse to go on
    (UserError) when a teacher scores below `audit.min_f1`. Resumes an earlier audit there."""
    gate: AuditConfig = config.audit
    if gate.min_f1 is None:
        return None
    report = await aaudit(
        config,
        out / "audit",
        data=gate.data,
        fields=gate.fields,
        sample=gate.sample,
        allow_config_change=True,  # OUT/audit is derived data; only this config's units are scored
    )
    for name, scores in report.teachers.items():
        f1, metric = (
            (scores["f1"], "F1") if scores["f1"] is not None else (scores["verdict_f1"], "verdict F1")
        )
        if f1 is None or f1 < gate.min_f1:
            shown = "n/a" if f1 is None else f"{f1:.3f}"
            raise UserError(
                f"teacher {name}: audit {metric} {shown} is below the minimum {gate.min_f1} on "
                f"{scores['n']} labelled rows (see {report.path}); nothing was generated: use a "
                "better teacher or lower --min-audit-f1 / audit.min_f1"
            )
    log.info("audit gate passed: %s", ", ".join(f"{n} F1 {_f(s['f1'])}" for n, s in report.teachers.items()))
    return report


def audit_config(
    config: RunConfig,
    out: Path,
    *,
    data: str | None = None,
    fields: FieldMap | None = None,
    split: str | None = None,
    sample: int | None = None,
) -> RunConfig:
    """The run config of an audit: the teacher(s) of `config` on the labelled rows as given."""
    if data is None:
        path = write_calibration(out, max(CALIBRATION_ROWS, sample or 0))
        problems = ProblemsConfig(path=str(path), fields=CALIBRATION_FIELDS)
    else:
        problems = ProblemsConfig(path=data, fields=fields or FieldMap(), split=split or "train")
    problems.max_chars = config.problems.max_chars
    return config.model_copy(
        update={
            "problems": problems,
            "students": StudentsConfig(kind="dataset"),
            "limit": sample,
            "shard": None,
            "export": ExportOptions(enabled=False),
            "audit": AuditConfig(),
        }
    )


def write_calibration(out: Path, n: int) -> Path:
    """The bundled calibration rows as a problems file in `out` (same rows for the same n)."""
    path = out / CALIBRATION_FILE
    lines: dict[str, str] = {}
    for row in calibration_rows(n):  # a repeated id is the same row again: keep the first
        lines.setdefault(row["id"], json.dumps(row, ensure_ascii=False) + "\n")
    text = "".join(lines.values())
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{CALIBRATION_FILE}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the calibration set ({exc.strerror or exc})") from None
    return path


def default_out(config: RunConfig, data: str | None) -> Path:
    """runs/audit/<teachers>-<data>: one directory per teacher and data set, so each resumes."""
    names = "+".join(_teacher_name(t) for t in _teacher_configs(config))
    stem = Path(data).stem if data else "calibration"
    return Path("runs") / "audit" / re.sub(r"[^A-Za-z0-9._+-]+", "-", f"{names}-{stem}")


def count_units(config: RunConfig) -> int:
    """How many units (problem x sample) a generate run with `config` would critique per teacher."""
    s = config.students
    per_problem = 1 if s.kind == "dataset" else s.samples * (max(len(s.models), 1) if s.kind == "llm" else 1)
    problems = select(iter_problems(config.problems), config.shard, config.limit)
    return per_problem * sum(1 for _ in problems)


async def _collect(cfg: RunConfig, out: Path) -> tuple[list[RowResult], int, dict[str, Usage]]:
    """Each planned unit with its outcome in the store; units of other configs are left out."""
    async with AsyncExitStack() as stack:
        parts = await build_parts(cfg, stack, connect=False)
    teachers = getattr(parts, "teachers", None) or [parts.teacher]
    units: dict[str, tuple[str, Response]] = {}
    seen: set[str] = set()
    input_rejected = 0
    for problem in plan_problems(cfg, parts.student):
        if isinstance(problem, RejectedRow) or problem.id in seen:
            input_rejected += 1
            continue
        seen.add(problem.id)
        sample = parts.student.plan(problem)[0]
        response = await parts.student.respond(problem, sample)
        for teacher in teachers:
            units[unit_key(sample.key, teacher.fingerprint)] = (teacher.name, response)
    outcomes = {item.key: item for item in newest_outcomes(out) if item.key in units}
    usage: dict[str, Usage] = {teacher.name: Usage() for teacher in teachers}
    rows = []
    for key, (teacher, response) in units.items():
        item = outcomes.get(key)
        if item is None:
            continue
        usage[teacher] = usage[teacher].add(item.usage)
        rows.append(_row(teacher, response, item))
    return rows, input_rejected, usage


def _row(teacher: str, response: Response, item: CritiqueRecord | Rejection) -> RowResult:
    reference, label = response.best_label or (None, None)
    step = response.first_error_step if reference == "process" else None
    verdict = first = rejected = None
    if isinstance(item, CritiqueRecord):
        verdict, first = item.critique.verdict, item.critique.first_wrong_step
    else:
        rejected = item.reason
    verdict_correct = None if label is None else (verdict is not None and (verdict == "right") == label)
    correct = verdict_correct
    if label is False and reference == "process":
        correct = None if step is None else verdict == "wrong" and first == step
    return RowResult(
        id=response.problem_id,
        teacher=teacher,
        label=label,
        reference=reference,
        first_error_step=step,
        error_kind=response.error_kind,
        final_correct=response.final_correct,
        label_source=response.label_source,
        verdict=verdict,
        first_wrong_step=first,
        rejected=rejected,
        correct=correct,
        verdict_correct=verdict_correct,
    )


def _by_teacher(rows: list[RowResult]) -> dict[str, list[RowResult]]:
    grouped: dict[str, list[RowResult]] = {}
    for row in rows:
        grouped.setdefault(row.teacher, []).append(row)
    return grouped


def score(rows: list[RowResult], usage: Usage, project: int | None = None) -> dict[str, Any]:
    """ProcessBench's metrics for one teacher's rows, with rejects, per-kind accuracy and cost."""
    labelled = [r for r in rows if r.label is not None]
    erroneous = [r for r in labelled if r.label is False]
    fine = [r for r in labelled if r.label is True]
    stepped = [r for r in erroneous if r.correct is not None]
    error_acc = _mean(r.correct for r in stepped)
    correct_acc = _mean(r.verdict_correct for r in fine)
    verdict_error_acc = _mean(r.verdict_correct for r in erroneous)
    called_wrong = [r for r in stepped if r.verdict == "wrong" and r.first_error_step is not None]
    per_critique = _per(usage, len(rows))
    return {
        "n": len(labelled),
        "erroneous": len(erroneous),
        "erroneous_with_step": len(stepped),
        "correct": len(fine),
        "unlabelled": len(rows) - len(labelled),
        "error_accuracy": error_acc,
        "correct_accuracy": correct_acc,
        "f1": _harmonic(error_acc, correct_acc),
        "verdict_error_accuracy": verdict_error_acc,
        "verdict_f1": _harmonic(verdict_error_acc, correct_acc),
        "first_step_accuracy": _mean(r.first_wrong_step == r.first_error_step for r in called_wrong),
        "by_error_kind": _by_kind(labelled),
        "rejected": dict(Counter(r.rejected for r in rows if r.rejected).most_common()),
        "per_critique": per_critique,
        "projection": None if project is None else {"units": project, **_scaled(per_critique, project)},
    }


def _by_kind(rows: list[RowResult]) -> dict[str, dict[str, Any]]:
    """Accuracy per injected error kind (and on clean rows), where the rows name a kind."""
    if not any(r.error_kind for r in rows):
        return {}
    groups: dict[str, list[RowResult]] = {}
    for row in rows:
        kind = CLEAN if row.label else row.error_kind or "unknown"
        groups.setdefault(kind, []).append(row)
    return {
        kind: {
            "n": len(group),
            "accuracy": _mean(r.verdict_correct if r.correct is None else r.correct for r in group),
            "verdict_accuracy": _mean(r.verdict_correct for r in group),
        }
        for kind, group in sorted(groups.items())
    }


def _mean(values: Any) -> float | None:
    items = [bool(v) for v in values]
    return sum(items) / len(items) if items else None


def _harmonic(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def _per(usage: Usage, units: int) -> dict[str, float]:
    n = max(units, 1)
    return {
        "prompt_tokens": usage.prompt_tokens / n,
        "completion_tokens": usage.completion_tokens / n,
        "cost": usage.cost / n,
    }


def _scaled(per: dict[str, float], units: int) -> dict[str, float]:
    return {key: value * units for key, value in per.items()}


def _write(report: AuditReport) -> None:
    rows = "".join(json.dumps(asdict(row), ensure_ascii=False) + "\n" for row in report.rows)
    for name, text in ((AUDIT_ROWS, rows), (AUDIT_JSON, json.dumps(report.summary(), indent=2) + "\n")):
        path = report.out / name
        tmp = report.out / f".{name}.tmp"
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _teacher_configs(config: RunConfig) -> list[Any]:
    return config.teacher_configs() if hasattr(config, "teacher_configs") else [config.teacher]


def _teacher_name(teacher: Any) -> str:
    if getattr(teacher, "name", None):
        return str(teacher.name)
    return f"llm:{teacher.model}" if teacher.kind == "llm" else "builtin"


def _f(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def audit_table(report: AuditReport) -> Table:
    """The report as a rich table: one column per teacher."""
    table = Table(title=f"audit of {report.data} ({report.path})")
    table.add_column("metric")
    names = list(report.teachers)
    for name in names:
        table.add_column(name, justify="right")
    scores = [report.teachers[n] for n in names]

    def add(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        table.add_row(label, *(cell(s) for s in scores))

    add("rows (erroneous / correct)", lambda s: f"{s['n']:,} ({s['erroneous']:,} / {s['correct']:,})")
    add("ProcessBench F1", lambda s: _f(s["f1"]))
    add("  accuracy on erroneous (verdict + step)", lambda s: _f(s["error_accuracy"], True))
    add("  accuracy on correct", lambda s: _f(s["correct_accuracy"], True))
    add("verdict-only F1", lambda s: _f(s["verdict_f1"]))
    add("  verdict accuracy on erroneous", lambda s: _f(s["verdict_error_accuracy"], True))
    add("first-step accuracy (called wrong)", lambda s: _f(s["first_step_accuracy"], True))
    kinds = sorted({k for s in scores for k in s["by_error_kind"]})
    if kinds:
        add("by error kind: verdict + step / verdict", lambda s: "")
    for kind in kinds:
        add(f"  {kind}", lambda s, k=kind: _kind_cell(s["by_error_kind"].get(k)))
    reasons = sorted({r for s in scores for r in s["rejected"]})
    add("rejected", lambda s: f"{sum(s['rejected'].values()):,}")
    for reason in reasons:
        add(f"  rejected: {reason}", lambda s, r=reason: f"{s['rejected'].get(r, 0):,}")
    add("tokens per critique (in / out)", _tokens)
    add("cost per critique (USD)", lambda s: f"{s['per_critique']['cost']:.5f}")
    if any(s["projection"] for s in scores):
        units = next(s["projection"]["units"] for s in scores if s["projection"])
        add(f"projected tokens, {units:,} units", lambda s: _projected_tokens(s["projection"]))
        add(f"projected cost, {units:,} units (USD)", lambda s: f"{s['projection']['cost']:,.2f}")
    if report.input_rejected:
        table.add_row("input rows skipped (too long, duplicate id, bad text)", f"{report.input_rejected:,}")
    return table


def _kind_cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return ""
    return f"{_f(entry['accuracy'], True)} / {_f(entry['verdict_accuracy'], True)} of {entry['n']}"


def _tokens(s: dict[str, Any]) -> str:
    per = s["per_critique"]
    return f"{per['prompt_tokens']:,.0f} / {per['completion_tokens']:,.0f}"


def _projected_tokens(projection: dict[str, Any]) -> str:
    return f"{projection['prompt_tokens'] + projection['completion_tokens']:,.0f}"
