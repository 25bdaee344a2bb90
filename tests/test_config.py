import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from critique_synth.cli import app
from critique_synth.config import RunConfig, load_config
from critique_synth.errors import UserError


def test_toml_and_yaml_load_the_same(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        '[teacher]\nkind = "llm"\nmodel = "m"\n[teacher.endpoint]\nconcurrency = 8\n'
    )
    (tmp_path / "c.yaml").write_text("teacher:\n  kind: llm\n  model: m\n  endpoint:\n    concurrency: 8\n")
    a = load_config(tmp_path / "c.toml", {})
    b = load_config(tmp_path / "c.yaml", {})
    assert a == b
    assert a.teacher.endpoint.concurrency == 8


def test_flags_override_the_file(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("limit = 5\n")
    config = load_config(tmp_path / "c.toml", {"limit": 9, "teacher.endpoint.rpm": 60, "shard": None})
    assert (config.limit, config.teacher.endpoint.rpm) == (9, 60)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[teacher]\nconcurency = 3\n", "unknown key 'teacher.concurency'"),
        ("[teacher.endpoint]\nconcurrency = -4\n", "'teacher.endpoint.concurrency': Input should be greater"),
        ('[teacher]\nkind = "oracle"\n', "'teacher.kind'"),
        ('shard = "3/2"\n', "need 0 <= I < N"),
        ('[teacher.endpoint]\nbase_urls = ["localhost:8000"]\n', "not an http"),
        ("[teacher\n", "not valid TOML"),
        ('[teacher.endpoint]\nbase_urls = ["http://[::1"]\n', "'teacher.endpoint.base_urls': Value error, "),
        ('[students.endpoint]\nbase_urls = ["http://localhost:99999/v1"]\n', "'students.endpoint.base_urls'"),
        ('[teacher.endpoint]\nbase_urls = ["http://h:0/v1"]\n', "port must be a number from 1 to 65535"),
        ('[teacher.endpoint]\nbase_urls = ["http:///v1"]\n', "has no host"),
        ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    ],
)
def test_bad_configs_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=message.replace("(", r"\(")) as info:
        load_config(path, {})
    assert str(path) in str(info.value)


def test_fingerprint_ignores_throughput_settings_but_not_content() -> None:
    base = RunConfig()
    faster = RunConfig.model_validate({"teacher": {"endpoint": {"concurrency": 512}}, "limit": 3})
    other = RunConfig.model_validate({"students": {"samples": 4}})
    assert base.fingerprint() == faster.fingerprint()
    assert base.fingerprint() != other.fingerprint()


@pytest.mark.parametrize(
    "url",
    ["http://alice:PW-SECRET@[::1/v1?api_key=Q-SECRET", "http://alice:PW-SECRET@h:99999/v1?token=Q-SECRET"],
)
def test_a_rejected_base_url_is_shown_without_its_secrets(tmp_path: Path, url: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[teacher.endpoint]\nbase_urls = [{json.dumps(url)}]\n")
    with pytest.raises(UserError, match="base_urls") as info:
        load_config(path, {})
    assert "SECRET" not in str(info.value) and "alice" not in str(info.value)
    assert "SECRET" not in repr(info.value.__context__)


def test_a_byte_order_mark_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes("\ufeff[teacher]\nattempts = 2\n".encode())
    assert load_config(path, {}).teacher.attempts == 2


def test_fingerprint_ignores_credentials_in_base_urls() -> None:
    plain = RunConfig.model_validate({"teacher": {"endpoint": {"base_urls": ["https://gw.example/v1"]}}})
    secret = RunConfig.model_validate(
        {"teacher": {"endpoint": {"base_urls": ["https://u:PW@gw.example/v1?api_key=KEY"]}}}
    )
    assert plain.fingerprint() == secret.fingerprint()


def test_public_dump_hides_url_credentials_and_keeps_the_rest() -> None:
    url = "https://u:PW-SECRET@gw.example:8443/v1?api_key=K-SECRET&api-version=2024"
    config = RunConfig.model_validate({"students": {"endpoint": {"base_urls": [url]}}, "limit": 3})
    dumped = config.public_dump()
    assert "SECRET" not in json.dumps(dumped)
    assert dumped["students"]["endpoint"]["base_urls"] == [
        "https://gw.example:8443/v1?api_key=***&api-version=2024"
    ]
    assert {**dumped, "students": None} == {**config.model_dump(mode="json"), "students": None}


def test_a_local_path_is_one_source_however_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.jsonl").write_text("{}\n")
    (tmp_path / "my_teacher.toml").write_text("system = 's'\nuser = 'u'\n")
    relative = RunConfig.model_validate(
        {"problems": {"path": "p.jsonl"}, "teacher": {"prompt": "my_teacher.toml"}}
    )
    absolute = RunConfig.model_validate(
        {
            "problems": {"path": str(tmp_path / "p.jsonl")},
            "teacher": {"prompt": str(tmp_path / "my_teacher.toml")},
        }
    )
    assert relative.fingerprint() == absolute.fingerprint()
    assert relative.problems.path == "p.jsonl", "the config itself keeps what the user wrote"
    hub = RunConfig.model_validate({"problems": {"path": "openai/gsm8k"}})
    assert hub.fingerprint() != RunConfig.model_validate({"problems": {"path": "other/gsm8k"}}).fingerprint()


def test_resume_accepts_the_same_problems_file_by_another_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    row = {"id": "a", "question": "What is 2 * 3?", "answer": "6", "solution": "2 * 3 = 6\n#### 6"}
    (tmp_path / "p.jsonl").write_text(json.dumps(row) + "\n")
    runs = [
        CliRunner().invoke(app, ["generate", "--out", "run", "--problems", path, "--no-export"])
        for path in ("p.jsonl", str(tmp_path / "p.jsonl"), "./p.jsonl")
    ]
    assert [r.exit_code for r in runs] == [0, 0, 0], runs[-1].stderr
    assert len((tmp_path / "run" / "critiques.jsonl").read_text().splitlines()) == 2


def test_broken_yaml_is_one_line_with_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("teacher:\n\tkind: llm\n")
    with pytest.raises(UserError, match=r"bad.yaml: not valid YAML: found character .* at line 2, column 1$"):
        load_config(path, {})
