"""Adaptive concurrency: how many requests to keep in flight, found from the replies.

The configured concurrency is a ceiling. A server that serves k requests at a time queues the
rest, so sending more than it serves buys no throughput, only latency, and past the client's
timeout it buys retries of requests the server is still working on. The limit is found the way
TCP's AIMD and Netflix's concurrency-limits find theirs, from windows of completed requests:

- latency near the lowest window mean seen (the no-load latency): grow, doubling per window
  until the first sign of queueing (slow start), then by an eighth;
- latency more than twice that with no throughput gain: shrink towards where it was not;
- a timeout: halve, once per round of requests in flight.

It starts at a quarter of the ceiling, so the first requests cannot bury a one-slot server,
and a fast server is at the ceiling after a round trip or two. Windows are short (a quarter
of the limit, at least 4 replies) so a ramp takes few round trips. `acquire` costs one
comparison when a slot is free: this is on every request's path.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque

log = logging.getLogger(__name__)

_FAST = 1.5  # window mean / no-load latency below which the server is not queueing
_SLOW = 2.0  # above this, with no throughput gain, fewer requests in flight
_GAIN = 1.1  # throughput growth that justifies the latency it costs
_DRIFT = 1.01  # the no-load estimate forgets old lows by 1% a window


class ConcurrencyLimit:
    """`await acquire()` before sending, `release(latency)` after; fixed when not `adaptive`."""

    def __init__(self, ceiling: int, *, adaptive: bool = True) -> None:
        self.ceiling = ceiling
        self.adaptive = adaptive
        self.limit = float(max(1, ceiling // 4) if adaptive else ceiling)
        self.inflight = 0
        self.peak = 0
        self.timeouts = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._slow_start = True
        self._base = math.inf
        self._tput = 0.0
        self._cut_at = -math.inf
        self._reset(time.monotonic())

    async def acquire(self) -> None:
        if self.inflight < self.limit and not self._waiters:
            self.inflight += 1
            self.peak = max(self.peak, self.inflight)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # granted, then cancelled: hand it on
                self.inflight -= 1
                self._wake()
            raise

    def release(self, latency: float | None = None, *, timed_out: float | None = None) -> None:
        """A request is over: `latency` of a served reply (None: an error that says nothing);
        `timed_out`: when a request that timed out was sent."""
        self.inflight -= 1
        self.timeouts += timed_out is not None
        if self.adaptive:
            if timed_out is not None:
                self._timed_out(timed_out)
            elif latency is not None:
                self._served(latency)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.inflight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.inflight += 1
                self.peak = max(self.peak, self.inflight)
                waiter.set_result(None)

    def _reset(self, now: float) -> None:
        self._start, self._n, self._sum = now, 0, 0.0
        self._low, self._high, self._busy = math.inf, 0.0, 0

    def _timed_out(self, sent: float) -> None:
        """Halve, once for the requests in flight at the last cut: only a request sent after
        it says the halved limit is still too high."""
        if sent >= self._cut_at:
            self._set(self.limit / 2, "a request timed out")
            self._slow_start = False
            self._cut_at = time.monotonic()
            self._reset(self._cut_at)

    def _served(self, latency: float) -> None:
        self._n += 1
        self._sum += latency
        self._low, self._high = min(self._low, latency), max(self._high, latency)
        self._busy = max(self._busy, self.inflight + 1)
        if self._n >= max(4, self.limit / 4):
            self._judge(time.monotonic())

    def _judge(self, now: float) -> None:
        mean = self._sum / self._n
        tput = self._n / max(now - self._start, 1e-6)
        self._base = min(self._base * _DRIFT, mean)
        ratio = mean / self._base
        queueing = self._high > _SLOW * self._low
        used = self._busy >= self.limit / 2
        if ratio <= _FAST and not queueing:
            if used and self.limit < self.ceiling:
                grown = self.limit * 2 if self._slow_start else self.limit + max(1.0, self.limit / 8)
                self._set(grown, None)
        else:
            self._slow_start = False
            if ratio > _SLOW and tput <= self._tput * _GAIN:
                self._set(self.limit * max(0.5, _FAST / ratio), f"latency {ratio:.1f}x the no-load latency")
        self._tput = tput
        self._reset(now)

    def _set(self, limit: float, why: str | None) -> None:
        limit = min(float(self.ceiling), max(1.0, limit))
        if why is not None and int(limit) != int(self.limit):
            log.debug("concurrency %d -> %d (%s)", self.limit, limit, why)
        self.limit = limit
