"""Several teachers per response: every critique kept, consensus, selection at export, pairwise
agreement on the card, and cross-checks against the built-in critic. Two real test servers on
loopback play teachers that disagree on known rows."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from critique_synth import generate
from critique_synth.config import ExportOptions
from critique_synth.consensus import Vote, choose, majority, steps_agree
from critique_synth.export import export
from critique_synth.records import Critique, CritiqueRecord, Problem, Response
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


STEP_ERRORS = [  # a wrong step, a right final answer: wrong by process, right by final answer
    (
        "b1",
        "A baker makes 12 trays of 8 cookies and sells 16. How many are left?",
        "80",
        "12 * 8 = 86 cookies.\n96 - 16 = 80 cookies are left.\n#### 80",
        False,
        1,
    ),
    (
        "b2",
        "Ann has 5 boxes of 6 pens and gives away 7. How many pens does she keep?",
        "23",
        "She has 5 * 6 = 30 pens.\nShe gives away 7, so 30 - 7 = 24 pens.\nShe keeps 23 pens.\n#### 23",
        False,
        2,
    ),
    (
        "b3",
        "A bus carries 4 rows of 9 people. 6 get off. How many remain?",
        "30",
        "4 * 9 = 36 people.\n36 - 6 = 30 people remain.\n#### 30",
        True,
        None,
    ),
]


def test_step_errors_with_right_answers_are_judged_by_process(tmp_path: Path) -> None:
    """A critic that rightly calls such a response wrong agrees with its process label, though it
    contradicts the final answer; dropping disagreements keeps its critique."""
    rows = [
        {"id": i, "question": q, "answer": a, "response": r, "label": ok, "first_error_step": step}
        for i, q, a, r, ok, step in STEP_ERRORS
    ]
    problems = tmp_path / "labelled.jsonl"
    problems.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    result = generate({"problems": {"path": str(problems)}, "students": {"kind": "dataset"}}, out=out)
    records = {r["problem"]["id"]: r for r in read_jsonl(out / "critiques.jsonl")}
    for pid in ("b1", "b2"):
        r = records[pid]
        assert r["response"]["final_correct"] is True and r["response"]["process_correct"] is False
        assert r["critique"]["verdict"] == "wrong" and r["reference"] == "process"
        assert r["agrees"] is True and r["gold_agrees"] is False
    assert result.stats.agreement.rate("process") == 1.0
    kept = export(out, tmp_path / "ds", ExportOptions(disagreements="drop", formats=["cft", "sft"]))
    assert kept.counts["rows"]["cft"]["train"] == 3 and "disagrees_with_label" not in kept.counts["dropped"]
    sft = pq.read_table(tmp_path / "ds" / "data" / "sft" / "train-00000-of-00001.parquet").to_pylist()
    assert [r["problem_id"] for r in sft] == ["b3"]  # only the response right by its steps


def test_a_reviewers_drop_passes_the_pick_to_the_next_critique(two_teacher_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = two_teacher_run
    records = read_jsonl(out / "critiques.jsonl")
    first = records[0]
    review = tmp_path / "review.jsonl"
    review.write_text(json.dumps({"key": first["key"], "decision": "drop", "at": 0}) + "\n")
    result = export(out, tmp_path / "ds", ExportOptions(formats=["cft"]), review=review)
    kept = pq.read_table(tmp_path / "ds" / "data" / "cft" / "train-00000-of-00001.parquet").to_pylist()
    assert len(kept) == 12 and first["key"] not in {r["key"] for r in kept}
    other = next(
        r
        for r in kept
        if r["problem_id"] == first["problem"]["id"] and r["response"] == first["response"]["text"]
    )
    assert other["teacher"] != first["teacher"]
    assert result.counts["dropped"]["review_drop"] == 1


def _critique_of(pid: str, teacher: str, analysis: str, finish_reason: str | None = None) -> CritiqueRecord:
    critique = Critique(analysis=analysis, first_wrong_step=None, corrected_answer=None, verdict="right")
    return CritiqueRecord(
        key=hashlib.sha256(f"{pid}-{teacher}".encode()).hexdigest()[:24],
        problem=Problem(id=pid, question=f"What is 2 + 2? ({pid})", answer="4"),
        response=Response(
            key=f"r-{pid}", problem_id=pid, text="2 + 2 = 4\n#### 4", source="t", final_correct=True
        ),
        critique=critique,
        text=critique.render(),
        teacher=teacher,
        reference="final_answer",
        agrees=True,
        finish_reason=finish_reason,
    )


def test_the_pick_passes_over_a_critique_the_filters_drop_and_ignores_file_order(tmp_path: Path) -> None:
    records = []
    for i in range(5):
        records += [
            _critique_of(f"p{i}", "short", "Fine."),
            _critique_of(
                f"p{i}", "long", "A much longer walk through every step." * 3, finish_reason="length"
            ),
        ]

    def kept(order: list[CritiqueRecord], name: str) -> list[tuple[str, str]]:
        run = tmp_path / name
        run.mkdir()
        (run / "critiques.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in order))
        (run / "run.json").write_text(json.dumps({"teachers": ["short", "long"]}))
        dropped[name] = export(run, tmp_path / f"ds-{name}", ExportOptions(formats=["cft"])).counts["dropped"]
        rows = pq.read_table(tmp_path / f"ds-{name}" / "data" / "cft" / "train-00000-of-00001.parquet")
        return sorted((r["problem_id"], r["teacher"]) for r in rows.to_pylist())

    dropped: dict[str, dict[str, int]] = {}
    assert kept(records, "a") == [(f"p{i}", "short") for i in range(5)]  # the longest was cut off
    assert dropped["a"] == {"truncated_or_empty": 5}
    tied = [_critique_of("q", "x", "Same length."), _critique_of("q", "y", "Same length.")]
    assert kept(tied, "b") == kept(tied[::-1], "c")  # a tie does not go to whoever came first
