"""Base URLs with credentials: shown without them, split out for auth, and judged local exactly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from critique_synth.cli import app
from critique_synth.config import EndpointConfig
from critique_synth.errors import UserError
from critique_synth.llm import resolve_api_key
from critique_synth.testserver import MockLLMServer
from critique_synth.urls import is_local, safe_url, split_credentials


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://localhost:8000/v1", "http://localhost:8000/v1"),
        ("https://alice:s3cret@gw.example/v1", "https://gw.example/v1"),
        ("https://alice@gw.example:8443/v1", "https://gw.example:8443/v1"),
        ("https://gw.example/v1?api_key=K&model=m", "https://gw.example/v1?api_key=***&model=m"),
        (
            "https://gw.example/v1?API_KEY=K&Signature=S&sig=S",
            "https://gw.example/v1?API_KEY=***&Signature=***&sig=***",
        ),
        (
            "https://gw.example/v1?x-api-key=K&refresh_token=T",
            "https://gw.example/v1?x-api-key=***&refresh_token=***",
        ),
        ("https://gw.example/v1?api-version=2024-06-01", "https://gw.example/v1?api-version=2024-06-01"),
        ("https://gw.example/v1?access_token=T#token=F", "https://gw.example/v1?access_token=***"),
        (
            "https://u:p%40ss@gw.example/v1?password=P&secret=S",
            "https://gw.example/v1?password=***&secret=***",
        ),
    ],
)
def test_safe_url_drops_userinfo_and_masks_secret_parameters(url: str, shown: str) -> None:
    assert safe_url(url) == shown


@pytest.mark.parametrize(
    "url",
    ["http://alice:PW@[::1/v1?token=T", "http://alice:P/W@host/v1", "http://alice:PW@host:99999/v1?key=T"],
)
def test_safe_url_never_raises_and_hides_secrets_in_urls_that_do_not_parse(url: str) -> None:
    shown = safe_url(url)
    assert "PW" not in shown and "alice" not in shown and "P/W" not in shown and "=T" not in shown


def test_split_credentials_gives_the_url_and_decoded_user_and_password() -> None:
    assert split_credentials("https://alice:p%40ss%3Aw@gw.example:8443/v1?api-version=1") == (
        "https://gw.example:8443/v1?api-version=1",
        "alice",
        "p@ss:w",
    )
    assert split_credentials("https://:TOKEN@gw.example/v1") == ("https://gw.example/v1", None, "TOKEN")
    assert split_credentials("https://alice@gw.example/v1") == ("https://gw.example/v1", "alice", None)
    assert split_credentials("http://localhost:8000/v1") == ("http://localhost:8000/v1", None, None)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://localhost:8000/v1", True),
        ("http://LOCALHOST:8000/v1", True),
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.8.9.10/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://[::ffff:127.0.0.1]:8000/v1", True),
        ("http://0.0.0.0:8000/v1", True),
        ("http://localhost.attacker.example/v1", False),
        ("http://127.0.0.1.nip.io/v1", False),
        ("http://user@localhost@attacker.example/v1", False),
        ("http://10.0.0.5:8000/v1", False),
        ("https://api.openai.com/v1", False),
        ("http://[::1/v1", False),
    ],
)
def test_is_local_means_this_machine_exactly(url: str, local: bool) -> None:
    assert is_local(url) is local


def test_a_name_that_only_starts_with_localhost_needs_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert resolve_api_key(EndpointConfig(base_urls=["http://localhost:8000/v1"]), "teacher") is None
    with pytest.raises(UserError, match="needs an API key"):
        resolve_api_key(EndpointConfig(base_urls=["http://localhost.attacker.example/v1"]), "teacher")


def test_a_run_never_writes_url_credentials_anywhere(
    server: MockLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """run.json, the dataset card, every file of the run, stdout, stderr and the log."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    url = server.base_url.replace("http://", "http://alice:PW-SECRET-1@") + "?api_key=Q-SECRET-2"
    out = tmp_path / "run"
    base = ["generate", "--out", str(out), "--limit", "2", "--teacher-model", "m", "--teacher-base-url", url]
    runs = [CliRunner().invoke(app, [*base, "--dry-run"]), CliRunner().invoke(app, base)]
    assert [r.exit_code for r in runs] == [0, 0], runs[-1].stderr
    assert "endpoint http://127.0.0.1:" in runs[0].stdout and "?api_key=***" in runs[0].stdout
    stored = json.loads((out / "run.json").read_text())["config"]["teacher"]["endpoint"]["base_urls"]
    assert stored == [f"{server.base_url}?api_key=***"]
    for text in [*(r.stdout + r.stderr for r in runs), caplog.text]:
        assert "SECRET" not in text and "alice" not in text
    for path in out.rglob("*"):
        assert not path.is_file() or b"SECRET" not in path.read_bytes(), path
