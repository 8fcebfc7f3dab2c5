"""Context benchmarks: gochan's cancellation against the standard library's, side by side.

Row of DESIGN.md's "Performance targets" table for contexts:

- `cancel_wake`: one `cancel()` waking 200 threads blocked in `ch.recv(ctx=ctx)`, against one
  `threading.Event.set()` waking 200 threads blocked in `Event.wait()`. A round parks all 200
  threads (then lets them settle, so that none is still spinning), fires, and counts the time
  from just before `cancel()`/`set()` until the last thread has woken (each thread notes
  `perf_counter()` as soon as its call returns; the round's figure is the latest of those minus
  the start). A variant runs n rounds on the same 200 threads and returns the sum, so the
  per-operation figure is the time of one wake of all 200.
"""

from __future__ import annotations

import threading
import time

from bench_channels import gochan
from harness import AtLeastFaster, BenchmarkError, Size, TimedPair

WAITERS = 200
"""Threads woken by each cancel()/set()."""

SETTLE = 0.01
"""Pause after every thread is seen waiting, so that all of them are asleep, not spinning."""

PARK_LIMIT = 30.0
"""A round whose threads are not all waiting after this long is reported as hung."""


def _wake_rounds(n: int, new_round, block, waiting, fire) -> float:
    """Run n rounds on WAITERS threads; return the summed time from fire() to the last wake.

    Each round: token = new_round(); every thread calls block(token) (which returns when the
    token fires); once waiting(token) reports all WAITERS blocked, plus SETTLE, the main thread
    notes the time and calls fire(token).
    """
    start_round = threading.Barrier(WAITERS + 1)
    end_round = threading.Barrier(WAITERS + 1)
    woke = [0.0] * WAITERS
    current = [None]
    errors: list[BaseException] = []

    def waiter(slot: int) -> None:
        clock = time.perf_counter
        try:
            for _ in range(n):
                start_round.wait()
                block(current[0])
                woke[slot] = clock()
                end_round.wait()
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            start_round.abort()
            end_round.abort()

    threads = [threading.Thread(target=waiter, args=(i,), daemon=True) for i in range(WAITERS)]
    for t in threads:
        t.start()
    total = 0.0
    try:
        for _ in range(n):
            token = new_round()
            current[0] = token
            start_round.wait(PARK_LIMIT)
            limit = time.monotonic() + PARK_LIMIT
            while waiting(token) < WAITERS:
                if time.monotonic() > limit:
                    raise BenchmarkError(f"only {waiting(token)} of {WAITERS} threads waiting")
                time.sleep(0.001)
            time.sleep(SETTLE)
            start = time.perf_counter()
            fire(token)
            end_round.wait(PARK_LIMIT)
            total += max(woke) - start
    except threading.BrokenBarrierError:
        raise BenchmarkError(f"a waiter failed: {errors[:1]!r}") from None
    finally:
        start_round.abort()
        end_round.abort()
        for t in threads:
            t.join(PARK_LIMIT)
    if errors:
        raise BenchmarkError(f"a waiter failed: {errors[0]!r}")
    return total


def cancel_wake_gochan(n: int) -> float:
    ch = gochan.Chan()
    background = gochan.background()

    def block(pair) -> None:
        try:
            ch.recv(ctx=pair[0])
        except gochan.Cancelled:
            return
        raise BenchmarkError("recv returned a value")

    def waiting(pair) -> int:
        return ch.statistics().waiting_receivers

    def fire(pair) -> None:
        pair[1]()

    return _wake_rounds(n, lambda: gochan.with_cancel(background), block, waiting, fire)


def cancel_wake_event(n: int) -> float:
    def block(event: threading.Event) -> None:
        event.wait()

    def waiting(event: threading.Event) -> int:
        # The waiters queued on the Event's Condition (a CPython detail, read without its lock:
        # only a progress check, outside the clock).
        return len(event._cond._waiters)  # type: ignore[attr-defined]

    return _wake_rounds(n, threading.Event, block, waiting, threading.Event.set)


BENCHMARKS = [
    TimedPair(
        "cancel_wake",
        f"one `cancel()` waking {WAITERS} threads in `ch.recv(ctx=ctx)`",
        f"`threading.Event.set()` waking {WAITERS} `Event.wait()`",
        gochan=cancel_wake_gochan,
        against=cancel_wake_event,
        size=Size(full=20, quick=6),
        target=AtLeastFaster(1.0),
        unit="wake of 200",
        requires=("with_cancel",),
    ),
]
