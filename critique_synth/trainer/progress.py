"""Progress of a long count (answers generated): a rich bar on a terminal, log lines otherwise.

The bar goes on the console the logs go to, so log lines print above it instead of through
it; in a pipe or a CI log a bar is noise, so a plain line every `every` seconds says the
same, and the last one always prints.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

log = logging.getLogger(__name__)


class CountProgress:
    """`advance(n)` as items finish; use as a context manager around the work."""

    def __init__(self, what: str, total: int, console: Console | None = None, every: float = 10.0) -> None:
        self.what, self.total, self.every = what, total, every
        self.console = console or Console(stderr=True)
        self.done = 0
        self._started = self._last = time.monotonic()
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> CountProgress:
        if self.console.is_terminal:
            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.what, total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done)
            return
        now = time.monotonic()
        if self.done >= self.total or now - self._last >= self.every:
            self._last = now
            log.info(
                "%s: %d/%d (%.0f%%), %.0fs",
                self.what,
                self.done,
                self.total,
                100 * self.done / max(self.total, 1),
                now - self._started,
            )

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)
