"""Pattern benchmarks: gochan.Limiter against the token bucket one would write by hand.

The peer of `Limiter.allow()` is the obvious lock-protected pure-Python token bucket: a class
with a `threading.Lock`, a token count and the time of the last refill, whose `allow()` refills
from `time.monotonic()` and takes a token if there is one. Both are built with a rate so high
(1e9 per second) and a burst so large that every call is allowed, so both sides always do the
whole refill-and-take; the target is `allow()` at least 3x faster.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from bench_channels import gochan
from harness import AtLeastFaster, Size, TimedPair, expect_count, loop_timer

RATE = 1e9
BURST = 1_000_000


class LockedTokenBucket:
    """A token bucket written the obvious way: the peer of gochan.Limiter."""

    def __init__(self, rate: float, burst: int) -> None:
        self._lock = threading.Lock()
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


def _allow_timer(allow: Callable[[], bool]) -> Callable[[int], float]:
    def variant(n: int) -> float:
        seconds = loop_timer("allow()", allow=allow)(n)
        # Every call must have been allowed, or the two sides did different work.
        expect_count(sum(allow() for _ in range(1000)), 1000)
        return seconds

    return variant


def allow_gochan(n: int) -> float:
    return _allow_timer(gochan.Limiter(RATE, BURST).allow)(n)


def allow_locked_bucket(n: int) -> float:
    return _allow_timer(LockedTokenBucket(RATE, BURST).allow)(n)


BENCHMARKS = [
    TimedPair(
        "limiter_allow",
        "`Limiter(1e9, 1_000_000).allow()`",
        "token bucket class with a `Lock`",
        gochan=allow_gochan,
        against=allow_locked_bucket,
        size=Size(full=300_000, quick=100_000),
        target=AtLeastFaster(3),
        unit="call",
        requires=("Limiter",),
    ),
]
