"""Counters of a run, for progress, run.json, `stats` and the dataset card.

Seeded from the store when a run resumes, so the numbers always describe the whole run
directory, not just the current process. Agreement is counted by the reference each verdict
was checked against (`process` where the response's steps are labelled, else `final_answer`;
see labels.py), overall and per teacher, so a teacher's accuracy is never an average over two
different questions.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .records import CritiqueRecord, Rejection, Usage

REFERENCES = ("process", "final_answer")


@dataclass
class Agreement:
    """Verdicts checked against labels: agree/disagree by reference, and first-step hits."""

    by_reference: dict[str, Counter[str]] = field(default_factory=lambda: {r: Counter() for r in REFERENCES})
    steps: Counter[str] = field(default_factory=Counter)

    def add(self, record: CritiqueRecord) -> None:
        if record.reference is not None and record.agrees is not None:
            self.by_reference[record.reference]["agree" if record.agrees else "disagree"] += 1
        if record.step_agrees is not None:
            self.steps["exact" if record.step_agrees else "other"] += 1

    def rate(self, reference: str | None = None) -> float | None:
        """Share of judged verdicts that agree, for one reference or all of them."""
        counters = [self.by_reference[reference]] if reference else list(self.by_reference.values())
        agree = sum(c["agree"] for c in counters)
        judged = agree + sum(c["disagree"] for c in counters)
        return agree / judged if judged else None

    def judged(self, reference: str | None = None) -> int:
        counters = [self.by_reference[reference]] if reference else list(self.by_reference.values())
        return sum(c["agree"] + c["disagree"] for c in counters)

    @property
    def step_rate(self) -> float | None:
        total = self.steps["exact"] + self.steps["other"]
        return self.steps["exact"] / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **{ref: dict(self.by_reference[ref]) for ref in REFERENCES},
            "rate": {ref: self.rate(ref) for ref in REFERENCES},
            "first_step": dict(self.steps),
            "first_step_rate": self.step_rate,
        }


@dataclass
class TeacherCounts:
    critiques: int = 0
    rejected: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    agreement: Agreement = field(default_factory=Agreement)
    usage: Usage = field(default_factory=Usage)

    def as_dict(self) -> dict[str, Any]:
        return {
            "critiques": self.critiques,
            "rejected": self.rejected,
            "verdicts": dict(self.verdicts),
            "agreement": self.agreement.as_dict(),
            "usage": self.usage.model_dump(),
        }


@dataclass
class Stats:
    problems: int = 0
    resumed: int = 0
    critiques: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    gold: Counter[str] = field(default_factory=Counter)
    agreement: Agreement = field(default_factory=Agreement)
    crosscheck: Counter[str] = field(default_factory=Counter)
    teachers: dict[str, TeacherCounts] = field(default_factory=dict)
    pairwise: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejects: Counter[str] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    requests: int = 0
    retries: int = 0
    requests_before: int = 0
    started: float = field(default_factory=time.monotonic)
    budget_usd: float | None = None  # the run's cap, shown beside its cost

    def add_record(self, record: CritiqueRecord) -> None:
        self.critiques += 1
        self.verdicts[record.critique.verdict] += 1
        best = record.response.best_label
        self.labels["unknown" if best is None else f"{best[0]}:{'right' if best[1] else 'wrong'}"] += 1
        self.gold[_label(record.gold_agrees, "agree", "disagree")] += 1
        self.agreement.add(record)
        if record.crosscheck:
            self.crosscheck[record.crosscheck] += 1
        self.usage = self.usage.add(record.usage)
        teacher = self.teachers.setdefault(record.teacher, TeacherCounts())
        teacher.critiques += 1
        teacher.verdicts[record.critique.verdict] += 1
        teacher.agreement.add(record)
        teacher.usage = teacher.usage.add(record.usage)

    def add_rejection(self, rejection: Rejection) -> None:
        self.rejects[rejection.reason] += 1
        self.usage = self.usage.add(rejection.usage)
        if rejection.teacher is not None:
            teacher = self.teachers.setdefault(rejection.teacher, TeacherCounts())
            teacher.rejected += 1
            teacher.usage = teacher.usage.add(rejection.usage)

    @property
    def rejected(self) -> int:
        return sum(self.rejects.values())

    def rate(self) -> float:
        """Requests a second sent by this process (earlier runs into the directory excluded)."""
        elapsed = time.monotonic() - self.started
        return (self.requests - self.requests_before) / elapsed if elapsed > 0 else 0.0

    def counts(self) -> dict[str, Any]:
        return {
            "critiques": self.critiques,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejects),
            "verdicts": {"right": self.verdicts["right"], "wrong": self.verdicts["wrong"]},
            "responses_by_label": dict(self.labels),
            "agreement": self.agreement.as_dict(),
            "gold_agreement": dict(self.gold),
            "crosscheck": dict(self.crosscheck),
            "teachers": {name: t.as_dict() for name, t in sorted(self.teachers.items())},
            "pairwise": self.pairwise,
            "usage": self.usage.model_dump(),
            "requests": self.requests,
            "retries": self.retries,
        }


def _label(value: bool | None, yes: str, no: str) -> str:
    return "unknown" if value is None else yes if value else no


def format_rate(rate: float | None, judged: int | None = None, missing: str = "n/a") -> str:
    """A rate as the CLI's stats table and the dataset card show it: `93.0% of 1,204`."""
    if rate is None:
        return missing
    return f"{rate:.1%}" + (f" of {judged:,}" if judged is not None else "")
