"""The run directory: append-only JSONL files that make a run resumable and auditable.

`critiques.jsonl` is the source of truth; `rejected.jsonl` holds every failure with its
reason; `responses.jsonl` caches sampled student responses so a resumed run critiques the
same response instead of sampling a new one; `run.json` is a summary rewritten atomically.
A line is done only once its newline is on disk: a line cut short by a crash is dropped on
the next open and its work redone. One process writes a run at a time: the store holds the
run's lock (`lock.py`) from `open` to `close`.

Every count in run.json except `requests` and `retries` is recounted from the records on
each open, so it is exact after any crash. The requests sent are known only to the process
that sent them: run.json carries them forward and is saved every `pipeline._RUN_JSON_EVERY`
seconds while records arrive, and once more when a run stops (finished, failed or Ctrl-C).
After a SIGKILL the requests sent since the last save are lost, so `counts.requests` is then
a lower bound (off by at most what that interval sent), and `requests_complete` says false
from then on for that run directory.

A failed write (disk full, file too large, permission) is one UserError naming the file;
what was stored before it stays intact, and a half-written last line is dropped on resume.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from fnmatch import fnmatchcase
from pathlib import Path
from typing import IO, Any

from .consensus import group, pairwise
from .errors import UserError
from .fingerprint import key_int
from .lock import RunLock
from .records import CritiqueRecord, Rejection, Response
from .stats import Stats
from .version import __version__

log = logging.getLogger(__name__)

CRITIQUES = "critiques.jsonl"
REJECTED = "rejected.jsonl"
RESPONSES = "responses.jsonl"
RUN = "run.json"


def repair_tail(path: Path) -> int:
    """Cut a last line that has no newline (a write interrupted by a crash); bytes dropped."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as f:
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return 0
        block = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            chunk = f.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
        f.truncate(keep)
    return size - keep


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Complete lines of a JSONL file with their 1-based numbers."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if line.endswith(b"\n") and line.strip():
                yield number, line


_WARN_LINES = 20  # unreadable lines named one by one per file; the rest only counted


def scan(
    out: Path, names: tuple[str, ...] = (CRITIQUES, REJECTED), unreadable: Counter[str] | None = None
) -> Iterator[CritiqueRecord | Rejection]:
    """Every complete record and rejection in a run directory, read-only (a run may be live).
    A line that does not parse is skipped (generate redoes its unit), named in a warning for
    the first few of a file, and counted in `unreadable` by file."""
    unreadable = Counter() if unreadable is None else unreadable
    for name in names:
        model = CritiqueRecord if name == CRITIQUES else Rejection
        path = out / name
        for number, line in iter_lines(path):
            try:
                yield model.model_validate_json(line)
            except ValueError:
                unreadable[str(path)] += 1
                if unreadable[str(path)] <= _WARN_LINES:
                    log.warning("%s:%d: unreadable line skipped (its unit is redone)", path, number)


def _count(stats: Stats, item: CritiqueRecord | Rejection) -> None:
    if isinstance(item, CritiqueRecord):
        stats.add_record(item)
    else:
        stats.add_rejection(item)


def outcomes(out: Path) -> Iterator[CritiqueRecord | Rejection]:
    """Each unit's newest outcome: its critique where it has one (a unit with a critique is
    never redone), else its last rejection. A retried unit (`retry_rejected`) may have several
    rejection lines; the older ones stay in the file for the record."""
    seen: set[str] = set()
    last: dict[str, Rejection] = {}
    for item in scan(out):
        if isinstance(item, CritiqueRecord):
            if item.key not in seen:
                seen.add(item.key)
                yield item
        elif item.key not in seen:
            last[item.key] = item
    yield from last.values()


def config_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The settings that differ between two public config dumps, as `key: old -> new`."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
        if isinstance(a, dict) and isinstance(b, dict):
            changes += config_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}: {json.dumps(a)} -> {json.dumps(b)}")
    return changes


def retry_filter(reasons: Sequence[str]) -> Callable[[Rejection], bool]:
    """Which rejections a resumed run does again: reasons matching one of `reasons` (globs like
    `http_*`); never `input` rejects, which are about the data, not the endpoint."""
    patterns = tuple(reasons)

    def retry(rejection: Rejection) -> bool:
        return rejection.stage != "input" and any(fnmatchcase(rejection.reason, p) for p in patterns)

    return retry


def read_stats(out: Path) -> tuple[Stats, dict[str, Any]]:
    """Counts of a run directory, finished or in progress, and its run.json (or {})."""
    if not (out / CRITIQUES).exists():
        raise UserError(f"{out}: no {CRITIQUES}; is this a critique-synth run directory?")
    stats = Stats()
    for item in outcomes(out):
        _count(stats, item)
    if len(stats.teachers) > 1:
        stats.pairwise = pairwise(group(r for r in scan(out) if isinstance(r, CritiqueRecord)))
    summary = RunStore(out).read_run() or {}
    counts = summary.get("counts", {})
    stats.requests, stats.retries = counts.get("requests", 0), counts.get("retries", 0)
    return stats, summary


def read_run(out: Path) -> dict[str, Any] | None:
    """A run directory's run.json (None where there is none yet); unreadable is a UserError,
    and each caller says what that means for it."""
    path = out / RUN
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: unreadable run summary ({exc}); move it away to start over") from None
    if not isinstance(summary, dict):
        raise UserError(f"{path}: not a run summary (a JSON object); move it away to start over")
    return summary


class RunStore:
    """Open a run directory for appending; knows which units of work are already done."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._done: set[int] = set()
        self.cached_responses: dict[str, Response] = {}
        self._files: dict[str, IO[bytes]] = {}
        self._dirty = False
        self._lock = RunLock(out, "generate")
        self._failed = False
        self._requests_complete = True
        self._retry: Callable[[Rejection], bool] | None = None

    def open(
        self,
        config_dump: dict[str, Any],
        fingerprint: str,
        *,
        allow_change: bool,
        retry: Callable[[Rejection], bool] | None = None,
    ) -> Stats:
        """Lock the directory, check its config, repair tails, load what is done; rejections
        that `retry` picks are not done, so this run does them again."""
        self._retry = retry
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{self.out}: cannot create the run directory ({exc.strerror})") from None
        self._lock.acquire()
        try:
            return self._open_locked(config_dump, fingerprint, allow_change)
        except BaseException:
            self._lock.release()
            raise

    def _open_locked(self, config_dump: dict[str, Any], fingerprint: str, allow_change: bool) -> Stats:
        previous = self.read_run()
        if previous and previous.get("config_fingerprint") != fingerprint and not allow_change:
            changed = config_changes(previous.get("config") or {}, config_dump)
            what = "; ".join(changed[:5]) + ("; ..." if len(changed) > 5 else "")
            if not changed:  # a change the public dump does not show (a prompt file, say)
                what = f"fingerprint {previous.get('config_fingerprint')} vs {fingerprint} now"
            raise UserError(
                f"{self.out} was made with a different config ({what}); rerun with the same config, "
                "choose another --out, or pass --allow-config-change to continue under the new config"
            )
        for name in (CRITIQUES, REJECTED, RESPONSES):
            with self._writing(self.out / name):
                dropped = repair_tail(self.out / name)
            if dropped:
                log.warning(
                    "%s: dropped a half-written last line (%d bytes); it will be redone",
                    self.out / name,
                    dropped,
                )
        stats = Stats()
        if previous:
            stats.requests = stats.requests_before = previous.get("counts", {}).get("requests", 0)
            stats.retries = previous.get("counts", {}).get("retries", 0)
        self._load(stats)
        self._requests_complete = (
            bool(previous.get("requests_complete", previous.get("finished")))
            if previous
            else not (stats.critiques or stats.rejected)
        )
        self._config = config_dump
        self._fingerprint = fingerprint
        self._started = previous.get("started_at", time.time()) if previous else time.time()
        for name in (CRITIQUES, REJECTED):
            with self._writing(self.out / name):
                (self.out / name).touch()
        return stats

    def _load(self, stats: Stats) -> None:
        for item in outcomes(self.out):
            if isinstance(item, Rejection) and self._retry is not None and self._retry(item):
                continue
            self._mark(item.key)
            _count(stats, item)
        for _, line in iter_lines(self.out / RESPONSES):
            try:
                response = Response.model_validate_json(line)
            except ValueError:
                continue
            self.cached_responses[response.key] = response

    def forget_done_responses(self, finished: Callable[[str], bool]) -> None:
        """Keep cached responses only where some teacher still has to critique them, so memory
        stays small; `finished(response_key)` says whether every teacher is done with one."""
        self.cached_responses = {k: r for k, r in self.cached_responses.items() if not finished(k)}

    def is_done(self, key: str) -> bool:
        return key_int(key) in self._done

    def _mark(self, key: str) -> None:
        self._done.add(key_int(key))

    def write_record(self, record: CritiqueRecord) -> None:
        self._append(CRITIQUES, record.model_dump_json())
        self._mark(record.key)

    def write_rejection(self, rejection: Rejection) -> None:
        self._append(REJECTED, rejection.model_dump_json())
        self._mark(rejection.key)

    def write_response(self, response: Response) -> None:
        self._append(RESPONSES, response.model_dump_json())

    def _append(self, name: str, line: str) -> None:
        f = self._files.get(name)
        if f is None:
            with self._writing(self.out / name, quiet=False):
                f = self._files[name] = (self.out / name).open("ab")
        try:
            f.write(line.encode() + b"\n")
        except OSError:
            with self._writing(self.out / name, quiet=False):
                raise
        self._dirty = True

    def flush(self) -> None:
        """Hand buffered lines to the OS: they then survive a killed process."""
        if self._dirty:
            for name, f in self._files.items():
                with self._writing(self.out / name):
                    f.flush()
            self._dirty = False

    @contextmanager
    def _writing(self, path: Path, *, quiet: bool = True) -> Iterator[None]:
        """Turn a failed write into one UserError naming the file. After a first failure the
        store is on its way out: later flushes and saves (`quiet`) are tried, not raised, so
        the user sees the first cause."""
        try:
            yield
        except OSError as exc:
            if self._failed and quiet:
                log.debug("%s: %s (after an earlier write failure)", path, exc.strerror)
                return
            self._failed = True
            raise UserError(
                f"{path}: cannot write ({exc.strerror or exc}); everything stored before is kept: free "
                "disk space or make the run directory writable, then rerun the same command to resume"
            ) from None

    def read_run(self) -> dict[str, Any] | None:
        return read_run(self.out)

    def write_run(self, stats: Stats, extra: dict[str, Any], *, final: bool = False) -> None:
        """Rewrite run.json atomically (write a temp file, then rename). `final`: the last save of
        this process, so its request count is whole."""
        summary = {
            "config_fingerprint": self._fingerprint,
            "config": self._config,
            "versions": {"critique_synth": __version__, "python": platform.python_version()},
            "started_at": self._started,
            "updated_at": time.time(),
            **extra,
            "requests_complete": final and self._requests_complete,
            "counts": stats.counts(),
        }
        tmp = self.out / f".{RUN}.tmp"
        with self._writing(self.out / RUN):
            try:
                tmp.write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
                os.replace(tmp, self.out / RUN)
            finally:
                tmp.unlink(missing_ok=True)

    def close(self) -> None:
        """Flush and close the files, then let the next writer in."""
        try:
            self.flush()
        finally:
            for f in self._files.values():
                with suppress(OSError):  # flushed above, or that failure is already on its way
                    f.close()
            self._files.clear()
            self._lock.release()
