"""`critique-synth view` without a browser: the index, filters, record pages, review file, the
server's guards, and `export --review`, on a hand-built run with two teachers."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from critique_synth.cli import app
from critique_synth.config import ExportOptions
from critique_synth.errors import UserError
from critique_synth.export import export
from critique_synth.labels import judge
from critique_synth.lock import RunLock
from critique_synth.records import Critique, CritiqueRecord, Problem, Rejection, Response
from critique_synth.store import CRITIQUES, REJECTED
from critique_synth.view.index import Index
from critique_synth.view.query import Filter, select
from critique_synth.view.review import ReviewLog, read_decisions
from critique_synth.view.server import View, ViewServer, serve

TEACHERS = ("builtin", "llm:judge")
RESPONSE = "Tom has 3 apples.\nHe buys 2 * 5 = {mid} more.\nSo he has 3 + {mid} = {total}.\n#### {total}"


def _key(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]


def make_records(n: int) -> list[CritiqueRecord]:
    """n problems, one response each (odd ones wrong at step 2), critiqued by two teachers:
    builtin is always right; llm:judge calls every third response right whatever it is."""
    out = []
    for i in range(n):
        wrong = i % 2 == 1
        mid = 11 if wrong else 10
        response = Response(
            key=_key("response", i),
            problem_id=f"p{i}",
            text=RESPONSE.format(mid=mid, total=3 + mid),
            source="inject",
            final_answer=str(3 + mid),
            final_correct=not wrong,
            process_correct=not wrong,
            first_error_step=2 if wrong else None,
            error_kind=("computation" if i % 4 == 1 else "sign") if wrong else None,
            label_source="inject",
        )
        problem = Problem(
            id=f"p{i}", question=f"Tom has 3 apples and buys 2 bags of 5 (case {i}).", answer="13"
        )
        for teacher in TEACHERS:
            says_wrong = wrong and not (teacher == "llm:judge" and i % 3 == 0)
            critique = Critique(
                analysis=f"{teacher} checked case {i}.",
                first_wrong_step=2 if says_wrong else None,
                corrected_answer="13" if says_wrong else None,
                verdict="wrong" if says_wrong else "right",
            )
            j = judge(critique, response)
            out.append(
                CritiqueRecord(
                    key=_key("unit", i, teacher),
                    problem=problem,
                    response=response,
                    critique=critique,
                    text=critique.render(),
                    teacher=teacher,
                    reference=j.reference,
                    agrees=j.agrees,
                    step_agrees=j.step_agrees,
                    gold_agrees=j.gold_agrees,
                )
            )
    return out


def make_run(path: Path, n: int = 12) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / CRITIQUES).write_text("".join(r.model_dump_json() + "\n" for r in make_records(n)))
    reject = Rejection(
        key=_key("unit", "x"),
        problem_id="px",
        stage="teacher",
        reason="invalid_json",
        detail="not JSON",
        raw="{oops",
    )
    (path / REJECTED).write_text(reject.model_dump_json() + "\n")
    (path / "run.json").write_text(json.dumps({"teacher": "two", "counts": {"requests": 25}}))
    return path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run")


def rows(index: Index, **flt: str) -> list[int]:
    return [int(r) for r in select(index, Filter(**flt), {})]


def test_filters_count_what_the_records_say(run: Path) -> None:
    index = Index([run])
    index.refresh()
    assert len(index) == 25
    assert len(rows(index, kind="reject")) == len(rows(index, reason="invalid_json")) == 1
    assert len(rows(index, verdict="wrong")) == 6 + 4  # builtin: all 6 wrong; judge misses p3 and p9
    assert len(rows(index, agreement="disagree")) == 2
    assert len(rows(index, agreement="disagree", teacher="llm:judge", error_kind="computation")) == 1
    assert len(rows(index, agreement="teachers_disagree")) == 4  # p3 and p9, both teachers
    assert len(rows(index, error_kind="none", kind="record")) == 12
    assert len(rows(index, q="CASE 7")) == 2
    assert rows(index, teacher="nobody") == []
    with pytest.raises(UserError, match="agreement must be one of"):
        rows(index, agreement="sometimes")


def test_refresh_reads_only_complete_appended_lines(run: Path) -> None:
    index = Index([run])
    index.refresh()
    extra = make_records(14)[-4:]
    line = extra[0].model_dump_json().encode() + b"\n"
    with (run / CRITIQUES).open("ab") as f:
        f.write(line[:40])  # a live run mid-write
        f.flush()
        assert index.refresh() is False
        f.write(line[40:] + b"".join(r.model_dump_json().encode() + b"\n" for r in extra[1:]))
        f.write(b"not json\n" + make_records(1)[0].model_dump_json().encode() + b"\n")  # bad, duplicate
    assert index.refresh() is True
    assert len(index) == 29 and index.unreadable == 1
    assert [r["key"] for r in index.read(rows(index)[-4:])] == [r.key for r in extra]


def test_record_page_steps_teachers_and_navigation(run: Path) -> None:
    view = View([run])
    flt = Filter(agreement="teachers_disagree")
    first = view.records(flt, 0, 10)["rows"][0]
    page = view.record(first["row"], flt)
    assert [s["number"] for s in page["_steps"]] == [1, 2, 3, 4]
    assert page["_steps"][1]["text"].startswith("He buys 2 * 5 = 11")
    assert page["response"]["first_error_step"] == 2
    assert [t["teacher"] for t in page["_teachers"]] == list(TEACHERS)
    assert [t["critique"]["first_wrong_step"] for t in page["_teachers"]] == [2, None]
    assert page["_nav"] == {"position": 0, "total": 4, "prev": None, "next": page["_teachers"][1]["row"]}
    reject = view.records(Filter(kind="reject"), 0, 10)["rows"][0]
    assert view.record(reject["row"], Filter())["raw"] == "{oops"


def test_review_newest_line_wins_and_bad_lines_are_named(tmp_path: Path) -> None:
    log = ReviewLog(tmp_path / "review.jsonl")
    log.mark("a", "drop")
    log.mark("b", "keep")
    log.mark("a", "keep")
    assert read_decisions(tmp_path / "review.jsonl") == {"a": "keep", "b": "keep"}
    with pytest.raises(UserError, match="one of keep, drop"):
        log.mark("a", "maybe")  # type: ignore[arg-type]
    (tmp_path / "bad.jsonl").write_text('{"key": "a", "decision": "drop"}\n{"key": "a"}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2"):
        read_decisions(tmp_path / "bad.jsonl")


def test_summary_teachers_pairs_misses_and_audit(run: Path) -> None:
    (run / "audit.json").write_text(
        json.dumps({"builtin": {"precision": 1.0}, "llm:judge": {"precision": 0.5}})
    )
    (run / "audit.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    s = View([run]).summary()
    assert (s["critiques"], s["rejected"], s["verdicts"]) == (24, 1, {"right": 14, "wrong": 10})
    assert s["agreement_by_reference"] == {"process": {"agree": 22, "disagree": 2, "unknown": 0}}
    assert s["teacher_pairs"] == [{"a": "builtin", "b": "llm:judge", "shared": 12, "same_verdict": 10}]
    assert s["error_kinds"]["computation"]["llm:judge"] == {"critiques": 3, "missed": 1}
    assert s["reject_reasons"] == {"invalid_json": 1}
    assert s["audit"][0]["metrics"]["llm:judge"] == {"precision": 0.5} and s["audit"][0]["lines"] == 2


@pytest.fixture
def server(run: Path) -> Iterator[ViewServer]:
    srv = serve([run], port=0)
    yield srv
    srv.stop()


def _request(url: str, body: object = None, headers: dict | None = None) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_server_serves_its_assets_and_guards_writes(server: ViewServer, run: Path) -> None:
    assert server.host == "127.0.0.1"
    status, page = _request(server.url)
    assert status == 200 and "/static/app.js" in page
    for asset in ("", "static/app.js", "static/app.css"):  # no CDN: everything is served from here
        status, text = _request(server.url + asset)
        assert status == 200 and "http://" not in text and "https://" not in text
    assert _request(server.url + "api/summary", headers={"Host": "evil.example"})[0] == 403
    key = json.loads(_request(server.url + "api/records?limit=1")[1])["rows"][0]["key"]
    review = server.url + "api/review"
    assert _request(review, {"key": key, "decision": "drop"})[0] == 415  # not JSON: no cross-site form
    cross = {"Content-Type": "application/json", "Origin": "http://evil.example"}
    assert _request(review, {"key": key, "decision": "drop"}, cross)[0] == 403
    json_headers = {"Content-Type": "application/json"}
    assert _request(review, {"key": key, "decision": "maybe"}, json_headers)[0] == 400
    assert _request(review, {"key": key, "decision": "drop"}, json_headers)[0] == 200
    assert read_decisions(run / "review.jsonl") == {key: "drop"}


def test_review_refuses_bad_bodies_unknown_keys_and_other_decisions(server: ViewServer, run: Path) -> None:
    review, json_headers = server.url + "api/review", {"Content-Type": "application/json"}
    key = json.loads(_request(server.url + "api/records?limit=1")[1])["rows"][0]["key"]
    for body, status in [
        (b"notjson", 400),
        (b"\xff\xfe", 400),
        ([1], 400),
        ({"key": 7, "decision": "drop"}, 400),
        ({"key": key, "decision": None}, 400),
        ({"key": key, "decision": "maybe"}, 400),
        ({"key": "nonexistent", "decision": "drop"}, 404),
        ({"key": key[:-1] + "0" if key[-1] != "0" else key[:-1] + "1", "decision": "drop"}, 404),
    ]:
        code, text = _request(review, body, json_headers)
        assert code == status, (body, text)
        assert json.loads(text)["error"], text
    assert not (run / "review.jsonl").exists()
    assert json.loads(_request(server.url + "api/record/999")[1]) == {"error": "no record 999"}
    assert _request(review, {"key": key, "decision": "keep"}, json_headers)[0] == 200
    assert read_decisions(run / "review.jsonl") == {key: "keep"}


def test_view_refuses_a_port_out_of_range(run: Path) -> None:
    for port in ("99999", "-1"):
        result = CliRunner().invoke(app, ["view", str(run), "--port", port])
        assert result.exit_code == 2, result.output
        assert "1 to 65535" in result.output and "Traceback" not in result.output


def test_view_reads_a_run_that_generate_holds_and_refuses_a_taken_port(run: Path) -> None:
    with RunLock(run, "generate"):
        srv = serve([run], port=0)
        try:
            with pytest.raises(UserError, match="choose another --port"):
                serve([run], port=srv.port)
        finally:
            srv.stop()
    result = CliRunner().invoke(app, ["view", str(run.parent / "nope")])
    assert result.exit_code == 2 and "no critiques.jsonl" in result.output


def test_export_review_leaves_out_drops(run: Path, tmp_path: Path) -> None:
    records = make_records(12)
    log = ReviewLog(tmp_path / "review.jsonl")
    log.mark(records[0].key, "drop")
    log.mark(records[1].key, "drop")
    log.mark(records[1].key, "keep")  # changed mind: kept
    result = CliRunner().invoke(
        app, ["export", str(run), "-o", str(tmp_path / "ds"), "--review", str(tmp_path / "review.jsonl")]
    )
    assert result.exit_code == 0, result.output
    keys = set(
        pq.read_table(tmp_path / "ds" / "data" / "cft" / "train-00000-of-00001.parquet")["key"].to_pylist()
    )
    assert records[0].key not in keys and records[1].key in keys
    every = ExportOptions(select="all")  # one row a critique, so a drop is one row fewer
    plain = export([run], tmp_path / "ds-all", every)
    reviewed = export([run], tmp_path / "ds-reviewed", every, review=tmp_path / "review.jsonl")
    assert reviewed.counts["dropped"]["review_drop"] == 1 and plain.rows - reviewed.rows == 1
    missing = CliRunner().invoke(
        app, ["export", str(run), "-o", str(tmp_path / "x"), "--review", "nope.jsonl"]
    )
    assert missing.exit_code == 2 and "nope.jsonl: no such file" in missing.output
