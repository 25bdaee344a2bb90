"""Live progress: a rich bar with rate, ETA and cost on a terminal, a log line every few
seconds otherwise. Logs go through the same console (see cli.py), so they print above the bar
instead of being glued onto it."""

from __future__ import annotations

import logging
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .pricing import describe_cost
from .stats import Stats, format_rate

log = logging.getLogger("critique_synth.progress")

# The one stderr console: the CLI's log handler, its messages and the progress bar share it, so
# rich keeps log lines above the live bar. No markup: messages may contain [brackets].
STDERR = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)


def describe(stats: Stats) -> str:
    a = stats.agreement
    parts = [
        f"problems {stats.problems:,}",
        f"critiques {stats.critiques:,}",
        f"rejects {stats.rejected:,}",
        f"right/wrong {stats.verdicts['right']:,}/{stats.verdicts['wrong']:,}",
        f"agreement {format_rate(a.rate('process'))} by process, "
        f"{format_rate(a.rate('final_answer'))} by final answer",
    ]
    if a.step_rate is not None:
        parts.append(f"first step {format_rate(a.step_rate)}")
    if stats.requests:
        usage = stats.usage
        parts.append(f"tokens {usage.prompt_tokens:,} in / {usage.completion_tokens:,} out, {_spent(stats)}")
        parts.append(f"{stats.rate():.1f} req/s, {stats.retries:,} retries")
    if stats.resumed:
        parts.append(f"{stats.resumed:,} already done")
    return " · ".join(parts)


class ProgressView:
    """Call `update(stats)` as often as you like; it redraws at most a few times a second.

    `total` is the number of units when known (problems x samples x teachers), for the bar and
    the ETA; without it the bar just counts.
    """

    def __init__(self, console: Console | None = None, every: float = 10.0, total: int | None = None) -> None:
        self.console = console or STDERR
        self.live = self.console.is_terminal
        self.every = 0.25 if self.live else every
        self.total = total
        self._last = 0.0
        self._bar: Progress | None = None
        self._task = 0

    def __enter__(self) -> ProgressView:
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]critiques"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[line]}"),
                console=self.console,
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("run", total=self.total, line="starting…")
        return self

    def update(self, stats: Stats, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        if self._bar is not None:
            done = stats.critiques + stats.rejected
            self._bar.update(self._task, completed=done, line=_short(stats))
        else:
            log.info("%s", describe(stats))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)


def _spent(stats: Stats) -> str:
    """The cost so far, against the budget when the run has one."""
    spent = describe_cost(stats.usage)
    return f"{spent} of ${stats.budget_usd:,.2f} budget" if stats.budget_usd else spent


def _short(stats: Stats) -> str:
    """The bar's tail: rate, rejects, agreement and cost in one short line."""
    paid = stats.usage.cost or stats.usage.unpriced or stats.budget_usd
    cost = f" · {_spent(stats)}" if paid else ""
    return (
        f"{stats.rate():.1f} req/s · rejects {stats.rejected:,} · "
        f"agreement {format_rate(stats.agreement.rate())}{cost}"
    )
