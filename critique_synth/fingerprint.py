"""Content fingerprints: the identity of a request or a unit of work, stable across runs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .records import Problem

KEY_LENGTH = 24


def fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:KEY_LENGTH]


def problem_fingerprint(problem: Problem) -> str:
    return fingerprint(problem.model_dump())


def unit_key(student_key: str, teacher_fingerprint: str) -> str:
    """One critique of one response by one teacher: the unit a run does exactly once."""
    return fingerprint(student_key, teacher_fingerprint)


def key_int(key: str) -> int:
    """A stored key as a 64-bit int (its first 16 hex digits): sets of done units stay a third
    the size of sets of strings, still collision-free in practice at a billion units."""
    return int(key[:16], 16)


def unit_hash(*parts: str) -> int:
    """A 64-bit hash of strings, for sets that must stay small: ids seen, pairs exported."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
