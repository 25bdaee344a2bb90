"""One writer per run directory: the lock held by generate, shared by export, freed by the kernel."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from critique_synth.cli import app
from critique_synth.errors import UserError
from critique_synth.export import export
from critique_synth.lock import LOCK_FILE, RunLock, run_lock
from critique_synth.testserver import MockLLMServer, ServerConfig

from .conftest import read_jsonl
from .test_generate import llm_args, start_cli


def test_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with run_lock(tmp_path, purpose="generate"):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["purpose"] == "generate"
        with pytest.raises(UserError, match=rf"in use by pid {os.getpid()} \(generate: "):
            RunLock(tmp_path, "audit").acquire()
    with run_lock(tmp_path, purpose="audit"):  # free again once released
        pass
    assert (tmp_path / LOCK_FILE).read_text() == ""


def test_readers_share_and_keep_writers_out(tmp_path: Path) -> None:
    with (
        run_lock(tmp_path, "export", shared=True),
        run_lock(tmp_path, "export", shared=True),
        pytest.raises(UserError, match=rf"pid {os.getpid()} \(export: "),
    ):
        RunLock(tmp_path, "generate").acquire()
    assert (tmp_path / LOCK_FILE).read_text() == ""  # the last reader out empties it
    first, second = RunLock(tmp_path, "export", shared=True), RunLock(tmp_path, "export", shared=True)
    first.acquire()
    second.acquire()
    first.release()
    with pytest.raises(UserError, match=rf"pid {os.getpid()} \(export: "):
        RunLock(tmp_path, "generate").acquire()
    second.release()
    with run_lock(tmp_path, "generate"), pytest.raises(UserError, match=r"\(generate: "):
        RunLock(tmp_path, "export", shared=True).acquire()
    assert (tmp_path / LOCK_FILE).read_text() == ""


def test_command_in_the_lock_file_hides_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["critique-synth", "generate", "--teacher-base-url", "https://me:hunter2@h/v1", "sk-abcdefgh123"]
    monkeypatch.setattr("sys.argv", argv)
    with run_lock(tmp_path, "generate"):
        text = (tmp_path / LOCK_FILE).read_text()
    assert "critique-synth generate" in text
    assert "hunter2" not in text and "abcdefgh123" not in text


def test_live_writer_locks_out_others_and_a_killed_one_does_not(tmp_path: Path) -> None:
    server = MockLLMServer(ServerConfig(latency=0.5)).start()
    out = tmp_path / "run"
    args = llm_args(server, out, None, "--limit", "10", "--concurrency", "1", "--no-export")
    args[args.index("teacher-m")] = "mock"
    child = start_cli(args)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not read_jsonl(out / "critiques.jsonl"):
            assert child.poll() is None, "generate ended early"
            time.sleep(0.05)
        second = CliRunner().invoke(app, args)
        assert second.exit_code == 2, second.output
        assert f"is in use by pid {child.pid} (generate: critique-synth generate --out {out}" in second.output
        assert "Traceback" not in second.output
        with pytest.raises(UserError, match=f"pid {child.pid}"):
            export(out, tmp_path / "ds")
        assert not (tmp_path / "ds").exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == child.pid  # left behind, yet no bar
    summary = json.loads((out / "run.json").read_text())
    assert summary["requests_complete"] is False
    assert 0 <= len(server.log) - summary["counts"]["requests"] <= 4  # saved at least every 0.5 s
    server.config.latency = 0.0
    rerun = CliRunner().invoke(app, args)
    server.stop()
    assert rerun.exit_code == 0, rerun.output
    keys = [r["key"] for r in read_jsonl(out / "critiques.jsonl") + read_jsonl(out / "rejected.jsonl")]
    assert len(keys) == len(set(keys)) == 20
    summary = json.loads((out / "run.json").read_text())
    assert summary["requests_complete"] is False  # still a lower bound: the kill lost some
    assert 0 <= len(server.log) - summary["counts"]["requests"] <= 4
