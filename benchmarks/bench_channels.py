"""Channel benchmarks: gochan.Chan against queue.SimpleQueue and queue.Queue, side by side.

Each entry of BENCHMARKS is one row of the channel part of DESIGN.md's "Performance targets"
table: a gochan variant, a peer variant, a size and a target. A variant takes a number of
operations n and returns the seconds they took, with its setup (channels, threads, item lists)
left out of the clock. Adding a row is adding one entry, e.g. for `select(default=True)`:

    TimedPair("select_default", "`select(Recv(ch), default=True)` on empty", "...",
              gochan=loop_timer("select(case, default=True)", ...), against=...,
              size=Size(200_000, 50_000), target=AtLeastFaster(3), requires=("select",)),

`requires` names gochan attributes the row needs; a row whose feature is missing is SKIPped.
"""

from __future__ import annotations

import glob
import os
import queue
import sys
from itertools import repeat
from typing import Callable

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)


def _prefer_checkout() -> None:
    """Import gochan from this checkout when it has been built in place.

    The checkout goes after the PYTHONPATH entries (an explicit choice wins) and before the
    standard library and site-packages (so an installed gochan cannot shadow the one being
    worked on). Without an in-place build, gochan comes from sys.path as usual.
    """
    built = glob.glob(os.path.join(REPO_ROOT, "gochan", "_core*.so")) + glob.glob(
        os.path.join(REPO_ROOT, "gochan", "_core*.pyd")
    )
    if not built or REPO_ROOT in sys.path:
        return
    explicit = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    position = 1
    while position < len(sys.path) and os.path.abspath(sys.path[position]) in explicit:
        position += 1
    sys.path.insert(position, REPO_ROOT)


_prefer_checkout()

import gochan  # noqa: E402  (after the path is settled)

from harness import (  # noqa: E402
    AtLeastFaster,
    AtLeastSmaller,
    AtMostTimeRatio,
    MemoryPair,
    Size,
    TimedPair,
    expect_count,
    loop_timer,
    time_threads,
)

ITEM = 42
"""The value moved by the micro-benchmarks (a cached int: no allocation on either side)."""

STOP = object()
"""End-of-stream sentinel for the SimpleQueue/Queue peers (a channel is closed instead)."""

CAPACITY = 1024
BATCH = 256
WORKERS = 4


# ---------------------------------------------------------------------------------------------
# a. same-thread send+recv pair


def pair_gochan(n: int) -> float:
    ch = gochan.Chan(CAPACITY)
    return loop_timer("send(x); recv()", send=ch.send, recv=ch.recv, x=ITEM)(n)


def pair_simplequeue(n: int) -> float:
    q = queue.SimpleQueue()
    return loop_timer("put(x); get()", put=q.put, get=q.get, x=ITEM)(n)


# ---------------------------------------------------------------------------------------------
# b. unbuffered ping-pong between two threads (n round trips)


def pingpong_gochan(n: int) -> float:
    ping, pong = gochan.Chan(0), gochan.Chan(0)

    def pinger() -> None:
        send, recv = ping.send, pong.recv
        for x in repeat(ITEM, n):
            send(x)
            recv()
        ping.close()

    def ponger() -> None:
        send = pong.send
        for x in ping:
            send(x)

    return time_threads([pinger], [ponger])


def pingpong_simplequeue(n: int) -> float:
    ping, pong = queue.SimpleQueue(), queue.SimpleQueue()

    def pinger() -> None:
        put, get = ping.put, pong.get
        for x in repeat(ITEM, n):
            put(x)
            get()
        put(STOP)

    def ponger() -> None:
        get, put = ping.get, pong.put
        while (x := get()) is not STOP:
            put(x)

    return time_threads([pinger], [ponger])


# ---------------------------------------------------------------------------------------------
# c. one producer, one consumer, capacity 1024 (n items)


def spsc_gochan_with(capacity: int) -> Callable[[int], float]:
    """The gochan side of a 1P1C row over a `Chan(capacity)` (bench_peers.py uses 64)."""

    def variant(n: int) -> float:
        ch = gochan.Chan(capacity)
        items = list(range(n))
        got = [0]

        def producer() -> None:
            send = ch.send
            for x in items:
                send(x)
            ch.close()

        def consumer() -> None:
            count = 0
            for _ in ch:
                count += 1
            got[0] = count

        elapsed = time_threads([producer], [consumer])
        expect_count(got[0], n)
        return elapsed

    return variant


spsc_gochan = spsc_gochan_with(CAPACITY)


def spsc_queue_with(make: Callable[[], object]) -> Callable[[int], float]:
    """A 1P1C row's peer side over the queue `make()` returns (anything with put and get); the
    consumer stops at a sentinel, as a queue has no close (bench_peers.py reuses it)."""

    def variant(n: int) -> float:
        q = make()
        items = list(range(n))
        got = [0]

        def producer() -> None:
            put = q.put
            for x in items:
                put(x)
            put(STOP)

        def consumer() -> None:
            get = q.get
            count = 0
            while get() is not STOP:
                count += 1
            got[0] = count

        elapsed = time_threads([producer], [consumer])
        expect_count(got[0], n)
        return elapsed

    return variant


spsc_simplequeue = spsc_queue_with(queue.SimpleQueue)
spsc_queue_bounded = spsc_queue_with(lambda: queue.Queue(CAPACITY))


# ---------------------------------------------------------------------------------------------
# d. one producer, one consumer, batches of 256 with send_many/recv_many (n items)


def batch_gochan(n: int) -> float:
    ch = gochan.Chan(CAPACITY)
    items = list(range(n))
    batches = [items[i : i + BATCH] for i in range(0, n, BATCH)]
    got = [0]
    closed = gochan.ChannelClosed

    def producer() -> None:
        send_many = ch.send_many
        for batch in batches:
            send_many(batch)
        ch.close()

    def consumer() -> None:
        recv_many = ch.recv_many
        count = 0
        try:
            while True:
                count += len(recv_many(BATCH))
        except closed:
            got[0] = count

    elapsed = time_threads([producer], [consumer])
    expect_count(got[0], n)
    return elapsed


# ---------------------------------------------------------------------------------------------
# e. four producers, four consumers, capacity 1024 (n items in all)


def mpmc_gochan(n: int) -> float:
    ch = gochan.Chan(CAPACITY)
    items = list(range(n // WORKERS))
    counts = [0] * WORKERS

    def producer() -> None:
        send = ch.send
        for x in items:
            send(x)

    def consumer(slot: int) -> Callable[[], None]:
        def body() -> None:
            count = 0
            for _ in ch:
                count += 1
            counts[slot] = count

        return body

    elapsed = time_threads(
        [producer] * WORKERS, [consumer(i) for i in range(WORKERS)], between=ch.close
    )
    expect_count(sum(counts), len(items) * WORKERS)
    return elapsed


def mpmc_simplequeue(n: int) -> float:
    q = queue.SimpleQueue()
    items = list(range(n // WORKERS))
    counts = [0] * WORKERS

    def producer() -> None:
        put = q.put
        for x in items:
            put(x)

    def consumer(slot: int) -> Callable[[], None]:
        def body() -> None:
            get = q.get
            count = 0
            while get() is not STOP:
                count += 1
            counts[slot] = count

        return body

    def stop_consumers() -> None:
        for _ in range(WORKERS):
            q.put(STOP)

    elapsed = time_threads(
        [producer] * WORKERS, [consumer(i) for i in range(WORKERS)], between=stop_consumers
    )
    expect_count(sum(counts), len(items) * WORKERS)
    return elapsed


# ---------------------------------------------------------------------------------------------
# f. a non-blocking receive on an empty channel, the failure caught


NOWAIT_STMT = """
try:
    recv_nowait()
except Empty:
    pass
"""


def nowait_gochan(n: int) -> float:
    ch = gochan.Chan(CAPACITY)
    return loop_timer(NOWAIT_STMT, recv_nowait=ch.recv_nowait, Empty=gochan.WouldBlock)(n)


def nowait_simplequeue(n: int) -> float:
    q = queue.SimpleQueue()
    return loop_timer(NOWAIT_STMT, recv_nowait=q.get_nowait, Empty=queue.Empty)(n)


# ---------------------------------------------------------------------------------------------
# g. memory of an idle unbuffered channel (factories run in a subprocess by name)


def idle_chan() -> object:
    return gochan.Chan(0)


def idle_queue() -> object:
    return queue.Queue()


# ---------------------------------------------------------------------------------------------
# The rows, in DESIGN.md's order.

BENCHMARKS = [
    TimedPair(
        "pair",
        "same-thread `send(x); recv()` on `Chan(1024)`",
        "`SimpleQueue` put+get",
        gochan=pair_gochan,
        against=pair_simplequeue,
        size=Size(full=1_000_000, quick=300_000),
        target=AtMostTimeRatio(1.2),
        unit="pair",
    ),
    TimedPair(
        "pingpong",
        "unbuffered ping-pong, two threads, `Chan(0)` x2",
        "two `SimpleQueue`s",
        gochan=pingpong_gochan,
        against=pingpong_simplequeue,
        size=Size(full=20_000, quick=5_000),
        target=AtLeastFaster(5),
        unit="round trip",
    ),
    TimedPair(
        "spsc_simplequeue",
        "1 producer / 1 consumer, `Chan(1024)`",
        "`SimpleQueue`",
        gochan=spsc_gochan,
        against=spsc_simplequeue,
        size=Size(full=500_000, quick=100_000),
        target=AtLeastFaster(1.5),
        unit="item",
    ),
    TimedPair(
        "spsc_queue",
        "1 producer / 1 consumer, `Chan(1024)`",
        "`queue.Queue(1024)`",
        gochan=spsc_gochan,
        against=spsc_queue_bounded,
        size=Size(full=200_000, quick=50_000),
        target=AtLeastFaster(15),
        unit="item",
    ),
    TimedPair(
        "batch",
        "1P/1C, `send_many` batches of 256 / `recv_many(256)`, `Chan(1024)`",
        "`SimpleQueue` per item",
        gochan=batch_gochan,
        against=spsc_simplequeue,
        size=Size(full=500_000, quick=100_000),
        target=AtLeastFaster(5),
        unit="item",
    ),
    TimedPair(
        "mpmc",
        "4 producers / 4 consumers, `Chan(1024)`",
        "`SimpleQueue`",
        gochan=mpmc_gochan,
        against=mpmc_simplequeue,
        size=Size(full=400_000, quick=100_000),
        target=AtLeastFaster(1.3),
        unit="item",
    ),
    TimedPair(
        "nowait",
        "`recv_nowait()` on empty, `except WouldBlock`",
        "`get_nowait()` + `except Empty`",
        gochan=nowait_gochan,
        against=nowait_simplequeue,
        size=Size(full=300_000, quick=100_000),
        target=AtLeastFaster(3),
        unit="call",
    ),
    MemoryPair(
        "memory",
        "memory of an idle `Chan(0)`",
        "`queue.Queue()`",
        gochan="bench_channels:idle_chan",
        against="bench_channels:idle_queue",
        tracemalloc_count=Size(full=10_000, quick=10_000),
        rss_count=Size(full=100_000, quick=20_000),
        target=AtLeastSmaller(4),
    ),
]
