"""The library entry points: `generate` (blocking) and `agenerate` (an async iterator)."""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audit import check_gate
from .config import RunConfig
from .errors import UserError
from .export import ExportResult, check_out, export
from .pipeline import iter_run
from .progress import ProgressView
from .records import CritiqueRecord, Rejection
from .stats import Stats
from .store import RUN


@dataclass(frozen=True)
class RunResult:
    out: Path
    stats: Stats
    dataset: ExportResult | None
    internal_errors: int = 0


def _config(config: RunConfig | Mapping[str, Any] | None) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    return RunConfig.model_validate(dict(config or {}))


def agenerate(
    config: RunConfig | Mapping[str, Any] | None = None,
    *,
    out: str | Path,
    allow_config_change: bool = False,
) -> AsyncIterator[CritiqueRecord | Rejection]:
    """Stream records as they are stored in `out` (resuming whatever is already there), after the
    teacher audit gate where `audit.min_f1` is set."""
    return _gated(_config(config), Path(out), allow_config_change)


async def _gated(
    cfg: RunConfig, out: Path, allow_config_change: bool
) -> AsyncIterator[CritiqueRecord | Rejection]:
    with no_empty_run_left(out):
        await check_gate(cfg, out)
        async for item in iter_run(cfg, out, allow_config_change=allow_config_change):
            yield item


def generate(
    config: RunConfig | Mapping[str, Any] | None = None,
    *,
    out: str | Path,
    allow_config_change: bool = False,
    progress: bool = False,
) -> RunResult:
    """Run (or resume) a synthesis to the end, then export `out/dataset` unless disabled."""
    cfg = _config(config)
    out = Path(out)
    if cfg.export.enabled:
        check_out(out / "dataset")  # a folder export may not replace is found now, not after the run
    stats_seen: list[Stats] = []
    errors_before = [0]

    terminated: list[bool] = []

    async def main() -> None:
        _cancel_on_sigterm(terminated)
        await check_gate(cfg, out)
        with ProgressView() if progress else _Quiet() as view:

            def on_stats(stats: Stats) -> None:
                if not stats_seen:
                    stats_seen.append(stats)
                    errors_before[0] = stats.rejects["internal_error"]
                view.update(stats)

            async for _ in iter_run(cfg, out, allow_config_change=allow_config_change, on_stats=on_stats):
                pass
            if stats_seen:
                view.update(stats_seen[0], force=True)

    try:
        with no_empty_run_left(out):
            asyncio.run(main())
    except asyncio.CancelledError:
        if terminated:
            raise Terminated from None
        raise
    stats = stats_seen[0] if stats_seen else Stats()
    dataset = export([out], out / "dataset", cfg.export) if cfg.export.enabled else None
    return RunResult(out, stats, dataset, stats.rejects["internal_error"] - errors_before[0])


@contextmanager
def no_empty_run_left(out: Path) -> Iterator[None]:
    """A start that fails with a user error (a bad source, an endpoint that does not answer)
    removes the run directory it created, so the fixed command starts clean; a directory
    that existed before, or that holds any record, is left as it is."""
    created = not out.exists()
    try:
        yield
    except UserError:
        if created and out.is_dir() and all(_holds_nothing(p) for p in out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _holds_nothing(path: Path) -> bool:
    """An empty file, or the summary of a run that stored nothing."""
    return path.is_file() and (path.name == RUN or not path.stat().st_size)


class Terminated(KeyboardInterrupt):
    """SIGTERM (sent by `timeout`, Slurm, Kubernetes, docker stop) stopped the run: handled like
    Ctrl-C, so what is finished is stored, run.json is written and the run resumes."""


def _cancel_on_sigterm(terminated: list[bool]) -> None:
    """Turn SIGTERM into a cancel of the running task; a no-op off the main thread."""
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        terminated.append(True)
        task.cancel()

    with suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, stats: Stats, force: bool = False) -> None:
        return None
