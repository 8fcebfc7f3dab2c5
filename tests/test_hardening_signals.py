"""Ctrl-C on every blocking call that the other suites do not already interrupt (API.md,
"Conventions for every blocking call": SIGINT interrupts a call blocked in the main thread with
KeyboardInterrupt, promptly, and the interrupted operation has no effect).

Already covered elsewhere: Chan.send/recv/recv_ok/recv_many/send_many and iteration
(test_chan_signals.py), select (test_select.py), Mutex.lock, RWMutex.lock/rlock,
Semaphore.acquire, WaitGroup.wait and Goroutine.join without ctx (test_sync.py), sleep, after()
and Ticker iteration (test_timers.py), Limiter.wait (test_ratelimit.py), the retry backoff
(test_retry.py), recv with ctx (test_context.py). Here: the waits of Pool, PoolJob, Group, Once
and once_value, the views, Timer.c, ctx.done(), the `with` forms of the locks, and the calls above
given a ctx (a different path in the core: the wait is on the context's done channel as well).

Each case runs in a child interpreter. A helper thread there prints "ready" once the main
thread has been asleep in the kernel (/proc/PID/task/TID/stat) at the same line of Python code for
a while, that is, blocked in the call; the test then sends SIGINT and expects "interrupted", then
the case's own check that the interrupted operation had no effect.
"""

import os
import signal
import textwrap
import time

import pytest

from conftest import LONG

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/task"),
                                reason="needs /proc to see that the main thread is blocked")

PRELUDE = textwrap.dedent("""
    import sys, threading, time
    import gochan

    MAIN = threading.main_thread().ident
    MAIN_TID = threading.get_native_id()
    calling = [False]

    def _state():
        with open(f"/proc/self/task/{MAIN_TID}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def _where():
        frame = sys._current_frames().get(MAIN)
        return None if frame is None else (frame.f_code, frame.f_lineno)

    def _announce():
        # Blocked: asleep ("S") at the same place for 30 looks in a row, 1 ms apart. (Waiting
        # for the GIL also sleeps, but then the main thread moves on between two looks.)
        deadline = time.monotonic() + 20
        last, steady = None, 0
        while time.monotonic() < deadline:
            here = _where() if calling[0] else None
            if here is not None and here == last and _state() == "S":
                steady += 1
                if steady == 30:
                    print("ready", flush=True)
                    return
            else:
                steady = 0
            last = here
            time.sleep(0.001)
        print("never blocked", flush=True)

    threading.Thread(target=_announce, daemon=True).start()
    gate = gochan.Chan()
    bg = gochan.background()
    ctx, cancel = gochan.with_cancel(bg)
""")

# name: (setup, blocking call with {kw} where timeout=30 may go, check printing one line,
#        the line expected). Cases whose call has no {kw} run once, the others with and
#        without a timeout.
CASES = {
    "Pool.wait": (
        "pool = gochan.Pool(1); job = pool.submit(gate.recv)",
        "pool.wait({kw})",
        "gate.send('v'); print('waited', pool.wait(timeout=10), job.join(timeout=10))",
        "waited True v",
    ),
    "Pool.submit on a full queue": (
        """
        pool = gochan.Pool(1)
        ran, started = [], gochan.Chan()
        pool.submit(lambda: (started.send(1), gate.recv()))
        started.recv()
        submitted = 0
        def fill():
            global submitted
            for i in range(100_000):   # far more than the queue holds
                pool.submit(ran.append, i)
                submitted += 1
        """,
        "fill()",
        # The interrupted submit queued nothing: exactly the values of the submits that returned
        # ran.
        """
        gate.send(1); pool.wait(timeout=30)
        print('ran', sorted(ran) == list(range(submitted)), submitted > 0)
        """,
        "ran True True",
    ),
    "Pool.map iteration": (
        """
        pool = gochan.Pool(2)
        slow = gochan.Chan(2)
        it = pool.map(lambda x: slow.recv() * x, [1, 2])
        """,
        "next(it)",
        # The map's iterator is finished (an exception ends a generator); the pool goes on, and
        # every goroutine ends.
        """
        slow.send_many([1, 1])
        job = pool.submit(pow, 2, 3)
        print('pool', job.join(timeout=10), pool.wait(timeout=10), end=' ')
        deadline = time.monotonic() + 10
        while gochan.num_goroutines() and time.monotonic() < deadline:
            time.sleep(0.001)
        print(gochan.num_goroutines())
        """,
        "pool 8 True 0",
    ),
    "PoolJob.join": (
        "pool = gochan.Pool(1); job = pool.submit(gate.recv)",
        "job.join({kw})",
        "gate.send('v'); print('joined', job.join(timeout=10), pool.wait(timeout=10))",
        "joined v True",
    ),
    "PoolJob.join with ctx": (
        "pool = gochan.Pool(1); job = pool.submit(gate.recv)",
        "job.join(ctx=ctx, {kw})",
        "gate.send('v'); print('joined', job.join(timeout=10), ctx.err())",
        "joined v None",
    ),
    "Group.wait": (
        "g = gochan.Group(); g.go(gate.recv)",
        "g.wait()",
        # Not waited: the group's context is not cancelled yet.
        """
        before = g.ctx.err()
        gate.send(1); g.wait()
        print('unchanged', before, type(g.ctx.err()).__name__)
        """,
        "unchanged None Cancelled",
    ),
    "Group.go at the limit": (
        "g = gochan.Group(limit=1); g.go(gate.recv); ran = []",
        "g.go(ran.append, 'late')",
        "gate.send(1); g.wait(); print('started', ran)",
        "started []",
    ),
    "Once.do waiting for another thread": (
        """
        once, started, other = gochan.Once(), gochan.Chan(), []
        first = threading.Thread(target=once.do, args=(lambda: (started.send(1), gate.recv()),))
        first.start(); started.recv()
        """,
        "once.do(other.append, 'x'{sep}{kw})",
        "gate.send(1); first.join(10); print('done', once.do(other.append, 'y'), other)",
        "done True []",
    ),
    "once_value waiting for another thread": (
        """
        started = gochan.Chan()
        value = gochan.once_value(lambda: (started.send(1), gate.recv())[1])
        first = threading.Thread(target=value); first.start(); started.recv()
        """,
        "value()",
        "gate.send(42); first.join(10); print('value', value())",
        "value 42",
    ),
    "RecvChan.recv": (
        "ch = gochan.Chan(); view = ch.recv_only()",
        "view.recv({kw})",
        "print('unregistered', ch.statistics().waiting_receivers)",
        "unregistered 0",
    ),
    "SendChan.send": (
        "ch = gochan.Chan(); view = ch.send_only()",
        "view.send('payload'{sep}{kw})",
        """
        try:
            print('delivered', ch.recv_nowait())
        except gochan.WouldBlock:
            print('unregistered', ch.statistics().waiting_senders)
        """,
        "unregistered 0",
    ),
    "Timer.c.recv": (
        "t = gochan.Timer(30)",
        "t.c.recv({kw})",
        "print('pending', t.stop())",
        "pending True",
    ),
    "ctx.done().recv": (
        "",
        "ctx.done().recv({kw})",
        "print('not done', ctx.err()); cancel(); print(ctx.done().recv_ok(timeout=10))",
        "not done None",
    ),
    "select with ctx": (
        "a = gochan.Chan(); b = gochan.Chan(1); b.send('full')",
        "gochan.select(gochan.Recv(a), gochan.Send(b, 'payload'), ctx=ctx{sep}{kw})",
        """
        print('unchanged', a.statistics().waiting_receivers, b.statistics().waiting_senders,
              b.recv_nowait(), len(b), ctx.err())
        """,
        "unchanged 0 0 full 0 None",
    ),
    "Chan.send with ctx": (
        "ch = gochan.Chan(1); ch.send('a')",
        "ch.send('payload', ctx=ctx{sep}{kw})",
        "print('unchanged', ch.statistics().waiting_senders, ch.recv_nowait(), len(ch))",
        "unchanged 0 a 0",
    ),
    "Goroutine.join with ctx": (
        "g = gochan.go(gate.recv)",
        "g.join(ctx=ctx{sep}{kw})",
        "gate.send('v'); print('joined', g.join(timeout=10), ctx.err())",
        "joined v None",
    ),
    "sleep with ctx": (
        "",
        "gochan.sleep(30, ctx=ctx)",
        "print('ctx', ctx.err())",
        "ctx None",
    ),
    "Mutex.lock with ctx": (
        "m = gochan.Mutex(); m.lock()",
        "m.lock(ctx=ctx{sep}{kw})",
        "m.unlock(); print('free', m.try_lock(), ctx.err())",
        "free True None",
    ),
    "with Mutex": (
        "m = gochan.Mutex(); m.lock()",
        "with m: pass",
        "m.unlock(); print('free', m.try_lock())",
        "free True",
    ),
    "RWMutex.lock with ctx": (
        "rw = gochan.RWMutex(); rw.rlock()",
        "rw.lock(ctx=ctx{sep}{kw})",
        # A writer still queued would keep new readers out.
        "print('readers welcome', rw.try_rlock())",
        "readers welcome True",
    ),
    "RWMutex.rlock with ctx": (
        "rw = gochan.RWMutex(); rw.lock()",
        "rw.rlock(ctx=ctx{sep}{kw})",
        "rw.unlock(); print('free', rw.try_lock())",
        "free True",
    ),
    "with RWMutex.write()": (
        "rw = gochan.RWMutex(); rw.rlock()",
        "with rw.write(): pass",
        "print('readers welcome', rw.try_rlock())",
        "readers welcome True",
    ),
    "with RWMutex.read()": (
        "rw = gochan.RWMutex(); rw.lock()",
        "with rw.read(): pass",
        "rw.unlock(); print('free', rw.try_lock())",
        "free True",
    ),
    "Semaphore.acquire with ctx": (
        "s = gochan.Semaphore(3); s.acquire(2)",
        "s.acquire(2, ctx=ctx{sep}{kw})",
        "print('tokens', s.try_acquire(1), s.try_acquire(1), ctx.err())",
        "tokens True False None",
    ),
    "with Semaphore": (
        "s = gochan.Semaphore(1); s.acquire()",
        "with s: pass",
        "s.release(); print('free', s.try_acquire(1))",
        "free True",
    ),
    "WaitGroup.wait with ctx": (
        "wg = gochan.WaitGroup(); wg.add(1)",
        "wg.wait(ctx=ctx{sep}{kw})",
        "wg.done(); print('waits', wg.wait(timeout=10), ctx.err())",
        "waits True None",
    ),
    "Limiter.wait(n) with ctx": (
        "lim = gochan.Limiter(0.5, 2); lim.allow(2)",
        "lim.wait(2, ctx=ctx{sep}{kw})",  # 2 tokens are 4 s away
        # The booked tokens came back: about 0, not -2.
        "print('tokens', round(lim.tokens()), ctx.err())",
        "tokens 0 None",
    ),
}


def _variants():
    for name, (_, call, _, _) in CASES.items():
        if "{kw}" in call:
            yield pytest.param(name, None, id=f"{name}-no-timeout")
            yield pytest.param(name, 30, id=f"{name}-timeout")
        else:
            yield pytest.param(name, None, id=name)


def _script(name, timeout):
    setup, call, check, _ = CASES[name]
    kw = "" if timeout is None else f"timeout={timeout}"
    call = call.format(kw=kw, sep=", " if kw else "")
    return PRELUDE + textwrap.dedent(setup) + textwrap.dedent(f"""
        try:
            calling[0] = True
            {call}
            print("returned", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        calling[0] = False
    """) + textwrap.dedent(check)


@pytest.mark.parametrize("name,timeout", list(_variants()))
def test_sigint_interrupts_the_blocked_call_without_effect(child, name, timeout):
    proc = child(_script(name, timeout))
    proc.expect("ready", timeout=LONG * 2)
    time.sleep(0.05)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.expect("interrupted")
    assert time.monotonic() - start < 5.0
    proc.expect(CASES[name][3])
    returncode, _, stderr = proc.finish(timeout=LONG * 3)
    assert returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
