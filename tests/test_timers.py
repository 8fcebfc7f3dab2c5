"""Timers (API.md, "Timers"): after, sleep, Timer, after_func and Ticker, with Go 1.23's
semantics: stop()/reset() report whether the timer was pending and leave no stale value behind, a
slow ticker receiver gets one tick rather than a backlog, and every timer is driven by one runtime
thread that never takes the GIL. Several tests are ports of Go's own tests (src/time/sleep_test.go
and src/time/tick_test.go), each headed by its source. Timing assertions are loose: a bound is
never tighter than ten times what is expected."""

import gc
import math
import os
import signal
import sys
import textwrap
import threading
import time
import weakref

import pytest

import gochan

from conftest import LONG, run_python, skip_unless_rss_is_meaningful, wait_until

#: A delay short enough to keep the suite fast, long enough to be measured.
D = 0.02


def _stats():
    """(timers in the runtime heap, dispatcher tasks queued)."""
    return gochan._core._timer_stats()


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- after -------------------------------------------------------------------------------------

# Port of Go's time.TestAfter (src/time/sleep_test.go).
def test_after_receives_the_firing_time_once_and_not_early():
    start = time.monotonic()
    fired = gochan.after(D).recv(timeout=LONG)
    elapsed = time.monotonic() - start
    assert isinstance(fired, float)
    assert fired >= start + D
    assert elapsed >= D
    assert fired <= time.monotonic()


def test_after_sends_exactly_one_value():
    ch = gochan.after(0.001)
    ch.recv(timeout=LONG)
    with pytest.raises(TimeoutError):
        ch.recv(timeout=5 * D)


def test_after_zero_is_ready_at_once():
    before = time.monotonic()
    ch = gochan.after(0)
    value = ch.recv_nowait()
    assert before <= value <= time.monotonic()


def test_after_returns_a_receive_only_channel():
    ch = gochan.after(LONG)
    assert isinstance(ch, gochan.RecvChan)
    assert not hasattr(ch, "send")
    assert ch.cap == 1 and len(ch) == 0 and not ch.closed


def test_after_with_an_int_and_with_infinity():
    assert gochan.after(0).recv_nowait() > 0
    never = gochan.after(math.inf)
    with pytest.raises(TimeoutError):
        never.recv(timeout=D)


def test_dropped_after_leaves_the_runtime_heap():
    base = _stats()[0]
    ch = gochan.after(LONG)
    assert _stats()[0] == base + 1
    del ch
    assert _stats()[0] == base


# A timer must fire while the main thread holds the GIL in pure Python: the timer thread never
# needs it.
def test_timer_fires_while_the_main_thread_keeps_the_gil():
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1000)  # nothing else gets the GIL while we spin
    try:
        ch = gochan.after(D)
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < 15 * D:
            n += 1
        end = time.monotonic()
        assert len(ch) == 1
        fired = ch.recv_nowait()
    finally:
        sys.setswitchinterval(switch)
    assert start <= fired < end
    assert fired < start + 10 * D


# --- Timer -------------------------------------------------------------------------------------

def test_timer_fires_on_its_channel():
    start = time.monotonic()
    t = gochan.Timer(D)
    fired = t.c.recv(timeout=LONG)
    assert fired >= start + D
    assert t.stop() is False  # fired and received: not pending


# Port of Go's time.TestAfterStop (src/time/sleep_test.go).
def test_stopped_timers_and_after_funcs_never_fire():
    ran = threading.Event()
    f = gochan.after_func(2 * D, ran.set)
    t = gochan.Timer(2 * D)
    assert f.stop() is True
    assert t.stop() is True
    gochan.after(4 * D).recv(timeout=LONG)
    with pytest.raises(gochan.WouldBlock):
        t.c.recv_nowait()
    assert not ran.is_set()
    assert f.stop() is False
    assert t.stop() is False


# Port of Go's time.TestReset (src/time/sleep_test.go), with Go 1.23's return values.
def test_reset_moves_the_deadline():
    d = 5 * D
    t = gochan.Timer(2 * d)
    time.sleep(d)
    assert t.reset(3 * d) is True  # still pending
    time.sleep(2 * d)
    with pytest.raises(gochan.WouldBlock):  # the old deadline (2d) has passed: moved
        t.c.recv_nowait()
    t.c.recv(timeout=LONG)
    assert t.reset(d) is False  # fired and received


def test_fired_but_unreceived_value_counts_as_pending_and_is_discarded_by_stop():
    t = gochan.Timer(0.001)
    wait_until(lambda: len(t.c) == 1)
    assert t.stop() is True
    with pytest.raises(gochan.WouldBlock):
        t.c.recv_nowait()
    assert t.stop() is False


# Go 1.23's synchronous timer channels (src/time/sleep_test.go, TestChan* and the "no stale
# value after Reset" guarantee): after reset(), the next value received is the new one.
def test_no_stale_value_after_reset():
    t = gochan.Timer(0.001)
    wait_until(lambda: len(t.c) == 1)
    before_reset = time.monotonic()
    assert t.reset(2 * D) is True
    assert len(t.c) == 0
    fired = t.c.recv(timeout=LONG)
    assert fired >= before_reset + 2 * D


def test_no_stale_value_after_many_resets_racing_the_timer():
    t = gochan.Timer(0)
    for _ in range(2000):
        marker = time.monotonic()
        t.reset(0.0001)
        fired = t.c.recv(timeout=LONG)
        assert fired >= marker  # never a value from before this reset
    t.stop()


def test_reset_after_stop_rearms_and_zero_fires_at_once():
    t = gochan.Timer(LONG)
    t.stop()
    assert t.reset(0) is False
    assert t.c.recv_nowait() > 0
    assert t.reset(D) is False
    t.c.recv(timeout=LONG)


def test_timer_keeps_running_while_only_its_channel_is_held():
    c = gochan.Timer(D).c
    c.recv(timeout=LONG)


def test_timer_repr_and_weakref():
    t = gochan.Timer(LONG)
    assert "fires in" in repr(t)
    t.stop()
    assert "stopped" in repr(t)
    r = weakref.ref(t)
    del t
    gc.collect()
    assert r() is None


# Port of Go's time.TestTimerStopStress (src/time/sleep_test.go), scaled down: many timers
# stopped well before they are due never fire.
def test_many_timers_stopped_before_they_fire():
    ran = []
    timers = [gochan.after_func(1.0, ran.append, i) for i in range(100)]
    chans = [gochan.Timer(1.0) for _ in range(100)]
    time.sleep(0.1)
    assert all(t.stop() for t in timers)
    assert all(t.stop() for t in chans)
    time.sleep(1.2)
    assert ran == []
    assert all(len(t.c) == 0 for t in chans)


# --- after_func ----------------------------------------------------------------------------------

def test_after_func_runs_fn_with_its_args_in_another_thread():
    got = []
    done = threading.Event()

    def fn(a, b):
        got.append((a, b, threading.get_ident()))
        done.set()

    start = time.monotonic()
    t = gochan.after_func(D, fn, 1, b"x")
    assert t.c is None
    assert done.wait(LONG)
    assert time.monotonic() - start >= D
    assert got[0][:2] == (1, b"x")
    assert got[0][2] != threading.get_ident()
    assert t.stop() is False


def test_after_func_reset_runs_it_again():
    count = []
    t = gochan.after_func(0, count.append, 1)
    wait_until(lambda: len(count) == 1)
    assert t.reset(D) is False
    wait_until(lambda: len(count) == 2)
    assert t.reset(LONG) is False
    assert t.reset(LONG) is True
    assert t.stop() is True
    time.sleep(2 * D)
    assert len(count) == 2


# Port of Go's time.TestAfterFuncStarvation (src/time/sleep_test.go): callbacks still run while
# other threads keep every CPU busy.
def test_after_func_runs_while_other_threads_are_busy():
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            sum(range(100))

    threads = [threading.Thread(target=busy, daemon=True) for _ in range(4)]
    for th in threads:
        th.start()
    try:
        ran = threading.Event()
        for _ in range(20):
            ran.clear()
            gochan.after_func(0.001, ran.set)
            assert ran.wait(LONG)
    finally:
        stop.set()
        for th in threads:
            th.join(LONG)


def test_after_func_exception_is_reported_not_lost(monkeypatch):
    seen = []
    done = threading.Event()

    def hook(args):
        seen.append(args.exc_value)
        done.set()

    monkeypatch.setattr(threading, "excepthook", hook)

    def boom():
        raise ValueError("from after_func")

    gochan.after_func(0, boom)
    assert done.wait(LONG)
    assert isinstance(seen[0], ValueError)


def test_pending_after_func_keeps_its_callable_alive_and_releases_it_after():
    class Fn:
        def __init__(self):
            self.called = threading.Event()

        def __call__(self):
            self.called.set()

    # The check must run before the timer fires. On a loaded machine even 0.5 s can pass first;
    # then that try proves nothing, and the next one waits four times as long.
    for delay in (0.5, 2.0, 8.0):
        fn = Fn()
        r = weakref.ref(fn)
        gochan.after_func(delay, fn)  # the Timer is dropped at once
        called = fn.called
        del fn
        gc.collect()
        alive = r() is not None
        if called.is_set():
            assert called.wait(LONG)
            continue  # fired before the check: inconclusive, try a longer delay
        assert alive  # kept by the pending timer
        break
    else:
        pytest.fail("the timer fired before the check every time")
    assert called.wait(LONG)
    wait_until(lambda: (gc.collect(), r() is None)[1])


def test_stopped_after_func_releases_its_callable():
    class Fn:
        def __call__(self):
            pass

    fn = Fn()
    r = weakref.ref(fn)
    t = gochan.after_func(LONG, fn, fn)
    del fn
    assert t.stop() is True
    del t
    gc.collect()
    assert r() is None


def test_after_func_cycle_through_its_callable_is_collected():
    class Holder:
        pass

    h = Holder()
    h.timer = gochan.after_func(LONG, lambda: h)
    h.timer.stop()
    r = weakref.ref(h)
    del h
    gc.collect()
    assert r() is None


# --- sleep ---------------------------------------------------------------------------------------

# Port of Go's time.TestSleep (src/time/sleep_test.go).
def test_sleep_sleeps_at_least_the_delay():
    start = time.monotonic()
    gochan.sleep(D)
    elapsed = time.monotonic() - start
    assert D <= elapsed < 10 * D + 1


def test_sleep_zero_returns_at_once_and_lets_other_threads_run(spawn):
    start = time.monotonic()
    gochan.sleep(0)
    assert time.monotonic() - start < 1.0
    ticks = []
    w = spawn(lambda: [ticks.append(1) or time.sleep(0.001) for _ in range(5)])
    gochan.sleep(0.2)  # the GIL is free meanwhile
    w.join()
    assert len(ticks) == 5


def test_sleep_with_a_context_ends_early_when_it_is_cancelled():
    ctx, cancel = gochan.with_cancel(gochan.background())
    gochan.after_func(D, cancel)
    start = time.monotonic()
    with pytest.raises(gochan.Cancelled):
        gochan.sleep(LONG, ctx=ctx)
    assert time.monotonic() - start < LONG / 2
    with pytest.raises(gochan.Cancelled):  # already done: raises before sleeping
        gochan.sleep(0, ctx=ctx)


def test_sleep_with_a_deadline_context_raises_deadline_exceeded():
    ctx, cancel = gochan.with_timeout(gochan.background(), D)
    try:
        with pytest.raises(gochan.DeadlineExceeded):
            gochan.sleep(LONG, ctx=ctx)
    finally:
        cancel()


def test_sleep_with_a_context_that_stays_alive_sleeps_the_whole_delay():
    ctx, cancel = gochan.with_cancel(gochan.background())
    start = time.monotonic()
    gochan.sleep(D, ctx=ctx)
    assert time.monotonic() - start >= D
    cancel()
    gochan.sleep(D, ctx=gochan.background())


# --- Ticker --------------------------------------------------------------------------------------

# Port of Go's time.TestTicker (src/time/tick_test.go): ticks at the period, then at the new
# period after reset().
def test_ticker_ticks_at_its_period_and_after_reset_at_the_new_one():
    delta = D
    count = 10
    tk = gochan.Ticker(delta)
    start = time.monotonic()
    for _ in range(count // 2):
        tk.c.recv(timeout=LONG)
    tk.reset(2 * delta)
    for _ in range(count // 2):
        tk.c.recv(timeout=LONG)
    tk.stop()
    elapsed = time.monotonic() - start
    target = 3 * delta * (count // 2)
    assert target * 0.8 <= elapsed < target * 10


def test_ticker_count_over_a_period_is_about_right():
    with gochan.Ticker(0.01) as tk:
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < 0.5:
            try:
                tk.c.recv(timeout=0.5)
                n += 1
            except TimeoutError:
                break
    assert 5 <= n <= 51  # 50 expected


# Port of Go's time.TestTickerStopWithDirectInitialization (src/time/tick_test.go): stop() is
# safe in any state, and repeated.
def test_ticker_stop_is_idempotent_and_reset_restarts_it():
    tk = gochan.Ticker(LONG)
    tk.stop()
    tk.stop()
    tk.reset(0.001)
    tk.c.recv(timeout=LONG)
    tk.stop()


# Port of Go's time.TestTickerResetLikeTimer (src/time/tick_test.go): a long ticker reset to a
# short interval ticks soon.
def test_ticker_reset_to_a_short_interval_ticks_soon():
    tk = gochan.Ticker(3600)
    start = time.monotonic()
    tk.reset(0.001)
    tk.c.recv(timeout=LONG)
    assert time.monotonic() - start < LONG
    tk.stop()


def test_slow_ticker_receiver_gets_one_tick_not_a_backlog():
    tk = gochan.Ticker(0.005)
    first_due = time.monotonic() + 0.005
    time.sleep(0.2)  # about 40 ticks go by
    woke = time.monotonic()
    assert len(tk.c) == 1
    tick = tk.c.recv_nowait()
    assert tick < first_due + 0.1  # the first undelivered tick is kept, not the latest
    # No backlog follows.  A new tick may already have come (this thread can be descheduled
    # for a period on a loaded machine), but none of the ticks missed while asleep.
    try:
        later = tk.c.recv_nowait()
    except gochan.WouldBlock:
        pass
    else:
        assert later >= woke
    tk.stop()


def test_no_tick_after_stop():
    tk = gochan.Ticker(0.001)
    wait_until(lambda: len(tk.c) == 1)
    tk.stop()
    assert len(tk.c) == 0
    with pytest.raises(TimeoutError):
        tk.c.recv(timeout=5 * D)


def test_iterating_a_ticker_yields_ticks_until_stop():
    ticks = []
    with gochan.Ticker(0.001) as tk:
        for t in tk:
            ticks.append(t)
            if len(ticks) == 3:
                tk.stop()
    assert len(ticks) == 3
    assert ticks == sorted(ticks)


def test_stop_from_another_thread_ends_a_blocked_iteration(spawn):
    tk = gochan.Ticker(3600)
    w = spawn(lambda: list(tk))
    wait_until(lambda: w.thread.is_alive())
    time.sleep(0.05)
    tk.stop()
    assert w.join() == []


def test_with_stops_the_ticker():
    with gochan.Ticker(0.001) as tk:
        tk.c.recv(timeout=LONG)
    assert len(tk.c) == 0
    with pytest.raises(TimeoutError):
        tk.c.recv(timeout=5 * D)


# --- bad input (like Go's TestNewTimerNilChannel / NewTicker panics) ---------------------------

@pytest.mark.parametrize("bad", [-1, -0.001, float("nan"), float("-inf")])
@pytest.mark.parametrize("call", ["after", "Timer", "sleep", "after_func", "reset"])
def test_negative_or_nan_durations_raise_value_error(call, bad):
    with pytest.raises(ValueError, match="seconds"):
        if call == "after":
            gochan.after(bad)
        elif call == "Timer":
            gochan.Timer(bad)
        elif call == "sleep":
            gochan.sleep(bad)
        elif call == "after_func":
            gochan.after_func(bad, print)
        else:
            gochan.Timer(LONG).reset(bad)


@pytest.mark.parametrize("bad", ["1", None, [1], b"1", 1j])
@pytest.mark.parametrize("call", ["after", "Timer", "sleep", "Ticker"])
def test_non_numbers_raise_type_error(call, bad):
    with pytest.raises(TypeError, match="number"):
        getattr(gochan, call)(bad)


@pytest.mark.parametrize("bad", [0, -1, 0.0, float("nan"), float("inf")])
def test_ticker_interval_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="interval"):
        gochan.Ticker(bad)
    tk = gochan.Ticker(LONG)
    with pytest.raises(ValueError, match="interval"):
        tk.reset(bad)
    tk.stop()


def test_after_func_needs_a_callable_and_the_right_arguments():
    with pytest.raises(TypeError, match="callable"):
        gochan.after_func(1, 42)
    with pytest.raises(TypeError):
        gochan.after_func(1)
    with pytest.raises(TypeError):
        gochan.sleep(1, timeout=2)
    with pytest.raises(TypeError):
        gochan.sleep()
    with pytest.raises(TypeError):
        gochan.Timer(LONG).reset()


def test_sleep_rejects_something_that_is_not_a_context():
    with pytest.raises(TypeError):
        gochan.sleep(0.001, ctx=object())


def test_timer_types_are_final():
    for cls in (gochan.Timer, gochan.Ticker):
        with pytest.raises(TypeError):
            type("Sub", (cls,), {})


def test_huge_durations_mean_never():
    t = gochan.Timer(10**30)
    assert "stopped" in repr(t)
    assert t.stop() is False
    with pytest.raises(TimeoutError):
        gochan.after(10**30).recv(timeout=D)


# --- processes: Ctrl-C, fork, exit --------------------------------------------------------------

@pytest.mark.parametrize("call", ["gochan.sleep(30)", "gochan.after(30).recv()",
                                  "next(iter(gochan.Ticker(30)))"])
def test_ctrl_c_interrupts_a_timer_wait_in_the_main_thread(child, call):
    proc = child(textwrap.dedent(f"""
        import time, gochan
        print("ready", flush=True)
        start = time.monotonic()
        try:
            {call}
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - start < 20, flush=True)
    """))
    proc.expect("ready")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.expect("interrupted True")
    returncode, _, stderr = proc.finish()
    assert returncode == 0, stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_can_use_timers():
    script = textwrap.dedent("""
        import os, threading, time, gochan
        gochan.after(0.001).recv(timeout=5)          # the timer thread runs in the parent
        ran = threading.Event()
        gochan.after_func(0.001, ran.set)
        assert ran.wait(5)                           # and so does the dispatcher
        pending = gochan.Timer(0.05)                 # pending across the fork
        pid = os.fork()
        if pid == 0:
            ok = True
            try:
                gochan.after(0.01).recv(timeout=5)
                pending.c.recv(timeout=5)
                done = threading.Event()
                gochan.after_func(0.001, done.set)
                ok = done.wait(5)
                gochan.sleep(0.001)
            except BaseException as exc:
                print("child failed", repr(exc), flush=True)
                ok = False
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        pending.c.recv(timeout=5)
        print("child", os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode")
              else status >> 8, flush=True)
    """)
    result = run_python(script, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child 0", result.stdout + result.stderr


@pytest.mark.parametrize("attempt", range(3))
def test_interpreter_exits_with_tickers_and_after_funcs_pending(attempt):
    script = textwrap.dedent("""
        import gochan
        tickers = [gochan.Ticker(0.0005) for _ in range(10)]
        funcs = [gochan.after_func(0.001 * i, lambda: None) for i in range(50)]
        later = [gochan.after_func(30, print, "never") for _ in range(10)]
        chans = [gochan.after(0.0001 * i) for i in range(50)]
        gochan.sleep(0.002)
    """)
    result = run_python(script, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


# --- memory and references ------------------------------------------------------------------------

def test_a_million_dropped_afters_keep_memory_flat():
    skip_unless_rss_is_meaningful()
    after = gochan.after
    for _ in range(50_000):
        after(1.0)
    gc.collect()
    before = _rss_bytes()
    heap = _stats()[0]
    for _ in range(1_000_000):
        after(1.0)
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 16 * 1024 * 1024, f"resident memory grew by {growth} bytes"
    assert _stats()[0] == heap


def _live_objects():
    gc.collect()
    return len(gc.get_objects())


@pytest.mark.parametrize("op", ["after", "after_recv", "timer", "timer_reset", "ticker",
                                "after_func_stop", "after_func_run", "sleep"])
def test_repeated_timer_operations_keep_the_live_object_count_flat(op):
    def once():
        if op == "after":
            gochan.after(1.0)
        elif op == "after_recv":
            gochan.after(0).recv()
        elif op == "timer":
            t = gochan.Timer(1.0)
            t.stop()
        elif op == "timer_reset":
            t = gochan.Timer(0)
            t.reset(0)
            t.c.recv()
        elif op == "ticker":
            with gochan.Ticker(1.0) as tk:
                tk.reset(2.0)
        elif op == "after_func_stop":
            gochan.after_func(1.0, print, "x").stop()
        elif op == "after_func_run":
            done = threading.Event()
            gochan.after_func(0, done.set)
            assert done.wait(LONG)
        elif op == "sleep":
            gochan.sleep(0)

    n = 300 if op == "after_func_run" else 20_000
    for _ in range(n // 10):
        once()
    before = _live_objects()
    for _ in range(n):
        once()
    wait_until(lambda: _stats()[1] == 0)
    growth = _live_objects() - before
    assert growth < 100, f"{growth} objects left alive after {n} calls of {op}"


def test_after_func_arguments_keep_their_refcount():
    sentinel = object()
    before = sys.getrefcount(sentinel)
    for _ in range(1000):
        gochan.after_func(1.0, print, sentinel).stop()
    done = threading.Event()
    for _ in range(100):
        done.clear()
        gochan.after_func(0, lambda s, e=done: e.set(), sentinel)
        assert done.wait(LONG)
    wait_until(lambda: (gc.collect(), sys.getrefcount(sentinel) == before)[1])


def test_docstrings_have_signatures_and_examples():
    import inspect
    for obj in (gochan.after, gochan.sleep, gochan.after_func, gochan.Timer, gochan.Ticker,
                gochan.Timer.stop, gochan.Timer.reset, gochan.Ticker.stop, gochan.Ticker.reset):
        inspect.signature(obj)
        assert "    " in obj.__doc__, obj
