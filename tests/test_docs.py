"""Every ```python snippet in README.md runs as shown, offline, in a fresh folder.

Snippets run in order in one folder (a later one may read what an earlier one wrote) and each
in its own interpreter, so none leans on another's imports. An HTML comment right before a
fence steers it:

- `<!-- docs-test: skip (needs an API key) -->` skips it; the skips are counted and printed.
- `<!-- docs-test: setup: PYTHON -->` runs PYTHON first, e.g. to make the run directory a
  snippet reads.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
_FENCE = re.compile(
    r"(?:<!--\s*docs-test:\s*(?P<directive>.*?)\s*-->\s*\n)?```python\n(?P<code>.*?)```", re.S
)


@dataclass(frozen=True)
class Snippet:
    line: int
    code: str
    skip: str | None
    setup: str | None


def snippets(text: str) -> list[Snippet]:
    found = []
    for match in _FENCE.finditer(text):
        directive = match["directive"] or ""
        skip = directive[len("skip") :].strip(" ()") or "skipped" if directive.startswith("skip") else None
        setup = directive[len("setup:") :].strip() if directive.startswith("setup:") else None
        line = text.count("\n", 0, match.start("code"))  # the fence's own line, 1-based
        found.append(Snippet(line, match["code"], skip, setup))
    return found


def test_the_parser_reads_directives() -> None:
    text = (
        "a\n```python\nx = 1\n```\n<!-- docs-test: skip (needs a GPU) -->\n```python\ny\n```\n"
        "<!-- docs-test: setup: import os -->\n```python\nz\n```\n```bash\nls\n```\n"
    )
    found = snippets(text)
    assert [(s.line, s.code, s.skip, s.setup) for s in found] == [
        (2, "x = 1\n", None, None),
        (6, "y\n", "needs a GPU", None),
        (10, "z\n", None, "import os"),
    ]


def test_readme_python_snippets_run(tmp_path: Path) -> None:
    found = snippets(README.read_text(encoding="utf-8"))
    assert found, "README.md has no python snippet"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "HF_TOKEN")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    skipped = []
    for snippet in found:
        if snippet.skip:
            skipped.append(f"README.md:{snippet.line}: {snippet.skip}")
            continue
        for code in filter(None, (snippet.setup, snippet.code)):
            done = subprocess.run(
                [sys.executable, "-c", code],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"README.md:{snippet.line} failed:\n{done.stderr[-3000:]}"
    print(f"{len(found) - len(skipped)} README snippet(s) ran, {len(skipped)} skipped: {skipped}")
    if len(skipped) == len(found):
        pytest.fail("every README snippet is skipped")
