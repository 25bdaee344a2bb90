"""The typed records that flow through a run and land in its store.

Every stage speaks these models, so a record on disk is always one that passed validation:
`critiques.jsonl` holds `CritiqueRecord` lines, `rejected.jsonl` holds `Rejection` lines.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

Verdict = Literal["right", "wrong"]
Reference = Literal["process", "final_answer"]

CONCLUSION_RE = re.compile(r"conclusion\s*:?(?P<tail>[^\n]*)", re.IGNORECASE)


class Problem(BaseModel):
    """A question with, where known, its gold final answer and a worked reference solution.

    A given `response` may come with labels from the data (`response_*`, see Response for their
    meaning); unknown labels are left out of its dump, so problems without them keep the
    fingerprints and record lines they had before labels existed.
    """

    id: str
    question: str = Field(min_length=1)
    answer: str | None = None
    solution: str | None = None
    response: str | None = None
    response_label: bool | None = None
    response_first_error_step: int | None = Field(default=None, ge=1)
    response_error_kind: str | None = None
    response_final_correct: bool | None = None
    label_source: str | None = None

    @model_serializer(mode="wrap")
    def _known_labels_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name in _PROBLEM_LABELS:
            if data.get(name) is None:
                data.pop(name, None)
        return data


_PROBLEM_LABELS = (
    "response_label",
    "response_first_error_step",
    "response_error_kind",
    "response_final_correct",
    "label_source",
)


class Usage(BaseModel):
    """Token counts and cost of the calls that produced a record (zero for built-in parts)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    unpriced: int = Field(default=0, description="tokens of models with no known price: cost unknown")

    def add(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=self.cost + other.cost,
            unpriced=self.unpriced + other.unpriced,
        )


class Response(BaseModel):
    """A noisy candidate answer to a problem, with where it came from and what is known of it.

    Labels (None = unknown), see critique_synth.labels for how a verdict is checked against them:
    - `final_correct`: its final answer against the gold answer (math equivalence);
    - `process_correct`: whether every step is right, and `first_error_step` (1-based, as
      critique_synth.steps defines a step; None when every step is right), where known:
      from the injector, from labelled data, or from a ProcessBench row (`label_source`).
    """

    model_config = ConfigDict(populate_by_name=True)

    key: str
    problem_id: str
    text: str
    source: str
    sample: int = 0
    final_answer: str | None = None
    final_correct: bool | None = Field(
        default=None, validation_alias=AliasChoices("final_correct", "correct")
    )
    process_correct: bool | None = None
    first_error_step: int | None = Field(default=None, ge=1)
    error_kind: str | None = None
    label_source: str | None = None
    finish_reason: str | None = None
    reasoning: str | None = Field(default=None, description="the model's reasoning_content; never trained on")
    usage: Usage = Field(default_factory=Usage)

    @property
    def best_label(self) -> tuple[Reference, bool] | None:
        """The most informative correctness label known: the process label, else the final answer."""
        if self.process_correct is not None:
            return "process", self.process_correct
        if self.final_correct is not None:
            return "final_answer", self.final_correct
        return None


class Critique(BaseModel):
    """The structured critique a teacher returns; its JSON Schema is what we ask endpoints for."""

    model_config = ConfigDict(extra="forbid")

    analysis: str = Field(
        min_length=1,
        description="Step-by-step check of the solution: key concepts, each step and calculation.",
    )
    first_wrong_step: int | None = Field(
        ge=1,
        description="1-based number of the first incorrect step (solution lines count as steps); "
        "null when the solution is correct.",
    )
    corrected_answer: str | None = Field(
        description="The correct final answer when the solution is wrong; null when it is right.",
    )
    verdict: Verdict = Field(description="'right' if the solution is fully correct, else 'wrong'.")

    @model_validator(mode="after")
    def _consistent(self) -> Critique:
        if "[END]" in self.analysis:
            raise ValueError("analysis must not contain '[END]'; the conclusion is added for you")
        if self.verdict == "right" and self.first_wrong_step is not None:
            raise ValueError("verdict is 'right' but first_wrong_step is set; use null or 'wrong'")
        return self

    def render(self) -> str:
        """The CFT text: the analysis as one critique, closing with what it has not said yet
        (the first wrong step, the boxed correct answer), then the conclusion line."""
        text = self.analysis.strip()
        closing = []
        if self.verdict == "wrong":
            step = self.first_wrong_step
            if step is not None and not re.search(rf"\bstep {step}\b", text, re.IGNORECASE):
                closing.append(f"The first error is in step {step}.")
            if self.corrected_answer and "\\boxed" not in text:
                closing.append(f"The correct final answer is \\boxed{{{self.corrected_answer}}}.")
        if closing:
            text = f"{text} {' '.join(closing)}"
        return f"{text}\n\nConclusion: {self.verdict} [END]"


def critique_schema() -> dict[str, object]:
    """The JSON Schema endpoints are asked to follow; schemas/critique.schema.json mirrors it."""
    return Critique.model_json_schema()


def parse_conclusion(text: str) -> Verdict | None:
    """Read the verdict after the last 'Conclusion', as the CFT paper does."""
    matches = list(CONCLUSION_RE.finditer(text))
    if not matches:
        return None
    tail = matches[-1].group("tail").lower()
    if "wrong" in tail or "incorrect" in tail:
        return "wrong"
    if "right" in tail or "correct" in tail:
        return "right"
    return None


class CritiqueRecord(BaseModel):
    """One finished unit of work: a problem, a response to it and the teacher's critique.

    `key` identifies the unit (student request + teacher spec), so a resumed run skips it.
    """

    key: str
    problem: Problem
    response: Response
    critique: Critique
    text: str
    teacher: str
    reference: Reference | None = None
    agrees: bool | None = None
    step_agrees: bool | None = None
    gold_agrees: bool | None = None
    crosscheck: str | None = None
    request_fingerprint: str | None = None
    attempts: int = 1
    finish_reason: str | None = None
    reasoning: str | None = Field(default=None, description="the teacher's reasoning_content; not in `text`")
    usage: Usage = Field(default_factory=Usage)
    created_at: float = Field(default_factory=time.time)

    @model_validator(mode="before")
    @classmethod
    def _older_runs(cls, data: object) -> object:
        """Records written before process labels were checked against the final answer only."""
        if isinstance(data, dict) and "reference" not in data and data.get("gold_agrees") is not None:
            return {**data, "reference": "final_answer", "agrees": data["gold_agrees"]}
        return data


class Rejection(BaseModel):
    """A unit of work that could not produce a valid critique, with why and the raw output."""

    key: str
    problem_id: str
    stage: Literal["student", "teacher", "input"]
    reason: str
    teacher: str | None = None
    detail: str
    raw: str | None = None
    response: str | None = None
    attempts: int = 0
    usage: Usage = Field(default_factory=Usage)
    created_at: float = Field(default_factory=time.time)
