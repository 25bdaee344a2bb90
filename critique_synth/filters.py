"""Quality controls applied at export, each counted so the dataset card can report it.

The CFT paper shipped its critiques unfiltered (about one in five wrong). Here each control
is an option: critiques that contradict the gold check can be kept, dropped or split out for
inspection; verdicts can be rebalanced; duplicates, over-long and truncated examples dropped.
Decisions are deterministic (hashes of keys and problem ids), so an export is reproducible.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import ExportOptions
from .errors import UserError
from .fingerprint import unit_hash
from .formats import user_turn
from .records import CritiqueRecord
from .tokens import estimate_tokens

_PUNCT_RE = re.compile(r"[^\w\s]")
_SPACE_RE = re.compile(r"\s+")


def fraction_of(*parts: str) -> float:
    """A stable pseudo-random number in [0, 1) for deterministic sampling and splits."""
    return unit_hash(*parts) / 2**64


def split_of(problem_id: str, test_size: float) -> str:
    """By problem, so no problem has rows in both splits."""
    return "test" if test_size and fraction_of("split", problem_id) < test_size else "train"


def normalize_question(question: str) -> str:
    return _SPACE_RE.sub(" ", _PUNCT_RE.sub(" ", question.lower())).strip()


def token_counter(options: ExportOptions) -> Callable[[str], int]:
    """Tokens of a text: a real HF tokenizer when named, else about 4 characters a token."""
    if options.tokenizer is None:
        return lambda text: estimate_tokens(len(text))
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise UserError("export.tokenizer needs transformers: pip install 'critique-synth[train]'") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(options.tokenizer)
    except Exception as exc:  # transformers raises many types; the message is what matters
        raise UserError(f"cannot load tokenizer {options.tokenizer!r}: {exc}") from None
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class Filters:
    """One pass over the records; state (seen pairs, questions) lives here, one object a pass."""

    options: ExportOptions
    count_tokens: Callable[[str], int]
    dropped: Counter[str] = field(default_factory=Counter)
    _pairs: set[int] = field(default_factory=set)
    _questions: dict[int, str] = field(default_factory=dict)

    def fault(self, record: CritiqueRecord) -> str | None:
        """What is wrong with the record itself, whatever else was read before it. A record is
        kept when neither this nor `duplicate` gives a reason."""
        o = self.options
        if o.drop_truncated and (record.finish_reason == "length" or not record.critique.analysis.strip()):
            return "truncated_or_empty"
        if o.disagreements == "drop" and record.agrees is False:
            return "disagrees_with_label"
        if o.crosscheck == "drop" and record.crosscheck:
            return "crosscheck"
        if o.min_tokens is not None or o.max_tokens is not None:
            tokens = self.count_tokens(user_turn(record)) + self.count_tokens(record.text)
            if o.max_tokens is not None and tokens > o.max_tokens:
                return "too_long"
            if o.min_tokens is not None and tokens < o.min_tokens:
                return "too_short"
        return None

    def duplicate(self, record: CritiqueRecord) -> str | None:
        """Whether an earlier record was the same example (this state is why a pass needs its
        own Filters)."""
        o = self.options
        if o.dedupe:
            pair = unit_hash(record.problem.question, record.response.text, record.teacher)
            if pair in self._pairs:
                return "duplicate_pair"
            self._pairs.add(pair)
        if o.near_duplicate_questions:
            question = unit_hash(normalize_question(record.problem.question))
            owner = self._questions.setdefault(question, record.problem.id)
            if owner != record.problem.id:
                return "near_duplicate_question"
        return None


def balance_class(record: CritiqueRecord) -> str:
    """What rebalancing counts: whether the response is right by its best label, or, where no
    label is known, by the verdict."""
    best = record.response.best_label
    right = best[1] if best is not None else record.critique.verdict == "right"
    return "right" if right else "wrong"


def balance_cutoffs(fractions: dict[str, list[float]], target: float | None) -> dict[str, float]:
    """Per class, the largest `fraction_of` value kept, so the kept share of 'right' is exactly
    `target` (to the nearest row): the larger class keeps its rows with the smallest hashes."""
    keep_all = {"right": math.inf, "wrong": math.inf}
    right, wrong = len(fractions["right"]), len(fractions["wrong"])
    if target is None or not right or not wrong:
        return keep_all
    if right / (right + wrong) > target:
        over, keep = "right", round(wrong * target / (1 - target))
    else:
        over, keep = "wrong", round(right * (1 - target) / target)
    ordered = sorted(fractions[over])
    return {**keep_all, over: ordered[keep - 1] if keep else -math.inf}
