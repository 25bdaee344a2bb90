"""Pacing: configured limits hold, a server's limit is found, and scattered 429s are noise.

The simulations drive `book`/`succeeded`/`rate_limited` on a virtual clock, so two minutes
of traffic take milliseconds and the outcome does not depend on the machine's load.
"""

import asyncio
import itertools
import random
import time
from collections.abc import Callable

import pytest

from critique_synth.pacing import Pacer


def test_no_minute_exceeds_the_limits_when_both_clocks_bind() -> None:
    """Token bookings (pessimistic) delay requests, refunds then free the token clock: the
    request clock must still space them, so no 60-second window holds more than rpm."""
    pacer = Pacer(rpm=600, tpm=1_000_000)
    starts = []
    for i in range(1500):
        now = i * 0.05  # callers arrive twice as fast as the limit allows
        start = pacer.book(3600, now)
        starts.append(start)
        pacer.refund(3100, now=start + 0.05)  # the response used 500 of the 3,600 booked
    assert all(b - a >= 0.1 for a, b in itertools.pairwise(starts))
    for i, t in enumerate(starts):
        in_window = sum(1 for s in starts[i:] if s - t < 60)
        assert in_window <= 600
    assert (len(starts) - 1) / (starts[-1] - starts[0]) * 60 >= 0.95 * 600


def _simulate(pacer: Pacer, server: Callable[[float], bool], seconds: float = 120, gap: float = 0.02):
    """A client that could send 1/gap requests a second, against `server(t) -> accepted`."""
    log, ready = [], 0.0
    while ready < seconds:
        start = pacer.book(0, ready)
        accepted = server(start)
        (pacer.succeeded if accepted else pacer.rate_limited)(now=start)
        log.append((start, accepted))
        ready = start + gap
    return log


def _token_bucket(rate: float) -> Callable[[float], bool]:
    state = {"bucket": rate, "t": 0.0}

    def accept(now: float) -> bool:
        state["bucket"] = min(rate, state["bucket"] + (now - state["t"]) * rate)
        state["t"] = now
        if state["bucket"] >= 1:
            state["bucket"] -= 1
            return True
        return False

    return accept


def test_pacing_settles_just_under_a_servers_hidden_limit() -> None:
    """A 10 requests/s token bucket; the client could send 50/s."""
    log = _simulate(Pacer(rpm=None, tpm=None), _token_bucket(10.0))
    last = [ok for t, ok in log if t >= 60]
    assert sum(last) / 60 >= 9.5  # within 5% of the limit gets through
    assert last.count(False) / len(last) < 0.2  # and most requests are not refused


def test_scattered_429s_do_not_slow_the_run() -> None:
    """10% of requests refused at random, whatever the rate: noise, so no pacing at all."""
    rng = random.Random(1)
    pacer = Pacer(rpm=None, tpm=None)
    log = _simulate(pacer, lambda now: rng.random() >= 0.10, seconds=60)
    assert len(log) / 60 >= 0.95 * 50
    assert pacer.adaptive is None


def test_a_429_storm_that_does_not_follow_the_rate_is_not_paced_to_a_crawl() -> None:
    """90% refused at random: slowing down does not help, so after one window pacing is off."""
    rng = random.Random(2)
    pacer = Pacer(rpm=None, tpm=None)
    log = _simulate(pacer, lambda now: rng.random() >= 0.90, seconds=60)
    late = [t for t, _ in log if t >= 30]
    assert len(late) / 30 >= 0.5 * 50


def test_only_the_next_slot_is_booked_so_a_dropped_pace_frees_waiters_at_once() -> None:
    """20 waiters behind a 1 request/s pace; when the pace goes, they do not wait 20 s."""
    pacer = Pacer(rpm=None, tpm=None)
    pacer.adaptive = 1.0

    async def main() -> float:
        start = time.monotonic()
        waiters = [asyncio.create_task(pacer.acquire(0)) for _ in range(20)]
        await asyncio.sleep(0.2)
        pacer.adaptive = None
        await asyncio.gather(*waiters)
        return time.monotonic() - start

    assert asyncio.run(main()) < 3.0


def test_configured_rate_spaces_requests_evenly() -> None:
    """Six callers at once under 6,000 rpm get slots 10.1 ms apart (1% under the limit), read on
    a virtual clock: wall-clock gaps on a shared machine say more about its load than the pacer."""
    pacer = Pacer(rpm=6000, tpm=None)
    starts = [pacer.book(100, now=0.0) for _ in range(6)]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert starts[0] == 0.0 and all(g == pytest.approx(0.0101) for g in gaps)

    async def main() -> float:  # and acquire() waits for them: load can only make this longer
        waiting = Pacer(rpm=6000, tpm=None)
        first = time.monotonic()
        for _ in range(6):
            await waiting.acquire(100)
        return time.monotonic() - first

    assert asyncio.run(main()) >= 0.05


def test_429s_of_requests_sent_before_a_cut_do_not_undo_it() -> None:
    """A burst refused at once: the replies to requests already sent keep coming after the cut,
    but they say nothing about the slower pace, so they must not count as noise."""

    def run(late_sent: float) -> Pacer:
        pacer = Pacer(rpm=None, tpm=None)
        for _ in range(20):
            pacer.rate_limited(now=0.0, sent=0.0)  # a limit: the pace is cut
        assert pacer.adaptive is not None
        for _ in range(40):
            pacer.rate_limited(now=0.01, sent=late_sent)
        pacer.succeeded(now=3.0, sent=2.9)  # the first request at the slower pace gets through
        return pacer

    assert run(late_sent=-0.01).adaptive is not None  # sent before the cut: the pace holds
    assert run(late_sent=0.01).adaptive is None  # sent after it and still refused: noise
