"""Contexts (API.md, "Contexts"): cancellation trees, deadlines, values, causes, after_func, the
(ctx, cancel) pair, and ctx= on blocking calls. Most tests are ports of Go's own context tests,
each headed by its source; the rest pin down what API.md adds (weak references, the pair as a
context manager, bad input, memory that stays flat, Ctrl-C)."""

import gc
import math
import pickle
import random
import signal
import textwrap
import threading
import time
import weakref

import pytest

import gochan
from gochan import _core

from conftest import (
    LONG, SETTLE, skip_unless_rss_is_meaningful, wait_for_receivers, wait_for_senders, wait_until,
)

#: Go's shortDuration and veryLongDuration.
SHORT = 0.001
VERY_LONG = 3600.0 * 1000


def is_done(ctx):
    return ctx.done().closed


def wait_done(ctx, timeout=LONG):
    """Block on ctx.done() as Go's tests do (<-c.Done()), bounded."""
    value, ok = ctx.done().recv_ok(timeout=timeout)
    assert (value, ok) == (None, False)


# ---------------------------------------------------------------------------------------------
# Background and TODO


# Port of Go's context.TestBackground and TestTODO (src/context/x_test.go).
@pytest.mark.parametrize(("make", "name"), [(gochan.background, "background"),
                                            (gochan.todo, "todo")])
def test_go_TestBackground_TestTODO(make, name):
    c = make()
    assert c is make()
    assert isinstance(c, gochan.Context)
    with pytest.raises(gochan.WouldBlock):
        c.done().recv_nowait()
    assert repr(c) == f"<gochan.Context {name}>"
    assert c.err() is None and c.cause() is None and c.deadline() is None
    assert c.value("anything") is None
    c.check()


def test_background_never_cancels_and_costs_blocking_calls_nothing():
    ch = gochan.Chan(1)
    ch.send(1, ctx=gochan.background())
    assert ch.recv(ctx=gochan.background()) == 1
    with pytest.raises(TimeoutError):
        ch.recv(ctx=gochan.todo(), timeout=0.01)


# ---------------------------------------------------------------------------------------------
# Cancellation trees


# Port of Go's context.TestWithCancel (src/context/x_test.go).
def test_go_TestWithCancel():
    c1, cancel = gochan.with_cancel(gochan.background())
    assert repr(c1) == "<gochan.Context background.with_cancel>"
    c2, _ = gochan.with_cancel(c1)
    contexts = [c1, c2]
    for c in contexts:
        assert c.done() is not None and c.err() is None and not is_done(c)
    cancel()  # propagates synchronously
    for c in contexts:
        assert is_done(c)
        assert isinstance(c.err(), gochan.Cancelled)
        assert not isinstance(c.err(), gochan.DeadlineExceeded)


# Port of Go's context.XTestParentFinishesChild (src/context/context_test.go). gochan's
# after_func registers a callback on the parent rather than a child context, so the parent
# lists two children, not three.
def test_go_TestParentFinishesChild():
    parent, cancel = gochan.with_cancel(gochan.background())
    cancel_child, stop1 = gochan.with_cancel(parent)
    value_child = gochan.with_value(parent, "key", "value")
    timer_child, stop2 = gochan.with_timeout(value_child, VERY_LONG)
    after_stop = parent.after_func(lambda: None)
    for c in (parent, cancel_child, value_child, timer_child):
        assert not is_done(c)
    assert parent._children() == 2

    cancel()
    assert parent._children() == 0
    for c in (parent, cancel_child, value_child, timer_child):
        assert is_done(c)
        assert isinstance(c.err(), gochan.Cancelled)

    # A child of a cancelled parent is born cancelled.
    precancelled = gochan.with_value(parent, "key", "value")
    assert is_done(precancelled) and isinstance(precancelled.err(), gochan.Cancelled)
    stop1()
    stop2()
    after_stop()


# Port of Go's context.XTestChildFinishesFirst (src/context/context_test.go).
def test_go_TestChildFinishesFirst():
    cancelable, stop = gochan.with_cancel(gochan.background())
    for parent in (gochan.background(), cancelable):
        child, cancel = gochan.with_cancel(parent)
        assert not is_done(parent) and not is_done(child)
        if parent is cancelable:
            assert parent._children() == 1
        cancel()
        assert parent._children() == 0
        assert is_done(child) and isinstance(child.err(), gochan.Cancelled)
        assert not is_done(parent) and parent.err() is None
    stop()


# Port of Go's context.XTestCancelRemoves (src/context/context_test.go), for the two kinds of
# children gochan links (after_func registers a callback, not a child).
def test_go_TestCancelRemoves():
    ctx, _ = gochan.with_cancel(gochan.background())
    assert ctx._children() == 0
    _, cancel = gochan.with_cancel(ctx)
    assert ctx._children() == 1
    cancel()
    assert ctx._children() == 0

    ctx, _ = gochan.with_cancel(gochan.background())
    _, cancel = gochan.with_timeout(ctx, 3600)
    assert ctx._children() == 1
    cancel()
    assert ctx._children() == 0


def test_cancel_is_idempotent_and_leaves_siblings_and_parent_alone():
    parent, cancel_parent = gochan.with_cancel(gochan.background())
    a, cancel_a = gochan.with_cancel(parent)
    b, _ = gochan.with_cancel(parent)
    cancel_a()
    cancel_a()
    assert isinstance(a.err(), gochan.Cancelled)
    assert b.err() is None and parent.err() is None
    cancel_parent()
    assert isinstance(b.err(), gochan.Cancelled)


def test_child_dropped_without_cancel_leaves_its_parent():
    parent, cancel = gochan.with_cancel(gochan.background())
    child, child_cancel = gochan.with_cancel(parent)
    timed, timed_cancel = gochan.with_timeout(parent, 3600)
    pending = _core._timer_stats()[0]
    assert parent._children() == 2
    del child, child_cancel
    assert parent._children() == 1
    del timed, timed_cancel
    gc.collect()
    assert parent._children() == 0
    # Its timer went with it, not an hour later.
    assert _core._timer_stats()[0] == pending - 1
    cancel()


# Port of Go's context.TestSimultaneousCancels (src/context/x_test.go).
def test_go_TestSimultaneousCancels(spawn):
    root, cancel = gochan.with_cancel(gochan.background())
    m = {root: cancel}
    q = [root]
    while q and len(m) < 100:
        parent = q.pop(0)
        for _ in range(4):
            ctx, cancel = gochan.with_cancel(parent)
            m[ctx] = cancel
            q.append(ctx)
    cancels = list(m.values())
    random.shuffle(cancels)
    start = threading.Barrier(len(cancels))

    def run(cancel):
        start.wait(LONG)
        cancel()

    workers = [spawn(run, c) for c in cancels]
    for ctx in random.sample(list(m), len(m)):
        wait_done(ctx)
    for w in workers:
        w.join()


# Port of Go's context.TestInterlockedCancels (src/context/x_test.go).
def test_go_TestInterlockedCancels(spawn):
    parent, cancel_parent = gochan.with_cancel(gochan.background())
    child, cancel_child = gochan.with_cancel(parent)

    def cancel_child_after_parent():
        parent.done().recv_ok(timeout=LONG)
        cancel_child()

    w = spawn(cancel_child_after_parent)
    cancel_parent()
    wait_done(child)
    w.join()


# Port of Go's context.TestLayersCancel and TestLayersTimeout (src/context/x_test.go).
@pytest.mark.parametrize("test_timeout", [False, True], ids=["cancel", "timeout"])
def test_go_TestLayers(test_timeout):
    rng = random.Random()
    vals, cancels, num_timers = [], [], 0
    ctx = gochan.background()
    i = 0
    while i < 30 or num_timers == 0 or not cancels or not vals:
        kind = rng.randrange(3)
        if kind == 0:
            v = object()
            ctx = gochan.with_value(ctx, v, v)
            vals.append(v)
        elif kind == 1:
            ctx, cancel = gochan.with_cancel(ctx)
            cancels.append(cancel)
        else:
            ctx, cancel = gochan.with_timeout(ctx, SHORT if test_timeout else VERY_LONG)
            cancels.append(cancel)
            num_timers += 1
        i += 1

    def check_values():
        for key in vals:
            assert ctx.value(key) is key

    if not test_timeout:
        assert not is_done(ctx)
    assert repr(ctx).startswith("<gochan.Context background.")
    check_values()
    if test_timeout:
        wait_done(ctx)
        assert isinstance(ctx.err(), gochan.DeadlineExceeded)
    else:
        rng.choice(cancels)()
        assert is_done(ctx)
    check_values()
    for cancel in cancels:
        cancel()


# Port of Go's context.TestWithCancelCanceledParent (src/context/x_test.go).
def test_go_TestWithCancelCanceledParent():
    parent, pcancel = gochan.with_cancel_cause(gochan.background())
    cause = RuntimeError("Because!")
    pcancel(cause)
    c, _ = gochan.with_cancel(parent)
    assert is_done(c)
    assert isinstance(c.err(), gochan.Cancelled)
    assert c.cause() is cause


# Port of Go's context.TestWithCancelSimultaneouslyCanceledParent (src/context/x_test.go).
def test_go_TestWithCancelSimultaneouslyCanceledParent():
    for _ in range(100):
        parent, pcancel = gochan.with_cancel_cause(gochan.background())
        cause = RuntimeError("Because!")
        t = threading.Thread(target=pcancel, args=(cause,))
        t.start()
        c, _ = gochan.with_cancel(parent)
        wait_done(c)
        assert isinstance(c.err(), gochan.Cancelled)
        assert c.cause() is cause
        t.join(LONG)


def test_a_deep_chain_cancels_and_frees_without_recursion():
    root, cancel = gochan.with_cancel(gochan.background())
    ctx = root
    for i in range(100_000):
        ctx = gochan.with_value(ctx, i, i) if i % 2 else gochan.with_cancel(ctx)[0]
    leaf = weakref.ref(ctx)
    assert ctx.value(1) == 1
    assert "more>" in repr(ctx) and len(repr(ctx)) < 1000
    cancel()
    assert isinstance(ctx.err(), gochan.Cancelled)
    assert ctx.cause() is ctx.err()
    del ctx
    gc.collect()
    assert leaf() is None


# ---------------------------------------------------------------------------------------------
# Deadlines


def check_deadline(c, name):
    """Go's testDeadline: the context times out, with DeadlineExceeded."""
    wait_done(c)
    assert isinstance(c.err(), gochan.DeadlineExceeded), name


# Port of Go's context.TestDeadline (src/context/x_test.go).
def test_go_TestDeadline():
    c, _ = gochan.with_deadline(gochan.background(), time.monotonic() + SHORT)
    assert repr(c).startswith("<gochan.Context background.with_deadline(")
    check_deadline(c, "with_deadline")

    c, _ = gochan.with_deadline(gochan.background(), time.monotonic() + SHORT)
    c, _ = gochan.with_deadline(c, time.monotonic() + VERY_LONG)
    check_deadline(c, "with_deadline+with_deadline")

    c, _ = gochan.with_deadline(gochan.background(), time.monotonic() - SHORT)
    check_deadline(c, "with_deadline+inthepast")

    c, _ = gochan.with_deadline(gochan.background(), time.monotonic())
    check_deadline(c, "with_deadline+now")


# Port of Go's context.TestTimeout (src/context/x_test.go).
def test_go_TestTimeout():
    c, _ = gochan.with_timeout(gochan.background(), SHORT)
    assert repr(c).startswith("<gochan.Context background.with_timeout(")
    check_deadline(c, "with_timeout")

    c, _ = gochan.with_timeout(gochan.background(), SHORT)
    c, _ = gochan.with_timeout(c, VERY_LONG)
    check_deadline(c, "with_timeout+with_timeout")


# Port of Go's context.TestCanceledTimeout (src/context/x_test.go).
def test_go_TestCanceledTimeout():
    c, _ = gochan.with_timeout(gochan.background(), 1.0)
    c, cancel = gochan.with_timeout(c, VERY_LONG)
    cancel()  # propagates synchronously
    assert is_done(c)
    assert isinstance(c.err(), gochan.Cancelled)


def test_deadline_is_the_earliest_of_the_chain():
    now = time.monotonic()
    parent, _ = gochan.with_deadline(gochan.background(), now + 10)
    assert parent.deadline() == now + 10  # exactly the float given
    later, _ = gochan.with_deadline(parent, now + 20)
    sooner, _ = gochan.with_deadline(parent, now + 5)
    plain, _ = gochan.with_cancel(parent)
    value = gochan.with_value(sooner, "k", "v")
    assert later.deadline() == now + 10
    assert sooner.deadline() == now + 5
    assert plain.deadline() == now + 10
    assert value.deadline() == now + 5
    assert gochan.without_cancel(sooner).deadline() is None
    t, _ = gochan.with_timeout(gochan.background(), 2.0)
    assert now + 2.0 <= t.deadline() <= time.monotonic() + 2.0
    forever, _ = gochan.with_timeout(gochan.background(), math.inf)
    assert forever.deadline() is None
    forever, _ = gochan.with_deadline(gochan.background(), math.inf)
    assert forever.deadline() is None


def test_deadline_taken_from_the_parent_expires_the_child_with_it():
    parent, _ = gochan.with_timeout(gochan.background(), 0.02)
    child, _ = gochan.with_timeout(parent, VERY_LONG)
    wait_done(child)
    assert isinstance(child.err(), gochan.DeadlineExceeded)
    assert isinstance(parent.err(), gochan.DeadlineExceeded)


@pytest.mark.parametrize("seconds", [0, -1, -0.0, -math.inf])
def test_timeout_already_past_gives_a_context_already_expired(seconds):
    ctx, cancel = gochan.with_timeout(gochan.background(), seconds)
    assert is_done(ctx)
    assert isinstance(ctx.err(), gochan.DeadlineExceeded)
    assert isinstance(ctx.err(), TimeoutError)
    cancel()
    assert isinstance(ctx.err(), gochan.DeadlineExceeded)  # the first cause stays


def test_err_turns_at_the_deadline_itself():
    """No wait for the timer thread: err() compares the clock with the deadline."""
    for _ in range(20):
        ctx, cancel = gochan.with_timeout(gochan.background(), 0.002)
        child = gochan.with_value(ctx, "k", 1)
        while time.monotonic() < ctx.deadline():
            pass
        assert isinstance(child.err(), gochan.DeadlineExceeded)
        assert is_done(child) and is_done(ctx)
        cancel()


# Port of Go's context.TestDeadlineExceededSupportsTimeout (src/context/x_test.go).
def test_go_TestDeadlineExceededSupportsTimeout():
    assert issubclass(gochan.DeadlineExceeded, TimeoutError)
    assert issubclass(gochan.DeadlineExceeded, gochan.ContextError)
    assert not issubclass(gochan.Cancelled, TimeoutError)


# ---------------------------------------------------------------------------------------------
# Values


# Port of Go's context.TestValues (src/context/x_test.go). Go's keys differ by type; here by
# value, since keys are compared with ==.
def test_go_TestValues():
    k1, k2, k3 = ("key1", 1), ("key2", 1), ("key2", 3)

    def check(c, v1, v2, v3):
        assert (c.value(k1), c.value(k2), c.value(k3)) == (v1, v2, v3)

    check(gochan.background(), None, None, None)
    c1 = gochan.with_value(gochan.background(), k1, "c1k1")
    check(c1, "c1k1", None, None)
    assert repr(c1) == "<gochan.Context background.with_value(('key1', 1), 'c1k1')>"
    c2 = gochan.with_value(c1, k2, "c2k2")
    check(c2, "c1k1", "c2k2", None)
    c3 = gochan.with_value(c2, k3, "c3k3")
    check(c3, "c1k1", "c2k2", "c3k3")
    c4 = gochan.with_value(c3, k1, None)  # shadows c1's
    check(c4, None, "c2k2", "c3k3")
    assert repr(c4) == (
        "<gochan.Context background.with_value(('key1', 1), 'c1k1')"
        ".with_value(('key2', 1), 'c2k2').with_value(('key2', 3), 'c3k3')"
        ".with_value(('key1', 1), None)>"
    )
    # Values are seen through cancellable layers too.
    c5, _ = gochan.with_cancel(c4)
    c6 = gochan.with_value(c5, k3, None)
    check(c6, None, "c2k2", None)


def test_values_compare_keys_with_eq():
    class Key:
        def __init__(self, name):
            self.name = name

        def __eq__(self, other):
            return isinstance(other, Key) and other.name == self.name

        __hash__ = None  # keys need not be hashable

    ctx = gochan.with_value(gochan.background(), Key("a"), 1)
    assert ctx.value(Key("a")) == 1
    assert ctx.value(Key("b")) is None


def test_value_lookup_propagates_errors_of_eq():
    class Bad:
        def __eq__(self, other):
            raise ArithmeticError("no")

    ctx = gochan.with_value(gochan.background(), Bad(), 1)
    with pytest.raises(ArithmeticError):
        ctx.value("x")


# Port of Go's context.TestWithValueChecksKey (src/context/x_test.go).
def test_go_TestWithValueChecksKey():
    with pytest.raises(TypeError, match="key must not be None"):
        gochan.with_value(gochan.background(), None, "bar")


def test_value_context_shares_its_parents_cancellation():
    parent, cancel = gochan.with_cancel(gochan.background())
    ctx = gochan.with_value(parent, "k", "v")
    assert parent._children() == 0  # nothing new to link
    cancel()
    assert is_done(ctx) and isinstance(ctx.err(), gochan.Cancelled)


# ---------------------------------------------------------------------------------------------
# Causes


def _cause_cases():
    parent_cause = RuntimeError("parentCause")
    child_cause = RuntimeError("childCause")
    finished_early = RuntimeError("finishedEarly")
    bg = gochan.background

    def with_cancel():
        ctx, cancel = gochan.with_cancel(bg())
        cancel()
        return ctx

    def with_cancel_cause():
        ctx, cancel = gochan.with_cancel_cause(bg())
        cancel(parent_cause)
        return ctx

    def with_cancel_cause_none():
        ctx, cancel = gochan.with_cancel_cause(bg())
        cancel(None)
        return ctx

    def parent_cause_before_child():
        ctx, cancel_parent = gochan.with_cancel_cause(bg())
        ctx, cancel_child = gochan.with_cancel_cause(ctx)
        cancel_parent(parent_cause)
        cancel_child(child_cause)
        return ctx

    def parent_cause_after_child():
        ctx, cancel_parent = gochan.with_cancel_cause(bg())
        ctx, cancel_child = gochan.with_cancel_cause(ctx)
        cancel_child(child_cause)
        cancel_parent(parent_cause)
        return ctx

    def parent_cause_before_nil():
        ctx, cancel_parent = gochan.with_cancel_cause(bg())
        ctx, cancel_child = gochan.with_cancel(ctx)
        cancel_parent(parent_cause)
        cancel_child()
        return ctx

    def parent_cause_after_nil():
        ctx, cancel_parent = gochan.with_cancel_cause(bg())
        ctx, cancel_child = gochan.with_cancel(ctx)
        cancel_child()
        cancel_parent(parent_cause)
        return ctx

    def child_cause_after_nil():
        ctx, cancel_parent = gochan.with_cancel(bg())
        ctx, cancel_child = gochan.with_cancel_cause(ctx)
        cancel_parent()
        cancel_child(child_cause)
        return ctx

    def child_cause_before_nil():
        ctx, cancel_parent = gochan.with_cancel(bg())
        ctx, cancel_child = gochan.with_cancel_cause(ctx)
        cancel_child(child_cause)
        cancel_parent()
        return ctx

    def with_timeout():
        ctx, cancel = gochan.with_timeout(bg(), 0)
        cancel()
        return ctx

    def with_timeout_cancelled():
        ctx, cancel = gochan.with_timeout(bg(), VERY_LONG)
        cancel()
        return ctx

    def timeout_stacked():
        ctx, cancel = gochan.with_cancel_cause(bg())
        ctx, _ = gochan.with_timeout(ctx, 0)
        cancel(finished_early)
        return ctx

    def timeout_stacked_cancelled():
        ctx, cancel = gochan.with_cancel_cause(bg())
        ctx, _ = gochan.with_timeout(ctx, VERY_LONG)
        cancel(finished_early)
        return ctx

    def cause_through_values():
        ctx, cancel = gochan.with_cancel_cause(bg())
        ctx = gochan.with_value(ctx, "k", "v")
        ctx, _ = gochan.with_cancel(ctx)
        ctx = gochan.with_value(ctx, "k2", "v2")
        cancel(finished_early)
        return ctx

    def without_cancel():
        return gochan.without_cancel(bg())

    def without_cancel_cancelled():
        ctx, cancel = gochan.with_cancel_cause(bg())
        ctx = gochan.without_cancel(ctx)
        cancel(finished_early)
        return ctx

    def without_cancel_timeout():
        ctx, cancel = gochan.with_timeout(bg(), 0)
        ctx = gochan.without_cancel(ctx)
        cancel()
        return ctx

    C, D = gochan.Cancelled, gochan.DeadlineExceeded
    # name: (make, err class or None, cause: an exception, "err" for err() itself, or None)
    return {
        "Background": (bg, None, None),
        "TODO": (gochan.todo, None, None),
        "WithCancel": (with_cancel, C, "err"),
        "WithCancelCause": (with_cancel_cause, C, parent_cause),
        "WithCancelCause nil": (with_cancel_cause_none, C, "err"),
        "parent cause before child": (parent_cause_before_child, C, parent_cause),
        "parent cause after child": (parent_cause_after_child, C, child_cause),
        "parent cause before nil": (parent_cause_before_nil, C, parent_cause),
        "parent cause after nil": (parent_cause_after_nil, C, "err"),
        "child cause after nil": (child_cause_after_nil, C, "err"),
        "child cause before nil": (child_cause_before_nil, C, child_cause),
        "WithTimeout": (with_timeout, D, "err"),
        "WithTimeout canceled": (with_timeout_cancelled, C, "err"),
        "WithTimeout stacked": (timeout_stacked, D, "err"),
        "WithTimeout stacked canceled": (timeout_stacked_cancelled, C, finished_early),
        "cause through values": (cause_through_values, C, finished_early),
        "WithoutCancel": (without_cancel, None, None),
        "WithoutCancel canceled": (without_cancel_cancelled, None, None),
        "WithoutCancel timeout": (without_cancel_timeout, None, None),
    }


CAUSE_CASES = _cause_cases()


# Port of Go's context.TestCause (src/context/x_test.go), without the cases of
# WithTimeoutCause and custom contexts, which gochan does not have.
@pytest.mark.parametrize("name", list(CAUSE_CASES))
def test_go_TestCause(name):
    make, err_class, cause = CAUSE_CASES[name]
    ctx = make()
    if err_class is None:
        assert ctx.err() is None
    else:
        assert type(ctx.err()) is err_class
    if cause == "err":
        assert ctx.cause() is ctx.err()
    else:
        assert ctx.cause() is cause


# Port of Go's context.TestCauseRace (src/context/x_test.go).
def test_go_TestCauseRace():
    for _ in range(50):
        cause = RuntimeError("TestCauseRace")
        ctx, cancel = gochan.with_cancel_cause(gochan.background())
        t = threading.Thread(target=cancel, args=(cause,))
        t.start()
        deadline = time.monotonic() + LONG
        while (got := ctx.cause()) is None:
            assert time.monotonic() < deadline
        assert got is cause
        t.join(LONG)


def test_first_cancel_with_cause_wins():
    ctx, cancel = gochan.with_cancel_cause(gochan.background())
    first, second = ValueError("first"), ValueError("second")
    cancel(first)
    cancel(second)
    cancel(cause=None)
    assert ctx.cause() is first
    ctx, cancel = gochan.with_cancel_cause(gochan.background())
    cancel()
    cancel(second)
    assert ctx.cause() is ctx.err()


# ---------------------------------------------------------------------------------------------
# without_cancel


# Port of Go's context.TestWithoutCancel (src/context/x_test.go).
def test_go_TestWithoutCancel():
    key, value = "key", "value"
    parent, cancel = gochan.with_timeout(gochan.with_value(gochan.background(), key, value), 5)
    ctx = gochan.without_cancel(parent)
    assert ctx.deadline() is None
    cancel()
    assert not is_done(ctx)
    assert ctx.err() is None and ctx.cause() is None
    assert ctx.value(key) == value
    assert repr(ctx).endswith(".without_cancel>")


def test_children_of_without_cancel_are_cancellable_on_their_own():
    parent, cancel_parent = gochan.with_cancel(gochan.background())
    detached = gochan.without_cancel(parent)
    child, cancel_child = gochan.with_cancel(detached)
    cancel_parent()
    assert child.err() is None
    cancel_child()
    assert isinstance(child.err(), gochan.Cancelled)


# ---------------------------------------------------------------------------------------------
# err, done, check


# Port of Go's context.TestContextErrDoneRace (src/context/x_test.go): once err() is not None,
# done() is closed.
def test_go_TestContextErrDoneRace():
    for _ in range(200):
        ctx, cancel = gochan.with_cancel(gochan.background())
        done = ctx.done()
        t = threading.Thread(target=cancel)
        t.start()
        deadline = time.monotonic() + LONG
        while ctx.err() is None:
            assert time.monotonic() < deadline
        assert done.closed
        t.join(LONG)


def test_err_is_one_instance_and_raises_are_fresh_ones():
    ctx, cancel = gochan.with_cancel(gochan.background())
    assert ctx.done() is ctx.done()
    cancel()
    assert ctx.err() is ctx.err()
    raised = []
    for _ in range(2):
        with pytest.raises(gochan.Cancelled, match="context canceled") as info:
            ctx.check()
        raised.append(info.value)
    assert raised[0] is not raised[1]
    assert ctx.err() not in raised
    with pytest.raises(gochan.Cancelled):
        gochan.Chan(1).recv(ctx=ctx)


def test_done_is_a_receive_only_channel_closed_on_cancel():
    ctx, cancel = gochan.with_cancel(gochan.background())
    done = ctx.done()
    assert isinstance(done, gochan.RecvChan)
    assert not hasattr(done, "send") and not hasattr(done, "close")
    with pytest.raises(TimeoutError):
        done.recv(timeout=0.01)
    cancel()
    with pytest.raises(gochan.ChannelClosed):
        done.recv()
    assert list(done) == []


def test_done_outlives_its_context():
    ctx, cancel = gochan.with_cancel(gochan.background())
    done = ctx.done()
    del ctx
    gc.collect()
    cancel()  # the cancel function still holds the context
    assert done.closed


def test_done_works_in_select():
    ctx, cancel = gochan.with_cancel(gochan.background())
    jobs = gochan.Chan()
    threading.Timer(0.02, cancel).start()
    index, value, ok = gochan.select(gochan.Recv(jobs), gochan.Recv(ctx.done()),
                                     timeout=LONG)
    assert (index, value, ok) == (1, None, False)


# ---------------------------------------------------------------------------------------------
# ctx= on blocking calls


BLOCKED_CALLS = {
    "recv": (0, lambda ch, ctx: ch.recv(ctx=ctx)),
    "recv_ok": (0, lambda ch, ctx: ch.recv_ok(ctx=ctx)),
    "recv_many": (0, lambda ch, ctx: ch.recv_many(10, ctx=ctx)),
    "send": (0, lambda ch, ctx: ch.send("x", ctx=ctx)),
    "send_many": (1, lambda ch, ctx: ch.send_many(["a", "b", "c"], ctx=ctx)),
    "recv_buffered": (4, lambda ch, ctx: ch.recv(ctx=ctx)),
}


@pytest.mark.parametrize("name", list(BLOCKED_CALLS))
def test_cancel_wakes_a_blocked_call_at_once(name, spawn):
    capacity, call = BLOCKED_CALLS[name]
    ch = gochan.Chan(capacity)
    ctx, cancel = gochan.with_cancel(gochan.background())
    child = gochan.with_value(ctx, "k", "v")  # cancelled through its parent
    w = spawn(call, ch, child)
    if name.startswith("send"):
        wait_for_senders(ch, 1)
    else:
        wait_for_receivers(ch, 1)
    time.sleep(SETTLE)
    assert not w.done
    start = time.monotonic()
    cancel()
    exc = w.exception()
    assert time.monotonic() - start < LONG
    assert isinstance(exc, gochan.Cancelled)
    st = ch.statistics()
    assert (st.waiting_senders, st.waiting_receivers) == (0, 0)
    if name == "send":
        assert len(ch) == 0
    if name == "send_many":
        assert ch.recv_many(10) == ["a"]  # the first went in; nothing else did


def test_deadline_wakes_a_blocked_call_with_deadline_exceeded():
    ch = gochan.Chan()
    ctx, cancel = gochan.with_timeout(gochan.background(), 0.05)
    start = time.monotonic()
    with pytest.raises(gochan.DeadlineExceeded):
        ch.recv(ctx=ctx)
    elapsed = time.monotonic() - start
    assert 0.05 <= elapsed < 0.05 * 10 + 1
    cancel()


@pytest.mark.parametrize("op", ["send", "recv", "recv_ok", "recv_many", "send_many"])
def test_done_context_raises_before_trying_even_when_the_call_could_proceed(op):
    ch = gochan.Chan(4)
    ch.send("ready")
    ctx, cancel = gochan.with_cancel(gochan.background())
    cancel()
    with pytest.raises(gochan.Cancelled):
        if op == "send":
            ch.send("x", ctx=ctx)
        elif op == "send_many":
            ch.send_many(["x"], ctx=ctx)
        elif op == "recv_many":
            ch.recv_many(4, ctx=ctx)
        else:
            getattr(ch, op)(ctx=ctx)
    assert ch.recv_nowait() == "ready" and len(ch) == 0
    expired, _ = gochan.with_timeout(gochan.background(), 0)
    with pytest.raises(gochan.DeadlineExceeded):
        ch.send("x", ctx=expired, timeout=0)
    assert len(ch) == 0


def test_value_sent_while_cancelling_is_received_or_reported_not_sent(spawn):
    ROUNDS = 100
    received = cancelled = 0
    for i in range(ROUNDS):
        ch = gochan.Chan()
        ctx, cancel = gochan.with_cancel(gochan.background())
        receiver = spawn(ch.recv, ctx=ctx)
        wait_for_receivers(ch, 1)
        go = threading.Barrier(2)

        def send():
            go.wait(LONG)
            try:
                ch.send(i, timeout=0.01)  # a receiver still there takes it at once
                return True
            except TimeoutError:
                return False

        sender = spawn(send)
        go.wait(LONG)
        cancel()
        sent = sender.join()
        exc = receiver.exception()
        if exc is None:
            assert sent and receiver.join() == i
            received += 1
        else:
            assert isinstance(exc, gochan.Cancelled) and not sent
            cancelled += 1
    assert received + cancelled == ROUNDS


def test_ctx_of_the_wrong_type_is_a_type_error():
    ch = gochan.Chan(1)
    with pytest.raises(TypeError, match="ctx must be a gochan Context or None"):
        ch.send(1, ctx="soon")
    with pytest.raises(TypeError, match="ctx must be a gochan Context or None"):
        ch.recv(ctx=object())


def test_ctrl_c_interrupts_recv_with_ctx_in_the_main_thread(child):
    script = textwrap.dedent("""
        import threading, time
        import gochan
        ch = gochan.Chan()
        ctx, cancel = gochan.with_cancel(gochan.background())
        def watch():
            while ch.statistics().waiting_receivers != 1:
                time.sleep(0.001)
            print("ready", flush=True)
        threading.Thread(target=watch, daemon=True).start()
        try:
            ch.recv(ctx=ctx)
        except KeyboardInterrupt:
            print("interrupted", ch.statistics().waiting_receivers, ctx.err(), flush=True)
    """)
    c = child(script)
    c.expect("ready")
    time.sleep(0.05)
    c.send_signal(signal.SIGINT)
    c.expect("interrupted 0 None")
    rc, _, err = c.finish()
    assert rc == 0, err


# ---------------------------------------------------------------------------------------------
# after_func


def _flag():
    ev = threading.Event()
    return ev, ev.set


# Port of Go's context.TestAfterFuncCalledAfterCancel (src/context/x_test.go).
def test_go_TestAfterFuncCalledAfterCancel():
    ctx, cancel = gochan.with_cancel(gochan.background())
    ran, fn = _flag()
    stop = ctx.after_func(fn)
    assert not ran.wait(SHORT * 10)
    cancel()
    assert ran.wait(LONG)
    assert stop() is False


# Port of Go's context.TestAfterFuncCalledAfterTimeout (src/context/x_test.go).
def test_go_TestAfterFuncCalledAfterTimeout():
    ctx, cancel = gochan.with_timeout(gochan.background(), SHORT)
    ran, fn = _flag()
    ctx.after_func(fn)
    assert ran.wait(LONG)
    cancel()


# Port of Go's context.TestAfterFuncCalledImmediately (src/context/x_test.go).
def test_go_TestAfterFuncCalledImmediately():
    ctx, cancel = gochan.with_cancel(gochan.background())
    cancel()
    ran, fn = _flag()
    stop = ctx.after_func(fn)
    assert ran.wait(LONG)
    assert stop() is False


# Port of Go's context.TestAfterFuncNotCalledAfterStop (src/context/x_test.go).
def test_go_TestAfterFuncNotCalledAfterStop():
    ctx, cancel = gochan.with_cancel(gochan.background())
    ran, fn = _flag()
    stop = ctx.after_func(fn)
    assert stop() is True
    cancel()
    assert not ran.wait(SETTLE)
    assert stop() is False


# Port of Go's context.TestAfterFuncCalledAsynchronously (src/context/x_test.go): cancel()
# does not wait for the function, which here blocks until the test receives from it.
def test_go_TestAfterFuncCalledAsynchronously():
    ctx, cancel = gochan.with_cancel(gochan.background())
    ch = gochan.Chan()
    stop = ctx.after_func(lambda: ch.send("called", timeout=LONG))
    cancel()
    assert ch.recv(timeout=LONG) == "called"
    stop()


def test_after_func_runs_each_function_once_in_its_own_thread():
    ctx, cancel = gochan.with_cancel(gochan.background())
    calls = gochan.Chan(100)
    for i in range(20):
        ctx.after_func(lambda i=i: calls.send((i, threading.get_ident())))
    cancel()
    cancel()
    got = [calls.recv(timeout=LONG) for _ in range(20)]
    assert sorted(i for i, _ in got) == list(range(20))
    assert threading.get_ident() not in {t for _, t in got}
    with pytest.raises(TimeoutError):
        calls.recv(timeout=SETTLE)


def test_after_func_on_a_context_never_cancelled_never_runs():
    ran, fn = _flag()
    stop = gochan.background().after_func(fn)
    assert stop() is True
    assert stop() is False
    assert not ran.is_set()


def test_after_func_rejects_what_is_not_callable():
    ctx, _ = gochan.with_cancel(gochan.background())
    with pytest.raises(TypeError, match="fn must be callable"):
        ctx.after_func(42)


def test_stopped_after_func_releases_its_function():
    ctx, cancel = gochan.with_cancel(gochan.background())

    class Fn:
        def __call__(self):
            pass

    fn = Fn()
    ref = weakref.ref(fn)
    stop = ctx.after_func(fn)
    del fn
    assert ref() is not None
    assert stop() is True
    assert ref() is None
    cancel()


# ---------------------------------------------------------------------------------------------
# The (ctx, cancel) pair


def test_pair_unpacks_and_is_a_tuple():
    pair = gochan.with_cancel(gochan.background())
    assert isinstance(pair, tuple) and len(pair) == 2
    ctx, cancel = pair
    assert isinstance(ctx, gochan.Context) and isinstance(cancel, gochan.CancelFunc)
    assert pair == (ctx, cancel)


@pytest.mark.parametrize("make", [
    lambda p: gochan.with_cancel(p),
    lambda p: gochan.with_cancel_cause(p),
    lambda p: gochan.with_timeout(p, 60),
    lambda p: gochan.with_deadline(p, time.monotonic() + 60),
], ids=["with_cancel", "with_cancel_cause", "with_timeout", "with_deadline"])
def test_pair_as_context_manager_yields_ctx_and_cancels_on_exit(make):
    with make(gochan.background()) as ctx:
        assert isinstance(ctx, gochan.Context) and ctx.err() is None
    assert isinstance(ctx.err(), gochan.Cancelled)
    with pytest.raises(KeyError):
        with make(gochan.background()) as ctx:
            raise KeyError("boom")  # not swallowed
    assert isinstance(ctx.err(), gochan.Cancelled)


def test_cancel_function_arguments():
    _, cancel = gochan.with_cancel(gochan.background())
    with pytest.raises(TypeError, match="takes no arguments"):
        cancel(ValueError())
    _, cancel = gochan.with_cancel_cause(gochan.background())
    with pytest.raises(TypeError, match="exception instance or None"):
        cancel("why")
    with pytest.raises(TypeError, match="one optional argument"):
        cancel(ValueError(), ValueError())
    with pytest.raises(TypeError, match="one optional argument"):
        cancel(reason=ValueError())
    cancel(cause=ValueError("ok"))


# ---------------------------------------------------------------------------------------------
# Objects: repr, weak references, pickling, construction, garbage


def test_repr_shows_the_chain_and_the_state():
    ctx, cancel = gochan.with_cancel_cause(gochan.todo())
    ctx = gochan.without_cancel(gochan.with_value(ctx, "k", [1]))
    assert repr(ctx) == (
        "<gochan.Context todo.with_cancel_cause.with_value('k', [1]).without_cancel>"
    )
    t, tcancel = gochan.with_timeout(gochan.background(), 30)
    assert "with_timeout(29." in repr(t) or "with_timeout(30.000s left)" in repr(t)
    tcancel()
    assert repr(t).endswith(" (cancelled)>")
    e, _ = gochan.with_timeout(gochan.background(), -5)
    assert repr(e).endswith("s ago) (deadline exceeded)>")
    assert repr(cancel).startswith("<gochan.CancelFunc of <gochan.Context todo.with_cancel_cause")


def test_repr_of_a_value_that_holds_its_context():
    holder = []
    ctx = gochan.with_value(gochan.background(), "self", holder)
    holder.append(ctx)
    assert repr(ctx) == "<gochan.Context background.with_value('self', [<gochan.Context ...>])>"


def test_contexts_support_weak_references():
    ctx, cancel = gochan.with_cancel(gochan.background())
    ref = weakref.ref(ctx)
    assert ref() is ctx
    value = gochan.with_value(ctx, "k", 1)
    vref = weakref.ref(value)
    del ctx, value
    gc.collect()
    assert vref() is None
    assert ref() is not None  # the cancel function holds it
    del cancel
    gc.collect()
    assert ref() is None


def test_contexts_are_hashable_by_identity():
    a, _ = gochan.with_cancel(gochan.background())
    b, _ = gochan.with_cancel(gochan.background())
    assert len({a, b, a}) == 2 and a != b


@pytest.mark.parametrize("what", ["context", "cancel", "pair", "stop"])
def test_contexts_cannot_be_pickled(what):
    pair = gochan.with_cancel(gochan.background())
    obj = {"context": pair[0], "cancel": pair[1], "pair": pair,
           "stop": pair[0].after_func(print)}[what]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot pickle"):
            pickle.dumps(obj, protocol)


def test_context_types_cannot_be_made_directly():
    with pytest.raises(TypeError):
        gochan.Context()
    with pytest.raises(TypeError):
        gochan.CancelFunc()


def test_cycle_through_a_value_is_collected():
    ctx, cancel = gochan.with_cancel_cause(gochan.background())
    box = []
    inner = gochan.with_value(ctx, "box", box)
    box.append(inner)
    try:
        raise ValueError("cause")
    except ValueError as exc:
        cancel(exc)  # its traceback holds this frame, which holds ctx
    ref = weakref.ref(inner)
    ctx_ref = weakref.ref(ctx)
    del ctx, cancel, box, inner
    gc.collect()
    assert ref() is None and ctx_ref() is None


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("fn", [
    lambda p: gochan.with_cancel(p),
    lambda p: gochan.with_cancel_cause(p),
    lambda p: gochan.with_timeout(p, 1),
    lambda p: gochan.with_deadline(p, 1),
    lambda p: gochan.with_value(p, "k", "v"),
    lambda p: gochan.without_cancel(p),
], ids=["with_cancel", "with_cancel_cause", "with_timeout", "with_deadline", "with_value",
        "without_cancel"])
@pytest.mark.parametrize("parent", [None, "background", gochan.Chan()], ids=repr)
def test_go_TestInvalidDerivedFail(fn, parent):
    # Port of Go's context.TestInvalidDerivedFail (src/context/x_test.go): a parent that is
    # not a context (None included) is a TypeError naming what was expected.
    with pytest.raises(TypeError, match="parent must be a gochan Context"):
        fn(parent)


@pytest.mark.parametrize("fn", [gochan.with_timeout, gochan.with_deadline])
def test_nan_and_non_numbers_are_refused(fn):
    bg = gochan.background()
    with pytest.raises(ValueError, match="must not be NaN"):
        fn(bg, math.nan)
    with pytest.raises(TypeError, match="must be a number of seconds"):
        fn(bg, "5")
    with pytest.raises(TypeError, match="must be a number of seconds"):
        fn(bg, None)


def test_huge_timeouts_mean_no_deadline():
    for seconds in (1e300, 2**80, math.inf):
        ctx, cancel = gochan.with_timeout(gochan.background(), seconds)
        assert ctx.err() is None and ctx.deadline() is None
        cancel()


# ---------------------------------------------------------------------------------------------
# Memory


def _churn(parent, n):
    for i in range(n):
        ctx, cancel = gochan.with_cancel(parent)
        if i % 2:
            cancel()
        # even ones are dropped without a cancel
        del ctx, cancel


def test_million_children_of_one_parent_keep_memory_flat():
    """TestAllocs-like: a long-lived parent with a million short-lived children (half of them
    cancelled, half dropped) does not grow, and neither does the process."""
    skip_unless_rss_is_meaningful()
    parent, cancel = gochan.with_cancel(gochan.background())
    start = time.perf_counter()
    _churn(parent, 20_000)
    per_child = (time.perf_counter() - start) / 20_000
    n = 1_000_000 if per_child * 1_000_000 < 8 else 200_000
    gc.collect()
    objects_before = len(gc.get_objects())
    rss_before = _rss()
    _churn(parent, n)
    gc.collect()
    assert parent._children() == 0
    assert len(gc.get_objects()) - objects_before < 100
    # 1M contexts kept would be hundreds of MB; allow allocator noise.
    assert _rss() - rss_before < 16 * 1024 * 1024
    cancel()


def test_timeouts_cancelled_early_leave_no_timers():
    pending = _core._timer_stats()[0]
    parent, cancel = gochan.with_cancel(gochan.background())
    for _ in range(10_000):
        with gochan.with_timeout(parent, 3600):
            pass
    assert _core._timer_stats()[0] == pending
    assert parent._children() == 0
    cancel()


def _rss():
    with open("/proc/self/statm") as f:
        import os

        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_public_names_have_signatures_and_docstrings_with_examples():
    import inspect

    ctx, cancel = gochan.with_cancel_cause(gochan.background())
    plain_cancel = gochan.with_cancel(ctx)[1]
    stop = ctx.after_func(print)
    expected = {
        gochan.background: "()",
        gochan.todo: "()",
        gochan.with_value: "(parent, key, value)",
        gochan.without_cancel: "(parent)",
        gochan.Context.value: "(self, key, /)",
        gochan.Context.after_func: "(self, fn, /)",
        cancel: "(cause=None)",
        plain_cancel: "()",
        stop: "()",
    }
    for fn, text in expected.items():
        assert str(inspect.signature(fn)) == text, fn
    for name in ("with_cancel", "with_cancel_cause", "with_timeout", "with_deadline"):
        assert list(inspect.signature(getattr(gochan, name)).parameters)[0] == "parent"
    documented = [gochan.Context, gochan.CancelFunc, gochan.CancelPair, gochan.background,
                  gochan.todo, gochan.with_cancel, gochan.with_cancel_cause, gochan.with_timeout,
                  gochan.with_deadline, gochan.with_value, gochan.without_cancel, type(stop)]
    documented += [getattr(gochan.Context, m) for m in
                   ("done", "err", "cause", "deadline", "value", "check", "after_func")]
    for obj in documented:
        assert obj.__doc__ and "    " in obj.__doc__, obj  # an indented example
    stop()
    cancel()
