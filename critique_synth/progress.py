"""Live progress: a rich panel on a terminal, a plain log line every few seconds otherwise."""

from __future__ import annotations

import logging
import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from .stats import Stats

log = logging.getLogger("critique_synth.progress")


def describe(stats: Stats) -> str:
    agreement = stats.agreement
    parts = [
        f"problems {stats.problems:,}",
        f"critiques {stats.critiques:,}",
        f"rejects {stats.rejected:,}",
        f"right/wrong {stats.verdicts['right']:,}/{stats.verdicts['wrong']:,}",
        f"gold agreement {agreement:.1%}" if agreement is not None else "gold agreement n/a",
    ]
    if stats.requests:
        usage = stats.usage
        parts.append(
            f"tokens {usage.prompt_tokens:,} in / {usage.completion_tokens:,} out, ${usage.cost:,.4f}"
        )
        parts.append(f"{stats.rate():.1f} req/s, {stats.retries:,} retries")
    if stats.resumed:
        parts.append(f"{stats.resumed:,} already done")
    return " · ".join(parts)


class ProgressView:
    """Call `update(stats)` as often as you like; it redraws at most a few times a second."""

    def __init__(self, console: Console | None = None, every: float = 10.0) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.every = 0.25 if self.live else every
        self._last = 0.0
        self._view: Live | None = None

    def __enter__(self) -> ProgressView:
        if self.live:
            self._view = Live(Text("starting…"), console=self.console, refresh_per_second=4)
            self._view.__enter__()
        return self

    def update(self, stats: Stats, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        if self._view is not None:
            self._view.update(Text(describe(stats)))
        else:
            log.info("%s", describe(stats))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._view is not None:
            self._view.__exit__(kind, exc, tb)
