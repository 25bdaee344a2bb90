"""Prompt templates from prompts/, with a content hash as their version.

The templates live outside the code so users can read and change them; the hash goes into
every request fingerprint, so a changed prompt never silently mixes with an older run.
"""

from __future__ import annotations

import hashlib
import re
import string
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from .errors import UserError

_DELIMITED = ("question", "solution")
# Any spelling a model might read as one of our delimiters: `</SOLUTION>`, `< /solution >`,
# `<solution id=2>`; \b keeps `<solutions>` and the like untouched.
_TAG_RE = re.compile(rf"<(?=\s*/?\s*(?:{'|'.join(_DELIMITED)})\b[^<>]*>)", re.IGNORECASE)


def resource_dir(name: str) -> Path:
    """A top-level data folder: inside the installed wheel, or beside the package in a checkout."""
    packaged = Path(str(resources.files("critique_synth"))) / name
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / name


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    parts: dict[str, str]

    def system(self, mode: str | None = None, style: str | None = None) -> str:
        """The system text, then the style's instructions and the mode's output format, where
        the template has them (`<style>_style`, `<mode>_format`)."""
        extras = [
            self.parts.get(f"{style}_style") if style else None,
            self.parts.get(f"{mode}_format") if mode else None,
        ]
        return "\n\n".join([self.parts["system"], *(e for e in extras if e)])

    def user(self, **values: str) -> str:
        escaped = {key: _escape_tags(value) for key, value in values.items()}
        try:
            return self.parts["user"].format(**escaped)
        except KeyError as exc:  # a placeholder this role does not fill ({response} for a student)
            raise UserError(
                f"prompt template {self.name!r}: `user` uses {{{exc.args[0]}}}, which this role does not "
                f"fill; it may use {', '.join('{' + k + '}' for k in sorted(values))}"
            ) from None

    def repair(self, error: str) -> str:
        return self.parts["repair"].format(error=error)


_PLACEHOLDERS = {"user": frozenset({"question", "response"}), "repair": frozenset({"error"})}


def _escape_tags(text: str) -> str:
    """Keep untrusted text from closing its delimiter and posing as instructions: a backslash
    after the `<` (`</solution>` becomes `<\\/solution>`) breaks the tag and stays readable."""
    return _TAG_RE.sub("<\\\\", text)


def load_prompt(name_or_path: str) -> Prompt:
    """A bundled prompt by name (`teacher`, `student`) or a user's TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = resource_dir("prompts") / f"{name_or_path}.toml"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read prompt template ({exc.strerror})") from None
    try:
        parts = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a valid TOML prompt template: {exc}") from None
    missing = {"system", "user"} - parts.keys()
    if missing:
        raise UserError(f"{path}: prompt template lacks {', '.join(sorted(missing))}")
    for part, allowed in _PLACEHOLDERS.items():
        if part in parts:
            _check_placeholders(path, part, parts[part], allowed)
    return Prompt(path.stem, hashlib.sha256(data).hexdigest()[:12], parts)


def _check_placeholders(path: Path, part: str, template: object, allowed: frozenset[str]) -> None:
    """A template that would fail at its first use fails here, at start, naming what is wrong."""
    if not isinstance(template, str):
        raise UserError(f"{path}: `{part}` must be a string")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise UserError(f"{path}: `{part}`: {exc}; write a literal brace as {{{{ or }}}}") from None
    unknown = sorted(names - allowed)
    if unknown:
        raise UserError(
            f"{path}: `{part}` has unknown placeholder {{{unknown[0]}}}; it may use "
            f"{', '.join('{' + name + '}' for name in sorted(allowed))} (a literal brace is {{{{ or }}}})"
        )
