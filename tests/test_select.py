"""gochan.select (API.md, "select"): one case completed, chosen at random among the ready ones
(or in order with biased=True), None channels never ready, default, timeout, ctx, and no
registration left behind. The tests headed "Port of" follow Go's own select tests."""

import gc
import math
import signal
import sys
import textwrap
import threading
import time
from collections import Counter

import pytest

import gochan
from conftest import LONG, wait_for_receivers, wait_for_senders
from gochan import Chan, Recv, Selected, Send, select



def stats(ch):
    st = ch.statistics()
    return st.waiting_senders, st.waiting_receivers


# --- results -------------------------------------------------------------------------------


def test_recv_case_returns_index_value_and_ok():
    a, b = Chan(1), Chan(1)
    b.send("x")
    result = select(Recv(a), Recv(b))
    assert result == (1, "x", True)
    assert isinstance(result, Selected) and isinstance(result, tuple)
    assert (result.index, result.value, result.ok) == (1, "x", True)


def test_a_result_still_held_is_not_changed_by_later_selects():
    # Results are values: a later select must never change one that is still referenced (as it
    # would if select recycled its result objects carelessly).
    a = Chan(4)
    for x in ("x", "y", "z"):
        a.send(x)
    first = select(Recv(a))
    second = select(Recv(a))
    held = {"third": select(Recv(Chan(1)), Recv(a))}
    nothing = select(Recv(a), default=True)
    assert first == (0, "x", True)
    assert second == (0, "y", True)
    assert held["third"] == (1, "z", True)
    assert nothing == (-1, None, False)
    assert first is not second and second is not held["third"]


def test_a_dropped_result_lets_go_of_its_value_by_the_next_select():
    import weakref

    class Payload:
        pass

    ch = Chan(1)
    payload = Payload()
    ref = weakref.ref(payload)
    ch.send(payload)
    del payload
    index, value, ok = select(Recv(ch))
    assert (index, ok) == (0, True) and value is ref()
    del value
    assert select(Recv(ch), default=True) == (-1, None, False)
    assert ref() is None


def test_send_case_returns_none_and_true():
    a = Chan(1)
    assert select(Send(a, 7)) == (0, None, True)
    assert a.recv_nowait() == 7


def test_recv_from_closed_and_drained_channel_gives_ok_false():
    a = Chan(2)
    a.send(1)
    a.close()
    assert select(Recv(a)) == (0, 1, True)
    assert select(Recv(a)) == (0, None, False)
    assert select(Recv(a)) == (0, None, False)


def test_send_on_closed_channel_raises_channel_closed():
    a = Chan(1)
    a.close()
    with pytest.raises(gochan.ChannelClosed, match="send on closed channel"):
        select(Send(a, 1))


def test_default_returns_minus_one_when_nothing_is_ready():
    a = Chan(0)
    assert select(Recv(a), Send(a, 1), default=True) == (-1, None, False)
    assert stats(a) == (0, 0)


def test_default_still_takes_a_ready_case():
    a = Chan(1)
    a.send(3)
    assert select(Recv(a), default=True) == (0, 3, True)


def test_no_cases_with_default_returns_at_once():
    assert select(default=True) == (-1, None, False)


def test_timeout_raises_timeout_error_and_leaves_no_registration():
    a, b = Chan(0), Chan(1)
    b.send("full")
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="select timed out"):
        select(Recv(a), Send(b, 1), timeout=0.05)
    assert time.monotonic() - start >= 0.05
    assert stats(a) == (0, 0) and stats(b) == (0, 0)
    assert b.recv_nowait() == "full"


def test_timeout_zero_tries_once():
    a = Chan(1)
    with pytest.raises(TimeoutError):
        select(Recv(a), timeout=0)
    a.send(1)
    assert select(Recv(a), timeout=0) == (0, 1, True)


def test_no_cases_waits_for_the_timeout():
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        select(timeout=0.05)
    assert time.monotonic() - start >= 0.05


def test_blocked_select_completes_when_a_sender_comes(spawn):
    a, b = Chan(0), Chan(0)
    worker = spawn(select, Recv(a), Recv(b), timeout=LONG)
    wait_for_receivers(a, 1)
    wait_for_receivers(b, 1)
    b.send("hello", timeout=LONG)
    assert worker.join() == (1, "hello", True)
    assert stats(a) == (0, 0) and stats(b) == (0, 0)


def test_blocked_select_send_completes_when_a_receiver_comes(spawn):
    a, b = Chan(0), Chan(0)
    worker = spawn(select, Send(a, "to-a"), Send(b, "to-b"), timeout=LONG)
    wait_for_senders(a, 1)
    wait_for_senders(b, 1)
    assert a.recv(timeout=LONG) == "to-a"
    assert worker.join() == (0, None, True)
    # The other value was not sent.
    with pytest.raises(gochan.WouldBlock):
        b.recv_nowait()
    assert stats(b) == (0, 0)


def test_close_wakes_a_blocked_select(spawn):
    a, b = Chan(0), Chan(0)
    worker = spawn(select, Recv(a), Recv(b), timeout=LONG)
    wait_for_receivers(b, 1)
    b.close()
    assert worker.join() == (1, None, False)


def test_close_wakes_a_blocked_select_send_with_channel_closed(spawn):
    a = Chan(0)
    worker = spawn(select, Send(a, 1), timeout=LONG)
    wait_for_senders(a, 1)
    a.close()
    assert isinstance(worker.exception(), gochan.ChannelClosed)


def test_statistics_count_a_blocked_select_on_every_case(spawn):
    """API.md: a thread blocked in select waits on the channel of every one of its cases."""
    a, b, c = Chan(0), Chan(0), Chan(1)
    c.send("full")
    worker = spawn(select, Recv(a), Recv(b), Send(c, 1), timeout=LONG)
    wait_for_receivers(a, 1)
    wait_for_receivers(b, 1)
    wait_for_senders(c, 1)
    a.send("go", timeout=LONG)
    assert worker.join() == (0, "go", True)
    assert stats(a) == stats(b) == stats(c) == (0, 0)


def test_many_cases_beyond_the_stack_array():
    chans = [Chan(1) for _ in range(40)]
    chans[33].send("deep")
    assert select(*[Recv(ch) for ch in chans]) == (33, "deep", True)
    assert select(*[Recv(ch) for ch in chans], default=True) == (-1, None, False)


def test_many_cases_blocked(spawn):
    chans = [Chan(0) for _ in range(20)]
    worker = spawn(select, *[Recv(ch) for ch in chans], timeout=LONG)
    for ch in chans:
        wait_for_receivers(ch, 1)
    chans[17].send(17, timeout=LONG)
    assert worker.join() == (17, 17, True)
    assert all(stats(ch) == (0, 0) for ch in chans)


# --- nil channels ----------------------------------------------------------------------------


def test_none_channel_is_never_ready():
    a = Chan(1)
    a.send(1)
    for _ in range(50):
        assert select(Recv(None), Send(None, 2), Recv(a), default=True).index == 2
        a.send(1)


def test_only_none_cases_block_until_timeout():
    with pytest.raises(TimeoutError):
        select(Recv(None), Send(None, 1), timeout=0.02)


def test_port_of_go_nil_channels_switch_cases_off():
    """Port of the nil-channel idiom of Go's test/chan/select.go and powser: merge two streams,
    switching a case off (ch = None) once its channel is closed."""
    a, b = Chan(4), Chan(4)
    a.send_many([1, 2, 3])
    b.send_many([10, 20])
    a.close()
    b.close()
    ra, rb, got = a, b, []
    while ra is not None or rb is not None:
        index, value, ok = select(Recv(ra), Recv(rb), timeout=LONG)
        if not ok:
            if index == 0:
                ra = None
            else:
                rb = None
            continue
        got.append(value)
    assert sorted(got) == [1, 2, 3, 10, 20]


# --- choice -------------------------------------------------------------------------------


def test_port_of_go_select_fairness():
    """Port of Go's TestSelectFairness (src/runtime/chan_test.go): with two ready channels every
    case wins about half the time; here with four ready cases, each within 10% of uniform."""
    trials = 20000
    chans = [Chan(trials) for _ in range(4)]
    for i, ch in enumerate(chans):
        ch.send_many([i] * trials)
    counts = Counter(select(*[Recv(ch) for ch in chans]).index for _ in range(trials))
    expected = trials / 4
    for i in range(4):
        assert abs(counts[i] - expected) < 0.1 * expected, counts


def test_same_channel_in_several_cases_is_chosen_uniformly():
    ch = Chan(1)
    counts = Counter()
    for _ in range(8000):
        ch.send(1)
        counts[select(Recv(ch), Recv(ch), Recv(ch), Recv(ch)).index] += 1
    for i in range(4):
        assert abs(counts[i] - 2000) < 200, counts


def test_same_channel_in_send_and_recv_cases():
    """A buffered channel with room and a value: both cases are ready, one completes."""
    ch = Chan(2)
    ch.send("old")
    seen = Counter()
    for _ in range(2000):
        index, value, ok = select(Send(ch, "new"), Recv(ch))
        seen[index] += 1
        assert ok
        # Keep exactly one value in the channel.
        if index == 0:
            ch.recv_nowait()
        else:
            ch.send("old")
    assert seen[0] > 800 and seen[1] > 800, seen


def test_biased_picks_the_first_ready_case_in_argument_order():
    chans = [Chan(10) for _ in range(3)]
    for ch in chans:
        ch.send_many(range(10))
    for _ in range(10):
        assert select(Recv(None), *[Recv(ch) for ch in chans], biased=True).index == 1
    assert select(*[Recv(ch) for ch in chans], biased=True).index == 1  # chans[0] now empty


def test_biased_false_is_the_default():
    assert select(Recv(Chan(0)), biased=False, default=True).index == -1


# --- channels of every kind ------------------------------------------------------------------


def test_views_work_in_cases():
    ch = Chan(1)
    assert select(Send(ch.send_only(), 5)) == (0, None, True)
    assert select(Recv(ch.recv_only())) == (0, 5, True)


def test_wrong_view_direction_is_a_type_error():
    ch = Chan(1)
    with pytest.raises(TypeError, match="receive"):
        Recv(ch.send_only())
    with pytest.raises(TypeError, match="send"):
        Send(ch.recv_only(), 1)


def test_after_channel_works_as_a_case():
    never = Chan(0)
    index, value, ok = select(Recv(never), Recv(gochan.after(0.01)), timeout=LONG)
    assert (index, ok) == (1, True)
    assert isinstance(value, float) and value <= time.monotonic()


def test_timer_and_ticker_channels_work_as_cases():
    timer = gochan.Timer(0.01)
    with gochan.Ticker(0.005) as ticker:
        seen = set()
        while len(seen) < 2:
            index, value, ok = select(Recv(timer.c), Recv(ticker.c), timeout=LONG)
            assert ok and isinstance(value, float)
            seen.add(index)
    timer.stop()


def test_ctx_done_works_as_a_case(spawn):
    ctx, cancel = gochan.with_cancel(gochan.background())
    never = Chan(0)
    worker = spawn(select, Recv(never), Recv(ctx.done()), timeout=LONG)
    wait_for_receivers(never, 1)
    cancel()
    assert worker.join() == (1, None, False)


# --- contexts ----------------------------------------------------------------------------


def test_ctx_cancel_wakes_a_blocked_select_and_raises_its_error(spawn):
    ctx, cancel = gochan.with_cancel(gochan.background())
    a = Chan(0)
    worker = spawn(select, Recv(a), Send(a, 1), ctx=ctx)
    wait_for_receivers(a, 1)
    wait_for_senders(a, 1)
    start = time.monotonic()
    cancel()
    assert isinstance(worker.exception(), gochan.Cancelled)
    assert time.monotonic() - start < 2
    assert stats(a) == (0, 0)


def test_done_ctx_raises_before_trying_a_ready_case():
    ctx, cancel = gochan.with_cancel(gochan.background())
    cancel()
    a = Chan(1)
    a.send(1)
    with pytest.raises(gochan.Cancelled):
        select(Recv(a), ctx=ctx)
    with pytest.raises(gochan.Cancelled):
        select(Recv(a), ctx=ctx, default=True)
    assert a.recv_nowait() == 1


def test_ctx_deadline_raises_deadline_exceeded():
    ctx, cancel = gochan.with_timeout(gochan.background(), 0.02)
    with pytest.raises(gochan.DeadlineExceeded):
        select(Recv(Chan(0)), ctx=ctx)
    cancel()


def test_no_cases_with_ctx_waits_for_the_context(spawn):
    ctx, cancel = gochan.with_cancel(gochan.background())
    worker = spawn(select, ctx=ctx)
    time.sleep(0.02)
    cancel()
    assert isinstance(worker.exception(), gochan.Cancelled)


# --- Go's select tests, ported ----------------------------------------------------------------


def test_port_of_go_self_select():
    """Port of Go's TestSelfSelect (src/runtime/chan_test.go): two threads select on the same
    unbuffered channel, each with both a send and a receive case; a thread must never be paired
    with itself, so each value received comes from the other thread."""
    for cap in (0, 1):
        ch = Chan(cap)
        errors = []

        def run(p):
            for i in range(400):
                if (p == 0 or i % 2 == 0):
                    index, value, ok = select(Send(ch, p), Recv(ch), timeout=LONG)
                else:
                    index, value, ok = select(Recv(ch), Send(ch, p), timeout=LONG)
                    index = 1 - index
                if index == 1 and cap == 0 and value == p:
                    errors.append(f"thread {p} received its own value")
            return None

        threads = [threading.Thread(target=run, args=(p,)) for p in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(LONG * 3)
            assert not t.is_alive()
        assert not errors, errors[:3]


def test_port_of_go_doubleselect():
    """Port of Go's test/chan/doubleselect.go: a sender selects among four channels for every
    value; several receivers read each channel; every value arrives exactly once."""
    n = 4000
    chans = [Chan(0) for _ in range(4)]
    got = []
    lock = threading.Lock()

    def sender():
        for i in range(n):
            select(*[Send(ch, i) for ch in chans], timeout=LONG)
        for ch in chans:
            ch.close()

    def receiver(ch):
        mine = list(ch)
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=sender)]
    threads += [threading.Thread(target=receiver, args=(ch,)) for ch in chans for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LONG * 3)
        assert not t.is_alive()
    assert sorted(got) == list(range(n))


# Port of Go's test/chan/select3.go: which selects block and which do not.
_never = object()


def _blocks(fn):
    """True if fn() is still blocked after a while (it is then released by a timeout)."""
    try:
        fn(0.05)
    except TimeoutError:
        return True
    return False


def test_port_of_go_select3_blocking_matrix():
    closed = Chan(0)
    closed.close()
    ready = Chan(1)

    # Receive from a nil channel blocks; so does a select of nil cases only.
    assert _blocks(lambda t: select(Recv(None), timeout=t))
    assert _blocks(lambda t: select(Send(None, 1), timeout=t))
    assert _blocks(lambda t: select(Recv(None), Send(None, 1), timeout=t))
    # An empty select blocks.
    assert _blocks(lambda t: select(timeout=t))
    # Receives from closed channels never block.
    assert not _blocks(lambda t: select(Recv(closed), timeout=t))
    assert not _blocks(lambda t: select(Recv(None), Recv(closed), timeout=t))
    # An unbuffered channel with no partner blocks, with or without a nil case.
    assert _blocks(lambda t: select(Recv(Chan(0)), timeout=t))
    assert _blocks(lambda t: select(Send(Chan(0), 1), Recv(None), timeout=t))
    # A buffered channel with room does not block a send; an empty one blocks a receive.
    assert not _blocks(lambda t: select(Send(ready, 1), timeout=t))
    assert not _blocks(lambda t: select(Recv(ready), timeout=t))
    assert _blocks(lambda t: select(Recv(ready), timeout=t))
    # Selects with default never block.
    assert select(Recv(None), default=True).index == -1
    assert select(Recv(Chan(0)), Send(Chan(0), 1), default=True).index == -1
    # Send on a closed channel raises rather than blocking, even next to a nil case.
    with pytest.raises(gochan.ChannelClosed):
        select(Send(closed, 1), Recv(None), timeout=LONG)


def test_select_stress_against_close(spawn):
    """Senders and receivers select over four channels while each channel is closed at a random
    moment: every value is either received once or reported as not sent (ChannelClosed)."""
    for _ in range(3):
        chans = [Chan(cap) for cap in (0, 1, 0, 8)]
        sent, received = [], []
        lock = threading.Lock()

        def send_all(base):
            mine = []
            for i in range(base, base + 2000):
                open_cases = [Send(ch, i) for ch in chans]
                try:
                    select(*open_cases, timeout=LONG)
                except gochan.ChannelClosed:
                    return mine  # some channel closed: stop (value not sent)
                mine.append(i)
            return mine

        def recv_all():
            mine = []
            live = list(chans)
            while any(c is not None for c in live):
                index, value, ok = select(*[Recv(c) for c in live], timeout=LONG)
                if ok:
                    mine.append(value)
                else:
                    live[index] = None
            return mine

        senders = [spawn(send_all, b) for b in (0, 100000)]
        receivers = [spawn(recv_all) for _ in range(2)]
        time.sleep(0.01)
        for ch in chans:
            ch.close()
            time.sleep(0.001)
        for s in senders:
            sent += s.join()
        for r in receivers:
            received += r.join()
        assert sorted(received) == sorted(sent)


# --- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1, None, "x", Chan(0), (Recv, None)])
def test_non_case_arguments_are_a_type_error(bad):
    with pytest.raises(TypeError, match="gochan.Recv or gochan.Send"):
        select(Recv(Chan(1)), bad)


def test_send_values_are_not_leaked_when_a_bad_case_follows():
    value = object()
    before = sys.getrefcount(value)
    for _ in range(100):
        with pytest.raises(TypeError):
            select(Send(Chan(1), value), 42)
    gc.collect()
    assert sys.getrefcount(value) == before


@pytest.mark.parametrize("timeout", [-1, -0.5, math.nan])
def test_bad_timeout_is_a_value_error(timeout):
    with pytest.raises(ValueError, match="timeout"):
        select(Recv(Chan(0)), timeout=timeout)


def test_timeout_of_wrong_type_is_a_type_error():
    with pytest.raises(TypeError):
        select(Recv(Chan(0)), timeout="1")


def test_bad_ctx_is_a_type_error():
    with pytest.raises(TypeError, match="ctx"):
        select(Recv(Chan(0)), ctx=42)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'defualt'"):
        select(Recv(Chan(0)), defualt=True)


def test_case_constructors_check_their_arguments():
    with pytest.raises(TypeError):
        Recv()
    with pytest.raises(TypeError):
        Recv(Chan(0), 1)
    with pytest.raises(TypeError):
        Send(Chan(0))
    with pytest.raises(TypeError, match="channel"):
        Recv(42)
    with pytest.raises(TypeError, match="unexpected keyword"):
        Recv(chan=Chan(0))
    ch = Chan(0)
    assert Recv(ch=ch).ch is ch
    case = Send(ch=ch, value=3)
    assert case.ch is ch and case.value == 3
    assert Recv(None).ch is None


def test_cases_have_a_repr_and_cannot_be_pickled():
    import pickle

    ch = Chan(0)
    assert repr(Recv(ch)).startswith("gochan.Recv(<gochan.Chan")
    assert repr(Send(None, 5)) == "gochan.Send(None, 5)"
    with pytest.raises(TypeError):
        pickle.dumps(Recv(ch))


def test_case_types_are_final():
    with pytest.raises(TypeError):
        type("Sub", (Recv,), {})


# --- references and memory ----------------------------------------------------------------


def test_refcounts_stay_balanced_over_many_selects():
    value = object()
    a, b = Chan(1), Chan(1)
    base = sys.getrefcount(value)
    for i in range(2000):
        index, _, _ = select(Send(a, value), Send(b, value))
        (a if index == 0 else b).recv_nowait()
    assert sys.getrefcount(value) == base


def test_memory_stays_flat_over_many_selects():
    import tracemalloc

    a = Chan(1)
    cases = [Recv(a), Send(a, "x")]

    def run(n):
        for _ in range(n):
            select(*cases)

    run(20000)
    tracemalloc.start()
    try:
        snap1 = tracemalloc.take_snapshot()
        run(100000)
        gc.collect()
        snap2 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in snap2.compare_to(snap1, "filename"))
    assert grown < 64 * 1024, grown


def test_a_case_holding_its_channel_in_a_cycle_is_collected():
    import weakref

    ch = Chan(1)
    case = Send(ch, None)
    ch.send(case)  # the channel buffers the case that holds the channel
    ref = weakref.ref(ch)
    del ch, case
    gc.collect()
    assert ref() is None


# --- Ctrl-C --------------------------------------------------------------------------------


def test_sigint_interrupts_a_blocked_select_without_effect(child):
    script = textwrap.dedent("""
        import threading, time, sys
        import gochan
        from gochan import Chan, Recv, Send, select
        a, b = Chan(0), Chan(1)
        b.send("full")
        def watch():
            while a.statistics().waiting_receivers != 1 or b.statistics().waiting_senders != 1:
                time.sleep(0.001)
            print("ready", flush=True)
        threading.Thread(target=watch, daemon=True).start()
        try:
            select(Recv(a), Send(b, "payload"))
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        print("unchanged", a.statistics().waiting_receivers, b.statistics().waiting_senders,
              b.recv_nowait(), len(b), flush=True)
    """)
    proc = child(script)
    proc.expect("ready")
    time.sleep(0.05)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.expect("interrupted")
    assert time.monotonic() - start < 2.0
    proc.expect("unchanged 0 0 full 0")
    returncode, _, stderr = proc.finish()
    assert returncode == 0, stderr


def test_sigint_interrupts_a_select_with_no_cases(child):
    script = textwrap.dedent("""
        import gochan
        print("ready", flush=True)
        try:
            gochan.select()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    proc = child(script)
    proc.expect("ready")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.expect("interrupted")
    returncode, _, stderr = proc.finish()
    assert returncode == 0, stderr
