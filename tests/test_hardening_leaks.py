"""References and memory: every public type of gochan created, used and destroyed over and over
keeps memory flat, including channels destroyed with items still buffered and contexts cancelled
while calls are blocked on them (DESIGN.md, "Ownership").

Each case is one loop body (`CHURN`). It runs a million times, or fewer where a million would
take longer than BUDGET_SECONDS (1 s, to keep `make test` within its time) here: the cheap
types (channels, contexts, timers, locks) run a million or most of one; the ones that start
goroutines or threads for each object (go, after_func firing, WaitGroup.go, Group, Pool,
generate, stage, merge, the waiter cases, retry) run as many thousands as fit in the budget, from
5 000 to a few hundred thousand (pytest -s prints the count, the time and the measures below
before and after). GOCHAN_SOAK=N multiplies the budget, and from GOCHAN_SOAK=10 (FULL_SCALE) on
there is no budget: every case runs its whole million, however long it takes (17 minutes in all
here, 8 of them for the pipeline case; docs/guarantees.md has the figures).
After a warm-up, three measures must stay flat:

- the objects the garbage collector tracks (a Python object leaked per iteration),
- the blocks Python's allocator has handed out (sys.getallocatedblocks(): untracked objects,
  buffers),
- the bytes malloc has handed out (glibc's mallinfo2(): the C core's structures, which Python's
  allocator never sees). Not under AddressSanitizer, whose allocator replaces malloc's: there the
  loops still run (ASan checks every access), but this measure is skipped.

Where the runtime keeps a count of its own (timers in the heap, children of a context,
goroutines running), that count must be back where it started too.
"""

import collections
import ctypes
import faulthandler
import gc
import os
import sys
import threading
import time
import weakref

import pytest

import gochan

from conftest import LONG, under_asan, wait_until

MILLION = 1_000_000
#: Seconds a case may take before its count is scaled down (times GOCHAN_SOAK).
BUDGET_SECONDS = 1.0
#: The GOCHAN_SOAK from which every case runs the whole million, whatever the time.
FULL_SCALE = 10
#: The fewest iterations a case runs, however slow.
MIN_ITERATIONS = 5_000
#: Allowed growth after the loop.
MAX_OBJECTS = 100
MAX_BLOCKS = 1_000
MAX_MALLOC_BYTES = 2 * 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _malloc_probe():
    """A function giving the bytes malloc has handed out, or None if that cannot be known."""
    if under_asan():
        return None
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None  # not glibc 2.33 or newer
    mallinfo2.restype = _MallInfo2
    mallinfo2.argtypes = []

    def in_use():
        info = mallinfo2()
        return info.uordblks + info.hblkhd

    return in_use


MALLOC_IN_USE = _malloc_probe()


def _budget():
    """Seconds a case may run before it stops short of the million (None: no limit)."""
    try:
        scale = float(os.environ.get("GOCHAN_SOAK", "1"))
    except ValueError:
        scale = 1.0
    if scale >= FULL_SCALE:
        return None
    return BUDGET_SECONDS * max(scale, 0.01)


class Item:
    """A gc-tracked payload that supports weak references."""

    __slots__ = ("value", "__weakref__")

    def __init__(self, value=None):
        self.value = value


# --- what one iteration does, per case -------------------------------------------------------

BG = gochan.background()
PARENT, _PARENT_CANCEL = gochan.with_cancel(BG)
KEY = object()


def _chan():
    ch = gochan.Chan(3)
    ch.send(Item())
    ch.recv()
    ch.close()
    len(ch), ch.cap, ch.closed, repr(ch)


def _chan_buffered_dropped():
    ch = gochan.Chan(8)
    ch.send_many([Item(), Item(), Item()])  # dropped with the items still in it


def _chan_closed_with_items_dropped():
    ch = gochan.Chan(4)
    ch.send(Item())
    ch.send(Item())
    ch.close()


def _chan_sent_into_itself():
    ch = gochan.Chan(1)
    ch.send(ch)  # a cycle through the buffer, for the collector


def _views():
    ch = gochan.Chan(1)
    r, s = ch.recv_only(), ch.send_only()
    s.send(Item())
    r.recv()
    ch.statistics()


def _select():
    a, b = gochan.Chan(1), gochan.Chan(1)
    a.send(Item())
    gochan.select(gochan.Recv(a), gochan.Send(b, Item()), gochan.Recv(None))
    gochan.select(gochan.Recv(a), default=True)
    if len(b):  # the select above may have taken a's item instead of sending to b
        b.recv_nowait()


def _errors():
    ch = gochan.Chan()
    try:
        ch.recv_nowait()
    except gochan.WouldBlock:
        pass
    try:
        ch.send(Item(), timeout=0)
    except TimeoutError:
        pass
    ch.close()
    try:
        ch.send(Item())
    except gochan.ChannelClosed:
        pass
    try:
        ch.recv()
    except gochan.ChannelClosed:
        pass
    try:
        gochan.select(gochan.Recv(ch), gochan.Send(ch, 1))
    except gochan.ChannelClosed:
        pass


def _context_errors():
    ctx, cancel = gochan.with_cancel(PARENT)
    cancel()
    try:
        ctx.check()
    except gochan.Cancelled:
        pass
    dead, _ = gochan.with_timeout(PARENT, 0)
    try:
        gochan.Chan().recv(ctx=dead)
    except gochan.DeadlineExceeded:
        pass
    gochan.GochanError("x"), gochan.ContextError("y")


def _with_cancel():
    ctx, cancel = gochan.with_cancel(PARENT)
    ctx.done(), ctx.err(), ctx.deadline()
    cancel()
    ctx.err(), ctx.cause(), repr(ctx)


def _with_cancel_dropped():
    gochan.with_cancel(PARENT)  # never cancelled: unlinked when dropped


def _with_cancel_cause():
    ctx, cancel = gochan.with_cancel_cause(PARENT)
    cancel(ValueError("why"))
    ctx.cause()


def _with_timeout():
    ctx, cancel = gochan.with_timeout(PARENT, 3600)
    cancel()


def _with_deadline_dropped():
    gochan.with_deadline(PARENT, time.monotonic() + 3600)


def _with_value():
    ctx = gochan.with_value(PARENT, KEY, Item())
    gochan.without_cancel(ctx).value(KEY)
    gochan.todo()


def _cancel_pair():
    with gochan.with_cancel(PARENT) as ctx:
        ctx.value(KEY)


def _after_funcs_on_a_context():
    ctx, cancel = gochan.with_cancel(PARENT)
    ctx.after_func(Item)()  # registered, then stopped
    child, child_cancel = gochan.with_cancel(ctx)
    child.after_func(Item)
    cancel()  # the child's after_func runs in a goroutine


class _Waiters:
    """Goroutines that block on whatever context they are handed until it is cancelled."""

    def __init__(self, n):
        self.n = n
        self.never = gochan.Chan()
        self.handoff = gochan.Chan()
        self.back = gochan.Chan(n)
        self.goroutines = [gochan.go(self._wait) for _ in range(n)]

    def _wait(self):
        while True:
            try:
                ctx = self.handoff.recv()
            except gochan.ChannelClosed:
                return
            try:
                self.never.recv(ctx=ctx)
            except gochan.ContextError:
                pass
            del ctx  # hold nothing while waiting for the next one
            self.back.send(None)

    def block_on(self, ctx):
        for _ in range(self.n):
            self.handoff.send(ctx)
        stats = self.never.statistics
        while stats().waiting_receivers < self.n:
            time.sleep(0)

    def wait_woken(self):
        for _ in range(self.n):
            self.back.recv(timeout=LONG)

    def close(self):
        self.handoff.close()
        for g in self.goroutines:
            g.join(timeout=LONG)


_WAITERS = []


def _context_cancelled_with_waiters():
    waiters = _WAITERS[0]
    ctx, cancel = gochan.with_cancel(PARENT)
    child, _ = gochan.with_cancel(ctx)
    gochan.with_value(child, KEY, Item()).after_func(Item)
    waiters.block_on(child)
    cancel()
    waiters.wait_woken()


def _deadline_expiring_with_a_waiter():
    ctx, _ = gochan.with_timeout(PARENT, 0.00001)
    try:
        gochan.Chan().recv(ctx=ctx, timeout=LONG)
    except gochan.DeadlineExceeded:
        pass


def _timer():
    t = gochan.Timer(3600)
    t.reset(1800)
    t.stop()
    t.c


def _timer_fired():
    gochan.Timer(0).c.recv(timeout=LONG)
    gochan.after(0).recv(timeout=LONG)
    gochan.sleep(0)


def _ticker():
    with gochan.Ticker(3600) as tk:
        tk.reset(1800)


def _after_dropped():
    gochan.after(3600)


def _after_func_stopped():
    gochan.after_func(3600, Item, Item()).stop()


def _after_func_fired():
    done = threading.Event()
    gochan.after_func(0, done.set)
    done.wait(LONG)


def _go():
    gochan.go(Item, Item()).join(timeout=LONG)


def _go_raising():
    g = gochan.go(int, "not a number")
    try:
        g.join(timeout=LONG)
    except ValueError:
        pass
    g.done()


def _mutex():
    m = gochan.Mutex()
    with m:
        m.lock(timeout=0)
    m.try_lock()
    m.unlock()


def _rwmutex():
    rw = gochan.RWMutex()
    with rw.read():
        rw.try_lock()
    with rw.write():
        rw.try_rlock()


def _semaphore():
    s = gochan.Semaphore(3)
    with s:
        s.acquire(2, timeout=0)
        s.release(2)


def _waitgroup():
    wg = gochan.WaitGroup()
    wg.add(2)
    wg.done()
    wg.done()
    wg.wait(timeout=0)


def _waitgroup_go():
    wg = gochan.WaitGroup()
    wg.go(Item)
    wg.wait(timeout=LONG)


def _once():
    once = gochan.Once()
    once.do(Item, Item())
    once.do(Item)
    gochan.once_func(Item)()
    value = gochan.once_value(Item)
    value(), value()


def _map():
    m = gochan.Map()
    m.store(1, Item())
    m.load_or_store(2, Item())
    m.swap(1, Item())
    m.compare_and_swap(2, None, Item())
    m.range(lambda k, v: None)
    m.load_and_delete(1)


def _limiter():
    lim = gochan.Limiter(1e6, 5)
    lim.allow()
    lim.reserve(2).cancel()
    lim.wait(timeout=0)
    lim.tokens()


def _backoff_and_retry():
    failures = [OSError()]

    def flaky():
        if failures:
            raise failures.pop()
        return Item()

    gochan.retry(flaky, attempts=2, backoff=gochan.Backoff(initial=0, jitter=0))
    try:
        gochan.retry(lambda: (_ for _ in ()).throw(gochan.Permanent(KeyError())))
    except KeyError:
        pass
    gochan.retrying(attempts=1)(Item)()


def _group():
    with gochan.Group(limit=2) as g:
        g.go(Item)
        g.try_go(Item)


def _pool():
    with gochan.Pool(1) as pool:
        pool.submit(Item).join(timeout=LONG)


def _pool_map():
    with gochan.Pool(2) as pool:
        list(pool.map(abs, range(-8, 0)))


def _pipeline():
    merged = gochan.merge(gochan.generate(range(-4, 0)), gochan.generate(range(-8, -4), cap=2))
    assert sorted(gochan.stage(abs, merged, workers=2)) == list(range(1, 9))


# name: (loop body, public names it creates and destroys)
CHURN = {
    "Chan": (_chan, ["Chan"]),
    "Chan dropped with items buffered": (_chan_buffered_dropped, ["Chan"]),
    "Chan closed and dropped with items": (_chan_closed_with_items_dropped, ["Chan"]),
    "Chan sent into itself": (_chan_sent_into_itself, ["Chan"]),
    "views and statistics": (_views, ["RecvChan", "SendChan", "ChanStats"]),
    "select": (_select, ["Recv", "Send", "Selected", "select"]),
    "channel errors": (_errors, ["WouldBlock", "ChannelClosed"]),
    "context errors": (_context_errors, ["Cancelled", "DeadlineExceeded", "GochanError",
                                         "ContextError"]),
    "with_cancel": (_with_cancel, ["with_cancel", "Context", "CancelFunc", "CancelPair"]),
    "with_cancel never cancelled": (_with_cancel_dropped, ["with_cancel"]),
    "with_cancel_cause": (_with_cancel_cause, ["with_cancel_cause"]),
    "with_timeout": (_with_timeout, ["with_timeout"]),
    "with_deadline never cancelled": (_with_deadline_dropped, ["with_deadline"]),
    "with_value and without_cancel": (_with_value, ["with_value", "without_cancel", "todo",
                                                    "background"]),
    "CancelPair as a context manager": (_cancel_pair, ["CancelPair"]),
    "after_func of contexts": (_after_funcs_on_a_context, ["Context"]),
    "context cancelled with waiters": (_context_cancelled_with_waiters, ["Context"]),
    "deadline expiring with a waiter": (_deadline_expiring_with_a_waiter, ["with_timeout"]),
    "Timer": (_timer, ["Timer"]),
    "Timer and after fired": (_timer_fired, ["Timer", "after", "sleep"]),
    "Ticker": (_ticker, ["Ticker"]),
    "after dropped unread": (_after_dropped, ["after"]),
    "after_func stopped": (_after_func_stopped, ["after_func"]),
    "after_func fired": (_after_func_fired, ["after_func"]),
    "go": (_go, ["go", "Goroutine", "num_goroutines"]),
    "go raising": (_go_raising, ["go", "Goroutine"]),
    "Mutex": (_mutex, ["Mutex"]),
    "RWMutex": (_rwmutex, ["RWMutex", "RWMutexGuard"]),
    "Semaphore": (_semaphore, ["Semaphore"]),
    "WaitGroup": (_waitgroup, ["WaitGroup"]),
    "WaitGroup.go": (_waitgroup_go, ["WaitGroup"]),
    "Once, once_func, once_value": (_once, ["Once", "once_func", "once_value"]),
    "Map": (_map, ["Map"]),
    "Limiter and Reservation": (_limiter, ["Limiter", "Reservation"]),
    "Backoff, retry, Permanent": (_backoff_and_retry, ["Backoff", "retry", "retrying",
                                                       "Permanent"]),
    "Group": (_group, ["Group"]),
    "Pool and PoolJob": (_pool, ["Pool", "PoolJob"]),
    "Pool.map": (_pool_map, ["Pool"]),
    "generate, merge, stage": (_pipeline, ["generate", "merge", "stage"]),
}


def test_every_public_name_is_churned():
    covered = {name for _, names in CHURN.values() for name in names}
    missing = sorted(set(gochan.__all__) - covered)
    assert not missing, f"public names that no leak case creates and destroys: {missing}"


@pytest.fixture(autouse=True, scope="module")
def _short_lived_workers():
    """Idle worker threads retire after 50 ms instead of seconds, so that a test can wait for
    the threads a burst of goroutines started to end (they are not a leak, but they hold
    memory while they live)."""
    previous = gochan._core._set_idle_timeout(0.05)
    yield
    gochan._core._set_idle_timeout(previous)


def _idle_workers():
    workers = sum(t.name.startswith("gochan-worker-") for t in threading.enumerate())
    return workers - gochan.num_goroutines()


def _os_threads():
    """Threads of the process as the kernel sees them: a Python thread that has left
    threading.enumerate() still holds its objects until its OS thread is gone."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _settle(goroutines, timers, children, threads=None):
    """Wait until what the loop started has finished (goroutines, the worker threads they used,
    the timer heap, the dispatcher, the unlinking of contexts from PARENT: a context's waiters
    may wake before its canceller has unlinked it, as in Go)."""
    wait_until(lambda: gochan.num_goroutines() <= goroutines, timeout=LONG,
               message="goroutines still running after the loop")
    # A burst of goroutines from a thread that holds the GIL can start hundreds of worker
    # threads (none is idle while the GIL is held), and on a loaded machine they take seconds
    # to retire and end.
    wait_until(lambda: _idle_workers() <= 0, timeout=6 * LONG,
               message="idle worker threads never retired")
    if threads is not None:
        wait_until(lambda: _os_threads() <= threads, timeout=6 * LONG,
                   message="threads still alive after the loop")
    wait_until(lambda: PARENT._children() <= children, timeout=LONG,
               message="contexts still linked to their parent after the loop")
    wait_until(lambda: gochan._core._timer_stats()[0] <= timers and
               gochan._core._timer_stats()[1] == 0, timeout=LONG,
               message="timers still in the runtime heap after the loop")


def _resident():
    """Resident bytes, printed for the record only (0 without /proc): worker threads' stacks
    and malloc's arenas make it too noisy to assert on."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _measure():
    gc.collect()
    gc.collect()
    objects = collections.Counter(type(o).__name__ for o in gc.get_objects())
    return (objects, sys.getallocatedblocks(), MALLOC_IN_USE() if MALLOC_IN_USE else 0)


@pytest.mark.parametrize("case", list(CHURN))
def test_churn_keeps_memory_flat(case):
    body = CHURN[case][0]
    if body is _context_cancelled_with_waiters:
        _WAITERS.append(_Waiters(2))
    budget = _budget()
    try:
        warm_up = time.perf_counter()
        for _ in range(1_000):  # warm up: free lists, caches, worker threads
            body()
        if budget is None:
            # The whole million may outlast the suite's per-test watchdog (conftest.py): give
            # it ten times what the warm-up's pace predicts.
            predicted = (time.perf_counter() - warm_up) / 1_000 * MILLION
            faulthandler.dump_traceback_later(10 * predicted + 300, exit=True)
        goroutines = gochan.num_goroutines()
        timers = gochan._core._timer_stats()[0]
        children = PARENT._children()
        _settle(goroutines, timers, children)
        threads = _os_threads()
        objects, blocks, malloced = _measure()
        rss = _resident()

        # A million iterations, or as many thousands as the budget allows.
        start = time.perf_counter()
        deadline = None if budget is None else start + budget
        n = 0
        while n < MILLION and (n < MIN_ITERATIONS or deadline is None or
                               time.perf_counter() < deadline):
            for _ in range(1_000):
                body()
            n += 1_000
        elapsed = time.perf_counter() - start
        per_call = elapsed / n

        _settle(goroutines, timers, children, threads)
        objects2, blocks2, malloced2 = _measure()
        rss2 = _resident()
    finally:
        while _WAITERS:
            _WAITERS.pop().close()
    print(f"{case}: {n} iterations in {elapsed:.1f} s ({per_call * 1e6:.1f} us each); "
          f"gc objects {objects.total()} -> {objects2.total()}, allocator blocks {blocks} -> "
          f"{blocks2}, malloc {malloced / 2**20:.2f} -> {malloced2 / 2**20:.2f} MiB, "
          f"resident {rss / 2**20:.0f} -> {rss2 / 2**20:.0f} MiB")
    grown = objects2 - objects
    assert grown.total() < MAX_OBJECTS, \
        f"{grown.total()} objects left alive after {n} iterations: {grown.most_common(8)}"
    assert blocks2 - blocks < MAX_BLOCKS, \
        f"{blocks2 - blocks} more allocator blocks after {n} iterations"
    if MALLOC_IN_USE:
        assert malloced2 - malloced < MAX_MALLOC_BYTES, \
            f"malloc'd memory grew by {malloced2 - malloced} bytes after {n} iterations"


def test_items_buffered_in_a_dropped_channel_are_freed():
    ch = gochan.Chan(4)
    items = [Item(i) for i in range(3)]
    refs = [weakref.ref(item) for item in items]
    ch.send_many(items)
    del items, ch
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_a_context_cancelled_with_waiters_frees_them_and_itself():
    waiters = _Waiters(3)
    try:
        ctx, cancel = gochan.with_cancel(PARENT)
        payload = Item()
        child = gochan.with_value(ctx, KEY, payload)
        refs = [weakref.ref(ctx), weakref.ref(child), weakref.ref(payload)]
        waiters.block_on(child)
        cancel()
        waiters.wait_woken()
        del ctx, cancel, child, payload
        gc.collect()
        assert [r() for r in refs] == [None, None, None]
    finally:
        waiters.close()
