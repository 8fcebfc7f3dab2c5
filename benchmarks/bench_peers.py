"""gochan against the other libraries a Python programmer would reach for, on the same workloads.

The peers, one column each in the table:

- the standard library: `queue.Queue` (bounded, so that a full queue blocks its producer as a
  full channel does), `concurrent.futures.ThreadPoolExecutor`; it has no select;
- janus 2.0 (pure Python), a queue with a threaded side (`sync_q`) and an asyncio side; its
  threaded side is what a threaded program uses, so that is what is timed. Since 2.0 a
  `janus.Queue` no longer needs a running event loop to be created (on Python >= 3.10), and the
  sync side never touches one; it has no select and no goroutines;
- pygolang 0.1 (`from golang import chan, select, go`), Go's channels for Python with a C++
  runtime under Cython; in a plain interpreter it runs on OS threads, as gochan does. It also
  has Go's `context` (golang.context), timed against gochan's in the cancel row.

A peer that cannot be imported shows "not installed" in its cells and the run goes on. Each row
is measured like every other row of the benchmarks (harness.py): setup outside the clock, counts
checked, interleaved rounds, medians. A cell is the peer's median time over gochan's: gochan's
speed-up, above 1 when gochan is faster.
"""

from __future__ import annotations

import importlib
import importlib.util
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from typing import Callable

from bench_channels import (
    ITEM, STOP, WORKERS, gochan, pingpong_gochan, spsc_gochan_with, spsc_queue_with,
)
from bench_contexts import WAITERS, _wake_rounds, cancel_wake_event, cancel_wake_gochan
from bench_select import fanin_select_with
from harness import Peer, PeerRow, Size, expect_count, loop_timer, time_threads

CAPACITY = 64
"""Buffer of the throughput rows' channels and queues: small enough that producers do block."""

MAP_ITEMS = 10_000
"""Items per pool.map call in the `peers_map` row."""

Variant = Callable[[int], float]


def _installed(module: str) -> bool:
    """True if `module` can be imported; it is imported only when a row first runs it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


HAVE_JANUS = _installed("janus")
HAVE_PYGOLANG = _installed("golang")


def _golang():
    return importlib.import_module("golang")


def _peer(library: str, how: str, variant: Variant | None, *, absent: str = "") -> Peer:
    """A Peer, shown as "not installed" when its library is missing."""
    installed = {"janus": HAVE_JANUS, "pygolang": HAVE_PYGOLANG}.get(library, True)
    if variant is not None and not installed:
        return Peer(library, how, None, "not installed")
    return Peer(library, how, variant, absent)


def noop(x=None):
    return x


# ---------------------------------------------------------------------------------------------
# a. one producer, one consumer, a 64-slot buffer (n items)


spsc_gochan = spsc_gochan_with(CAPACITY)


spsc_queue = spsc_queue_with(lambda: queue.Queue(CAPACITY))
# janus's threaded side; the proxy keeps its queue alive.
spsc_janus = spsc_queue_with(lambda: importlib.import_module("janus").Queue(CAPACITY).sync_q)


def spsc_pygolang(n: int) -> float:
    ch = _golang().chan(CAPACITY)
    items = list(range(n))
    got = [0]

    def producer() -> None:
        send = ch.send
        for x in items:
            send(x)
        ch.close()

    def consumer() -> None:
        recv_ = ch.recv_
        count = 0
        while recv_()[1]:  # (value, ok): ok is False once closed and drained
            count += 1
        got[0] = count

    elapsed = time_threads([producer], [consumer])
    expect_count(got[0], n)
    return elapsed


# ---------------------------------------------------------------------------------------------
# b. unbuffered ping-pong between two threads (n round trips)


# gochan's side is bench_channels.py's pingpong_gochan (two Chan()).


def _pingpong_put_get(make: Callable[[], tuple[Callable, Callable]]) -> Variant:
    """Ping-pong over two queues given by `make` as (put, get) each time it is called."""

    def variant(n: int) -> float:
        ping_put, ping_get = make()
        pong_put, pong_get = make()

        def pinger() -> None:
            for x in repeat(ITEM, n):
                ping_put(x)
                pong_get()
            ping_put(STOP)

        def ponger() -> None:
            while (x := ping_get()) is not STOP:
                pong_put(x)

        return time_threads([pinger], [ponger])

    return variant


def _queue1_ends() -> tuple[Callable, Callable]:
    q: queue.Queue = queue.Queue(1)
    return q.put, q.get


def _janus1_ends() -> tuple[Callable, Callable]:
    q = importlib.import_module("janus").Queue(1)
    return q.sync_q.put, q.sync_q.get


pingpong_queue = _pingpong_put_get(_queue1_ends)
pingpong_janus = _pingpong_put_get(_janus1_ends)


def pingpong_pygolang(n: int) -> float:
    chan = _golang().chan
    ping, pong = chan(), chan()

    def pinger() -> None:
        send, recv = ping.send, pong.recv
        for x in repeat(ITEM, n):
            send(x)
            recv()
        ping.close()

    def ponger() -> None:
        recv_, send = ping.recv_, pong.send
        while True:
            x, ok = recv_()
            if not ok:
                return
            send(x)

    return time_threads([pinger], [ponger])


# ---------------------------------------------------------------------------------------------
# c. fan-in: one consumer selects over four channels, each fed by its own producer (n items)


fanin_gochan = fanin_select_with(CAPACITY)


def fanin_pygolang(n: int) -> float:
    golang = _golang()
    chans = [golang.chan(CAPACITY) for _ in range(WORKERS)]
    per = n // WORKERS
    got = [0]

    def producer(ch) -> None:
        send = ch.send
        for i in range(per):
            send(i)
        ch.close()

    def consumer() -> None:
        select, nil_recv = golang.select, golang.nilchan.recv_
        cases = [ch.recv_ for ch in chans]
        count = 0
        live = len(cases)
        while live:
            index, (_, ok) = select(*cases)
            if ok:
                count += 1
            else:
                cases[index] = nil_recv
                live -= 1
        got[0] = count

    elapsed = time_threads([lambda ch=ch: producer(ch) for ch in chans], [consumer])
    expect_count(got[0], per * WORKERS)
    return elapsed


# ---------------------------------------------------------------------------------------------
# d. a non-blocking select over two empty channels (n polls, same thread)


def poll_gochan(n: int) -> float:
    cases = (gochan.Recv(gochan.Chan(1)), gochan.Recv(gochan.Chan(1)))
    return loop_timer("select(a, b, default=True)", select=gochan.select, a=cases[0],
                      b=cases[1])(n)


def poll_pygolang(n: int) -> float:
    golang = _golang()
    a, b = golang.chan(1), golang.chan(1)
    return loop_timer("select(a, b, default)", select=golang.select, a=a.recv, b=b.recv,
                      default=golang.default)(n)


# ---------------------------------------------------------------------------------------------
# e. start a function on another thread and wait for it (n calls)


def spawn_gochan(n: int) -> float:
    return loop_timer("go(f).join()", go=gochan.go, f=noop)(n)


def spawn_executor(n: int) -> float:
    with ThreadPoolExecutor(WORKERS) as pool:
        return loop_timer("submit(f).result()", submit=pool.submit, f=noop)(n)


def spawn_pygolang(n: int) -> float:
    # pygolang's go() returns nothing: the function reports on a channel, as in Go.
    golang = _golang()
    done = golang.chan()
    return loop_timer("go(f, x); recv()", go=golang.go, f=done.send, x=None, recv=done.recv)(n)


# ---------------------------------------------------------------------------------------------
# f. a pool of 4 workers mapping a no-op over 10,000 items (n items)


def _map_rounds(pool_map: Callable[[Callable, range], object], n: int) -> float:
    calls = max(1, n // MAP_ITEMS)
    items = range(MAP_ITEMS)
    start = time.perf_counter()
    count = 0
    for _ in range(calls):
        count += sum(1 for _ in pool_map(noop, items))
    elapsed = time.perf_counter() - start
    expect_count(count, calls * MAP_ITEMS)
    return elapsed * n / (calls * MAP_ITEMS)  # per item, whatever n's rounding


def map_gochan(n: int) -> float:
    with gochan.Pool(WORKERS) as pool:
        return _map_rounds(pool.map, n)


def map_executor(n: int) -> float:
    with ThreadPoolExecutor(WORKERS) as pool:
        return _map_rounds(pool.map, n)


# ---------------------------------------------------------------------------------------------
# g. one cancel() waking 200 threads blocked on the context (n wakes; bench_contexts.py's rounds)


def cancel_pygolang(n: int) -> float:
    context = importlib.import_module("golang.context")
    background = context.background()
    # pygolang cannot say how many threads wait on a channel: each thread counts itself just
    # before it blocks, and _wake_rounds then lets them settle (10 ms) before it cancels. One
    # still on its way finds the channel closed and returns at once, which only flatters pygolang.
    arrived = [0]

    def new_round():
        arrived[0] = 0
        return context.with_cancel(background)

    def block(pair) -> None:
        done = pair[0].done()
        arrived[0] += 1  # under the GIL; only a progress check, outside the clock
        done.recv()

    return _wake_rounds(n, new_round, block, lambda pair: arrived[0], lambda pair: pair[1]())


# ---------------------------------------------------------------------------------------------
# The rows.

NO_SELECT = "no select"
NO_GO = "no goroutines"

PEER_ROWS = [
    PeerRow(
        "peers_spsc",
        "1 producer / 1 consumer, 64-slot buffer",
        "`Chan(64)`, closed at the end",
        gochan=spsc_gochan,
        peers=(
            _peer("stdlib", "`queue.Queue(64)`, a sentinel at the end", spsc_queue),
            _peer("janus", "`janus.Queue(64).sync_q`, a sentinel", spsc_janus),
            _peer("pygolang", "`chan(64)`, closed, `recv_()` until not ok", spsc_pygolang),
        ),
        size=Size(full=100_000, quick=30_000),
        unit="item",
    ),
    PeerRow(
        "peers_pingpong",
        "unbuffered ping-pong between two threads",
        "two `Chan()`",
        gochan=pingpong_gochan,
        peers=(
            _peer("stdlib", "two `queue.Queue(1)` (nothing is unbuffered)", pingpong_queue),
            _peer("janus", "two `janus.Queue(1).sync_q`", pingpong_janus),
            _peer("pygolang", "two `chan()`", pingpong_pygolang),
        ),
        size=Size(full=4_000, quick=1_500),
        unit="round trip",
    ),
    PeerRow(
        "peers_fanin",
        "`select` over 4 channels fed by 4 threads",
        "`select(Recv(a), Recv(b), ...)` over four `Chan(64)`",
        gochan=fanin_gochan,
        peers=(
            _peer("stdlib", "no select over queues", None, absent=NO_SELECT),
            _peer("janus", "no select over queues", None, absent=NO_SELECT),
            _peer("pygolang", "`select(a.recv_, b.recv_, ...)` over four `chan(64)`",
                  fanin_pygolang),
        ),
        size=Size(full=100_000, quick=30_000),
        unit="item",
    ),
    PeerRow(
        "peers_poll",
        "non-blocking `select` over 2 empty channels",
        "`select(Recv(a), Recv(b), default=True)`",
        gochan=poll_gochan,
        peers=(
            _peer("stdlib", "no select over queues", None, absent=NO_SELECT),
            _peer("janus", "no select over queues", None, absent=NO_SELECT),
            _peer("pygolang", "`select(a.recv, b.recv, default)`", poll_pygolang),
        ),
        size=Size(full=200_000, quick=50_000),
        unit="poll",
    ),
    PeerRow(
        "peers_spawn",
        "run a no-op on another thread and wait for it",
        "`go(f).join()`",
        gochan=spawn_gochan,
        peers=(
            _peer("stdlib", "`ThreadPoolExecutor(4).submit(f).result()`", spawn_executor),
            _peer("janus", "a queue only", None, absent=NO_GO),
            _peer("pygolang", "`go(done.send, None); done.recv()` (a thread per go)",
                  spawn_pygolang),
        ),
        size=Size(full=5_000, quick=2_000),
        unit="call",
    ),
    PeerRow(
        "peers_map",
        "4 workers mapping a no-op over 10,000 items",
        "`Pool(4).map(f, items)`",
        gochan=map_gochan,
        peers=(
            _peer("stdlib", "`ThreadPoolExecutor(4).map(f, items)`", map_executor),
            _peer("janus", "a queue only", None, absent="no pool"),
            _peer("pygolang", "no pool (`sync.WorkGroup` is an errgroup)", None,
                  absent="no pool"),
        ),
        size=Size(full=20_000, quick=10_000),
        unit="item",
    ),
    PeerRow(
        "peers_cancel",
        f"one cancel waking {WAITERS} blocked threads",
        "`cancel()` of `with_cancel`, the threads in `ch.recv(ctx=ctx)`",
        gochan=cancel_wake_gochan,
        peers=(
            _peer("stdlib", "`threading.Event.set()`, the threads in `Event.wait()`",
                  cancel_wake_event),
            _peer("janus", "a queue only", None, absent="no contexts"),
            _peer("pygolang", "`cancel()` of `context.with_cancel`, the threads in "
                  "`ctx.done().recv()`", cancel_pygolang),
        ),
        size=Size(full=8, quick=4),
        unit=f"wake of {WAITERS}",
    ),
]
