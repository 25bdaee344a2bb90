from pathlib import Path

import pytest

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
