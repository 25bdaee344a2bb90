"""Export formats, splits, filters and the dataset card, on hand-built run stores."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shutil
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from critique_synth.cli import app
from critique_synth.config import ExportOptions
from critique_synth.errors import UserError
from critique_synth.export import MARKER, export
from critique_synth.formats import INSTRUCTION
from critique_synth.lock import run_lock
from critique_synth.records import Critique, CritiqueRecord, Problem, Response
from critique_synth.store import CRITIQUES

from .conftest import SECRET, invoke


def record(
    pid: str,
    response: str = "2 + 2 = 4\n#### 4",
    verdict: str = "right",
    correct: bool | None = True,
    question: str | None = None,
    finish_reason: str | None = None,
    key: str | None = None,
) -> CritiqueRecord:
    critique = Critique(
        analysis="Checked each step.",
        first_wrong_step=None if verdict == "right" else 1,
        corrected_answer=None if verdict == "right" else "4",
        verdict=verdict,
    )
    agrees = None if correct is None else (verdict == "right") == correct
    return CritiqueRecord(
        key=key or hashlib.sha256(f"{pid}|{response}|{verdict}".encode()).hexdigest()[:24],
        problem=Problem(id=pid, question=question or f"What is 2 + 2? ({pid})", answer="4"),
        response=Response(
            key=f"r-{pid}-{response}", problem_id=pid, text=response, source="test", correct=correct
        ),
        critique=critique,
        text=critique.render(),
        teacher="llm:test",
        gold_agrees=agrees,
        finish_reason=finish_reason,
    )


def store(path: Path, records: list[CritiqueRecord], run: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / CRITIQUES).write_text("".join(r.model_dump_json() + "\n" for r in records))
    (path / "run.json").write_text(
        json.dumps(run or {"teacher": "llm:test", "counts": {"critiques": len(records)}})
    )
    return path


def rows(out: Path, config: str = "cft", split: str = "train") -> list[dict]:
    path = out / "data" / config / f"{split}-00000-of-00001.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []


def test_cft_is_byte_for_byte_the_webinstruct_layout(tmp_path: Path) -> None:
    question, response = "What is 6 * 7?", "6 * 7 = 42\nThe answer is \\boxed{42}."
    critique = Critique(
        analysis="The product is right.", first_wrong_step=None, corrected_answer=None, verdict="right"
    )
    rec = CritiqueRecord(
        key="a" * 24,
        problem=Problem(id="q", question=question, answer="42"),
        response=Response(key="r", problem_id="q", text=response, source="test", correct=True),
        critique=critique,
        text=critique.render(),
        teacher="t",
        gold_agrees=True,
    )
    out = tmp_path / "ds"
    export(store(tmp_path / "run", [rec]), out)
    (row,) = rows(out)
    assert row["instruction"] == "Please critique whether the following solution to the question is correct."
    # the layout of WebInstruct-CFT, with the steps numbered as the teacher saw them
    assert (
        row["input"]
        == "Question:\nWhat is 6 * 7?\n\nSolution:\nStep 1: 6 * 7 = 42\nStep 2: The answer is \\boxed{42}."
    )
    assert row["output"] == "The product is right.\n\nConclusion: right [END]"
    assert list(row)[:3] == ["instruction", "input", "output"]


def test_every_format_loads_with_its_documented_columns(tmp_path: Path) -> None:
    records = [record(f"p{i}", verdict="wrong" if i % 2 else "right", correct=not i % 2) for i in range(20)]
    out = tmp_path / "ds"
    export(store(tmp_path / "run", records), out, ExportOptions(test_size=0.3))
    expected = {
        "cft": ["instruction", "input", "output"],
        "trl": ["prompt", "completion"],
        "messages": ["messages"],
        "sft": ["instruction", "input", "output"],
    }
    for config, columns in expected.items():
        loaded = datasets.load_dataset(str(out), config)
        assert set(loaded) == {"train", "test"}, config
        assert loaded["train"].column_names[: len(columns)] == columns
    default = datasets.load_dataset(str(out))
    assert default["train"].column_names[:3] == ["instruction", "input", "output"]
    trl = datasets.load_dataset(str(out), "trl")["train"][0]
    assert trl["prompt"][0]["role"] == "user" and trl["prompt"][0]["content"].startswith(
        INSTRUCTION + "\nQuestion:"
    )
    assert trl["completion"][0]["content"].endswith("[END]")
    chat = datasets.load_dataset(str(out), "messages")["train"][0]["messages"]
    assert chat[1]["content"].startswith("Critique:\n")
    sft = datasets.load_dataset(str(out), "sft")
    assert sum(d.num_rows for d in sft.values()) == 10  # the correct responses only
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["cft"]["file_name"] == "data/cft/train-00000-of-00001.parquet"
    assert info["cft"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output"}
    assert info["messages"]["formatting"] == "sharegpt"


def test_split_is_by_problem(tmp_path: Path) -> None:
    records = [record(f"p{i}", response=f"2 + 2 = 4 (try {j})\n#### 4") for i in range(40) for j in range(3)]
    out = tmp_path / "ds"
    export(store(tmp_path / "run", records), out, ExportOptions(test_size=0.25))
    train = {r["problem_id"] for r in rows(out)}
    test = {r["problem_id"] for r in rows(out, split="test")}
    assert train and test and not train & test
    assert len(train | test) == 40


def test_shard_merge_drops_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    records = [record(f"p{i}") for i in range(10)]
    a = store(tmp_path / "a", records[:6])
    b = store(tmp_path / "b", records[4:])
    out = tmp_path / "ds"
    result = export([a, b], out, ExportOptions(formats=["cft"]))
    assert result.rows == 10
    assert sorted(r["key"] for r in rows(out)) == sorted(r.key for r in records)


def test_disagreements_keep_drop_split(tmp_path: Path) -> None:
    agree = [record(f"a{i}") for i in range(6)]
    disagree = [record(f"d{i}", verdict="right", correct=False) for i in range(4)]
    unknown = [record(f"u{i}", correct=None) for i in range(2)]
    run = store(tmp_path / "run", agree + disagree + unknown)
    keep = export(run, tmp_path / "keep", ExportOptions(disagreements="keep"))
    drop = export(run, tmp_path / "drop", ExportOptions(disagreements="drop"))
    split = export(run, tmp_path / "split", ExportOptions(disagreements="split"))
    assert keep.rows == 12 and keep.counts["dropped"] == {}
    assert drop.rows == 8 and drop.counts["dropped"] == {"disagrees_with_label": 4}
    assert split.counts["rows"]["cft"] == {"train": 8, "disagreements": 4}
    assert {r["problem_id"] for r in rows(tmp_path / "split", split="disagreements")} == {
        f"d{i}" for i in range(4)
    }
    assert datasets.load_dataset(str(tmp_path / "split"))["disagreements"].num_rows == 4


def test_rebalance_to_a_target_ratio(tmp_path: Path) -> None:
    records = [record(f"r{i}") for i in range(300)] + [
        record(f"w{i}", verdict="wrong", correct=False) for i in range(100)
    ]
    result = export(
        store(tmp_path / "run", records), tmp_path / "ds", ExportOptions(balance=0.5, formats=["cft"])
    )
    kept = rows(tmp_path / "ds")
    right = sum(r["verdict"] == "right" for r in kept)
    wrong = sum(r["verdict"] == "wrong" for r in kept)
    assert (right, wrong) == (100, 100)  # exact, not about 100
    assert result.counts["dropped"] == {"rebalanced": 200}
    again = export(
        store(tmp_path / "run", records), tmp_path / "ds2", ExportOptions(balance=0.5, formats=["cft"])
    )
    assert again.counts == result.counts
    assert sorted(r["key"] for r in rows(tmp_path / "ds2")) == sorted(r["key"] for r in kept)


@pytest.mark.parametrize(("target", "right", "wrong"), [(0.8, 300, 75), (0.2, 25, 100), (0.75, 300, 100)])
def test_rebalance_is_exact_either_way(tmp_path: Path, target: float, right: int, wrong: int) -> None:
    """The kept share of responses known right is the target, to the row."""
    records = [record(f"r{i}") for i in range(300)] + [
        record(f"w{i}", verdict="wrong", correct=False) for i in range(100)
    ]
    export(store(tmp_path / "run", records), tmp_path / "ds", ExportOptions(balance=target, formats=["cft"]))
    kept = rows(tmp_path / "ds")
    assert (sum(r["response_correct"] for r in kept), sum(not r["response_correct"] for r in kept)) == (
        right,
        wrong,
    )


def test_duplicates_length_and_truncation_counts(tmp_path: Path) -> None:
    records = [
        record("p1"),
        record("p1b", question="What is 2 + 2? (p1)", key="b" * 24),  # same question and response, another id
        record("p2", question="What is 2 + 2?"),
        record("p3", question="what is 2+2 ?"),  # the same question, normalized
        record("p4", response="x " * 5000),  # far too long
        record("p5", finish_reason="length"),
    ]
    options = ExportOptions(near_duplicate_questions=True, max_tokens=600, formats=["cft"])
    result = export(store(tmp_path / "run", records), tmp_path / "ds", options)
    assert result.counts["dropped"] == {
        "duplicate_pair": 1,
        "near_duplicate_question": 1,
        "too_long": 1,
        "truncated_or_empty": 1,
    }
    assert result.rows == 2


def test_card_front_matter_counts_and_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    run = {
        "teacher": "llm:gpt-4o",
        "students": "inject",
        "config": {
            "teacher": {
                "kind": "llm",
                "mode": "json",
                "endpoint": {"base_urls": [f"https://user:{SECRET}@example.com/v1"]},
            }
        },
        "prompts": {"teacher": {"version": "abc123def456", "text": "You are an expert."}},
        "counts": {
            "critiques": 3,
            "rejected": 2,
            "rejected_by_reason": {"invalid_output": 2},
            "verdicts": {"right": 2, "wrong": 1},
            "gold_agreement": {"agree": 2, "disagree": 1},
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "cost": 0.01},
        },
    }
    records = [record("p1"), record("p2"), record("p3", verdict="right", correct=False)]
    export(store(tmp_path / "run", records, run), tmp_path / "ds", ExportOptions(disagreements="split"))
    card = (tmp_path / "ds" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert {c["config_name"] for c in front["configs"]} == {"cft", "trl", "messages", "sft"}
    assert next(c for c in front["configs"] if c["config_name"] == "cft")["default"] is True
    assert front["size_categories"] == ["n<1K"] and front["task_categories"] == ["text-generation"]
    for text in (
        "llm:gpt-4o",
        "abc123def456",
        "You are an expert.",
        "invalid_output",
        "66.7% of 3",
        "disagreements",
        "Critique Fine-Tuning",
        "LLaMA-Factory",
        '"verdict"',
    ):
        assert text in card, text
    assert SECRET not in card
    assert "example.com" not in card
    assert not re.search(r"sk-[A-Za-z0-9]{6,}", card)


def test_export_cli_and_stats(tmp_path: Path) -> None:
    """The commands in-process: nothing here needs a process of its own."""
    out = tmp_path / "run"
    assert invoke("generate", "--out", str(out), "--limit", "10", "--no-export").exit_code == 0
    result = invoke(
        "export",
        str(out),
        "--test-size",
        "0.2",
        "--disagreements",
        "split",
        "--format",
        "cft",
        "--format",
        "sft",
    )
    assert result.exit_code == 0, result.stderr
    assert {p.name for p in (out / "dataset" / "data").iterdir()} == {"cft", "sft"}
    bad = invoke("export", str(out), "--balance", "1.5")
    assert bad.exit_code == 2 and "balance" in bad.stderr
    missing = invoke("export", str(tmp_path / "nothing"))
    assert missing.exit_code == 2 and "no critiques.jsonl" in missing.stderr
    stats = invoke("stats", str(out))
    assert stats.exit_code == 0
    assert "critiques" in stats.stdout and re.search(
        r"agreement by process label +│ +\d+\.\d% of 20", stats.stdout
    )


def test_reexport_is_not_served_from_a_stale_cache(tmp_path: Path) -> None:
    run = store(tmp_path / "run", [record(f"p{i}") for i in range(3)])
    export(run, tmp_path / "ds")
    assert datasets.load_dataset(str(tmp_path / "ds"))["train"].num_rows == 3
    store(run, [record(f"p{i}") for i in range(5)])
    export(run, tmp_path / "ds")
    assert datasets.load_dataset(str(tmp_path / "ds"))["train"].num_rows == 5


def test_token_bounds_with_a_real_tokenizer(tmp_path: Path) -> None:
    from critique_synth.trainer.tiny import make_tokenizer

    make_tokenizer().save_pretrained(tmp_path / "tok")
    short = record("p1")
    long = record("p2", response="12 * 8 = 96 cookies. " * 200)
    run = store(tmp_path / "run", [short, long])
    options = ExportOptions(tokenizer=str(tmp_path / "tok"), max_tokens=400, formats=["cft"])
    result = export(run, tmp_path / "ds", options)
    assert result.counts["dropped"] == {"too_long": 1}
    assert [r["problem_id"] for r in rows(tmp_path / "ds")] == ["p1"]
    bad = ExportOptions(tokenizer=str(tmp_path / "missing"), max_tokens=400)
    with pytest.raises(UserError, match="cannot load tokenizer"):
        export(run, tmp_path / "ds2", bad)


def test_out_that_is_or_holds_a_run_is_refused_untouched(tmp_path: Path) -> None:
    run = store(tmp_path / "runs" / "demo", [record("p1"), record("p2")])
    before = (run / CRITIQUES).read_bytes()
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "keep.txt").write_text("mine")
    cases = {
        run: "is a run directory",
        tmp_path / "runs": "export did not make",
        tmp_path: "export did not make",
        tmp_path / "stuff": "export did not make",
        tmp_path / "notes.txt": "is an existing file",
    }
    for out, message in cases.items():
        result = CliRunner().invoke(app, ["export", str(run), "--out", str(out)])
        assert result.exit_code == 2, (out, result.output)
        (line,) = [x for x in result.output.splitlines() if x.startswith("error: ")]
        assert f"error: {out} " in line and message in line, line
    assert (run / CRITIQUES).read_bytes() == before
    assert (tmp_path / "notes.txt").read_text() == (tmp_path / "stuff" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "runs", "stuff"]


def test_reexport_replaces_only_its_own_marked_output(tmp_path: Path) -> None:
    run = store(tmp_path / "run", [record("p1")])
    (tmp_path / "empty").mkdir()
    export(run, tmp_path / "empty")  # an empty folder holds nothing to lose
    out = run / "dataset"
    export(run, out)
    assert json.loads((out / MARKER).read_text())["made_by"] == "critique-synth export"
    store(run, [record("p1"), record("p2")])
    assert export(run, out).rows == 2
    assert sorted(p.name for p in run.iterdir()) == [".lock", CRITIQUES, "dataset", "run.json"]
    shutil.copytree(run, out / "copy", ignore=shutil.ignore_patterns("dataset"))
    with pytest.raises(UserError, match="holds a run directory"):
        export(run, out)
    (out / MARKER).unlink()  # as an export made before the marker existed
    shutil.rmtree(out / "copy")
    with pytest.raises(UserError, match="remove it if it is an old export"):
        export(run, out)


def test_files_a_user_added_to_an_export_are_never_replaced(tmp_path: Path) -> None:
    run = store(tmp_path / "run", [record("p1")])
    out = tmp_path / "ds"
    export(run, out)
    (out / "MY_NOTES.md").write_text("mine")
    (out / "extra").mkdir()
    (out / "extra" / "a.txt").write_text("mine too")
    with pytest.raises(UserError, match=r"holds files export did not write \(MY_NOTES.md, extra/a.txt\)"):
        export(run, out)
    assert (out / "MY_NOTES.md").read_text() == "mine" and (out / "extra" / "a.txt").exists()
    (out / "MY_NOTES.md").unlink()
    shutil.rmtree(out / "extra")
    marker = json.loads((out / MARKER).read_text())
    del marker["files"]  # a marker from before the list: it owns the export layout only
    (out / MARKER).write_text(json.dumps(marker))
    assert export(run, out).rows == 1
    hand_made = tmp_path / "hand"
    hand_made.mkdir()
    (hand_made / MARKER).write_text("{}")
    (hand_made / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match=r"keep\.txt"):
        export(run, hand_made)


def test_a_failed_export_keeps_the_previous_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = store(tmp_path / "run", [record("p1")])
    export(run, tmp_path / "ds")
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()}

    def crash(*args: object) -> str:
        raise RuntimeError("killed while writing the card")

    monkeypatch.setattr(importlib.import_module("critique_synth.export"), "render_card", crash)
    store(run, [record("p1"), record("p2")])
    with pytest.raises(RuntimeError):
        export(run, tmp_path / "ds")
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "run"]  # no temporary folder left


def test_corrupt_line_midway_is_skipped_counted_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = store(tmp_path / "run", [record(f"p{i}") for i in range(3)])
    lines = (run / CRITIQUES).read_text().splitlines(keepends=True)
    lines.insert(1, '{"key": "torn", "problem": {\n')
    (run / CRITIQUES).write_text("".join(lines))
    result = export(run, tmp_path / "ds")
    assert result.rows == 3 and result.counts["unreadable_lines"] == 1
    assert f"{run / CRITIQUES}:2: unreadable line skipped" in caplog.text
    assert export(run, tmp_path / "ds", ExportOptions(balance=0.5)).counts["unreadable_lines"] == 1


def test_export_waits_for_no_writer(tmp_path: Path) -> None:
    run = store(tmp_path / "run", [record("p1")])
    with run_lock(run, "generate"), pytest.raises(UserError, match=rf"in use by pid {os.getpid()}"):
        export(run, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
