"""Run configuration: one pydantic model, loaded from TOML or YAML, overridden by CLI flags.

Unknown keys are errors, not silently ignored, because a misspelt `concurency` that is
dropped would quietly run a million requests at the default. Secrets never live here: an
endpoint names the environment variable that holds its key.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from .errors import UserError, explain
from .kinds import ERROR_KINDS, ErrorKind
from .urls import safe_url


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # base URLs may hold passwords


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


RETRY_REASONS = (
    "rate_limited",
    "server_error",
    "timeout",
    "connection",
    "bad_response",
    "too_large",
    "quota_exhausted",
    "unsupported_format",
    "http_*",
)


class EndpointConfig(_Strict):
    """An OpenAI-compatible endpoint; several base URLs serving one model are load-balanced."""

    base_urls: list[str] = Field(default_factory=lambda: ["https://api.openai.com/v1"], min_length=1)
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(default=64, ge=1)
    rpm: int | None = Field(default=None, ge=1, description="requests per minute")
    tpm: int | None = Field(default=None, ge=1, description="tokens per minute")
    timeout: float = Field(default=120.0, gt=0, description="seconds for one request")
    max_retries: int = Field(default=6, ge=0)
    max_retry_after: float = Field(default=60.0, ge=0, description="cap on a server's Retry-After, seconds")
    max_reply_bytes: int = Field(
        default=10_000_000, ge=1024, description="larger replies (decompressed) are rejected as too_large"
    )
    prices: dict[str, Price] = Field(default_factory=dict)
    kind: Literal["openai", "azure"] = Field(
        default="openai", description="azure: base URLs are deployment URLs, the key goes in `api-key`"
    )
    api_version: str | None = Field(default=None, description="azure: the api-version query parameter")
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="extra headers: name -> environment variable holding its value"
    )
    adaptive: bool = Field(default=True, description="find how many requests the server serves well")
    token_param: Literal["auto", "max_tokens", "max_completion_tokens"] = Field(
        default="auto", description="auto: max_completion_tokens for o-series and GPT-5 models"
    )
    reasoning_effort: str | None = Field(default=None, description="e.g. low | medium | high")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="server-specific request fields, e.g. chat_template_kwargs"
    )
    batch: bool = Field(default=False, description="send through the Batch API (half price, within 24 h)")

    @field_validator("base_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{safe_url(url)!r} is not an http(s) URL, e.g. http://localhost:8000/v1")
            _check_host_and_port(url)
        return [url.rstrip("/") for url in urls]


def _check_host_and_port(url: str) -> None:
    """Refuse now what aiohttp would refuse mid-run; messages show only `safe_url` (no secrets)."""
    shown = repr(safe_url(url))
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(
            f"{shown} has a malformed host; an IPv6 host needs brackets: http://[::1]:8000/v1"
        ) from None
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{shown}: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"{shown} has no host, e.g. http://localhost:8000/v1")


_TRANSPORT_ONLY = (
    "concurrency",
    "rpm",
    "tpm",
    "timeout",
    "max_retries",
    "max_retry_after",
    "max_reply_bytes",
    "base_urls",
    "kind",
    "api_version",
    "headers_env",
    "adaptive",
    "batch",
)


class FieldMap(_Strict):
    """Which source column holds each part of a problem."""

    id: str | None = "id"
    question: str = "question"
    answer: str | None = "answer"
    solution: str | None = "solution"
    response: str | None = "response"
    label: str | None = Field(
        default="label", description="whether the given response is right by process (true/false, 1/0)"
    )
    first_error_step: str | None = Field(
        default="first_error_step", description="1-based step of the response's first error; null: none"
    )
    error_kind: str | None = Field(default="error_kind", description="what kind of error it is, if known")


class ProblemsConfig(_Strict):
    path: str | None = Field(default=None, description="file, folder or Hub id; none: bundled")
    config_name: str | None = None
    split: str = "train"
    fields: FieldMap = Field(default_factory=FieldMap)
    max_chars: int = Field(
        default=100_000, ge=1, description="longer questions or given responses are rejected, not sent"
    )


class StudentsConfig(_Strict):
    kind: Literal["inject", "dataset", "llm"] = "inject"
    models: list[str] = Field(default_factory=list)
    samples: int = Field(default=2, ge=1, description="responses per problem (per model)")
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=1024, ge=1)
    prompt: str = "student"
    use_n: bool = Field(default=True, description="ask for all samples of a problem in one request (`n`)")
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    error_kinds: dict[ErrorKind, float] = Field(
        default_factory=lambda: dict.fromkeys(ERROR_KINDS, 1.0),
        description="inject students: which error kinds to make, with relative weights",
    )

    @field_validator("error_kinds")
    @classmethod
    def _weights(cls, kinds: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in kinds.values()) or not any(w > 0 for w in kinds.values()):
            raise ValueError("weights must be >= 0 with at least one > 0, e.g. {computation = 1}")
        return kinds


class TeacherConfig(_Strict):
    kind: Literal["builtin", "llm"] = "builtin"
    name: str | None = Field(default=None, description="label in records; default llm:<model> or builtin")
    model: str | None = None
    mode: Literal["auto", "json", "text"] = Field(
        default="auto", description="auto: the best structured output the endpoint accepts, else text"
    )
    temperature: float = Field(default=0.3, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_tokens: int = Field(default=3200, ge=1)
    style: Literal["full", "brief"] = Field(
        default="full", description="full: a step-by-step critique to train on; brief: short and cheap"
    )
    attempts: int = Field(default=3, ge=1, description="tries per critique, repairs included")
    prompt: str = "teacher"
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)


FORMATS = ("cft", "trl", "messages", "sft")


class ExportOptions(_Strict):
    """How a run store becomes a dataset: formats, split, and the quality controls."""

    enabled: bool = True
    formats: list[Literal["cft", "trl", "messages", "sft"]] = Field(default_factory=lambda: list(FORMATS))
    test_size: float = Field(default=0.0, ge=0, lt=1, description="share of problems in the test split")
    disagreements: Literal["keep", "drop", "split"] = Field(
        default="keep", description="critiques whose verdict contradicts the gold check"
    )
    balance: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="exact target share of responses known right (best label; the verdict where none)",
    )
    dedupe: bool = Field(default=True, description="drop exact duplicate (question, response) pairs")
    near_duplicate_questions: bool = Field(
        default=False, description="drop questions equal after normalizing case, spacing, punctuation"
    )
    min_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1, description="e.g. the training cutoff, 2048")
    tokenizer: str | None = Field(default=None, description="HF tokenizer for token counts")
    drop_truncated: bool = Field(default=True, description="drop empty or cut-off critiques")
    select: Literal["best", "majority", "all"] = Field(
        default="best",
        description="with several critiques of a response: the longest agreeing with the label "
        "(else the majority one), the majority verdict's, or every critique",
    )
    crosscheck: Literal["keep", "drop"] = Field(
        default="keep", description="LLM critiques the built-in critic's exact checks contradict"
    )
    license: str = "other"


class AuditConfig(_Strict):
    """The teacher gate of `generate`: audit a labelled sample first, refuse to run below `min_f1`."""

    min_f1: float | None = Field(default=None, ge=0, le=1, description="ProcessBench F1 a teacher needs")
    sample: int = Field(default=50, ge=1, description="labelled rows to audit")
    data: str | None = Field(default=None, description="labelled file; none: the bundled calibration set")
    fields: FieldMap = Field(default_factory=FieldMap)


class BatchOptions(_Strict):
    """How `endpoint.batch = true` endpoints use the Batch API (see batch.py)."""

    fallback: Literal["resubmit", "online"] = Field(
        default="resubmit", description="rows of expired or failed batches: next batch, or sent online"
    )
    max_requests: int = Field(default=50_000, ge=1, le=50_000, description="requests per batch file")
    max_bytes: int = Field(default=200_000_000, ge=1024, description="bytes per batch file")
    max_queued_tokens: int | None = Field(
        default=None, ge=1, description="estimated tokens queued at once (the org's enqueued limit)"
    )
    in_flight: int = Field(default=10_000, ge=1, description="requests waiting on batches at once")
    gather_seconds: float = Field(default=2.0, ge=0, description="a batch is sent after this long idle")
    poll_seconds: float = Field(default=15.0, gt=0, description="first poll interval (then backoff)")
    poll_max_seconds: float = Field(default=300.0, gt=0, description="longest poll interval")


class RunConfig(_Strict):
    problems: ProblemsConfig = Field(default_factory=ProblemsConfig)
    students: StudentsConfig = Field(default_factory=StudentsConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    teachers: list[TeacherConfig] = Field(
        default_factory=list, description="several teachers, each critiquing every response"
    )
    limit: int | None = Field(default=None, ge=1, description="process at most this many problems")
    shard: str | None = Field(default=None, description="I/N: this machine's slice of problems")
    retry_rejected: list[str] = Field(
        default_factory=list,
        description="on resume, redo units rejected for these reasons (globs; `generate --retry-rejected` "
        "adds RETRY_REASONS); input rejects are never retried",
    )
    export: ExportOptions = Field(default_factory=ExportOptions)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    batch: BatchOptions = Field(default_factory=BatchOptions)
    budget_usd: float | None = Field(
        default=None, gt=0, description="stop (resumably) before spent + reserved cost would pass this"
    )

    @field_validator("export", mode="before")
    @classmethod
    def _export_flag(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _distinct_teachers(self) -> RunConfig:
        names = [teacher_name(t) for t in self.teacher_configs()]
        if len(set(names)) < len(names):
            raise ValueError(f"teachers need distinct names (got {names}); set name = '...' on each")
        return self

    def teacher_configs(self) -> list[TeacherConfig]:
        """The teachers of the run: `teachers` when given, else the single `teacher`."""
        return self.teachers or [self.teacher]

    @field_validator("shard")
    @classmethod
    def _shard(cls, shard: str | None) -> str | None:
        if shard is not None:
            parse_shard(shard)
        return shard

    def fingerprint(self) -> str:
        """What must not change under a resumed run: everything that shapes requests or output."""
        ignored = {"limit", "export", "audit", "retry_rejected", "batch", "budget_usd"}
        relevant = self.model_dump(mode="json", exclude=ignored)
        relevant["problems"]["path"] = _local_identity(self.problems.path)
        for part in (relevant["students"], relevant["teacher"], *relevant["teachers"]):
            prompt = part["prompt"]
            part["prompt"] = _local_identity(prompt) if Path(prompt).suffix else prompt
            for key in _TRANSPORT_ONLY:
                part["endpoint"].pop(key)
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def public_dump(self) -> dict[str, Any]:
        """The config as JSON for run.json and the dataset card, which are shared: no URL secrets."""
        data = self.model_dump(mode="json")
        for part in (data["students"], data["teacher"], *data["teachers"]):
            part["endpoint"]["base_urls"] = [safe_url(url) for url in part["endpoint"]["base_urls"]]
        return data


def _local_identity(value: str | None) -> str | None:
    """An existing local path in absolute form, so `p.jsonl` and `/work/p.jsonl` are one source
    on resume; anything else (a Hub id, a missing file) as given."""
    if value is None:
        return None
    path = Path(value)
    return str(path.resolve()) if path.exists() else value


def teacher_name(config: TeacherConfig) -> str:
    """How records name a teacher: its own name, else llm:<model>, else builtin."""
    if config.name:
        return config.name
    return f"llm:{config.model}" if config.kind == "llm" else "builtin"


def parse_shard(shard: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise ValueError(f"shard {shard!r} must look like I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {shard!r}: need 0 <= I < N")
    return index, count


def load_config(path: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Read a TOML or YAML config file, apply dotted-key overrides, validate the whole."""
    data: dict[str, Any] = _read_file(path) if path else {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(_explain(exc, path)) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # editors on Windows add a BOM
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read config file ({exc})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to read; flatten the config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: the config must be a mapping of sections, got {type(data).__name__}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message in one line: what, and where in the file (not '<unicode string>')."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = f"{path}: " if path else ""
    return f"{where}invalid config: {explain(exc)}"
