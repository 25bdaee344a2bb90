"""Pacing: configured requests- and tokens-per-minute limits, and a server's own limit found
from its 429s.

Configured limits use a generic cell-rate algorithm with no burst allowance, so no 60-second
window holds more than the limit. Only the next slot is ever booked: waiters queue on a lock
and each books its slot when it reaches the front, so a pace that changes (a limit found, or
one that turns out to be noise) takes effect at once instead of after slots booked minutes
ahead.

A 429 says something about rate, not about our own estimate of it. Two cases look alike in a
single window and differ in how they respond to slowing down:

- a *limit*: many 429s close together. Pacing at what got through makes them stop, and the
  pace then grows slowly until 429s return (a small sawtooth just under the limit);
- *noise*: scattered 429s (a flaky proxy, a busy replica) while successes keep coming. Below a
  refused share of `_LIMIT_SHARE` nothing is paced at all, and if slowing down leaves the
  refused share where it was, the pace is dropped again: slowing would only cost throughput.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque

log = logging.getLogger(__name__)

_SLACK = 1.01  # aim 1% under configured limits: network jitter must not push a minute over
_WINDOW = 5.0  # seconds of outcomes that judge whether 429s are a limit
_LIMIT_SHARE = 0.15  # a refused share below this, in the window, is noise
_MIN_REFUSED = 5
_MIN_OUTCOMES = 20
_CUT_EVERY = 2.0
_JUDGE_AFTER = 2.5  # seconds after a cut at which its effect is judged
_GROWTH = 1.05  # per second, after a cut
_FLOOR = 0.5  # requests/s: the slowest pace a limit can set
_NOISE_HOLD = 30.0  # seconds without pacing once 429s proved not to follow our rate


class Pacer:
    """Call `await acquire(tokens)` before each request, then report its outcome."""

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.adaptive: float | None = None
        self._gate: asyncio.Lock | None = None
        self._last_start = -math.inf
        self._next_token = 0.0
        self._grown = 0.0
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._cut = -math.inf
        self._judged = True
        self._since_cut = [0, 0]  # outcomes, refused
        self._noise_until = -math.inf

    async def acquire(self, tokens: int) -> None:
        if not self.rpm and not self.tpm and self.adaptive is None:
            return
        if self._gate is None:
            self._gate = asyncio.Lock()
        async with self._gate:
            now = time.monotonic()
            start = self.book(tokens, now)
            if start > now:
                await asyncio.sleep(start - now)

    def book(self, tokens: int, now: float) -> float:
        """The first moment both clocks allow this request; both advance from that moment."""
        interval = self._interval(now)
        start = max(now, self._last_start + interval, self._next_token if self.tpm else now)
        self._last_start = start
        if self.tpm:
            self._next_token = start + tokens * 60.0 * _SLACK / self.tpm
        return start

    def _interval(self, now: float) -> float:
        configured = 60.0 * _SLACK / self.rpm if self.rpm else 0.0
        if self.adaptive is None:
            return configured
        self.adaptive *= _GROWTH ** max(0.0, now - self._grown)
        self._grown = now
        return max(configured, 1.0 / self.adaptive)

    def refund(self, tokens: int, now: float | None = None) -> None:
        """Give back booked tokens that the response did not use (estimates are pessimistic)."""
        if self.tpm and tokens > 0:
            now = time.monotonic() if now is None else now
            self._next_token = max(now, self._next_token - tokens * 60.0 / self.tpm)

    def succeeded(self, now: float | None = None, sent: float | None = None) -> None:
        """A request sent at `sent` (default: now) got through."""
        now = time.monotonic() if now is None else now
        self._record(now, True, now if sent is None else sent)

    def rate_limited(self, now: float | None = None, sent: float | None = None) -> None:
        """A 429: pace at what got through, if the window's 429s look like a limit."""
        now = time.monotonic() if now is None else now
        self._record(now, False, now if sent is None else sent)
        if now - self._cut < _CUT_EVERY or now < self._noise_until:
            return
        refused = sum(1 for _, ok in self._outcomes if not ok)
        share = refused / len(self._outcomes)
        if refused < _MIN_REFUSED or len(self._outcomes) < _MIN_OUTCOMES or share < _LIMIT_SHARE:
            return
        successes = len(self._outcomes) - refused
        span = max(1.0, now - self._outcomes[0][0])
        self.adaptive = max(_FLOOR, 0.95 * successes / span)
        self._cut, self._grown, self._judged = now, now, False
        self._since_cut = [0, 0]
        log.info("server rate limit (%.0f%% refused): pacing at %.1f requests/s", 100 * share, self.adaptive)

    def _record(self, now: float, ok: bool, sent: float) -> None:
        self._outcomes.append((now, ok))
        while now - self._outcomes[0][0] > _WINDOW:
            self._outcomes.popleft()
        if not self._judged and sent > self._cut:  # only requests sent at the slower pace count
            self._since_cut[0] += 1
            self._since_cut[1] += not ok
            if now - self._cut >= _JUDGE_AFTER:
                self._judge_cut(now)

    def _judge_cut(self, now: float) -> None:
        """Right after a cut, requests go out at no more than what got through: under a real
        limit almost none is refused. If a fair share still is, the 429s do not follow our
        rate (noise), and pacing would only cost throughput: it goes."""
        self._judged = True
        total, refused = self._since_cut
        share = refused / total if total else 0.0
        if share >= 0.05:
            self.adaptive = None
            self._noise_until = now + _NOISE_HOLD
            log.info("429s go on at the same share after slowing down: not a rate limit, pacing off")
