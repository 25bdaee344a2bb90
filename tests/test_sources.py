import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from critique_synth.config import FieldMap, ProblemsConfig
from critique_synth.errors import UserError
from critique_synth.sources import RejectedRow, check_hub_reachable, iter_problems, read_off_loop, select

ROWS = [
    {"uid": "a", "prompt": "What is 2+3?", "gold": 5, "worked": "2 + 3 = 5\n#### 5"},
    {"uid": "b", "prompt": "What is 4*4?", "gold": 16, "worked": "4 * 4 = 16\n#### 16"},
]
FIELDS = FieldMap(id="uid", question="prompt", answer="gold", solution="worked")


def _problems(path: str, **kw: object) -> list:
    return list(iter_problems(ProblemsConfig(path=path, fields=FIELDS, **kw)))


def test_jsonl_json_parquet_and_hf_folder_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n")
    (tmp_path / "p.json").write_text(json.dumps(ROWS))
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "p.parquet")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "folder").mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "folder" / "train.parquet")
    expected = _problems(str(tmp_path / "p.jsonl"))
    assert [p.id for p in expected] == ["a", "b"]
    assert expected[0].answer == "5" and expected[0].solution.startswith("2 + 3")
    for name in ("p.json", "p.parquet", "saved", "folder"):
        assert _problems(str(tmp_path / name)) == expected, name


def test_bundled_sample_is_the_default() -> None:
    problems = list(iter_problems(ProblemsConfig(), require=("solution", "answer")))
    assert len(problems) >= 200
    assert len({p.id for p in problems}) == len(problems)


def test_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n{not json\n")
    with pytest.raises(UserError, match=r"bad\.jsonl:3: malformed JSON"):
        _problems(str(path))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"uid": "x", "question": "q"},
            r"no field 'prompt' \(has: question, uid\); map it with problems.fields.question",
        ),
        ({"uid": "x", "prompt": "   "}, "empty question"),
    ],
)
def test_missing_or_empty_question(tmp_path: Path, row: dict, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match=message):
        _problems(str(path))


def test_required_fields_are_checked_per_row(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"uid": "x", "prompt": "q", "gold": 1}) + "\n")
    config = ProblemsConfig(path=str(path), fields=FIELDS)
    with pytest.raises(UserError, match=r"p\.jsonl:1: no field 'worked'"):
        list(iter_problems(config, require=("solution",)))


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("prompt", ["What is", "2+3?"], "a list"),
        ("prompt", {"text": "What is 2+3?"}, "an object"),
        ("prompt", 5, "a number"),
        ("prompt", True, "a boolean"),
        ("gold", [5], "a list"),
        ("worked", {"steps": []}, "an object"),
        ("uid", False, "a boolean"),
    ],
)
def test_fields_that_are_not_text_stop_with_file_line_and_field(
    tmp_path: Path, field: str, value: object, kind: str
) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({**ROWS[1], field: value}) + "\n")
    with pytest.raises(UserError, match=rf"p\.jsonl:2: field '{field}' \(\w+\) holds {kind}, expected text"):
        _problems(str(path))


def test_numbers_become_text_even_past_the_int_digit_limit(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    big = "9" * 5000
    path.write_text(
        json.dumps({"uid": 7, "prompt": "q1", "gold": 42})
        + "\n"
        + json.dumps({"uid": "b", "prompt": "q2", "gold": 2.5})
        + "\n"
        + f'{{"uid": "c", "prompt": "q3", "gold": {big}}}\n'
    )
    assert [(p.id, p.answer) for p in _problems(str(path))] == [("7", "42"), ("b", "2.5"), ("c", big)]


def test_unpaired_surrogates_make_a_rejected_row(tmp_path: Path) -> None:
    """The row is kept for rejected.jsonl with U+FFFD in place of the bad code unit; others read."""
    path = tmp_path / "p.jsonl"
    rows = [ROWS[0], {**ROWS[1], "uid": "b\ud800", "worked": "4 * 4 = 16 \udfff"}, {**ROWS[0], "uid": "c"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = _problems(str(path))
    assert [type(p).__name__ for p in problems] == ["Problem", "RejectedRow", "Problem"]
    bad = problems[1]
    assert isinstance(bad, RejectedRow) and bad.reason == "bad_text"
    assert bad.id == "b\ufffd" and bad.solution == "4 * 4 = 16 \ufffd"
    assert "p.jsonl:2: field 'uid' holds an unpaired surrogate" in bad.detail


def test_json_nested_too_deeply_names_the_file(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "p.json").write_text(f'[{{"uid": "a", "prompt": {deep}}}]')
    with pytest.raises(UserError, match=r"p\.json: JSON nested too deeply"):
        _problems(str(tmp_path / "p.json"))
    (tmp_path / "p.jsonl").write_text(json.dumps(ROWS[0]) + "\n" + f'{{"prompt": {deep}}}\n')
    with pytest.raises(UserError, match=r"p\.jsonl:2: JSON nested too deeply"):
        _problems(str(tmp_path / "p.jsonl"))


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        _problems(str(tmp_path / "nope.jsonl"))
    (tmp_path / "p.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="unknown problem file type"):
        _problems(str(tmp_path / "p.csv"))


def test_shards_partition_the_problems() -> None:
    problems = list(iter_problems(ProblemsConfig()))
    shards = [list(select(problems, f"{i}/3", None)) for i in range(3)]
    ids = [p.id for shard in shards for p in shard]
    assert sorted(ids) == sorted(p.id for p in problems)
    assert all(shards)
    assert [p.id for p in select(problems, "1/3", 2)] == [p.id for p in shards[1][:2]]


def test_the_source_is_read_off_the_event_loop() -> None:
    """A slow source (a Hub download) leaves the loop free; rows before an error still come."""
    readers: set[str] = set()

    def slow() -> Iterator[int]:
        for i in range(5):
            readers.add(threading.current_thread().name)
            time.sleep(0.02)
            yield i
        raise UserError("bad line 6")

    async def main() -> tuple[list[int], int, str]:
        ticks = 0
        got: list[int] = []

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(tick())
        try:
            async for item in read_off_loop(slow(), batch=2):
                got.append(item)
        except UserError as exc:
            error = str(exc)
        ticker.cancel()
        return got, ticks, error

    got, ticks, error = asyncio.run(main())
    assert got == [0, 1, 2, 3, 4] and error == "bad line 6"
    assert threading.main_thread().name not in readers
    assert ticks >= 5  # the loop ran while the rows were read


def test_an_unreachable_hub_fails_fast_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(UserError, match=r"cannot reach the Hugging Face Hub.*HF_HUB_OFFLINE=1"):
        check_hub_reachable("openai/gsm8k")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    check_hub_reachable("openai/gsm8k")  # offline: the cache decides, nothing is probed


def test_a_first_error_step_past_the_last_step_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "labelled.jsonl"
    row = {"id": "c1", "question": "1+1?", "answer": "2", "response": "1+1 = 3\nThe answer is 3"}
    path.write_text(json.dumps({**row, "label": False, "first_error_step": 99}) + "\n")
    with pytest.raises(
        UserError, match=r"labelled.jsonl:1: field 'first_error_step' names step 99 but the response has 2"
    ):
        list(iter_problems(ProblemsConfig(path=str(path))))
