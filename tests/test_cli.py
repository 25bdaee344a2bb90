"""The command line's own behaviour, in this process: version, help, early refusals, plans."""

from __future__ import annotations

import json
from pathlib import Path

from critique_synth import __version__
from critique_synth.config import RunConfig
from critique_synth.plan import plan

from .conftest import SECRET, cli_env, invoke


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"critique-synth {__version__}"


def test_help_says_limit_counts_per_shard() -> None:
    result = invoke("generate", "--help", env=cli_env(COLUMNS="300"))
    assert result.exit_code == 0
    assert "N per shard" in result.output


def test_push_without_a_token_is_refused_before_the_job(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = invoke("generate", "--out", out, "--limit", "2", "--push-to-hub", "alice/x")
    assert result.exit_code == 2, result.output
    assert "no Hugging Face token" in result.output
    assert not out.exists()  # nothing ran


def test_a_failed_start_leaves_no_empty_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    args = ("generate", "--out", out, "--teacher-model", "m", "--teacher-base-url", url)
    result = invoke(*args)
    assert result.exit_code == 2 and "cannot reach" in result.output, result.output
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert invoke(*args).exit_code == 2
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"  # a folder it did not make stays


def test_a_refused_config_change_names_the_setting(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert invoke("generate", "--out", out, "--limit", "3", "--no-export").exit_code == 0
    result = invoke("generate", "--out", out, "--limit", "3", "--samples", "3", "--no-export")
    assert result.exit_code == 2
    assert "students.samples: 2 -> 3" in " ".join(result.output.split()), result.output
    assert SECRET not in result.output


def test_plan_is_a_library_call_and_the_dry_run_prints_it(tmp_path: Path) -> None:
    config = RunConfig(limit=3)
    p = plan(config, tmp_path / "run")
    assert p.first_problem and p.messages is None and p.done == 0  # the built-in critic has no prompt
    assert not (tmp_path / "run").exists()
    result = invoke("generate", "--out", tmp_path / "run", "--limit", "3", "--dry-run")
    assert result.exit_code == 0
    assert f"first problem: problem {p.first_problem}" in result.output
    assert json.dumps(p.students)[1:-1] in result.output


def test_a_dataset_folder_export_may_not_replace_is_refused_before_the_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "dataset").mkdir(parents=True)
    (out / "dataset" / "notes.md").write_text("mine")
    result = invoke("generate", "--out", out, "--limit", "2")
    assert result.exit_code == 2 and "is a folder export did not make" in result.stderr
    assert not (out / "critiques.jsonl").exists()


def test_a_field_mapping_for_the_bundled_sample_is_refused(tmp_path: Path) -> None:
    result = invoke("generate", "--out", tmp_path / "run", "--limit", "2", "--field", "question=nope")
    assert result.exit_code == 2 and "give problems.path" in result.stderr
