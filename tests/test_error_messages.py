"""Misuse gives an exception whose message says what was wrong and what is expected.

Each case triggers one misuse and checks the exception's type and its whole message (a regular
expression matched against str(exc) from the start): the message names the argument or the
operation at fault, what it should have been, and the value that was given, so that a reader
can fix the call without opening the source. The wording is Go's where Go has one ("send on
closed channel", "negative WaitGroup counter").
"""

import math
import pickle
import re

import pytest

import gochan
import gochan.testing


def closed_chan():
    ch = gochan.Chan(1)
    ch.close()
    return ch


def cancelled():
    ctx, cancel = gochan.with_cancel(gochan.background())
    cancel()
    return ctx


def rlocked():
    rw = gochan.RWMutex()
    rw.rlock()
    return rw


def closed_pool():
    pool = gochan.Pool(1)
    pool.close()
    return pool


BG = gochan.background()

#: (id, misuse, exception type, the message).
CASES = [
    # Timeouts, the same for every blocking call.
    ("timeout negative", lambda: gochan.Chan(1).send(1, timeout=-1),
     ValueError, r"timeout must be a non-negative number, got -1"),
    ("timeout NaN", lambda: gochan.Chan(1).recv(timeout=math.nan),
     ValueError, r"timeout must be a non-negative number, got nan"),
    ("timeout not a number", lambda: gochan.Chan(1).recv(timeout="1"),
     TypeError, r"timeout must be a number or None, got str"),
    ("select timeout negative", lambda: gochan.select(gochan.Recv(None), timeout=-1),
     ValueError, r"timeout must be a non-negative number, got -1"),
    ("lock timeout negative", lambda: gochan.Mutex().lock(timeout=-0.5),
     ValueError, r"timeout must be a non-negative number, got -0.5"),
    ("ctx not a context", lambda: gochan.Chan(1).recv(ctx=5),
     TypeError, r"ctx must be a gochan Context or None, got int"),
    # Channels.
    ("capacity negative", lambda: gochan.Chan(-1),
     ValueError, r"capacity must be >= 0, got -1"),
    ("capacity not an int", lambda: gochan.Chan(1.5),
     TypeError, r"capacity must be an int, got float"),
    ("send on closed", lambda: closed_chan().send(1),
     gochan.ChannelClosed, r"send on closed channel"),
    ("close of closed", lambda: closed_chan().close(),
     gochan.ChannelClosed, r"close of closed channel"),
    ("receive from closed", lambda: closed_chan().recv(),
     gochan.ChannelClosed, r"receive from closed channel"),
    ("receive timed out", lambda: gochan.Chan(1).recv(timeout=0),
     TimeoutError, r"receive timed out"),
    ("send timed out", lambda: gochan.Chan(0).send(1, timeout=0),
     TimeoutError, r"send timed out"),
    ("recv_many max_items", lambda: gochan.Chan(1).recv_many(0),
     ValueError, r"max_items must be >= 1, got 0"),
    ("pickle a channel", lambda: pickle.dumps(gochan.Chan()),
     TypeError, r"cannot pickle 'gochan.Chan' object: channels live in one process"),
    # select.
    ("select case", lambda: gochan.select(gochan.Chan()),
     TypeError, r"select\(\) cases must be gochan.Recv or gochan.Send, got gochan.Chan "
                r"\(argument 1\): wrap a channel as gochan.Recv\(ch\) or gochan.Send\(ch, value\)"),
    ("Recv of a non-channel", lambda: gochan.Recv([]),
     TypeError, r"Recv\(\) needs a channel \(a Chan, a gochan.RecvChan or None\), got list"),
    ("Send on a closed channel", lambda: gochan.select(gochan.Send(closed_chan(), 1)),
     gochan.ChannelClosed, r"send on closed channel"),
    ("select timed out", lambda: gochan.select(gochan.Recv(None), timeout=0),
     TimeoutError, r"select timed out"),
    # Contexts.
    ("parent not a context", lambda: gochan.with_cancel(None),
     TypeError, r"with_cancel\(\) parent must be a gochan Context \(such as "
                r"gochan.background\(\)\), got NoneType"),
    ("timeout seconds not a number", lambda: gochan.with_timeout(BG, "5"),
     TypeError, r"with_timeout\(\) seconds must be a number of seconds, got str"),
    ("cancelled context", lambda: gochan.Chan(1).recv(ctx=cancelled()),
     gochan.Cancelled, r"context canceled"),
    ("cancel with a non-exception cause", lambda: gochan.with_cancel_cause(BG)[1]("why"),
     TypeError, r"cancel\(\) cause must be an exception instance or None, got str"),
    ("cancel with an argument", lambda: gochan.with_cancel(BG)[1](ValueError()),
     TypeError, r"cancel\(\) takes no arguments \(use with_cancel_cause to give a cause\)"),
    ("context after_func", lambda: BG.after_func("print"),
     TypeError, r"after_func\(\) fn must be callable, got str"),
    # Timers.
    ("sleep negative", lambda: gochan.sleep(-1),
     ValueError, r"sleep\(\) argument 'seconds' must be >= 0 seconds, got -1"),
    ("after not a number", lambda: gochan.after("1"),
     TypeError, r"after\(\) argument 'seconds' must be a number of seconds \(int or float\), "
                r"got str"),
    ("Ticker zero", lambda: gochan.Ticker(0),
     ValueError, r"Ticker\(\) argument 'interval' must be a positive, finite number of "
                 r"seconds, got 0"),
    ("Ticker negative", lambda: gochan.Ticker(-1),
     ValueError, r"Ticker\(\) argument 'interval' must be a positive, finite number of "
                 r"seconds, got -1"),
    ("timer after_func fn", lambda: gochan.after_func(1, None),
     TypeError, r"after_func\(\) argument 'fn' must be callable, got NoneType"),
    # Goroutines and sync.
    ("go a non-callable", lambda: gochan.go(42),
     TypeError, r"go\(\) needs a callable to run, got int"),
    ("join timed out", lambda: gochan.go(gochan.sleep, 0.5).join(timeout=0),
     TimeoutError, r"join timed out"),
    ("WaitGroup below zero", lambda: gochan.WaitGroup().done(),
     ValueError, r"negative WaitGroup counter: done\(\) or add\(-n\) took away more than "
                 r"add\(\) had counted"),
    ("unlock unlocked Mutex", lambda: gochan.Mutex().unlock(),
     RuntimeError, r"unlock of unlocked Mutex"),
    ("runlock unlocked RWMutex", lambda: gochan.RWMutex().runlock(),
     RuntimeError, r"runlock of unlocked RWMutex"),
    ("unlock a read-locked RWMutex", lambda: rlocked().unlock(),
     RuntimeError, r"unlock of RWMutex that is read-locked: use runlock\(\)"),
    ("Semaphore size", lambda: gochan.Semaphore(0),
     ValueError, r"Semaphore size must be >= 1, got 0"),
    ("acquire beyond the size", lambda: gochan.Semaphore(2).acquire(3),
     ValueError, r"cannot acquire 3 from a Semaphore of size 2"),
    ("release more than held", lambda: gochan.Semaphore(2).release(),
     ValueError, r"release of 1 tokens, more than are held \(0 of 2\)"),
    ("Once.do a non-callable", lambda: gochan.Once().do(None),
     TypeError, r"Once.do\(\) needs a callable, got NoneType"),
    ("once_value a non-callable", lambda: gochan.once_value(3),
     TypeError, r"fn must be callable, got int"),
    ("Map.range a non-callable", lambda: gochan.Map().range(None),
     TypeError, r"Map.range\(\) needs a callable, got NoneType"),
    ("leak check timeout", lambda: gochan.testing.verify_none(-1),
     ValueError, r"timeout must be a non-negative number, got -1"),
    # Patterns.
    ("Group limit", lambda: gochan.Group(limit=0),
     ValueError, r"limit must be >= 1, got 0"),
    ("Group.go a non-callable", lambda: gochan.Group().go("f"),
     TypeError, r"fn must be callable, got str"),
    ("Pool workers", lambda: gochan.Pool(0),
     ValueError, r"workers must be >= 1, got 0"),
    ("Pool workers not an int", lambda: gochan.Pool(2.0),
     TypeError, r"workers must be an int, got float"),
    ("submit to a closed Pool", lambda: closed_pool().submit(print),
     RuntimeError, r"submit to a closed gochan.Pool"),
    ("stage a non-callable", lambda: gochan.stage(None, []),
     TypeError, r"fn must be callable, got NoneType"),
    ("merge a non-channel", lambda: gochan.merge([1, 2]),
     TypeError, r"merge\(\) sources must be a gochan Chan or RecvChan, got list"),
    ("pipeline cap", lambda: gochan.generate([], cap=-1),
     ValueError, r"cap must be >= 0, got -1"),
    ("Limiter rate", lambda: gochan.Limiter(-1),
     ValueError, r"rate must be >= 0 events per second \(float\('inf'\) for no limit\), "
                 r"got -1"),
    ("Limiter n", lambda: gochan.Limiter(1).allow(-1),
     ValueError, r"n must be >= 0, got -1"),
    ("Limiter wait beyond the burst", lambda: gochan.Limiter(1).wait(5),
     ValueError, r"wait\(n=5\) exceeds the limiter's burst 1"),
    ("retry a non-callable", lambda: gochan.retry(None),
     TypeError, r"fn must be callable, not NoneType"),
    ("retry attempts", lambda: gochan.retry(print, attempts=0),
     ValueError, r"attempts must be >= 1, got 0"),
    ("Backoff multiplier", lambda: gochan.Backoff(multiplier=0.5),
     ValueError, r"multiplier must be a finite number >= 1, got 0.5"),
    ("Permanent of a non-exception", lambda: gochan.Permanent("oops"),
     TypeError, r"Permanent wraps an exception instance, not str"),
]


@pytest.mark.parametrize(("misuse", "error", "message"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_misuse_is_explained(misuse, error, message):
    with pytest.raises(error) as info:
        misuse()
    assert re.fullmatch(message, str(info.value)), (
        f"{type(info.value).__name__}: {info.value!r} does not read {message!r}"
    )


def test_timeout_message_names_the_bad_value_for_every_blocking_call():
    """Every blocking call explains a bad timeout the same way (Limiter.wait, in Python, in
    words of its own that tests/test_ratelimit.py pins)."""
    calls = [
        lambda t: gochan.Chan(1).send(1, timeout=t),
        lambda t: gochan.Chan(1).recv(timeout=t),
        lambda t: gochan.Chan(1).recv_ok(timeout=t),
        lambda t: gochan.Chan(1).send_many([1], timeout=t),
        lambda t: gochan.Chan(1).recv_many(1, timeout=t),
        lambda t: gochan.select(gochan.Recv(None), timeout=t),
        lambda t: gochan.go(print).join(timeout=t),
        lambda t: gochan.WaitGroup().wait(timeout=t),
        lambda t: gochan.Mutex().lock(timeout=t),
        lambda t: gochan.RWMutex().rlock(timeout=t),
        lambda t: gochan.Semaphore(1).acquire(timeout=t),
        lambda t: gochan.Pool(1).wait(timeout=t),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"^timeout must be a non-negative number, got -2$"):
            call(-2)
    with pytest.raises(ValueError, match=r"^timeout must be >= 0 seconds or None, got -2$"):
        gochan.Limiter(1).wait(timeout=-2)
