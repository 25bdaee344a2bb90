"""The run store under failing disks and permissions: one clear line, nothing stored lost."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from critique_synth.cli import app
from critique_synth.errors import UserError
from critique_synth.records import CritiqueRecord
from critique_synth.stats import Stats
from critique_synth.store import RUN, RunStore

from .conftest import cli_env, read_jsonl
from .test_export import record

NOBODY = 65534


def generate(out: Path, limit: int) -> None:
    result = CliRunner().invoke(app, ["generate", "--out", str(out), "--limit", str(limit), "--no-export"])
    assert result.exit_code == 0, result.output


def files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def error_lines(output: str) -> list[str]:
    assert "Traceback" not in output
    return [line for line in output.splitlines() if line.startswith("error: ")]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can reach (pytest's own are private to their owner)."""
    path = Path(tempfile.mkdtemp())
    path.chmod(0o777)
    yield path
    for sub in path.rglob("*"):
        sub.chmod(0o777 if sub.is_dir() else 0o666)
    shutil.rmtree(path)


@contextmanager
def read_only(run: Path) -> Iterator[None]:
    """Make `run` read-only. File modes do not stop root, so root also acts as nobody meanwhile."""
    for path in [*run.iterdir(), run]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    root = os.geteuid() == 0
    if root:
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
    try:
        yield
    finally:
        if root:
            os.seteuid(0)
            os.setegid(0)


def test_read_only_run_is_one_line_and_untouched(shared_dir: Path) -> None:
    run = shared_dir / "run"
    generate(run, 3)
    before = files(run)
    (shared_dir / "datasets").mkdir(mode=0o777)
    (shared_dir / "datasets").chmod(0o777)
    with read_only(run):
        result = CliRunner().invoke(app, ["generate", "--out", str(run), "--limit", "5", "--no-export"])
        exported = CliRunner().invoke(app, ["export", str(run), "--out", str(shared_dir / "datasets" / "ds")])
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result.output)
    assert str(run / ".lock") in line and "Permission denied" in line
    assert files(run) == before
    assert exported.exit_code == 0, exported.output  # reading a run needs no write access
    assert "(6 rows;" in exported.output


def test_file_too_large_midway_keeps_what_was_stored(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the disk 'full' for one child: appends fail with EFBIG mid-line."""
    run = tmp_path / "run"
    generate(run, 15)
    stored = (run / "critiques.jsonl").read_bytes()
    room = len(stored) + 4000

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    args = ["generate", "--out", str(run), "--limit", "40", "--no-export"]
    child = subprocess.run(
        [sys.executable, "-m", "critique_synth", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert child.returncode == 2, child.stderr
    (line,) = error_lines(child.stderr)
    assert f"{run / 'critiques.jsonl'}: cannot write (File too large)" in line
    after = (run / "critiques.jsonl").read_bytes()
    assert after.startswith(stored) and len(after) == room  # filled to the limit, last line cut
    assert json.loads((run / RUN).read_text())["counts"]["critiques"] >= 30
    generate(run, 40)
    keys = [CritiqueRecord.model_validate(r).key for r in read_jsonl(run / "critiques.jsonl")]
    assert len(keys) == len(set(keys)) == 80
    assert (run / "critiques.jsonl").read_bytes().startswith(stored)


def test_failed_run_json_save_keeps_the_old_one(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.open({}, "fp", allow_change=False)
    store.write_record(record("p1"))
    store.write_run(Stats(critiques=1), {"finished": False})
    saved = (tmp_path / RUN).read_bytes()
    (tmp_path / f".{RUN}.tmp").mkdir()  # where the new summary would be written: a real EISDIR
    with pytest.raises(UserError, match=rf"{RUN}: cannot write \(Is a directory\)"):
        store.write_run(Stats(critiques=2), {"finished": False})
    assert (tmp_path / RUN).read_bytes() == saved
    store.close()
    assert read_jsonl(tmp_path / "critiques.jsonl")[0]["problem"]["id"] == "p1"


def test_unwritable_record_file_is_one_line(tmp_path: Path) -> None:
    """As root, a file mode stops nobody: a directory in the file's place is a real EISDIR."""
    run = tmp_path / "run"
    generate(run, 2)
    (run / "rejected.jsonl").unlink()
    (run / "rejected.jsonl").mkdir()
    before = files(run)
    result = CliRunner().invoke(app, ["generate", "--out", str(run), "--limit", "4", "--no-export"])
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result.output)
    assert f"{run / 'rejected.jsonl'}: cannot write (Is a directory)" in line
    assert files(run) == before


def test_a_clean_run_counts_every_request(tmp_path: Path) -> None:
    generate(tmp_path / "run", 2)
    summary = json.loads((tmp_path / "run" / RUN).read_text())
    assert summary["requests_complete"] is True and summary["finished"] is True


def test_store_lock_is_released_on_a_failed_open(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.open({}, "fp", allow_change=False)
    store.write_run(Stats(), {})
    store.close()
    with pytest.raises(UserError, match="different config"):
        RunStore(tmp_path).open({}, "other", allow_change=False)
    again = RunStore(tmp_path)
    again.open({}, "fp", allow_change=False)  # not locked out by the failed open above
    again.close()
    assert stat.S_ISREG((tmp_path / ".lock").stat().st_mode)
