"""The library entry points: `generate` (blocking) and `agenerate` (an async iterator)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audit import check_gate
from .config import RunConfig
from .export import ExportResult, export
from .pipeline import iter_run
from .progress import ProgressView
from .records import CritiqueRecord, Rejection
from .stats import Stats


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
    stats_seen: list[Stats] = []
    errors_before = [0]

    async def main() -> None:
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

    asyncio.run(main())
    stats = stats_seen[0] if stats_seen else Stats()
    dataset = export([out], out / "dataset", cfg.export) if cfg.export.enabled else None
    return RunResult(out, stats, dataset, stats.rejects["internal_error"] - errors_before[0])


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, stats: Stats, force: bool = False) -> None:
        return None
