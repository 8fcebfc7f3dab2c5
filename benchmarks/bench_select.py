"""select benchmarks: gochan.select against the nearest thing the standard library offers.

The standard library has no select over several queues; the closest equivalent of "receive from
whichever of four producers has a value" is one shared `SimpleQueue` carrying tagged items, which
is what the fan-in row compares against (DESIGN.md: within 2x of it). The default row compares a
non-blocking poll with `select(default=True)`, which returns rather than raising, against
`get_nowait()` with its `Empty` exception caught (DESIGN.md: >= 3x faster).
"""

from __future__ import annotations

import queue
from typing import Callable

from bench_channels import CAPACITY, NOWAIT_STMT, WORKERS, gochan
from harness import (
    AtLeastFaster,
    AtMostTimeRatio,
    Size,
    TimedPair,
    expect_count,
    loop_timer,
    time_threads,
)

# ---------------------------------------------------------------------------------------------
# a. fan-in: one consumer selects over four channels, each fed by its own producer thread


def fanin_select_with(capacity: int) -> Callable[[int], float]:
    """The gochan side of a fan-in row over four `Chan(capacity)` (bench_peers.py uses 64)."""

    def variant(n: int) -> float:
        chans = [gochan.Chan(capacity) for _ in range(WORKERS)]
        per = n // WORKERS
        got = [0]

        def producer(ch: gochan.Chan) -> None:
            send = ch.send
            for i in range(per):
                send(i)
            ch.close()

        def consumer() -> None:
            select, Recv = gochan.select, gochan.Recv
            cases = [Recv(ch) for ch in chans]
            count = 0
            live = len(cases)
            while live:
                index, _, ok = select(*cases)
                if ok:
                    count += 1
                else:  # closed and drained: switch the case off
                    cases[index] = Recv(None)
                    live -= 1
            got[0] = count

        elapsed = time_threads([lambda ch=ch: producer(ch) for ch in chans], [consumer])
        expect_count(got[0], per * WORKERS)
        return elapsed

    return variant


fanin_select = fanin_select_with(CAPACITY)


def fanin_simplequeue(n: int) -> float:
    q: queue.SimpleQueue = queue.SimpleQueue()
    per = n // WORKERS
    got = [0]

    def producer(tag: int) -> None:
        put = q.put
        for i in range(per):
            put((tag, i))
        put((tag, None))

    def consumer() -> None:
        get = q.get
        count = 0
        live = WORKERS
        while live:
            _, item = get()
            if item is None:
                live -= 1
            else:
                count += 1
        got[0] = count

    elapsed = time_threads([lambda t=t: producer(t) for t in range(WORKERS)], [consumer])
    expect_count(got[0], per * WORKERS)
    return elapsed


# ---------------------------------------------------------------------------------------------
# b. a non-blocking poll of an empty channel


def default_select(n: int) -> float:
    case = gochan.Recv(gochan.Chan(CAPACITY))
    return loop_timer("select(case, default=True)", select=gochan.select, case=case)(n)


def default_simplequeue(n: int) -> float:
    q: queue.SimpleQueue = queue.SimpleQueue()
    return loop_timer(NOWAIT_STMT, recv_nowait=q.get_nowait, Empty=queue.Empty)(n)


BENCHMARKS = [
    TimedPair(
        "select_fanin",
        "`select` over 4 `Chan(1024)`, one producer thread each",
        "one shared `SimpleQueue`, tagged items",
        gochan=fanin_select,
        against=fanin_simplequeue,
        size=Size(full=200_000, quick=60_000),
        target=AtMostTimeRatio(2.0),
        unit="item",
        requires=("select",),
    ),
    TimedPair(
        "select_default",
        "`select(Recv(ch), default=True)` on empty",
        "`get_nowait()` + `except Empty`",
        gochan=default_select,
        against=default_simplequeue,
        size=Size(full=300_000, quick=100_000),
        target=AtLeastFaster(3),
        unit="call",
        requires=("select",),
    ),
]
