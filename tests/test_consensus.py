"""Several teachers per response: every critique kept, consensus, selection at export, pairwise
agreement on the card, and cross-checks against the built-in critic. Two real test servers on
loopback play teachers that disagree on known rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from critique_synth import generate
from critique_synth.config import ExportOptions
from critique_synth.consensus import Vote, choose, majority, steps_agree
from critique_synth.export import export
from critique_synth.testserver import MockLLMServer, ServerConfig

from .conftest import read_jsonl

ALWAYS_RIGHT = json.dumps(
    {
        "analysis": "Every step checks out.",
        "first_wrong_step": None,
        "corrected_answer": None,
        "verdict": "right",
    }
)


@pytest.fixture
def two_teacher_run(problems_file: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Teacher `careful` critiques with the critic's exact checks; `lenient` calls everything
    right. On the 6 references they agree; on the 6 injected errors they disagree."""
    careful = MockLLMServer(ServerConfig()).start()
    lenient = MockLLMServer(ServerConfig(answers={"<solution>": ALWAYS_RIGHT})).start()
    out = tmp_path / "run"
    config = {
        "problems": {"path": str(problems_file)},
        "teachers": [
            {
                "kind": "llm",
                "name": "careful",
                "model": "m",
                "mode": "json",
                "endpoint": {"base_urls": [careful.base_url]},
            },
            {
                "kind": "llm",
                "name": "lenient",
                "model": "m",
                "mode": "json",
                "endpoint": {"base_urls": [lenient.base_url]},
            },
        ],
        "export": False,
    }
    try:
        yield out, generate(config, out=out)
    finally:
        careful.stop()
        lenient.stop()


def test_every_teacher_critiques_every_response_once(two_teacher_run) -> None:  # type: ignore[no-untyped-def]
    out, result = two_teacher_run
    records = read_jsonl(out / "critiques.jsonl")
    per_response = Counter(r["response"]["key"] for r in records)
    assert len(per_response) == 12 and set(per_response.values()) == {2}
    assert Counter(r["teacher"] for r in records) == {"careful": 12, "lenient": 12}
    lenient_wrong = [
        r for r in records if r["teacher"] == "lenient" and r["response"]["process_correct"] is False
    ]
    assert len(lenient_wrong) == 6 and all(
        r["agrees"] is False and r["reference"] == "process" for r in lenient_wrong
    )
    # where the final answer is off, the built-in critic can prove the lenient teacher wrong
    provable = [r for r in lenient_wrong if r["response"]["final_correct"] is False]
    assert provable and all(r["crosscheck"] == "missed_exact_error" for r in provable)
    flagged = [r for r in records if r["crosscheck"]]
    assert all(
        r["critique"]["verdict"] == "right" and r["response"]["process_correct"] is False for r in flagged
    )
    assert result.stats.teachers["lenient"].agreement.rate("process") == pytest.approx(0.5)
    run = json.loads((out / "run.json").read_text())
    assert run["teachers"] == ["careful", "lenient"]
    assert run["counts"]["teachers"]["careful"]["critiques"] == 12


def test_a_rerun_sends_nothing_again(two_teacher_run, problems_file: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = two_teacher_run
    before = (out / "critiques.jsonl").read_bytes()
    config = json.loads((out / "run.json").read_text())["config"]
    again = generate(config, out=out)
    assert (out / "critiques.jsonl").read_bytes() == before
    assert again.stats.resumed == 24


def test_selection_at_export(two_teacher_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = two_teacher_run

    def rows(select: str, **options: object) -> list[dict]:
        target = tmp_path / f"ds-{select}-{len(options)}"
        export(out, target, ExportOptions(select=select, formats=["cft"], **options))
        return pq.read_table(target / "data" / "cft" / "train-00000-of-00001.parquet").to_pylist()

    best = rows("best")
    assert len(best) == 12  # one critique a response
    records = read_jsonl(out / "critiques.jsonl")
    verdicts: dict[str, set[str]] = {}
    for r in records:
        verdicts.setdefault(r["response"]["key"], set()).add(r["critique"]["verdict"])
    response_of = {r["key"]: r["response"]["key"] for r in records}
    for row in best:  # where the careful teacher caught an error, its critique is the one kept
        if row["process_correct"] is False and verdicts[response_of[row["key"]]] == {"right", "wrong"}:
            assert (row["teacher"], row["selected_by"]) == ("careful", "label")
    split_votes = sum(len(v) == 2 for v in verdicts.values())
    assert split_votes >= 1 and len(rows("majority")) == 12 - split_votes  # a split vote has no majority
    everything = rows("all")
    assert len(everything) == 24 and {r["selected_by"] for r in everything} == {"all"}
    flagged = sum(bool(r["crosscheck"]) for r in everything)
    assert flagged and len(rows("all", crosscheck="drop")) == 24 - flagged
    card = (tmp_path / "ds-all-1" / "README.md").read_text()
    assert f"| careful vs lenient | 12 | {1 - split_votes / 12:.1%} |" in card


def test_consensus_rules() -> None:
    def vote(
        teacher: str, verdict: str, step: int | None = None, agrees: bool | None = None, n: int = 10
    ) -> Vote:
        return Vote(hash(teacher), teacher, verdict, step, agrees, n)

    votes = [
        vote("a", "wrong", 2, True, 50),
        vote("b", "wrong", 2, True, 90),
        vote("c", "right", None, False),
    ]
    assert majority(votes) == "wrong" and steps_agree(votes) is True
    assert [(v.teacher, why) for v, why in choose(votes, "best")] == [("b", "label")]
    assert [(v.teacher, why) for v, why in choose(votes, "majority")] == [("b", "majority")]
    unlabelled = [vote("a", "wrong", 1), vote("b", "wrong", 3, n=5), vote("c", "right")]
    assert steps_agree(unlabelled) is False
    assert [(v.teacher, why) for v, why in choose(unlabelled, "best")] == [("a", "majority")]
    assert choose([vote("a", "wrong"), vote("b", "right")], "best") == []
