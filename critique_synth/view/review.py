"""Review decisions: an append-only `review.jsonl` of {key, decision, at} lines.

The newest line for a key wins, so changing one's mind is another line, and the file is a
log of the review. `export --review FILE` leaves out the records whose decision is drop.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal, get_args

from ..errors import UserError
from ..store import iter_lines

REVIEW = "review.jsonl"
Decision = Literal["keep", "drop"]
DECISIONS: tuple[str, ...] = get_args(Decision)


def read_decisions(path: Path) -> dict[str, str]:
    """Each reviewed key's latest decision; a line cut short by a crash is ignored."""
    decisions: dict[str, str] = {}
    for number, line in iter_lines(path):
        try:
            item = json.loads(line)
            key, decision = item["key"], item["decision"]
        except (ValueError, TypeError, KeyError):
            raise UserError(
                f"{path}:{number}: not a review line {{key, decision, at}}; fix or remove it"
            ) from None
        if not isinstance(key, str) or decision not in DECISIONS:
            raise UserError(f"{path}:{number}: decision must be keep or drop for a string key")
        decisions[key] = decision
    return decisions


class ReviewLog:
    """The decisions in memory, and the file they are appended to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.decisions = read_decisions(path)

    def mark(self, key: str, decision: Decision) -> dict[str, object]:
        if decision not in DECISIONS:
            raise UserError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
        line = {"key": key, "decision": decision, "at": time.time()}
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        except OSError as exc:
            raise UserError(f"{self.path}: cannot write the review ({exc.strerror or exc})") from None
        self.decisions[key] = decision
        return line
