"""sync (API.md, "sync"): Mutex, RWMutex, Semaphore, WaitGroup, Once, once_func, once_value and
Map, with timeout= and ctx= on every blocking call, misuse errors, Ctrl-C on a blocked call in the
main thread (child interpreters), and ports of Go's own tests, each headed by its source."""

import ast
import gc
import inspect
import os
import pickle
import signal
import textwrap
import threading
import time
import weakref

import pytest

import gochan
from conftest import LONG, SETTLE, wait_until



class Counter:
    """An integer updated atomically (Go's atomic.AddInt32): add() returns the new value."""

    def __init__(self):
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n):
        with self._lock:
            self.value += n
            return self.value


def join_all(goroutines):
    return [g.join(timeout=LONG) for g in goroutines]


def cancel_later(delay=SETTLE):
    """A context cancelled by a timer thread after `delay` seconds."""
    ctx, cancel = gochan.with_cancel(gochan.background())
    threading.Timer(delay, cancel).start()
    return ctx


def cancelled_context():
    ctx, cancel = gochan.with_cancel(gochan.background())
    cancel()
    return ctx


# --- Mutex ---------------------------------------------------------------------------------------

def test_mutex_lock_unlock_try_lock_locked():
    m = gochan.Mutex()
    assert not m.locked()
    assert m.lock() is True
    assert m.locked()
    assert m.try_lock() is False
    m.unlock()
    assert m.try_lock() is True
    m.unlock()
    assert not m.locked()


# Port of Go's TestMutexMisuse (src/sync/mutex_test.go): unlock of an unlocked mutex.
@pytest.mark.parametrize("how", ["never locked", "unlocked twice"])
def test_go_TestMutexMisuse(how):
    m = gochan.Mutex()
    if how == "unlocked twice":
        m.lock()
        m.unlock()
    with pytest.raises(RuntimeError, match="unlock of unlocked Mutex"):
        m.unlock()
    assert not m.locked()


def test_mutex_as_context_manager():
    m = gochan.Mutex()
    with m as entered:
        assert entered is m
        assert m.locked()
    assert not m.locked()
    with pytest.raises(KeyError):
        with m:
            raise KeyError
    assert not m.locked()


def test_mutex_lock_times_out_with_false():
    m = gochan.Mutex()
    m.lock()
    assert m.lock(timeout=0) is False
    start = time.monotonic()
    assert m.lock(timeout=0.05) is False
    assert time.monotonic() - start >= 0.05
    m.unlock()
    assert m.lock(timeout=0) is True
    m.unlock()


def test_mutex_may_be_unlocked_by_another_thread():
    m = gochan.Mutex()
    m.lock()
    gochan.go(m.unlock).join(timeout=LONG)
    assert not m.locked()


def test_mutex_unlock_wakes_a_waiter(spawn):
    m = gochan.Mutex()
    m.lock()
    waiter = spawn(m.lock, timeout=LONG)
    time.sleep(SETTLE)
    assert not waiter.done
    m.unlock()
    assert waiter.join() is True
    assert m.locked()
    m.unlock()


# Port of Go's TestMutex (src/sync/mutex_test.go): goroutines hammering one mutex; here each
# critical section does a read-modify-write of a plain int, which the mutex must keep whole.
def test_go_TestMutex():
    m = gochan.Mutex()
    state = {"n": 0}

    def hammer(loops):
        for i in range(loops):
            if i % 3 == 0:
                m.lock()
            elif i % 3 == 1:
                while not m.try_lock():
                    time.sleep(0)
            else:
                assert m.lock(timeout=LONG)
            n = state["n"]
            if i % 16 == 0:
                time.sleep(0)  # let another thread try to get in
            state["n"] = n + 1
            m.unlock()

    join_all([gochan.go(hammer, 500) for _ in range(10)])
    assert state["n"] == 5000
    assert not m.locked()


def test_mutex_waiter_gets_in_against_a_holder_that_relocks_at_once():
    m = gochan.Mutex()
    stop = threading.Event()

    def greedy():
        while not stop.is_set():
            with m:
                time.sleep(0.0005)

    g = gochan.go(greedy)
    try:
        for _ in range(5):
            assert m.lock(timeout=LONG)  # starvation mode hands it over
            m.unlock()
    finally:
        stop.set()
        g.join(timeout=LONG)


def test_mutex_handoff_between_two_threads():
    a, b = gochan.Mutex(), gochan.Mutex()
    a.lock()
    b.lock()
    rounds = 500

    def partner():
        for _ in range(rounds):
            assert a.lock(timeout=LONG)
            b.unlock()

    g = gochan.go(partner)
    for _ in range(rounds):
        a.unlock()
        assert b.lock(timeout=LONG)
    g.join(timeout=LONG)


def test_mutex_lock_raises_when_ctx_is_cancelled_while_waiting():
    m = gochan.Mutex()
    m.lock()
    with pytest.raises(gochan.Cancelled):
        m.lock(ctx=cancel_later())
    assert m.locked()
    m.unlock()
    assert m.try_lock()  # the cancelled waiter left nothing behind
    m.unlock()


def test_mutex_lock_with_a_done_ctx_raises_even_when_free():
    m = gochan.Mutex()
    with pytest.raises(gochan.Cancelled):
        m.lock(ctx=cancelled_context())
    assert not m.locked()


def test_mutex_lock_ctx_deadline_raises_deadline_exceeded():
    m = gochan.Mutex()
    m.lock()
    ctx, cancel = gochan.with_timeout(gochan.background(), 0.05)
    with pytest.raises(gochan.DeadlineExceeded):
        m.lock(ctx=ctx)
    cancel()
    m.unlock()


def test_mutex_blocked_lock_lets_other_threads_run(spawn):
    m = gochan.Mutex()
    m.lock()
    waiter = spawn(m.lock, timeout=LONG)
    # The main thread keeps running Python while the waiter is blocked, and unlocks.
    total = sum(range(100_000))
    m.unlock()
    assert waiter.join() is True and total > 0
    m.unlock()


# --- RWMutex -------------------------------------------------------------------------------------

def test_rwmutex_readers_share_and_writers_exclude():
    rw = gochan.RWMutex()
    assert rw.rlock() and rw.try_rlock()
    assert not rw.try_lock()
    assert rw.lock(timeout=0) is False
    rw.runlock()
    rw.runlock()
    assert rw.try_lock()
    assert not rw.try_rlock()
    assert rw.rlock(timeout=0.02) is False
    assert not rw.try_lock()
    rw.unlock()
    assert rw.lock(timeout=0)
    rw.unlock()


@pytest.mark.parametrize(("setup", "call", "message"), [
    ("rlock", "unlock", "read-locked: use runlock"),
    ("lock", "runlock", "write-locked: use unlock"),
    (None, "unlock", "unlock of unlocked RWMutex"),
    (None, "runlock", "runlock of unlocked RWMutex"),
])
def test_rwmutex_misuse_raises_runtime_error(setup, call, message):
    rw = gochan.RWMutex()
    if setup:
        getattr(rw, setup)()
    with pytest.raises(RuntimeError, match=message):
        getattr(rw, call)()
    if setup == "rlock":
        rw.runlock()  # unchanged: still read-locked
    elif setup == "lock":
        rw.unlock()
    assert rw.try_lock()
    rw.unlock()


def test_rwmutex_read_and_write_context_managers():
    rw = gochan.RWMutex()
    with rw.read():
        assert not rw.try_lock()
        with rw.read():
            pass
    with rw.write() as entered:
        assert entered is None
        assert not rw.try_rlock()
    with pytest.raises(ValueError):
        with rw.write():
            raise ValueError
    assert rw.try_lock()
    rw.unlock()
    assert isinstance(rw.read(), gochan.RWMutexGuard)
    assert "write" in repr(rw.write())


def test_a_waiting_writer_blocks_new_readers(spawn):
    rw = gochan.RWMutex()
    rw.rlock()
    writer = spawn(rw.lock, timeout=LONG)

    def readers_kept_out():
        if rw.try_rlock():  # the writer is not waiting yet
            rw.runlock()
            return False
        return True

    wait_until(readers_kept_out)
    assert rw.rlock(timeout=0.02) is False
    assert not writer.done
    rw.runlock()  # the last reader leaves: the writer gets in
    assert writer.join() is True
    rw.unlock()


def test_a_writer_that_gives_up_lets_the_readers_in(spawn):
    rw = gochan.RWMutex()
    rw.rlock()
    assert rw.lock(timeout=0.05) is False
    assert rw.try_rlock()  # no writer waits any more
    rw.runlock()
    rw.runlock()


def test_writer_unlock_lets_waiting_readers_in_before_the_next_writer():
    rw = gochan.RWMutex()
    rw.lock()
    order = []
    readers_in = Counter()
    release = gochan.Chan()

    def reader():
        with rw.read():
            order.append("r")
            readers_in.add(1)
            release.recv(timeout=LONG)

    def writer():
        with rw.write():
            order.append("w")

    readers = [gochan.go(reader) for _ in range(3)]
    time.sleep(SETTLE)
    w = gochan.go(writer)
    time.sleep(SETTLE)
    rw.unlock()
    wait_until(lambda: readers_in.value == 3)
    assert order == ["r", "r", "r"]
    for _ in range(3):
        release.send(None)
    join_all(readers)
    w.join(timeout=LONG)
    assert order == ["r", "r", "r", "w"]


# Port of Go's TestRWMutex / HammerRWMutex (src/sync/rwmutex_test.go): readers add 1 to an
# activity counter and writers 10000; a reader must never see a writer's share, a writer must see
# nothing but its own.
@pytest.mark.parametrize(("readers", "iterations"), [(1, 300), (3, 300), (10, 100)])
def test_go_TestRWMutex(readers, iterations):
    rw = gochan.RWMutex()
    activity = Counter()

    def reader():
        for _ in range(iterations):
            rw.rlock()
            n = activity.add(1)
            assert 1 <= n < 10000, n
            time.sleep(0)
            activity.add(-1)
            rw.runlock()

    def writer():
        for _ in range(iterations):
            rw.lock()
            n = activity.add(10000)
            assert n == 10000, n
            time.sleep(0)
            activity.add(-10000)
            rw.unlock()

    goroutines = [gochan.go(writer), gochan.go(writer)]
    goroutines += [gochan.go(reader) for _ in range(readers)]
    join_all(goroutines)
    assert activity.value == 0
    assert rw.try_lock()
    rw.unlock()


@pytest.mark.parametrize("call", ["lock", "rlock"])
def test_rwmutex_blocked_calls_raise_on_ctx_cancel(call):
    rw = gochan.RWMutex()
    rw.lock()
    with pytest.raises(gochan.Cancelled):
        getattr(rw, call)(ctx=cancel_later())
    rw.unlock()
    with pytest.raises(gochan.Cancelled):
        getattr(rw, call)(ctx=cancelled_context())
    assert rw.try_lock()  # nothing left behind
    rw.unlock()


# --- Semaphore -----------------------------------------------------------------------------------

def test_semaphore_acquire_release_and_with():
    sem = gochan.Semaphore(3)
    assert sem.acquire() and sem.acquire(2)
    assert not sem.try_acquire()
    assert sem.acquire(timeout=0) is False
    assert sem.acquire(n=1, timeout=0.02) is False
    sem.release(3)
    with sem as entered:
        assert entered is sem
        assert sem.try_acquire(2)
        sem.release(2)
    assert sem.try_acquire(3)
    sem.release(n=3)
    assert "available=3" in repr(sem)


# Port of x/sync/semaphore TestWeightedPanic: releasing what is not held. (Go panics.)
def test_go_TestWeightedPanic():
    sem = gochan.Semaphore(1)
    with pytest.raises(ValueError, match="more than are held"):
        sem.release(1)
    assert sem.try_acquire()
    with pytest.raises(ValueError):
        sem.release(2)
    sem.release()


# Port of x/sync/semaphore TestWeightedTryAcquire.
def test_go_TestWeightedTryAcquire():
    sem = gochan.Semaphore(2)
    tries = []
    sem.acquire(1)
    tries.append(sem.try_acquire(1))
    tries.append(sem.try_acquire(1))
    sem.release(2)
    tries.append(sem.try_acquire(1))
    sem.acquire(1)
    tries.append(sem.try_acquire(1))
    assert tries == [True, False, True, False]


# Port of x/sync/semaphore TestWeighted / HammerWeighted: goroutines taking weights 1..n of a
# semaphore of size n; the tokens in use never exceed n (counted here).
def test_go_TestWeighted():
    n = 6
    sem = gochan.Semaphore(n)
    in_use = Counter()

    def hammer(weight, loops):
        for _ in range(loops):
            assert sem.acquire(weight, timeout=LONG)
            assert in_use.add(weight) <= n
            time.sleep(0)
            in_use.add(-weight)
            sem.release(weight)

    join_all([gochan.go(hammer, w, 100) for w in range(1, n + 1)])
    assert in_use.value == 0
    assert sem.try_acquire(n)


# Port of x/sync/semaphore TestLargeAcquireDoesntStarve: while small holders keep cycling, a
# request for the whole semaphore is served.
def test_go_TestLargeAcquireDoesntStarve():
    n = 4
    sem = gochan.Semaphore(n)
    running = threading.Event()
    running.set()

    def cycle():
        try:
            while running.is_set():
                time.sleep(0.001)
                sem.release(1)
                assert sem.acquire(1, timeout=LONG)
        finally:
            sem.release(1)

    goroutines = []
    for _ in range(n):
        sem.acquire(1)
        goroutines.append(gochan.go(cycle))
    assert sem.acquire(n, timeout=LONG)
    running.clear()
    sem.release(n)
    join_all(goroutines)


def test_semaphore_is_fifo_even_when_a_later_request_would_fit():
    sem = gochan.Semaphore(3)
    sem.acquire(3)
    order = []

    def take(k, tag):
        assert sem.acquire(k, timeout=LONG)
        order.append(tag)

    big = gochan.go(take, 2, "big")
    wait_until(lambda: not sem.try_acquire(0))  # someone is queued
    small = gochan.go(take, 1, "small")
    time.sleep(SETTLE)
    sem.release(1)  # one free: "small" would fit, but "big" came first
    time.sleep(SETTLE)
    assert order == []
    assert not sem.try_acquire(1)  # others are queued
    sem.release(1)
    big.join(timeout=LONG)
    assert order == ["big"]
    sem.release(1)
    small.join(timeout=LONG)
    assert order == ["big", "small"]
    sem.release(3)


def test_semaphore_waiter_that_gives_up_lets_the_next_in():
    sem = gochan.Semaphore(2)
    sem.acquire(1)
    small = []

    def take_small():
        small.append(sem.acquire(1, timeout=LONG))

    head = gochan.go(sem.acquire, 2, timeout=0.3)  # queued first, gives up
    wait_until(lambda: not sem.try_acquire(0))
    second = gochan.go(take_small)
    assert head.join(timeout=LONG) is False
    second.join(timeout=LONG)
    assert small == [True]
    sem.release(2)


@pytest.mark.parametrize(("args", "error"), [
    ((4,), ValueError),     # more than the size: could never succeed
    ((-1,), ValueError),
    ((1.5,), TypeError),
    (("1",), TypeError),
    ((1, 2), TypeError),
])
def test_semaphore_acquire_bad_arguments(args, error):
    sem = gochan.Semaphore(3)
    with pytest.raises(error):
        sem.acquire(*args)
    with pytest.raises(error):
        sem.try_acquire(*args)
    assert sem.try_acquire(3)


@pytest.mark.parametrize(("size", "error"), [(0, ValueError), (-2, ValueError), (1.0, TypeError),
                                             (None, TypeError)])
def test_semaphore_bad_size(size, error):
    with pytest.raises(error):
        gochan.Semaphore(size)


def test_semaphore_release_bad_arguments():
    sem = gochan.Semaphore(2)
    sem.acquire(2)
    with pytest.raises(ValueError):
        sem.release(-1)
    with pytest.raises(TypeError):
        sem.release("1")
    sem.release(0)
    sem.release(2)


def test_semaphore_acquire_raises_on_ctx_cancel_and_keeps_fifo():
    sem = gochan.Semaphore(1)
    sem.acquire()
    with pytest.raises(gochan.Cancelled):
        sem.acquire(ctx=cancel_later())
    with pytest.raises(gochan.Cancelled):
        sem.acquire(ctx=cancelled_context())
    sem.release()
    with pytest.raises(gochan.Cancelled):
        sem.acquire(ctx=cancelled_context())  # even though a token is free
    assert sem.try_acquire()
    sem.release()


# --- WaitGroup -----------------------------------------------------------------------------------

# Port of Go's TestWaitGroup (src/sync/waitgroup_test.go): n goroutines call wg1.done() then wait
# on wg2; wg1.wait() returns once all have, and none passes wg2 before the main goroutine's
# done(). Twice on the same pair: a WaitGroup can be reused.
def test_go_TestWaitGroup():
    n = 16
    wg1, wg2 = gochan.WaitGroup(), gochan.WaitGroup()
    for _ in range(2):
        wg1.add(n)
        wg2.add(n)
        exited = gochan.Chan(n)

        def worker():
            wg1.done()
            assert wg2.wait(timeout=LONG)
            exited.send(True)

        for _ in range(n):
            gochan.go(worker)
        assert wg1.wait(timeout=LONG)
        time.sleep(SETTLE)
        with pytest.raises(gochan.WouldBlock):
            exited.recv_nowait()  # "WaitGroup released group too soon"
        for _ in range(n):
            wg2.done()
        for _ in range(n):
            assert exited.recv(timeout=LONG)


# Port of Go's TestWaitGroupMisuse: a negative counter. (Go panics; here ValueError, and the
# counter stays as it was.)
def test_go_TestWaitGroupMisuse():
    wg = gochan.WaitGroup()
    wg.add(1)
    wg.done()
    with pytest.raises(ValueError, match="negative WaitGroup counter"):
        wg.done()
    with pytest.raises(ValueError):
        wg.add(-5)
    assert "count=0" in repr(wg)
    assert wg.wait(timeout=0)


def test_waitgroup_wait_times_out_with_false():
    wg = gochan.WaitGroup()
    assert wg.wait() is True  # zero: at once
    wg.add()
    assert wg.wait(timeout=0) is False
    start = time.monotonic()
    assert wg.wait(timeout=0.05) is False
    assert time.monotonic() - start >= 0.05
    wg.done()
    assert wg.wait(timeout=0) is True


def test_waitgroup_wakes_every_waiter():
    wg = gochan.WaitGroup()
    wg.add(2)
    waiters = [gochan.go(wg.wait, timeout=LONG) for _ in range(5)]
    time.sleep(SETTLE)
    wg.done()
    time.sleep(SETTLE)
    assert all(not g.done().closed for g in waiters)
    wg.done()
    assert join_all(waiters) == [True] * 5


def test_waitgroup_go_counts_the_goroutine():
    wg = gochan.WaitGroup()
    release = gochan.Chan()
    g = wg.go(release.recv, timeout=LONG)
    assert isinstance(g, gochan.Goroutine)
    assert wg.wait(timeout=SETTLE) is False
    release.send("x")
    assert wg.wait(timeout=LONG) is True
    assert g.join() == "x"


def test_waitgroup_go_lowers_the_counter_even_when_fn_raises():
    wg = gochan.WaitGroup()
    g = wg.go(int, "not a number")
    assert wg.wait(timeout=LONG)
    with pytest.raises(ValueError):
        g.join()


def test_waitgroup_go_with_a_bad_function_leaves_the_counter_alone():
    wg = gochan.WaitGroup()
    with pytest.raises(TypeError):
        wg.go(42)
    with pytest.raises(TypeError):
        wg.go()
    assert "count=0" in repr(wg)


def test_waitgroup_with_100_goroutines():
    wg = gochan.WaitGroup()
    results = Counter()
    for i in range(100):
        wg.go(results.add, i)
    assert wg.wait(timeout=LONG)
    assert results.value == sum(range(100))
    assert gochan.num_goroutines() == 0  # each left the set before its done()


def test_waitgroup_wait_raises_on_ctx_cancel():
    wg = gochan.WaitGroup()
    wg.add()
    with pytest.raises(gochan.Cancelled):
        wg.wait(ctx=cancel_later())
    wg.done()
    with pytest.raises(gochan.Cancelled):
        wg.wait(ctx=cancelled_context())


# --- Once, once_func, once_value ---------------------------------------------------------------

# Port of Go's TestOnce (src/sync/once_test.go): do() from 10 goroutines runs fn once, and every
# do() returns only after fn has.
def test_go_TestOnce():
    once = gochan.Once()
    calls = Counter()
    started = threading.Event()

    def increment():
        started.set()
        time.sleep(0.05)
        calls.add(1)

    def each():
        once.do(increment)
        return calls.value

    assert join_all([gochan.go(each) for _ in range(10)]) == [1] * 10
    assert calls.value == 1


# Port of Go's TestOncePanic (src/sync/once_test.go): the first do() raises, and fn counts as
# done: a later do() does not call anything.
def test_go_TestOncePanic():
    once = gochan.Once()
    with pytest.raises(ZeroDivisionError):
        once.do(lambda: 1 / 0)
    called = []
    assert once.do(called.append, "again") is True
    assert called == []


def test_once_do_passes_arguments_and_rejects_recursion():
    once = gochan.Once()
    got = []
    once.do(got.append, 1)
    once.do(got.append, 2)
    assert got == [1]

    inner = gochan.Once()
    with pytest.raises(RuntimeError, match="inside"):
        inner.do(lambda: inner.do(print))


def test_once_do_waiting_for_another_thread_honours_timeout():
    once = gochan.Once()
    release = gochan.Chan()
    runner = gochan.go(once.do, release.recv)
    time.sleep(SETTLE)
    assert once.do(print, timeout=0.05) is False
    release.send(None)
    assert runner.join(timeout=LONG) is True
    assert once.do(print) is True


# Port of Go's TestOnceFunc (src/sync/oncefunc_test.go): called from many goroutines, fn runs
# once.
def test_go_TestOnceFunc():
    calls = Counter()
    f = gochan.once_func(lambda: calls.add(1))
    join_all([gochan.go(f) for _ in range(10)])
    assert f() is None
    assert calls.value == 1


# Port of Go's TestOnceValue (src/sync/oncefunc_test.go).
def test_go_TestOnceValue():
    calls = Counter()
    f = gochan.once_value(lambda: calls.add(1))
    assert join_all([gochan.go(f) for _ in range(10)]) == [1] * 10
    assert f() == 1 and calls.value == 1


# Port of Go's TestOnceFuncPanic / TestOnceValuePanic (src/sync/oncefunc_test.go): every call
# raises the first exception again, and fn is not called again.
@pytest.mark.parametrize("make", [gochan.once_func, gochan.once_value])
def test_go_TestOnceXPanic(make):
    calls = Counter()

    def fail():
        calls.add(1)
        raise KeyError("first")

    f = make(fail)
    with pytest.raises(KeyError) as first:
        f()
    with pytest.raises(KeyError) as second:
        f()
    assert first.value is second.value
    assert calls.value == 1


# Port of Go's TestOnceXGC (src/sync/oncefunc_test.go): the function is dropped after the first
# call, so what it holds can be collected.
@pytest.mark.parametrize("make", [gochan.once_func, gochan.once_value])
def test_go_TestOnceXGC(make):
    class Big:
        pass

    big = Big()
    ref = weakref.ref(big)
    f = make(lambda held=big: held is not None)  # the function holds `big`
    del big
    f()
    gc.collect()
    assert ref() is None


def test_once_value_waits_for_a_slow_first_call():
    release = gochan.Chan()
    f = gochan.once_value(lambda: release.recv(timeout=LONG))
    first = gochan.go(f)
    time.sleep(SETTLE)
    second = gochan.go(f)
    time.sleep(SETTLE)
    assert not second.done().closed
    release.send("value")
    assert join_all([first, second]) == ["value", "value"]


def test_once_func_rejects_a_non_callable():
    with pytest.raises(TypeError):
        gochan.once_func(42)
    with pytest.raises(TypeError):
        gochan.once_value(None)


# --- Map -----------------------------------------------------------------------------------------

# Port of the basic cases of Go's map tests (src/sync/map_test.go, mapOps applied to one Map
# and checked against a plain dict).
def test_go_Map_basic_operations():
    m = gochan.Map()
    assert m.load("k") == (None, False)
    m.store("k", 1)
    assert m.load("k") == (1, True)
    assert m.load_or_store("k", 2) == (1, True)
    assert m.load_or_store("j", 3) == (3, False)
    assert m.swap("k", 4) == (1, True)
    assert m.swap("new", 5) == (None, False)
    assert m.compare_and_swap("k", 4, 6) is True
    assert m.compare_and_swap("k", 4, 7) is False
    assert m.compare_and_swap("absent", None, 1) is False
    assert m.load("k") == (6, True)
    assert m.load_and_delete("k") == (6, True)
    assert m.load_and_delete("k") == (None, False)
    m.delete("j")
    m.delete("j")
    assert m.len() == 1 and len(m) == 1
    assert m.load("new") == (5, True)


def test_map_stores_none_and_tells_it_from_absence():
    m = gochan.Map()
    m.store("k", None)
    assert m.load("k") == (None, True)
    assert m.load_or_store("k", 1) == (None, True)


def test_map_range_visits_everything_and_stops_on_false():
    m = gochan.Map()
    for i in range(5):
        m.store(i, i * i)
    seen = []
    m.range(lambda k, v: seen.append((k, v)))
    assert sorted(seen) == [(i, i * i) for i in range(5)]
    first = []
    m.range(lambda k, v: first.append(k) or False)
    assert len(first) == 1
    m.range(lambda k, v: m.delete(k))  # changing the map while ranging is allowed
    assert m.len() == 0


def test_map_load_or_store_from_many_goroutines_stores_once():
    m = gochan.Map()
    results = join_all([gochan.go(m.load_or_store, "key", i) for i in range(20)])
    stored = [value for value, loaded in results if not loaded]
    assert len(stored) == 1
    assert all(value == stored[0] for value, _ in results)


def test_map_compare_and_swap_counter_from_many_goroutines():
    m = gochan.Map()
    m.store("n", 0)

    def increment(times):
        for _ in range(times):
            while True:
                current, _ = m.load("n")
                if m.compare_and_swap("n", current, current + 1):
                    break

    join_all([gochan.go(increment, 200) for _ in range(5)])
    assert m.load("n") == (1000, True)


# --- every type ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [gochan.Mutex, gochan.RWMutex, lambda: gochan.Semaphore(1),
                                  gochan.WaitGroup])
def test_primitives_cannot_be_pickled_and_support_weakrefs(make):
    obj = make()
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(obj)
    assert weakref.ref(obj)() is obj


@pytest.mark.parametrize("cls", [gochan.Mutex, gochan.RWMutex, gochan.WaitGroup])
def test_constructors_take_no_arguments(cls):
    with pytest.raises(TypeError):
        cls(1)
    with pytest.raises(TypeError):
        cls(x=1)


@pytest.mark.parametrize(("make", "call"), [
    (gochan.Mutex, "lock"), (gochan.RWMutex, "lock"), (gochan.RWMutex, "rlock"),
    (lambda: gochan.Semaphore(1), "acquire"), (gochan.WaitGroup, "wait"),
])
@pytest.mark.parametrize(("kwargs", "error"), [
    ({"timeout": -1}, ValueError), ({"timeout": "soon"}, TypeError),
    ({"ctx": 42}, TypeError), ({"deadline": 1}, TypeError),
])
def test_blocking_calls_reject_bad_arguments(make, call, kwargs, error):
    with pytest.raises(error):
        getattr(make(), call)(**kwargs)


def test_signatures_are_introspectable():
    wait = "(self, /, *, timeout=None, ctx=None)"
    assert str(inspect.signature(gochan.Mutex.lock)) == wait
    assert str(inspect.signature(gochan.RWMutex.lock)) == wait
    assert str(inspect.signature(gochan.RWMutex.rlock)) == wait
    assert str(inspect.signature(gochan.WaitGroup.wait)) == wait
    assert str(inspect.signature(gochan.Semaphore.acquire)) == \
        "(self, /, n=1, *, timeout=None, ctx=None)"
    assert str(inspect.signature(gochan.Semaphore.release)) == "(self, /, n=1)"
    assert str(inspect.signature(gochan.WaitGroup.add)) == "(self, /, n=1)"
    assert str(inspect.signature(gochan.WaitGroup.go)) == "(self, fn, /, *args, **kwargs)"
    assert str(inspect.signature(gochan.Semaphore)) == "(n)"
    assert str(inspect.signature(gochan.Mutex)) == "()"
    for name in ["Mutex", "RWMutex", "Semaphore", "WaitGroup", "Once", "Map", "once_func",
                 "once_value", "go", "num_goroutines", "Goroutine"]:
        doc = getattr(gochan, name).__doc__
        assert doc and ("    " in doc), f"{name} has no docstring with an example"


# --- Ctrl-C on a call blocked in the main thread (child interpreters) ------------------------

# name: (setup, blocked call, check after the interruption printing one line, expected line)
SIGINT_CASES = {
    "Mutex.lock": (
        "m = gochan.Mutex(); m.lock()",
        "m.lock()",
        "m.unlock(); print('free', m.try_lock())",
        "free True",
    ),
    "RWMutex.lock": (
        "m = gochan.RWMutex(); m.rlock()",
        "m.lock()",
        "print('readers welcome', m.try_rlock())",
        "readers welcome True",
    ),
    "RWMutex.rlock": (
        "m = gochan.RWMutex(); m.lock()",
        "m.rlock()",
        "m.unlock(); print('free', m.try_lock())",
        "free True",
    ),
    "Semaphore.acquire": (
        "m = gochan.Semaphore(2); m.acquire(2)",
        "m.acquire(2)",
        "m.release(2); print('tokens', m.try_acquire(2))",
        "tokens True",
    ),
    "WaitGroup.wait": (
        "m = gochan.WaitGroup(); m.add(1)",
        "m.wait()",
        "m.done(); print('waits', m.wait(timeout=5))",
        "waits True",
    ),
    "Goroutine.join": (
        "ch = gochan.Chan(); m = gochan.go(ch.recv)",
        "m.join()",
        "ch.send(1); print('joined', m.join(timeout=5))",
        "joined 1",
    ),
}


@pytest.mark.parametrize("timeout", [None, 30], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("case", list(SIGINT_CASES))
def test_sigint_interrupts_a_blocked_sync_call_in_the_main_thread(child, case, timeout):
    setup, call, check, expected = SIGINT_CASES[case]
    if timeout is not None:
        call = call.replace("()", f"(timeout={timeout})")
    proc = child(textwrap.dedent(f"""
        import threading, time, gochan
        {setup}
        main = threading.get_native_id()
        blocking = threading.Event()
        def announce():
            # Ready once the main thread is about to call and then sleeps in the kernel.
            blocking.wait()
            while True:
                with open(f"/proc/self/task/{{main}}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "S":
                        break
                time.sleep(0.001)
            print("ready", flush=True)
        threading.Thread(target=announce, daemon=True).start()
        try:
            blocking.set()
            {call}
            print("returned", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        {check}
    """))
    proc.expect("ready")
    time.sleep(0.05)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.expect("interrupted")
    assert time.monotonic() - start < 5
    proc.expect(expected)
    returncode, _, stderr = proc.finish()
    assert returncode == 0, stderr


def test_stubs_match_the_runtime():
    """Every class, method and function that gochan/__init__.pyi declares in the goroutines and
    sync section exists at runtime, and every name it exports is exported."""
    path = os.path.join(os.path.dirname(gochan.__file__), "__init__.pyi")
    source = open(path, encoding="utf-8").read()
    section = source[source.index("# --- goroutines and sync ---"):
                     source.index("# (end of goroutines and sync)")]
    tree = ast.parse(section)
    declared = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(gochan, node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    assert hasattr(cls, item.name), f"{node.name}.{item.name}"
            declared.append(node.name)
        elif isinstance(node, ast.FunctionDef):
            assert callable(getattr(gochan, node.name)), node.name
            declared.append(node.name)
        elif isinstance(node, ast.AugAssign):
            exported = ast.literal_eval(node.value)
            assert set(exported) <= set(gochan.__all__)
            assert all(hasattr(gochan, name) for name in exported)
    assert set(declared) >= {"Goroutine", "go", "Mutex", "RWMutex", "Semaphore", "WaitGroup",
                             "Once", "Map", "once_func", "once_value", "num_goroutines"}
    assert gochan.Goroutine[int] is not None
