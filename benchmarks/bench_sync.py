"""Goroutine and sync benchmarks: gochan.go, Mutex and WaitGroup against threading, side by side.

Each entry of BENCHMARKS is one row of the goroutine and sync part of the performance targets:

- `go_join`: `go(f).join()` against `threading.Thread(target=f)` start+join (>= 10x faster):
  what reusing pooled threads buys over starting one per task.
- `mutex_uncontended`: `lock(); unlock()` on a `Mutex` nobody else uses against
  `acquire(); release()` on a `threading.Lock` (no slower).
- `mutex_handoff`: two threads passing control back and forth through two mutexes (each locks the
  one the other unlocks), against the same with two `threading.Lock`s (>= 2x faster); every lock
  waits for the other thread, so this is the cost of a contended hand-off.
- `waitgroup`: rounds of `add(100)`, 100 goroutines each calling `done()`, `wait()`, against the
  same round with a counter under a `threading.Condition` (no slower). Both sides start their 100
  workers with `gochan.go`, so the thread mechanism is the same and the rows differ only in how
  the workers report and the main thread waits.
"""

from __future__ import annotations

import threading
from itertools import repeat

from bench_channels import gochan
from harness import AtLeastFaster, Size, TimedPair, loop_timer, time_threads


def noop() -> None:
    pass


# ---------------------------------------------------------------------------------------------
# go(f).join() against Thread start+join


def go_join_gochan(n: int) -> float:
    return loop_timer("go(f).join()", go=gochan.go, f=noop)(n)


def go_join_thread(n: int) -> float:
    return loop_timer("t = Thread(target=f); t.start(); t.join()", Thread=threading.Thread,
                      f=noop)(n)


# ---------------------------------------------------------------------------------------------
# uncontended lock/unlock


def mutex_uncontended_gochan(n: int) -> float:
    m = gochan.Mutex()
    return loop_timer("lock(); unlock()", lock=m.lock, unlock=m.unlock)(n)


def mutex_uncontended_threading(n: int) -> float:
    lock = threading.Lock()
    return loop_timer("acquire(); release()", acquire=lock.acquire, release=lock.release)(n)


# ---------------------------------------------------------------------------------------------
# contended hand-off: two threads alternating (n round trips)


def _handoff(make, lock_name: str, unlock_name: str):
    def variant(n: int) -> float:
        a, b = make(), make()
        getattr(a, lock_name)()
        getattr(b, lock_name)()

        def pinger() -> None:
            unlock_a, lock_b = getattr(a, unlock_name), getattr(b, lock_name)
            for _ in repeat(None, n):
                unlock_a()  # lets the ponger in
                lock_b()  # waits for the ponger's turn to end

        def ponger() -> None:
            lock_a, unlock_b = getattr(a, lock_name), getattr(b, unlock_name)
            for _ in repeat(None, n):
                lock_a()
                unlock_b()

        return time_threads([pinger], [ponger])

    return variant


mutex_handoff_gochan = _handoff(gochan.Mutex, "lock", "unlock")
mutex_handoff_threading = _handoff(threading.Lock, "acquire", "release")


# ---------------------------------------------------------------------------------------------
# WaitGroup with 100 goroutines (n rounds)

WORKERS = 100


class ConditionCounter:
    """What a WaitGroup does, with a threading.Condition: add, done, wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._count = 0

    def add(self, n: int) -> None:
        with self._cond:
            self._count += n

    def done(self) -> None:
        with self._cond:
            self._count -= 1
            if self._count == 0:
                self._cond.notify_all()

    def wait(self) -> None:
        with self._cond:
            while self._count:
                self._cond.wait()


def _rounds(make):
    def variant(n: int) -> float:
        import time

        wg = make()
        go = gochan.go
        start = time.perf_counter()
        for _ in repeat(None, n):
            wg.add(WORKERS)
            done = wg.done
            for _ in repeat(None, WORKERS):
                go(done)
            wg.wait()
        return time.perf_counter() - start

    return variant


waitgroup_gochan = _rounds(gochan.WaitGroup)
waitgroup_condition = _rounds(ConditionCounter)


# ---------------------------------------------------------------------------------------------
# The rows.

BENCHMARKS = [
    TimedPair(
        "go_join",
        "`go(f).join()`",
        "`threading.Thread(target=f)` start+join",
        gochan=go_join_gochan,
        against=go_join_thread,
        size=Size(full=3_000, quick=1_000),
        target=AtLeastFaster(10),
        unit="task",
        requires=("go",),
    ),
    TimedPair(
        "mutex_uncontended",
        "uncontended `Mutex` lock+unlock",
        "`threading.Lock` acquire+release",
        gochan=mutex_uncontended_gochan,
        against=mutex_uncontended_threading,
        size=Size(full=1_000_000, quick=300_000),
        target=AtLeastFaster(1),
        unit="pair",
        requires=("Mutex",),
    ),
    TimedPair(
        "mutex_handoff",
        "contended hand-off, two threads alternating on two `Mutex`es",
        "two `threading.Lock`s",
        gochan=mutex_handoff_gochan,
        against=mutex_handoff_threading,
        size=Size(full=20_000, quick=5_000),
        target=AtLeastFaster(2),
        unit="round trip",
        requires=("Mutex",),
    ),
    TimedPair(
        "waitgroup",
        "`WaitGroup`: add(100), 100 goroutines `done()`, `wait()`",
        "counter under a `threading.Condition`, same goroutines",
        gochan=waitgroup_gochan,
        against=waitgroup_condition,
        size=Size(full=300, quick=100),
        target=AtLeastFaster(1),
        unit="round",
        requires=("WaitGroup", "go"),
    ),
]
