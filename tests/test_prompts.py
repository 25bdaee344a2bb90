"""Prompt templates a user writes: mistakes are one line at start, never a bug report."""

from pathlib import Path

import pytest

from critique_synth.errors import UserError
from critique_synth.prompts import load_prompt


def _template(tmp_path: Path, user: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(f'system = "You grade."\nuser = """{user}"""\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (
            "{nonexistent_var}",
            r"unknown placeholder \{nonexistent_var\}; it may use \{question\}, \{response\}",
        ),
        ('reply like {"verdict": 1} to {question}', r"unknown placeholder \{\"verdict\"\}"),
        ("{question", r"`user`: .*; write a literal brace as \{\{ or \}\}"),
    ],
)
def test_a_bad_placeholder_stops_at_load_naming_it(tmp_path: Path, user: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_prompt(str(_template(tmp_path, user)))


def test_a_placeholder_the_role_does_not_fill_is_one_clear_line(tmp_path: Path) -> None:
    prompt = load_prompt(str(_template(tmp_path, "{question}\n{response}")))
    assert prompt.user(question="q", response="r") == "q\nr"
    with pytest.raises(UserError, match=r"uses \{response\}, which this role does not fill"):
        prompt.user(question="q")  # a student prompt gets only the question
    assert load_prompt(str(_template(tmp_path, "literal {{braces}} and {question}"))).user(question="q") == (
        "literal {braces} and q"
    )
