"""Bad input for every public name of gochan (API.md, "Exceptions": programming errors raise
TypeError or ValueError, "nothing ever crashes the interpreter").

`CASES` holds, for each name of `gochan.__all__`, calls that misuse it: wrong types, NaN, both
infinities, ints beyond 64 bits, negatives, non-callables, too many arguments, and the re-entrant
misuse of calling an object from inside its own callback or iteration. Each case says what it
expects: an exception class (the message must say something), RETURNS (the call is legal and its
own asserts check what it did), or ANY (any exception or result will do: only a crash or a hang
is a failure). `test_every_public_name_has_bad_input_cases` fails as soon as a public name is
added without cases here.

The cases run in child interpreters, a batch at a time, so that a crash or a hang costs one case
and not the suite: a case that kills its child, or runs for more than CASE_TIMEOUT seconds, is
reported with the child's stderr, and the batch goes on in a new child from the next case.
"""

import json
import math
import os
import pickle
import subprocess
import sys
import threading
import time

import pytest

import gochan

from conftest import GOCHAN_ROOT

#: A case that runs longer than this (seconds) counts as a hang.
CASE_TIMEOUT = 10.0
#: A child that has not exited after this long (seconds) is killed.
CHILD_TIMEOUT = 300.0

#: The call is legal: it must return (its own asserts check the result).
RETURNS = "returns"
#: Any exception or result will do; the call must only not crash or hang.
ANY = "any"

NAN = math.nan
INF = math.inf
HUGE = 2**64
HUGER = 10**400  # too large even for a float


def _bg():
    return gochan.background()


def _expired():
    """A context that is already done (DeadlineExceeded)."""
    ctx, _ = gochan.with_timeout(gochan.background(), 0)
    return ctx


def _closed(capacity=0):
    ch = gochan.Chan(capacity)
    ch.close()
    return ch


def _raises(exc, fn):
    try:
        fn()
    except exc:
        return
    raise AssertionError(f"expected {exc.__name__}")


# --- the re-entrant cases, which check what happened ---------------------------------------------

def _close_inside_own_iteration():
    ch = gochan.Chan(3)
    ch.send_many([1, 2, 3])
    seen = []
    for item in ch:
        seen.append(item)
        if not ch.closed:
            ch.close()  # the buffered items stay receivable; the loop then ends
    assert seen == [1, 2, 3], seen


def _close_inside_own_iteration_twice():
    ch = gochan.Chan(2)
    ch.send_many([1, 2])
    for _ in ch:
        ch.close()  # the second time round: ChannelClosed, as any second close


def _send_inside_own_iteration():
    ch = gochan.Chan(4)
    ch.send(0)
    seen = []
    for item in ch:
        seen.append(item)
        if item < 5:
            ch.send(item + 1)
        else:
            ch.close()
    assert seen == [0, 1, 2, 3, 4, 5], seen


def _cancel_from_own_after_func():
    ctx, cancel = gochan.with_cancel(gochan.background())
    ran = threading.Event()
    ctx.after_func(lambda: (cancel(), ran.set()))
    cancel()
    assert ran.wait(CASE_TIMEOUT)
    assert isinstance(ctx.err(), gochan.Cancelled)


def _cancel_cause_from_own_after_func():
    ctx, cancel = gochan.with_cancel_cause(gochan.background())
    ran = threading.Event()
    ctx.after_func(lambda: (cancel(ValueError("again")), ran.set()))
    cancel(KeyError("first"))
    assert ran.wait(CASE_TIMEOUT)
    assert isinstance(ctx.cause(), KeyError)  # the first cause stays


def _cancel_parent_from_child_after_func():
    parent, cancel_parent = gochan.with_cancel(gochan.background())
    child, cancel_child = gochan.with_cancel(parent)
    ran = threading.Event()
    child.after_func(lambda: (cancel_parent(), ran.set()))
    cancel_child()
    assert ran.wait(CASE_TIMEOUT)
    assert parent.err() is not None


def _stop_from_own_after_func():
    ctx, cancel = gochan.with_cancel(gochan.background())
    stops, results, ran = [], [], threading.Event()
    stops.append(ctx.after_func(lambda: (results.append(stops[0]()), ran.set())))
    cancel()
    assert ran.wait(CASE_TIMEOUT)
    assert results == [False]  # already started: nothing to stop


def _after_func_registered_from_after_func():
    ctx, cancel = gochan.with_cancel(gochan.background())
    ran = threading.Event()
    ctx.after_func(lambda: ctx.after_func(ran.set))
    cancel()
    assert ran.wait(CASE_TIMEOUT)  # registered on a done context: runs at once


def _timer_reset_from_own_after_func():
    ran = threading.Event()
    count = []

    def fn():
        count.append(1)
        if len(count) < 3:
            timer.reset(0.001)
        else:
            ran.set()

    timer = gochan.after_func(0.001, fn)
    assert ran.wait(CASE_TIMEOUT)
    timer.stop()


def _ticker_stopped_inside_own_iteration():
    ticker = gochan.Ticker(0.001)
    for n, _ in enumerate(ticker):
        if n == 2:
            ticker.stop()
            break
    _raises(TimeoutError, lambda: ticker.c.recv(timeout=0.02))  # no stale tick after stop()


def _join_self():
    box = gochan.Chan(1)
    g = gochan.go(lambda: box.recv().join(timeout=CASE_TIMEOUT))
    box.send(g)
    _raises(RuntimeError, lambda: g.join(timeout=CASE_TIMEOUT))


def _once_do_inside_itself():
    once = gochan.Once()
    _raises(RuntimeError, lambda: once.do(lambda: once.do(print)))
    assert once.do(print)  # done: the first call counts


def _once_value_inside_itself():
    box = []
    fn = gochan.once_value(lambda: box[0]())
    box.append(fn)
    _raises(RuntimeError, fn)


def _once_func_inside_itself():
    box = []
    fn = gochan.once_func(lambda: box[0]())
    box.append(fn)
    _raises(RuntimeError, fn)


def _once_do_with_a_non_callable_does_not_use_it_up():
    once = gochan.Once()
    _raises(TypeError, lambda: once.do(42))
    ran = []
    assert once.do(ran.append, 1)
    assert ran == [1]


def _map_changed_inside_range():
    m = gochan.Map()
    for i in range(5):
        m.store(i, i)

    def fn(key, value):
        m.delete(key)
        m.store(key + 100, value)
        m.range(lambda k, v: None)

    m.range(fn)
    keys = []
    m.range(lambda k, v: keys.append(k))
    assert sorted(keys) == [100, 101, 102, 103, 104], keys


def _rwmutex_guard_after_manual_unlock():
    rw = gochan.RWMutex()
    with rw.read():
        rw.runlock()  # the guard's own runlock then finds it unlocked


def _mutex_lock_twice_with_timeout_zero():
    m = gochan.Mutex()
    m.lock()
    assert m.lock(timeout=0) is False  # not re-entrant, and says so without deadlocking
    m.unlock()


def _semaphore_release_inside_with():
    sem = gochan.Semaphore(1)
    with sem:
        sem.release()  # the with's own release then releases more than is held


def _waitgroup_wait_inside_go():
    wg = gochan.WaitGroup()
    results = []
    wg.go(lambda: results.append(wg.wait(timeout=0.05)))  # waits for itself: times out
    assert wg.wait(timeout=CASE_TIMEOUT)
    assert results == [False]


def _group_go_inside_group():
    g = gochan.Group(limit=2)
    ran = []
    g.go(lambda: g.go(ran.append, 1))
    g.wait()
    assert ran == [1]


def _group_wait_inside_group():
    g = gochan.Group()
    g.go(g.wait)
    g.wait()  # raises the RuntimeError of the function: waiting for itself


def _pool_wait_inside_job():
    with gochan.Pool(1) as pool:
        pool.submit(pool.wait).join(timeout=CASE_TIMEOUT)


def _pool_submit_inside_job():
    with gochan.Pool(2) as pool:
        inner = pool.submit(lambda: pool.submit(pow, 2, 5)).join(timeout=CASE_TIMEOUT)
        assert inner.join(timeout=CASE_TIMEOUT) == 32


def _chan_sent_into_itself():
    ch = gochan.Chan(1)
    ch.send(ch)
    assert ch.recv() is ch


def _send_many_from_own_channel():
    ch = gochan.Chan(8)
    ch.send_many([1, 2, 3])
    ch_out = gochan.Chan(8)
    ch.close()
    assert ch_out.send_many(ch) == 3
    assert ch_out.recv_many(8) == [1, 2, 3]


def _select_same_channel_many_times():
    ch = gochan.Chan(1)
    ch.send("x")
    cases = [gochan.Recv(ch)] * 1000 + [gochan.Send(ch, "y")] * 1000
    index, value, ok = gochan.select(*cases, timeout=CASE_TIMEOUT)
    assert index < 1000 and value == "x" and ok  # full: only the receives can proceed
    index, value, ok = gochan.select(*cases, timeout=CASE_TIMEOUT)
    assert index >= 1000 and (value, ok) == (None, True)  # empty: only the sends can
    assert ch.recv_nowait() == "y"


def _huge_select():
    cases = [gochan.Recv(gochan.Chan()) for _ in range(100_000)]
    assert gochan.select(*cases, default=True) == (-1, None, False)


def _retry_recursive():
    calls = []

    def fn():
        calls.append(1)
        if len(calls) == 1:
            return gochan.retry(fn, attempts=2, backoff=[0])
        return "inner"

    assert gochan.retry(fn, attempts=2, backoff=[0]) == "inner"


def _stage_fn_that_closes_its_source():
    src = gochan.Chan(8)
    src.send_many([1, 2, 3])

    def fn(x):
        if not src.closed:
            src.close()
        return x * 10

    assert sorted(gochan.stage(fn, src)) == [10, 20, 30]


def _limiter_set_rate_nan_keeps_the_old_rate():
    lim = gochan.Limiter(5, 1)
    _raises(ValueError, lambda: lim.set_rate(NAN))
    assert lim.rate == 5


def _timer_inf_is_never_due():
    timer = gochan.Timer(INF)
    timer.stop()
    timer = gochan.Timer(HUGE)
    timer.reset(HUGER)
    timer.stop()


def _deadline_past_is_done():
    for deadline in (-INF, -HUGE, -1e308):
        ctx, _ = gochan.with_deadline(gochan.background(), deadline)
        assert isinstance(ctx.err(), gochan.DeadlineExceeded)
    ctx, cancel = gochan.with_deadline(gochan.background(), INF)
    assert ctx.err() is None and ctx.deadline() is None
    cancel()


def _timeout_out_of_range_is_done_or_never():
    for seconds in (-INF, -HUGE, -HUGER, -1e308):
        ctx, _ = gochan.with_timeout(gochan.background(), seconds)
        assert isinstance(ctx.err(), gochan.DeadlineExceeded)
    for seconds in (INF, HUGE, HUGER, 1e308):
        ctx, cancel = gochan.with_timeout(gochan.background(), seconds)
        assert ctx.err() is None
        cancel()


def _after_far_future():
    for seconds in (INF, HUGE, HUGER, 1e308):
        ch = gochan.after(seconds)
        _raises(TimeoutError, lambda: ch.recv(timeout=0))


def _exceptions_pickle():
    for cls in (gochan.GochanError, gochan.ChannelClosed, gochan.WouldBlock, gochan.ContextError,
                gochan.Cancelled):
        exc = pickle.loads(pickle.dumps(cls("x")))
        assert type(exc) is cls and str(exc) == "x"
    exc = pickle.loads(pickle.dumps(gochan.DeadlineExceeded("late")))
    assert isinstance(exc, gochan.DeadlineExceeded) and isinstance(exc, TimeoutError)


def _reservation_cancelled_twice():
    lim = gochan.Limiter(1, 1)
    r = lim.reserve()
    r.cancel()
    r.cancel()  # gives nothing back twice
    assert lim.tokens() <= 1


def _cancel_pair_with_a_bad_cancel():
    pair = gochan.CancelPair((gochan.background(), 42))
    with pair:  # __exit__ calls pair[1]()
        pass


# --- the table -----------------------------------------------------------------------------------
#
# name -> [(label, call, expected)]; expected is an exception class (or a tuple of them), RETURNS
# or ANY. Huge ints that mean "too many" may raise OverflowError, the builtin for an int that does
# not fit, as well as ValueError.

TOO_BIG = (ValueError, OverflowError)

CASES = {
    "GochanError": [
        ("keyword argument", lambda: gochan.GochanError(x=1), TypeError),
        ("odd arguments", lambda: str(gochan.GochanError(object(), None, NAN)), RETURNS),
    ],
    "ChannelClosed": [
        ("keyword argument", lambda: gochan.ChannelClosed(x=1), TypeError),
        ("pickling", _exceptions_pickle, RETURNS),
    ],
    "WouldBlock": [
        ("keyword argument", lambda: gochan.WouldBlock(x=1), TypeError),
        ("odd arguments", lambda: repr(gochan.WouldBlock(*range(100))), RETURNS),
    ],
    "ContextError": [
        ("keyword argument", lambda: gochan.ContextError(x=1), TypeError),
    ],
    "Cancelled": [
        ("keyword argument", lambda: gochan.Cancelled(x=1), TypeError),
        ("odd arguments", lambda: str(gochan.Cancelled(HUGER)), RETURNS),
    ],
    "DeadlineExceeded": [
        ("keyword argument", lambda: gochan.DeadlineExceeded(x=1), TypeError),
        ("OSError-style arguments", lambda: str(gochan.DeadlineExceeded(1, 2, 3, 4, 5)), ANY),
    ],
    "Chan": [
        ("negative capacity", lambda: gochan.Chan(-1), ValueError),
        ("huge capacity", lambda: gochan.Chan(HUGE), TOO_BIG),
        ("huger capacity", lambda: gochan.Chan(HUGER), TOO_BIG),
        ("float capacity", lambda: gochan.Chan(1.5), TypeError),
        ("NaN capacity", lambda: gochan.Chan(NAN), TypeError),
        ("inf capacity", lambda: gochan.Chan(INF), TypeError),
        ("str capacity", lambda: gochan.Chan("3"), TypeError),
        ("None capacity", lambda: gochan.Chan(None), TypeError),
        ("two capacities", lambda: gochan.Chan(1, 2), TypeError),
        ("NaN timeout", lambda: gochan.Chan().send(1, timeout=NAN), ValueError),
        ("-inf timeout", lambda: gochan.Chan().recv(timeout=-INF), ValueError),
        ("negative timeout", lambda: gochan.Chan().recv_ok(timeout=-1), ValueError),
        ("tiny negative timeout", lambda: gochan.Chan().recv(timeout=-1e-300), ValueError),
        ("huge negative timeout", lambda: gochan.Chan().recv(timeout=-HUGE), ValueError),
        ("str timeout", lambda: gochan.Chan().recv(timeout="1"), TypeError),
        ("complex timeout", lambda: gochan.Chan().recv(timeout=1j), TypeError),
        # Beyond the clock's range a timeout means "never": the call waits (here, for a
        # context that is already done) instead of rejecting the number.
        ("inf timeout", lambda: gochan.Chan().recv(timeout=INF, ctx=_expired()),
         gochan.DeadlineExceeded),
        ("2**64 timeout", lambda: gochan.Chan().send(1, timeout=HUGE, ctx=_expired()),
         gochan.DeadlineExceeded),
        ("10**400 timeout", lambda: gochan.Chan().recv(timeout=HUGER, ctx=_expired()),
         gochan.DeadlineExceeded),
        ("1e308 timeout", lambda: gochan.Chan().recv(timeout=1e308, ctx=_expired()),
         gochan.DeadlineExceeded),
        ("int ctx", lambda: gochan.Chan().recv(ctx=1), TypeError),
        ("str ctx", lambda: gochan.Chan().send(1, ctx="soon"), TypeError),
        ("recv_many(0)", lambda: gochan.Chan().recv_many(0), ValueError),
        ("recv_many(-1)", lambda: gochan.Chan().recv_many(-1), ValueError),
        ("recv_many(-2**64)", lambda: gochan.Chan().recv_many(-HUGE), ValueError),
        ("recv_many(2**64)", lambda: gochan.Chan(1).recv_many(HUGE, timeout=0), TimeoutError),
        ("recv_many(1.0)", lambda: gochan.Chan().recv_many(1.0), TypeError),
        ("recv_many(None)", lambda: gochan.Chan().recv_many(None), TypeError),
        ("send_many(int)", lambda: gochan.Chan(3).send_many(5), TypeError),
        ("send_many(None)", lambda: gochan.Chan(3).send_many(None), TypeError),
        ("send_many of a failing iterator",
         lambda: gochan.Chan(3).send_many(iter(lambda: 1 / 0, 2)), ZeroDivisionError),
        ("send() without a value", lambda: gochan.Chan().send(), TypeError),
        ("send() with two values", lambda: gochan.Chan().send(1, 2), TypeError),
        ("recv() with a value", lambda: gochan.Chan().recv(1), TypeError),
        ("unknown keyword", lambda: gochan.Chan().recv(foo=1), TypeError),
        ("send_nowait() without a value", lambda: gochan.Chan().send_nowait(), TypeError),
        ("close twice", lambda: _closed().close(), gochan.ChannelClosed),
        ("send on closed", lambda: _closed(1).send(1), gochan.ChannelClosed),
        ("pickle", lambda: pickle.dumps(gochan.Chan()), TypeError),
        ("close inside its own iteration", _close_inside_own_iteration, RETURNS),
        ("close twice inside its own iteration", _close_inside_own_iteration_twice,
         gochan.ChannelClosed),
        ("send inside its own iteration", _send_inside_own_iteration, RETURNS),
        ("sent into itself", _chan_sent_into_itself, RETURNS),
        ("send_many from a channel", _send_many_from_own_channel, RETURNS),
    ],
    "RecvChan": [
        ("direct construction", lambda: gochan.RecvChan(), TypeError),
        ("send on a receive-only view", lambda: gochan.Chan().recv_only().send(1),
         AttributeError),
        ("NaN timeout", lambda: gochan.Chan().recv_only().recv(timeout=NAN), ValueError),
        ("recv_many(0)", lambda: gochan.Chan().recv_only().recv_many(0), ValueError),
    ],
    "SendChan": [
        ("direct construction", lambda: gochan.SendChan(), TypeError),
        ("recv on a send-only view", lambda: gochan.Chan().send_only().recv(), AttributeError),
        ("send_many(None)", lambda: gochan.Chan().send_only().send_many(None), TypeError),
        ("negative timeout", lambda: gochan.Chan().send_only().send(1, timeout=-1),
         ValueError),
    ],
    "ChanStats": [
        ("no arguments", lambda: gochan.ChanStats(), TypeError),
        ("too short", lambda: gochan.ChanStats((1, 2)), TypeError),
        ("not a sequence", lambda: gochan.ChanStats(5), TypeError),
    ],
    "Recv": [
        ("no channel", lambda: gochan.Recv(), TypeError),
        ("an int", lambda: gochan.Recv(1), TypeError),
        ("a send-only view", lambda: gochan.Recv(gochan.Chan().send_only()), TypeError),
        ("two channels", lambda: gochan.Recv(gochan.Chan(), gochan.Chan()), TypeError),
    ],
    "Send": [
        ("no value", lambda: gochan.Send(gochan.Chan()), TypeError),
        ("an int", lambda: gochan.Send(1, 2), TypeError),
        ("a receive-only view", lambda: gochan.Send(gochan.Chan().recv_only(), 1), TypeError),
    ],
    "Selected": [
        ("not a sequence", lambda: gochan.Selected(5), TypeError),
        ("too short", lambda: gochan.Selected((1,)), TypeError),
    ],
    "select": [
        ("an int case", lambda: gochan.select(1), TypeError),
        ("a channel as a case", lambda: gochan.select(gochan.Chan()), TypeError),
        ("NaN timeout", lambda: gochan.select(gochan.Recv(gochan.Chan()), timeout=NAN),
         ValueError),
        ("negative timeout", lambda: gochan.select(gochan.Recv(gochan.Chan()), timeout=-1),
         ValueError),
        ("str ctx", lambda: gochan.select(gochan.Recv(gochan.Chan()), ctx="x"), TypeError),
        ("unknown keyword", lambda: gochan.select(gochan.Recv(gochan.Chan()), foo=1),
         TypeError),
        ("send on closed", lambda: gochan.select(gochan.Send(_closed(), 1)),
         gochan.ChannelClosed),
        ("2**64 timeout", lambda: gochan.select(gochan.Recv(gochan.Chan()), timeout=HUGE,
                                                ctx=_expired()), gochan.DeadlineExceeded),
        ("no cases, zero timeout", lambda: gochan.select(timeout=0), TimeoutError),
        ("100000 cases", _huge_select, RETURNS),
        ("one channel in 2000 cases", _select_same_channel_many_times, RETURNS),
    ],
    "CancelFunc": [
        ("direct construction", lambda: gochan.CancelFunc(), TypeError),
        ("a cause to a plain cancel", lambda: gochan.with_cancel(_bg())[1](ValueError()),
         TypeError),
        ("an int cause", lambda: gochan.with_cancel_cause(_bg())[1](1), TypeError),
        ("an exception class as cause", lambda: gochan.with_cancel_cause(_bg())[1](ValueError),
         TypeError),
        ("keyword argument", lambda: gochan.with_cancel(_bg())[1](x=1), TypeError),
    ],
    "CancelPair": [
        ("not a pair", lambda: gochan.CancelPair(5), TypeError),
        ("a pair without a cancel", _cancel_pair_with_a_bad_cancel, TypeError),
    ],
    "Context": [
        ("direct construction", lambda: gochan.Context(), TypeError),
        ("after_func(int)", lambda: _bg().after_func(1), TypeError),
        ("after_func(None)", lambda: _bg().after_func(None), TypeError),
        ("value() without a key", lambda: _bg().value(), TypeError),
        ("value() of an unhashable key", lambda: _bg().value([]), RETURNS),
        ("check() when done", lambda: _expired().check(), gochan.DeadlineExceeded),
        ("cancel from its own after_func", _cancel_from_own_after_func, RETURNS),
        ("cancel(cause) from its own after_func", _cancel_cause_from_own_after_func, RETURNS),
        ("cancel the parent from a child's after_func", _cancel_parent_from_child_after_func,
         RETURNS),
        ("stop() from its own after_func", _stop_from_own_after_func, RETURNS),
        ("after_func from an after_func", _after_func_registered_from_after_func, RETURNS),
    ],
    "background": [("an argument", lambda: gochan.background(1), TypeError)],
    "todo": [("an argument", lambda: gochan.todo(1), TypeError)],
    "with_cancel": [
        ("None parent", lambda: gochan.with_cancel(None), TypeError),
        ("int parent", lambda: gochan.with_cancel(1), TypeError),
        ("two arguments", lambda: gochan.with_cancel(_bg(), 1), TypeError),
    ],
    "with_cancel_cause": [
        ("None parent", lambda: gochan.with_cancel_cause(None), TypeError),
        ("a channel as parent", lambda: gochan.with_cancel_cause(gochan.Chan()), TypeError),
    ],
    "with_deadline": [
        ("NaN", lambda: gochan.with_deadline(_bg(), NAN), ValueError),
        ("str", lambda: gochan.with_deadline(_bg(), "x"), TypeError),
        ("None", lambda: gochan.with_deadline(_bg(), None), TypeError),
        ("None parent", lambda: gochan.with_deadline(None, 1.0), TypeError),
        ("past and infinite deadlines", _deadline_past_is_done, RETURNS),
    ],
    "with_timeout": [
        ("NaN", lambda: gochan.with_timeout(_bg(), NAN), ValueError),
        ("str", lambda: gochan.with_timeout(_bg(), "1"), TypeError),
        ("None", lambda: gochan.with_timeout(_bg(), None), TypeError),
        ("int parent", lambda: gochan.with_timeout(1, 1.0), TypeError),
        ("out-of-range timeouts", _timeout_out_of_range_is_done_or_never, RETURNS),
    ],
    "with_value": [
        ("None parent", lambda: gochan.with_value(None, 1, 2), TypeError),
        ("no value", lambda: gochan.with_value(_bg(), 1), TypeError),
        ("unhashable key", lambda: gochan.with_value(_bg(), [], 1).value([]), RETURNS),
    ],
    "without_cancel": [
        ("None parent", lambda: gochan.without_cancel(None), TypeError),
        ("int parent", lambda: gochan.without_cancel(1), TypeError),
    ],
    "Timer": [
        ("NaN", lambda: gochan.Timer(NAN), ValueError),
        ("negative", lambda: gochan.Timer(-1), ValueError),
        ("-inf", lambda: gochan.Timer(-INF), ValueError),
        ("huge negative", lambda: gochan.Timer(-HUGE), ValueError),
        ("str", lambda: gochan.Timer("x"), TypeError),
        ("None", lambda: gochan.Timer(None), TypeError),
        ("reset(NaN)", lambda: gochan.Timer(1).reset(NAN), ValueError),
        ("reset(-1)", lambda: gochan.Timer(1).reset(-1), ValueError),
        ("reset(str)", lambda: gochan.Timer(1).reset("x"), TypeError),
        ("inf and huge delays", _timer_inf_is_never_due, RETURNS),
        ("reset from its own after_func", _timer_reset_from_own_after_func, RETURNS),
    ],
    "Ticker": [
        ("zero", lambda: gochan.Ticker(0), ValueError),
        ("negative", lambda: gochan.Ticker(-1), ValueError),
        ("NaN", lambda: gochan.Ticker(NAN), ValueError),
        ("inf", lambda: gochan.Ticker(INF), ValueError),
        ("huge", lambda: gochan.Ticker(HUGE), ValueError),
        ("str", lambda: gochan.Ticker("x"), TypeError),
        ("None", lambda: gochan.Ticker(None), TypeError),
        ("reset(0)", lambda: gochan.Ticker(1).reset(0), ValueError),
        ("reset(NaN)", lambda: gochan.Ticker(1).reset(NAN), ValueError),
        ("reset(None)", lambda: gochan.Ticker(1).reset(None), TypeError),
        ("a 1e-300 s interval", lambda: gochan.Ticker(1e-300).stop(), RETURNS),
        ("stopped inside its own iteration", _ticker_stopped_inside_own_iteration, RETURNS),
    ],
    "after": [
        ("NaN", lambda: gochan.after(NAN), ValueError),
        ("negative", lambda: gochan.after(-1), ValueError),
        ("-inf", lambda: gochan.after(-INF), ValueError),
        ("str", lambda: gochan.after("1"), TypeError),
        ("None", lambda: gochan.after(None), TypeError),
        ("two arguments", lambda: gochan.after(1, 2), TypeError),
        ("far future", _after_far_future, RETURNS),
    ],
    "after_func": [
        ("None fn", lambda: gochan.after_func(1, None), TypeError),
        ("int fn", lambda: gochan.after_func(1, 1), TypeError),
        ("NaN", lambda: gochan.after_func(NAN, print), ValueError),
        ("negative", lambda: gochan.after_func(-1, print), ValueError),
        ("str", lambda: gochan.after_func("x", print), TypeError),
        ("inf", lambda: gochan.after_func(INF, print).stop(), RETURNS),
    ],
    "sleep": [
        ("NaN", lambda: gochan.sleep(NAN), ValueError),
        ("negative", lambda: gochan.sleep(-1), ValueError),
        ("-inf", lambda: gochan.sleep(-INF), ValueError),
        ("str", lambda: gochan.sleep("1"), TypeError),
        ("None", lambda: gochan.sleep(None), TypeError),
        ("int ctx", lambda: gochan.sleep(0.001, ctx=1), TypeError),
        ("inf with a done ctx", lambda: gochan.sleep(INF, ctx=_expired()),
         gochan.DeadlineExceeded),
        ("2**64 with a done ctx", lambda: gochan.sleep(HUGE, ctx=_expired()),
         gochan.DeadlineExceeded),
    ],
    "Goroutine": [
        ("direct construction", lambda: gochan.Goroutine(), TypeError),
        ("join(NaN)", lambda: gochan.go(int).join(timeout=NAN), ValueError),
        ("join(-1)", lambda: gochan.go(int).join(timeout=-1), ValueError),
        ("join(ctx=str)", lambda: gochan.go(int).join(ctx="x"), TypeError),
        ("join(1)", lambda: gochan.go(int).join(1), TypeError),
        ("join itself", _join_self, RETURNS),
    ],
    "go": [
        ("no function", lambda: gochan.go(), TypeError),
        ("None", lambda: gochan.go(None), TypeError),
        ("int", lambda: gochan.go(1), TypeError),
    ],
    "num_goroutines": [("an argument", lambda: gochan.num_goroutines(1), TypeError)],
    "Mutex": [
        ("an argument", lambda: gochan.Mutex(1), TypeError),
        ("unlock unlocked", lambda: gochan.Mutex().unlock(), RuntimeError),
        ("lock(NaN)", lambda: gochan.Mutex().lock(timeout=NAN), ValueError),
        ("lock(str)", lambda: gochan.Mutex().lock(timeout="x"), TypeError),
        ("lock(ctx=int)", lambda: gochan.Mutex().lock(ctx=1), TypeError),
        ("lock(positional)", lambda: gochan.Mutex().lock(1), TypeError),
        ("lock twice", _mutex_lock_twice_with_timeout_zero, RETURNS),
    ],
    "RWMutex": [
        ("unlock unlocked", lambda: gochan.RWMutex().unlock(), RuntimeError),
        ("runlock unlocked", lambda: gochan.RWMutex().runlock(), RuntimeError),
        ("unlock after rlock", lambda: (lambda m: (m.rlock(), m.unlock()))(gochan.RWMutex()),
         RuntimeError),
        ("runlock after lock", lambda: (lambda m: (m.lock(), m.runlock()))(gochan.RWMutex()),
         RuntimeError),
        ("rlock(NaN)", lambda: gochan.RWMutex().rlock(timeout=NAN), ValueError),
        ("lock(-1)", lambda: gochan.RWMutex().lock(timeout=-1), ValueError),
        ("read(1)", lambda: gochan.RWMutex().read(1), TypeError),
    ],
    "RWMutexGuard": [
        ("direct construction", lambda: gochan.RWMutexGuard(), TypeError),
        ("runlock inside its with", _rwmutex_guard_after_manual_unlock, RuntimeError),
    ],
    "Semaphore": [
        ("zero", lambda: gochan.Semaphore(0), ValueError),
        ("negative", lambda: gochan.Semaphore(-1), ValueError),
        ("huge", lambda: gochan.Semaphore(HUGE), TOO_BIG),
        ("float", lambda: gochan.Semaphore(1.0), TypeError),
        ("NaN", lambda: gochan.Semaphore(NAN), TypeError),
        ("None", lambda: gochan.Semaphore(None), TypeError),
        ("acquire more than its size", lambda: gochan.Semaphore(2).acquire(3), ValueError),
        ("acquire(-1)", lambda: gochan.Semaphore(2).acquire(-1), ValueError),
        ("acquire(2**64)", lambda: gochan.Semaphore(2).acquire(HUGE), TOO_BIG),
        ("acquire(1.5)", lambda: gochan.Semaphore(2).acquire(1.5), TypeError),
        ("acquire(timeout=NaN)", lambda: gochan.Semaphore(2).acquire(timeout=NAN), ValueError),
        ("try_acquire(str)", lambda: gochan.Semaphore(2).try_acquire("x"), TypeError),
        ("release unheld", lambda: gochan.Semaphore(2).release(), ValueError),
        ("release(-1)", lambda: gochan.Semaphore(2).release(-1), ValueError),
        ("release(2**64)", lambda: gochan.Semaphore(2).release(HUGE), TOO_BIG),
        ("release inside its with", _semaphore_release_inside_with, ValueError),
    ],
    "WaitGroup": [
        ("an argument", lambda: gochan.WaitGroup(1), TypeError),
        ("add(-1)", lambda: gochan.WaitGroup().add(-1), ValueError),
        ("add(2**64)", lambda: gochan.WaitGroup().add(HUGE), TOO_BIG),
        ("add beyond 2**63", lambda: (lambda w: (w.add(2**63 - 1), w.add(1)))(gochan.WaitGroup()),
         TOO_BIG),
        ("add(1.0)", lambda: gochan.WaitGroup().add(1.0), TypeError),
        ("done() at zero", lambda: gochan.WaitGroup().done(), ValueError),
        ("wait(NaN)", lambda: gochan.WaitGroup().wait(timeout=NAN), ValueError),
        ("go(None)", lambda: gochan.WaitGroup().go(None), TypeError),
        ("wait inside its own go", _waitgroup_wait_inside_go, RETURNS),
    ],
    "Once": [
        ("an argument", lambda: gochan.Once(1), TypeError),
        ("do(int)", lambda: gochan.Once().do(1), TypeError),
        ("do(int) leaves it unused", _once_do_with_a_non_callable_does_not_use_it_up, RETURNS),
        ("do(timeout=NaN)", lambda: gochan.Once().do(print, timeout=NAN), ValueError),
        ("do inside itself", _once_do_inside_itself, RETURNS),
    ],
    "once_func": [
        ("None", lambda: gochan.once_func(None), TypeError),
        ("int", lambda: gochan.once_func(1), TypeError),
        ("called inside itself", _once_func_inside_itself, RETURNS),
    ],
    "once_value": [
        ("None", lambda: gochan.once_value(None), TypeError),
        ("called inside itself", _once_value_inside_itself, RETURNS),
    ],
    "Map": [
        ("unhashable key", lambda: gochan.Map().store([], 1), TypeError),
        ("load of an unhashable key", lambda: gochan.Map().load([]), TypeError),
        ("range(None) of an empty Map", lambda: gochan.Map().range(None), TypeError),
        ("compare_and_swap of an unhashable key",
         lambda: gochan.Map().compare_and_swap([], 1, 2), TypeError),
        ("changed inside range", _map_changed_inside_range, RETURNS),
    ],
    "Limiter": [
        ("NaN rate", lambda: gochan.Limiter(NAN), ValueError),
        ("negative rate", lambda: gochan.Limiter(-1), ValueError),
        ("-inf rate", lambda: gochan.Limiter(-INF), ValueError),
        ("str rate", lambda: gochan.Limiter("x"), TypeError),
        ("negative burst", lambda: gochan.Limiter(1, -1), ValueError),
        ("huge burst", lambda: gochan.Limiter(1, HUGE), TOO_BIG),
        ("float burst", lambda: gochan.Limiter(1, 1.5), TypeError),
        ("allow(-1)", lambda: gochan.Limiter(1).allow(-1), ValueError),
        ("allow(1.0)", lambda: gochan.Limiter(1).allow(1.0), TypeError),
        ("allow(now=NaN)", lambda: gochan.Limiter(1).allow(now=NAN), ValueError),
        ("allow(now=inf)", lambda: gochan.Limiter(1).allow(now=INF), ValueError),
        ("allow(now=str)", lambda: gochan.Limiter(1).allow(now="x"), TypeError),
        ("allow(2**64)", lambda: gochan.Limiter(1).allow(HUGE), RETURNS),
        ("wait beyond the burst", lambda: gochan.Limiter(1).wait(2), ValueError),
        ("wait(2**64)", lambda: gochan.Limiter(1).wait(HUGE), ValueError),
        ("wait(timeout=NaN)", lambda: gochan.Limiter(1).wait(timeout=NAN), ValueError),
        ("wait(ctx=int)", lambda: gochan.Limiter(1).wait(ctx=1), TypeError),
        ("reserve(-1)", lambda: gochan.Limiter(1).reserve(-1), ValueError),
        ("set_rate(NaN)", _limiter_set_rate_nan_keeps_the_old_rate, RETURNS),
        ("set_burst(-1)", lambda: gochan.Limiter(1).set_burst(-1), ValueError),
        ("tokens(now=NaN)", lambda: gochan.Limiter(1).tokens(now=NAN), ValueError),
    ],
    "Reservation": [
        ("delay(now=NaN)", lambda: gochan.Limiter(1).reserve().delay(now=NAN), ValueError),
        ("cancel(now=str)", lambda: gochan.Limiter(1).reserve().cancel(now="x"), TypeError),
        ("cancel twice", _reservation_cancelled_twice, RETURNS),
    ],
    "Backoff": [
        ("NaN initial", lambda: gochan.Backoff(NAN), ValueError),
        ("negative initial", lambda: gochan.Backoff(-1), ValueError),
        ("inf initial", lambda: gochan.Backoff(INF), ValueError),
        ("str initial", lambda: gochan.Backoff("x"), TypeError),
        ("NaN multiplier", lambda: gochan.Backoff(0.1, NAN), ValueError),
        ("jitter above 1", lambda: gochan.Backoff(0.1, 2, 1, 2), ValueError),
        ("int rng", lambda: gochan.Backoff(rng=1), TypeError),
        ("delay(-1)", lambda: gochan.Backoff().delay(-1), ValueError),
        ("delay(1.0)", lambda: gochan.Backoff().delay(1.0), TypeError),
        ("delay(2**64)", lambda: gochan.Backoff().delay(HUGE), RETURNS),
        ("overflowing growth", lambda: gochan.Backoff(1e300, 1e300).delay(10**6), RETURNS),
    ],
    "Permanent": [
        ("int", lambda: gochan.Permanent(1), TypeError),
        ("None", lambda: gochan.Permanent(None), TypeError),
        ("an exception class", lambda: gochan.Permanent(ValueError), TypeError),
    ],
    "retry": [
        ("None fn", lambda: gochan.retry(None), TypeError),
        ("zero attempts", lambda: gochan.retry(int, attempts=0), ValueError),
        ("float attempts", lambda: gochan.retry(int, attempts=1.5), TypeError),
        ("int backoff", lambda: gochan.retry(int, backoff=1), TypeError),
        ("NaN delay", lambda: gochan.retry(lambda: 1 / 0, attempts=2, backoff=[NAN]),
         ValueError),
        ("negative delay", lambda: gochan.retry(lambda: 1 / 0, attempts=2, backoff=[-1]),
         ValueError),
        ("str delay", lambda: gochan.retry(lambda: 1 / 0, attempts=2, backoff=["x"]),
         TypeError),
        ("int retry_on", lambda: gochan.retry(int, retry_on=1), TypeError),
        ("non-exception retry_on", lambda: gochan.retry(int, retry_on=int), TypeError),
        ("int ctx", lambda: gochan.retry(int, ctx=1), TypeError),
        ("inf delay with a deadline",
         lambda: gochan.retry(lambda: 1 / 0, attempts=2, backoff=[INF],
                              ctx=gochan.with_timeout(_bg(), 0.01)[0]), gochan.DeadlineExceeded),
        ("retry inside retry", _retry_recursive, RETURNS),
    ],
    "retrying": [
        ("int", lambda: gochan.retrying(1), TypeError),
        ("zero attempts", lambda: gochan.retrying(attempts=0), ValueError),
        ("str retry_on", lambda: gochan.retrying(retry_on="x"), TypeError),
    ],
    "Group": [
        ("int ctx", lambda: gochan.Group(1), TypeError),
        ("zero limit", lambda: gochan.Group(limit=0), ValueError),
        ("huge limit", lambda: gochan.Group(limit=HUGE), TOO_BIG),
        ("float limit", lambda: gochan.Group(limit=1.5), TypeError),
        ("NaN limit", lambda: gochan.Group(limit=NAN), TypeError),
        ("go(None)", lambda: gochan.Group().go(None), TypeError),
        ("try_go(int)", lambda: gochan.Group().try_go(1), TypeError),
        ("go inside the group", _group_go_inside_group, RETURNS),
        ("wait inside the group", _group_wait_inside_group, RuntimeError),
    ],
    "Pool": [
        ("zero workers", lambda: gochan.Pool(0), ValueError),
        ("negative workers", lambda: gochan.Pool(-1), ValueError),
        ("huge workers", lambda: gochan.Pool(HUGE), TOO_BIG),
        ("float workers", lambda: gochan.Pool(1.5), TypeError),
        ("str ctx", lambda: gochan.Pool(1, ctx="x"), TypeError),
        ("submit(None)", lambda: gochan.Pool(1).submit(None), TypeError),
        ("map(None, ...)", lambda: gochan.Pool(1).map(None, [1]), TypeError),
        ("map over an int", lambda: gochan.Pool(1).map(abs, 1), TypeError),
        ("wait(NaN)", lambda: gochan.Pool(1).wait(timeout=NAN), ValueError),
        ("submit after close", lambda: (lambda p: (p.close(), p.submit(int)))(gochan.Pool(1)),
         RuntimeError),
        ("submit inside a job", _pool_submit_inside_job, RETURNS),
        ("wait inside a job", _pool_wait_inside_job, RuntimeError),
    ],
    "PoolJob": [
        ("join(NaN)", lambda: gochan.Pool(1).submit(int).join(timeout=NAN), ValueError),
        ("join(ctx=int)", lambda: gochan.Pool(1).submit(int).join(ctx=1), TypeError),
    ],
    "generate": [
        ("None", lambda: gochan.generate(None), TypeError),
        ("int", lambda: gochan.generate(1), TypeError),
        ("negative cap", lambda: gochan.generate([1], cap=-1), ValueError),
        ("float cap", lambda: gochan.generate([1], cap=1.5), TypeError),
        ("int ctx", lambda: gochan.generate([1], ctx=1), TypeError),
    ],
    "stage": [
        ("None fn", lambda: gochan.stage(None, [1]), TypeError),
        ("int source", lambda: gochan.stage(abs, 1), TypeError),
        ("zero workers", lambda: gochan.stage(abs, [1], workers=0), ValueError),
        ("negative cap", lambda: gochan.stage(abs, [1], cap=-1), ValueError),
        ("int ctx", lambda: gochan.stage(abs, [1], ctx=1), TypeError),
        ("fn that closes its source", _stage_fn_that_closes_its_source, RETURNS),
    ],
    "merge": [
        ("int source", lambda: gochan.merge(1), TypeError),
        ("None source", lambda: gochan.merge(None), TypeError),
        ("a send-only source", lambda: gochan.merge(gochan.Chan().send_only()), TypeError),
        ("negative cap", lambda: gochan.merge(cap=-1), ValueError),
        ("int ctx", lambda: gochan.merge(gochan.Chan(), ctx=1), TypeError),
    ],
}


# --- running the cases (in the child) ------------------------------------------------------------

def _all_cases():
    return [(name, label, call, expected) for name in sorted(CASES)
            for label, call, expected in CASES[name]]


def _outcome(call, expected):
    """None if the case behaved, else what went wrong."""
    try:
        call()
    except BaseException as exc:  # judged below, KeyboardInterrupt included
        if expected == ANY:
            return None
        if expected == RETURNS or not isinstance(exc, expected):
            want = "a return" if expected == RETURNS else _names(expected)
            return f"raised {type(exc).__name__}: {exc!r:.300}; expected {want}"
        if not str(exc):
            return f"raised {type(exc).__name__} without a message"
        return None
    if expected in (RETURNS, ANY):
        return None
    return f"returned; expected {_names(expected)}"


def _names(expected):
    if isinstance(expected, tuple):
        return " or ".join(e.__name__ for e in expected)
    return expected.__name__


def _child_main(start):
    """Run the cases from index `start` on, one JSON line each (a "begin" line first)."""
    import faulthandler
    import gc

    cases = _all_cases()
    for index in range(start, len(cases)):
        name, label, call, expected = cases[index]
        print(json.dumps({"begin": index}), flush=True)
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        problem = _outcome(call, expected)
        gc.collect()  # finalizers of what the case left behind run within the case
        faulthandler.cancel_dump_traceback_later()
        print(json.dumps({"index": index, "problem": problem}), flush=True)


def _run_children():
    """Every case's problem (None if it behaved), running children until all cases ran."""
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (GOCHAN_ROOT, tests_dir, env.get("PYTHONPATH")) if p)
    env.pop("PYTHONFAULTHANDLER", None)
    total = len(_all_cases())
    problems = {}
    start = 0
    while start < total:
        proc = subprocess.Popen(
            [sys.executable, "-c", f"import test_hardening_input as t; t._child_main({start})"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            stdout, stderr = proc.communicate(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:  # hung outside any case's watchdog: at exit
            proc.kill()
            stdout, stderr = proc.communicate()
            stderr += f"\n(killed after {CHILD_TIMEOUT} s)"
        current = None
        for line in stdout.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a case printed something of its own
            if "begin" in record:
                current = record["begin"]
            else:
                problems[record["index"]] = record["problem"]
                current = None
        if current is not None:  # the child died (or hung) in this case
            problems[current] = (f"the child died in this case (status {proc.returncode}); "
                                 f"stderr:\n{stderr[-3000:]}")
            start = current + 1
            continue
        if proc.returncode != 0 or stderr.strip():
            problems.setdefault("exit", f"the child ended with status {proc.returncode}; "
                                        f"stderr:\n{stderr[-3000:]}")
        start = total
        for index in range(total):
            if index not in problems:
                problems[index] = "never ran"
    return problems


@pytest.fixture(scope="module")
def problems():
    return _run_children()


def test_every_public_name_has_bad_input_cases():
    missing = sorted(set(gochan.__all__) - set(CASES))
    assert not missing, f"public names without bad-input cases in {__name__}: {missing}"
    unknown = sorted(set(CASES) - set(gochan.__all__))
    assert not unknown, f"cases for names that are not public: {unknown}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_a_clear_exception_never_a_crash_or_hang(problems, name):
    cases = _all_cases()
    failures = [f"{label}: {problems[index]}" for index, (n, label, _, _) in enumerate(cases)
                if n == name and problems.get(index)]
    assert not failures, f"{name}:\n" + "\n".join(failures)


def test_the_case_children_exit_cleanly(problems):
    assert problems.get("exit") is None, problems.get("exit")
