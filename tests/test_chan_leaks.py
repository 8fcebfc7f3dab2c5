"""References and memory: every path through a channel leaves reference counts and the live object
count as it found them, a channel destroyed with items buffered releases them, and reference
cycles through a channel are collected (DESIGN.md, "Ownership")."""

import gc
import os
import sys
import time
import tracemalloc
import weakref

import pytest

import gochan

from conftest import LONG, skip_unless_rss_is_meaningful, wait_for_receivers, wait_for_senders

#: Round trips for the big leak check: a million, or 200k where a million would take too long.
MILLION = 1_000_000
FALLBACK = 200_000


class Item:
    """A gc-tracked payload that supports weak references."""

    __slots__ = ("value", "__weakref__")

    def __init__(self, value=None):
        self.value = value


def _live_objects():
    gc.collect()
    return len(gc.get_objects())


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _round_trips():
    """A million round trips if that takes at most a few seconds here, else 200k."""
    ch = gochan.Chan(64)
    start = time.perf_counter()
    for i in range(20_000):
        ch.send([i])
        ch.recv()
    per_trip = (time.perf_counter() - start) / 20_000
    return MILLION if per_trip * MILLION < 4.0 else FALLBACK


def _assert_refcount_kept(fn, iterations):
    sentinel = object()
    fn(sentinel, 100)
    before = sys.getrefcount(sentinel)
    fn(sentinel, iterations)
    gc.collect()
    assert sys.getrefcount(sentinel) == before


# --- the value's reference count ----------------------------------------------------------------

def test_many_round_trips_of_fresh_objects_keep_the_live_object_count_flat():
    n = _round_trips()
    ch = gochan.Chan(64)
    send, recv = ch.send, ch.recv
    for i in range(1000):
        send([i])
        recv()
    before = _live_objects()
    for i in range(n):
        send([i])
        recv()
    growth = _live_objects() - before
    assert growth < 100, f"{growth} objects left alive after {n} round trips"


def test_round_trips_keep_traced_memory_flat():
    ch = gochan.Chan(64)
    send, recv = ch.send, ch.recv
    for i in range(1000):
        send(str(i))
        recv()
    tracemalloc.start()
    try:
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        for i in range(200_000):
            send(str(i))
            recv()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 256 * 1024, f"traced memory grew by {after - before} bytes"


def _send_recv(ch):
    def run(v, n):
        for _ in range(n):
            ch.send(v)
            ch.recv()
    return run


def _nowait(ch):
    def run(v, n):
        for _ in range(n):
            ch.send_nowait(v)
            ch.recv_nowait()
    return run


def _zero_timeouts(ch):
    def run(v, n):
        for _ in range(n):
            ch.send(v, timeout=0)
            ch.recv(timeout=0)
    return run


def _recv_ok(ch):
    def run(v, n):
        for _ in range(n):
            ch.send(v)
            ch.recv_ok(timeout=1.0)
    return run


def _many(ch):
    def run(v, n):
        batch = [v] * 8
        for _ in range(n // 8):
            ch.send_many(batch)
            ch.recv_many(8)
    return run


@pytest.mark.parametrize("make_loop", [_send_recv, _nowait, _zero_timeouts, _recv_ok, _many],
                         ids=["send-recv", "nowait", "timeout0", "recv_ok", "many"])
def test_successful_operations_keep_the_value_refcount(make_loop):
    _assert_refcount_kept(make_loop(gochan.Chan(16)), 100_000)


def test_would_block_send_keeps_the_value_refcount():
    ch = gochan.Chan(1)
    ch.send("full")

    def run(v, n):
        for _ in range(n):
            try:
                ch.send_nowait(v)
            except gochan.WouldBlock:
                pass
    _assert_refcount_kept(run, 100_000)


def test_zero_timeout_send_that_fails_keeps_the_value_refcount():
    ch = gochan.Chan(0)

    def run(v, n):
        for _ in range(n):
            try:
                ch.send(v, timeout=0)
            except TimeoutError:
                pass
    _assert_refcount_kept(run, 100_000)


def test_send_on_closed_channel_keeps_the_value_refcount():
    ch = gochan.Chan(1)
    ch.close()

    def run(v, n):
        for _ in range(n):
            try:
                ch.send(v)
            except gochan.ChannelClosed:
                pass
    _assert_refcount_kept(run, 100_000)


def test_timed_out_blocking_send_keeps_the_value_refcount():
    ch = gochan.Chan(0)

    def run(v, n):
        for _ in range(n):
            try:
                ch.send(v, timeout=0.0001)
            except TimeoutError:
                pass
    _assert_refcount_kept(run, 1000)


def test_send_many_that_times_out_keeps_the_value_refcount():
    ch = gochan.Chan(2)

    def run(v, n):
        for _ in range(n):
            try:
                ch.send_many([v, v, v], timeout=0)
            except TimeoutError:
                pass
            while len(ch):
                ch.recv_nowait()
    _assert_refcount_kept(run, 20_000)


def test_unbuffered_handoff_between_threads_keeps_the_value_refcount(spawn):
    sentinel = object()
    before = sys.getrefcount(sentinel)
    ch = gochan.Chan(0)
    n = 20_000

    def consume():
        for _ in range(n):
            ch.recv(timeout=LONG)

    consumer = spawn(consume)
    for _ in range(n):
        ch.send(sentinel, timeout=LONG)
    consumer.join()
    assert sys.getrefcount(sentinel) == before


def test_sender_woken_by_close_gets_its_reference_back(spawn):
    sentinel = object()
    before = sys.getrefcount(sentinel)
    ch = None

    def send_until_closed():
        try:
            ch.send(sentinel, timeout=LONG)
        except gochan.ChannelClosed:
            return "closed"
        return "sent"

    for _ in range(50):
        ch = gochan.Chan(0)
        sender = spawn(send_until_closed)
        wait_for_senders(ch, 1)
        ch.close()
        assert sender.join() == "closed"
    gc.collect()
    assert sys.getrefcount(sentinel) == before


# --- exception and result objects ---------------------------------------------------------------

@pytest.mark.parametrize("op", ["recv_nowait", "send_nowait", "recv_timeout0", "closed_recv",
                                "closed_recv_ok", "statistics", "views", "iterate_closed"])
def test_repeated_calls_keep_the_live_object_count_flat(op):
    empty, closed = gochan.Chan(0), gochan.Chan(1)
    closed.close()

    def once():
        if op == "recv_nowait":
            try:
                empty.recv_nowait()
            except gochan.WouldBlock:
                pass
        elif op == "send_nowait":
            try:
                empty.send_nowait(Item())
            except gochan.WouldBlock:
                pass
        elif op == "recv_timeout0":
            try:
                empty.recv(timeout=0)
            except TimeoutError:
                pass
        elif op == "closed_recv":
            try:
                closed.recv()
            except gochan.ChannelClosed:
                pass
        elif op == "closed_recv_ok":
            closed.recv_ok()
        elif op == "statistics":
            empty.statistics()
        elif op == "views":
            empty.send_only()
            empty.recv_only()
        elif op == "iterate_closed":
            for _ in closed:
                pass

    for _ in range(1000):
        once()
    before = _live_objects()
    for _ in range(50_000):
        once()
    growth = _live_objects() - before
    assert growth < 100, f"{growth} objects left alive after 50000 calls of {op}"


def test_creating_and_dropping_channels_keeps_memory_flat():
    skip_unless_rss_is_meaningful()

    def churn(n):
        for i in range(n):
            ch = gochan.Chan(i % 64)
            ch.send_only()
            ch.recv_only()
            ch.statistics()
            if ch.cap:
                ch.send_nowait(i)
            del ch

    churn(50_000)
    gc.collect()
    before = _rss_bytes()
    churn(300_000)
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 16 * 1024 * 1024, f"resident memory grew by {growth} bytes"


# --- buffered items belong to the channel -------------------------------------------------------

def test_buffered_items_are_kept_alive_by_the_channel():
    ch = gochan.Chan(3)
    refs = []
    for i in range(3):
        item = Item(i)
        refs.append(weakref.ref(item))
        ch.send(item)
    del item
    gc.collect()
    assert all(r() is not None for r in refs)
    assert [ch.recv().value for _ in range(3)] == [0, 1, 2]


@pytest.mark.parametrize("closed", [False, True], ids=["open", "closed"])
def test_destroying_a_channel_releases_its_buffered_items(closed):
    ch = gochan.Chan(4)
    refs = []
    for i in range(3):
        item = Item(i)
        refs.append(weakref.ref(item))
        ch.send(item)
    del item
    if closed:
        ch.close()
    del ch
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_buffered_items_live_as_long_as_a_view():
    ch = gochan.Chan(2)
    item = Item()
    ref = weakref.ref(item)
    ch.send(item)
    del item
    view = ch.recv_only()
    del ch
    gc.collect()
    assert ref() is not None
    del view
    gc.collect()
    assert ref() is None


def test_received_item_is_released_by_the_channel():
    ch = gochan.Chan(2)
    ch.send(Item())
    ref = weakref.ref(ch.recv())
    gc.collect()
    assert ref() is None
    del ch


def test_item_finalizer_may_use_gochan_while_the_channel_is_destroyed():
    events = gochan.Chan(4)

    class Reporter:
        def __del__(self):
            events.send_nowait("finalized")

    ch = gochan.Chan(2)
    ch.send(Reporter())
    ch.send(Reporter())
    del ch
    gc.collect()
    assert [events.recv_nowait(), events.recv_nowait()] == ["finalized", "finalized"]


def test_channel_destroyed_while_an_exception_propagates_finalizes_its_items():
    events = gochan.Chan(4)

    class Reporter:
        def __del__(self):
            events.send_nowait("finalized")

    def fail_with_a_full_channel():
        ch = gochan.Chan(1)
        ch.send(Reporter())
        raise KeyError("propagating")

    with pytest.raises(KeyError, match="propagating"):
        fail_with_a_full_channel()
    gc.collect()
    assert events.recv_nowait() == "finalized"


def test_exception_in_an_item_finalizer_is_reported_not_raised(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: reported.append(info.exc_type))

    class Exploding:
        def __del__(self):
            raise ZeroDivisionError("in __del__")

    ch = gochan.Chan(2)
    ch.send(Exploding())
    ch.send(Exploding())
    del ch
    gc.collect()
    assert reported == [ZeroDivisionError, ZeroDivisionError]


# --- cycles -------------------------------------------------------------------------------------

def test_channel_sent_into_itself_is_collected():
    ch = gochan.Chan(2)
    marker = Item()
    ref = weakref.ref(marker)
    ch.send(ch)
    ch.send(marker)
    del ch, marker
    gc.collect()
    assert ref() is None


def test_cycle_through_an_object_holding_the_channel_is_collected():
    ch = gochan.Chan(1)
    holder = Item(ch)
    ref = weakref.ref(holder)
    ch.send(holder)
    del ch, holder
    gc.collect()
    assert ref() is None


def test_cycle_through_a_view_is_collected():
    ch = gochan.Chan(1)
    holder = Item(ch.recv_only())
    ref = weakref.ref(holder)
    ch.send(holder)
    del ch, holder
    gc.collect()
    assert ref() is None


def test_cycle_through_a_closed_channel_is_collected():
    ch = gochan.Chan(1)
    holder = Item(ch)
    ref = weakref.ref(holder)
    ch.send(holder)
    ch.close()
    del ch, holder
    gc.collect()
    assert ref() is None


def test_cycle_whose_finalizer_touches_the_channel_is_collected():
    seen = []

    class Holder:
        def __init__(self, ch):
            self.ch = ch

        def __del__(self):
            seen.append((self.ch.cap, self.ch.closed))

    ch = gochan.Chan(1)
    ch.send(Holder(ch))
    del ch
    gc.collect()
    assert seen == [(1, False)]


def test_channel_traverses_its_buffered_items():
    ch = gochan.Chan(2)
    item = Item()
    ch.send(item)
    assert any(r is item for r in gc.get_referents(ch))


def test_blocked_receiver_keeps_nothing_after_the_handoff(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(lambda: type(ch.recv(timeout=LONG)).__name__)
    wait_for_receivers(ch, 1)
    item = Item()
    ref = weakref.ref(item)
    ch.send(item, timeout=LONG)
    del item
    assert receiver.join() == "Item"
    gc.collect()
    assert ref() is None
