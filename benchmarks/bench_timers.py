"""Timer benchmarks: gochan's runtime timers against the standard library's, side by side.

Rows of DESIGN.md's "Performance targets" table for timers:

- `after_create`: making and dropping `gochan.after(1.0)` (a heap insert and removal in the one
  timer thread) against `threading.Timer(1.0, f)` created, started and cancelled (a thread each).
- `timer_overshoot` / `sleep_overshoot`: how late a wait of d = 1, 2 and 5 ms ends, as the median
  over many waits, for `gochan.after(d).recv()` and `gochan.sleep(d)` against
  `threading.Event().wait(d)`. A variant returns median overshoot x n so that the harness's
  per-operation figure is the median overshoot itself.
"""

from __future__ import annotations

import statistics
import threading
import time
from itertools import cycle, repeat

from bench_channels import gochan
from harness import AtLeastFaster, Size, TimedPair, loop_timer

DELAYS = (0.001, 0.002, 0.005)
"""The delays the overshoot rows cycle through (seconds)."""


# ---------------------------------------------------------------------------------------------
# after() creation against threading.Timer


def after_create_gochan(n: int) -> float:
    return loop_timer("after(1.0)", after=gochan.after)(n)


def _nothing() -> None:
    pass


def after_create_threading(n: int) -> float:
    timer = threading.Timer
    start = time.perf_counter()
    for _ in repeat(None, n):
        t = timer(1.0, _nothing)
        t.start()
        t.cancel()
    elapsed = time.perf_counter() - start
    # Let the cancelled threads end outside the clock, so that they do not pile up.
    for t in threading.enumerate():
        if isinstance(t, threading.Timer):
            t.join()
    return elapsed


# ---------------------------------------------------------------------------------------------
# overshoot of a short wait


def _median_overshoot(wait, n: int) -> float:
    """Run n waits over DELAYS; return the median of (elapsed - delay) times n."""
    late = []
    clock = time.perf_counter
    for d in map(DELAYS.__getitem__, _indices(n)):
        t0 = clock()
        wait(d)
        late.append(clock() - t0 - d)
    return statistics.median(late) * n


def _indices(n: int):
    it = cycle(range(len(DELAYS)))
    return (next(it) for _ in range(n))


def overshoot_after(n: int) -> float:
    after = gochan.after
    return _median_overshoot(lambda d: after(d).recv(), n)


def overshoot_sleep(n: int) -> float:
    return _median_overshoot(gochan.sleep, n)


def overshoot_event(n: int) -> float:
    event = threading.Event()
    return _median_overshoot(event.wait, n)


BENCHMARKS = [
    TimedPair(
        "after_create",
        "`after(1.0)` created and dropped",
        "`threading.Timer(1.0, f)` start+cancel",
        gochan=after_create_gochan,
        against=after_create_threading,
        size=Size(full=3_000, quick=1_000),
        target=AtLeastFaster(100),
        unit="timer",
        requires=("after",),
    ),
    TimedPair(
        "timer_overshoot",
        "median lateness of `after(d).recv()`, d = 1, 2, 5 ms",
        "`threading.Event().wait(d)`",
        gochan=overshoot_after,
        against=overshoot_event,
        size=Size(full=300, quick=90),
        target=AtLeastFaster(1),
        unit="wait",
        requires=("after",),
    ),
    TimedPair(
        "sleep_overshoot",
        "median lateness of `sleep(d)`, d = 1, 2, 5 ms",
        "`threading.Event().wait(d)`",
        gochan=overshoot_sleep,
        against=overshoot_event,
        size=Size(full=300, quick=90),
        target=AtLeastFaster(1),
        unit="wait",
        requires=("sleep",),
    ),
]
