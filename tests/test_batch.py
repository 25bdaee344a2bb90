"""Batch API mode against the test server's files and batches endpoints, faults included."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import openai
import pytest
from typer.testing import CliRunner

from critique_synth.api import generate
from critique_synth.batchfiles import MANIFEST, BatchEntry, Manifest, parse_results
from critique_synth.cli import app
from critique_synth.errors import UserError
from critique_synth.pricing import DEFAULT_PRICES
from critique_synth.testserver import MockLLMServer

from .conftest import cli_env, read_jsonl

FAST = {"gather_seconds": 0.05, "poll_seconds": 0.02, "poll_max_seconds": 0.1}


def _config(server: MockLLMServer, limit: int = 4, **batch: object) -> dict:
    return {
        "teacher": {
            "kind": "llm",
            "model": "gpt-4o-mini",
            "endpoint": {"base_urls": [server.base_url], "batch": True, "max_retries": 4},
        },
        "limit": limit,
        "export": False,
        "batch": {**FAST, **batch},
    }


def _outcomes(out: Path) -> Counter[str]:
    """How often each unit key was stored as a critique or a rejection."""
    return Counter(r["key"] for name in ("critiques.jsonl", "rejected.jsonl") for r in read_jsonl(out / name))


def test_batch_run_keeps_expired_rows_and_retries_error_rows(server: MockLLMServer, tmp_path: Path) -> None:
    server.batch_api.config.script.extend(["expire", "errors"])
    server.batch_api.config.error_rows = 2
    result = generate(_config(server), out=tmp_path)

    log = server.batch_api.log
    first, second = log[0]["custom_ids"], log[1]["custom_ids"]
    assert len(first) == 8 and len(second) == 4  # 4 of 8 done before the expiry; the rest resubmitted
    assert set(second) < set(first)
    resent = Counter(server.batch_api.submitted())
    assert all(n == 1 for cid, n in resent.items() if cid not in second)  # finished rows never resent
    assert {cid for cid, n in resent.items() if n == 3} == set(second[:2])  # error rows: another round
    units = _outcomes(tmp_path)
    assert len(units) == 8 and set(units.values()) == {1}
    assert result.stats.critiques == 8
    assert {cid.split(".")[0] for cid in first} == set(units)  # custom_id starts with the unit key
    price = DEFAULT_PRICES["gpt-4o-mini"]
    usage = result.stats.usage
    listed = (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6
    assert abs(usage.cost - listed / 2) < 1e-12  # the batch price
    states = [json.loads(line) for line in (tmp_path / MANIFEST).read_text().splitlines()]
    assert [s["status"] for s in states if s["event"] == "state" and s["batch_id"] == log[0]["batch_id"]][
        -1
    ] == "expired"


def test_failed_batch_goes_online_with_fallback(server: MockLLMServer, tmp_path: Path) -> None:
    server.batch_api.config.script.append("fail")
    result = generate(_config(server, limit=2, fallback="online"), out=tmp_path)
    assert len(server.batch_api.log) == 1  # the failed batch, then nothing more was batched
    assert result.stats.critiques == 4 and set(_outcomes(tmp_path).values()) == {1}


def test_oversized_upload_is_split_and_batches_respect_max_requests(
    server: MockLLMServer, tmp_path: Path
) -> None:
    server.batch_api.config.max_upload_bytes = 8_000
    result = generate(_config(server, limit=5, max_requests=4), out=tmp_path)
    sizes = [len(e["custom_ids"]) for e in server.batch_api.log]
    assert server.batch_api.uploads_refused >= 1
    assert max(sizes) < 4 and sum(sizes) == 10
    assert result.stats.critiques == 10 and set(_outcomes(tmp_path).values()) == {1}


def test_kill_during_polling_then_rerun_reattaches(
    server: MockLLMServer, tmp_path: Path, problems_file: Path
) -> None:
    server.batch_api.config.run_seconds = 30.0  # the first batch is still running when killed
    config = tmp_path / "run.toml"
    config.write_text(
        "[batch]\ngather_seconds = 0.05\npoll_seconds = 0.05\npoll_max_seconds = 0.2\n", encoding="utf-8"
    )
    out = tmp_path / "run"
    args = ["--out", str(out), "--config", str(config), "--problems", str(problems_file), "--limit", "3"]
    args += [
        "--teacher-model",
        "gpt-4o-mini",
        "--teacher-base-url",
        server.base_url,
        "--batch",
        "--no-export",
    ]
    child = subprocess.Popen(
        [sys.executable, "-m", "critique_synth", "generate", *args],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while '"submitted"' not in _read(out / MANIFEST):
            assert child.poll() is None and time.monotonic() < deadline, child.stderr and child.stderr.read()
            time.sleep(0.05)
        time.sleep(0.3)  # polling now
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    assert not read_jsonl(out / "critiques.jsonl")
    assert len(server.batch_api.log) == 1

    server.batch_api.config.run_seconds = 0.05
    listing = CliRunner().invoke(app, ["batches", str(out)])
    assert listing.exit_code == 0 and server.batch_api.log[0]["batch_id"] in listing.output
    result = CliRunner().invoke(app, ["generate", *args], env=cli_env())
    assert result.exit_code == 0, result.output
    submitted = server.batch_api.submitted()
    assert len(submitted) == len(set(submitted)) == 6  # re-attached: nothing submitted twice
    assert len(server.batch_api.log) == 1
    units = _outcomes(out)
    assert len(units) == 6 and set(units.values()) == {1}


def test_batches_cancel(server: MockLLMServer, tmp_path: Path) -> None:
    """`batches DIR --cancel` cancels what is running; the states are recorded."""
    server.batch_api.config.run_seconds = 30.0
    line = {"custom_id": "u1.x", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}

    async def submit() -> str:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
        uploaded = await client.files.create(file=("b.jsonl", json.dumps(line).encode()), purpose="batch")
        batch = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        await client.close()
        manifest = Manifest(tmp_path)
        entry = BatchEntry(uploaded.id, "batches/b.jsonl", ["u1.x"], 10, "teacher", server.base_url, "NO_KEY")
        manifest.uploaded(entry)
        manifest.submitted(uploaded.id, batch.id)
        return batch.id

    batch_id = asyncio.run(submit())
    result = CliRunner().invoke(app, ["batches", str(tmp_path), "--cancel"])
    assert result.exit_code == 0, result.output
    assert "cancel" in result.output and batch_id in result.output
    assert server.batch_api.batches[batch_id]["status"] in ("cancelling", "cancelled")
    assert Manifest(tmp_path).load().by_batch(batch_id).status in ("cancelling", "cancelled")


def test_results_parse_both_line_shapes() -> None:
    data = (
        b'{"id":"r1","custom_id":"a","response":{"status_code":200,"body":{"x":1}},"error":null}\n'
        b'{"id":"r2","custom_id":"b","response":null,"error":{"code":"batch_expired","message":"late"}}\n'
        b"not json\n"
    )
    rows = parse_results(data)
    assert rows["a"].status == 200 and json.loads(rows["a"].body) == {"x": 1}
    assert rows["b"].status is None and rows["b"].error == "batch_expired: late"


def test_no_batch_manifest_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["batches", str(tmp_path)])
    assert result.exit_code == 2 and "no batches.jsonl" in result.output


def _manifest_with_a_batch(out: Path) -> bytes:
    manifest = Manifest(out)
    manifest.uploaded(BatchEntry("file-1", "batches/b.jsonl", ["u1.x"], 10, "teacher", "http://h/v1", "K"))
    manifest.submitted("file-1", "batch-1")
    done = {"id": "batch-1", "status": "completed", "request_counts": None}
    manifest.state(SimpleNamespace(**done, output_file_id="file-2", error_file_id=None))
    return (out / MANIFEST).read_bytes()


def test_torn_last_batch_record_is_dropped_and_a_bad_middle_one_named(tmp_path: Path) -> None:
    good = _manifest_with_a_batch(tmp_path)
    for tail in (b'{"garbage": ', b'{"garbage": \n', b'{"garbage": \n\n  \n'):
        (tmp_path / MANIFEST).write_bytes(good + tail)
        listing = CliRunner().invoke(app, ["batches", str(tmp_path)])
        assert listing.exit_code == 0 and "batch-1" in listing.output, listing.output
        assert (tmp_path / MANIFEST).read_bytes() == good  # cut, so later events are not after it
    (tmp_path / MANIFEST).write_bytes(good + b'{"garbage": \n' + good.splitlines(keepends=True)[1])
    with pytest.raises(UserError, match=rf"{MANIFEST}:4: unreadable batch record; fix or delete"):
        Manifest(tmp_path).load()
    (tmp_path / MANIFEST).write_bytes(good + b'{"event": "submitted", "input_file_id": "nope"}\n')
    with pytest.raises(UserError, match=rf"{MANIFEST}:4: unreadable"):  # JSON, but not a record
        Manifest(tmp_path).load()


def test_rerun_with_a_bad_batch_record_is_one_line_and_closes_its_session(
    server: MockLLMServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = _manifest_with_a_batch(tmp_path)
    (tmp_path / MANIFEST).write_bytes(b"not json\n" + good)
    with caplog.at_level(logging.ERROR), pytest.raises(UserError, match=f"{MANIFEST}:1: unreadable"):
        generate(_config(server, limit=1), out=tmp_path)
    gc.collect()  # an unclosed aiohttp session says so when it is collected
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]
    assert not server.batch_api.log


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""
