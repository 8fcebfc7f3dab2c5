"""Interpreter exit with gochan still busy (API.md, "Semantics pinned down": a process exits
normally when its main thread ends, even with goroutines still blocked): goroutines and threads
blocked on channels, locks and contexts, timers and tickers firing, after_funcs and context
after_funcs pending or running, pools in the middle of a map, groups waiting, pipelines
flowing. Whatever is going on, the process ends promptly, with the exit status the program
asked for and nothing on stderr (no crash report, no "Fatal Python error", no exception
reported from a runtime thread).

The other suites exit with one kind of activity each (test_chan_process.py, test_timers.py,
test_goroutines.py); here all of them run at once, the main thread ends in different ways
(falling off the end, sys.exit, an uncaught exception, atexit handlers that use gochan), and
each case runs three times, as exit races are timing-dependent."""

import textwrap

import pytest

from conftest import run_python

#: Everything busy at once; the main thread then ends, one way or another.
BUSY = textwrap.dedent("""
    import sys, threading, time
    import gochan

    bg = gochan.background()
    forever = gochan.Chan()
    full = gochan.Chan(1)
    full.send(0)
    m = gochan.Mutex(); m.lock()
    rw = gochan.RWMutex(); rw.lock()
    sem = gochan.Semaphore(1); sem.acquire()
    wg = gochan.WaitGroup(); wg.add(1)
    ctx, cancel = gochan.with_cancel(bg)

    # Goroutines and threads blocked for ever (or until the context, which nobody cancels).
    blocked = [gochan.go(forever.recv), gochan.go(full.send, 1), gochan.go(m.lock),
               gochan.go(rw.rlock), gochan.go(sem.acquire), gochan.go(wg.wait),
               gochan.go(gochan.select), gochan.go(forever.recv, ctx=ctx),
               gochan.go(gochan.sleep, 3600), gochan.go(gochan.Ticker(3600).c.recv)]
    threading.Thread(target=forever.recv, daemon=True).start()
    wake = gochan.Chan()
    woken = gochan.go(wake.recv_ok)

    # Goroutines that keep waking: short timeouts in a loop, a busy loop in Python.
    def spin():
        while True:
            try:
                forever.recv(timeout=0.0005)
            except TimeoutError:
                pass
    def busy():
        n = 0
        while True:
            n += 1
    for fn in (spin, spin, busy):
        gochan.go(fn)

    # Timers and tickers firing, after_funcs pending and firing now, deadlines expiring.
    tickers = [gochan.Ticker(0.0005) for _ in range(5)]
    funcs = [gochan.after_func(0.0001 * i, lambda: None) for i in range(200)]
    later = [gochan.after_func(3600, print, "never") for _ in range(5)]
    contexts = [gochan.with_timeout(bg, 0.0001 * i)[0] for i in range(200)]
    for c in contexts[::2]:
        c.after_func(lambda: time.sleep(0.001))
    ctx.after_func(lambda: print("never"))

    # A pool in the middle of a map (the main thread has read part of it), another with a
    # full queue; a group waiting; a pipeline flowing into a slow reader.
    pool = gochan.Pool(2)
    it = pool.map(lambda x: (time.sleep(0.001), x)[1], range(10_000))
    next(it); next(it)
    stuck_pool = gochan.Pool(1)
    stuck_pool.submit(forever.recv)
    group = gochan.Group(limit=2)
    group.go(forever.recv)
    gochan.go(group.wait)
    flow = gochan.stage(lambda x: x * 2, gochan.generate(range(10**9)), workers=2)
    flow.recv(); flow.recv()
    merged = gochan.merge(gochan.generate(range(10**9)), gochan.generate(range(10**9)))
    merged.recv()
    lim = gochan.Limiter(1, 1); lim.allow()
    gochan.go(lim.wait)
    gochan.go(gochan.retry, lambda: 1 / 0, attempts=100, backoff=[3600] * 100)

    time.sleep(0.02)   # let all of it get going
""")

ENDINGS = {
    # name: (how the main thread ends, expected exit status, expected stdout)
    "falls off the end": ("print('exiting', flush=True)", 0, "exiting\n"),
    "sys.exit(3)": ("print('exiting', flush=True); sys.exit(3)", 3, "exiting\n"),
    "atexit uses gochan": (
        textwrap.dedent("""
            import atexit
            # (Nothing that needs a new thread: CPython 3.12 and newer refuse to start one
            # once the interpreter has begun to exit.)
            def tidy():
                wake.close()                               # wakes a goroutine
                woken.join(timeout=5)
                for t in tickers:
                    t.stop()
                gochan.after(0.001).recv(timeout=5)        # the timer thread still works
                with gochan.with_timeout(bg, 0.001) as c:  # and deadlines, after_funcs too
                    c.after_func(lambda: None)
                    c.done().recv_ok(timeout=5)
                print("tidied", len(full), flush=True)
            atexit.register(tidy)
        """),
        0,
        "tidied 1\n",
    ),
    "os._exit": ("import os; print('bye', flush=True); os._exit(7)", 7, "bye\n"),
}


@pytest.mark.parametrize("attempt", range(3))
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_exit_with_everything_busy_is_prompt_and_clean(ending, attempt):
    code, status, stdout = ENDINGS[ending]
    result = run_python(BUSY + code + "\n", timeout=60)
    assert result.returncode == status, result.stderr
    assert result.stderr == ""
    assert result.stdout == stdout


@pytest.mark.parametrize("attempt", range(3))
def test_an_uncaught_exception_exits_with_its_traceback_only(attempt):
    result = run_python(BUSY + "raise SystemError('the end')\n", timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):"), result.stderr
    assert result.stderr.rstrip().endswith("SystemError: the end"), result.stderr
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert "Fatal Python error" not in result.stderr


@pytest.mark.parametrize("attempt", range(3))
def test_exit_while_goroutines_are_being_started_and_finishing(attempt):
    # The main thread ends while other threads are starting goroutines, joining them, starting
    # timers and cancelling contexts as fast as they can.
    script = textwrap.dedent("""
        import threading, time
        import gochan

        bg = gochan.background()

        def churn():
            while True:
                g = gochan.go(abs, -1)
                gochan.after_func(0, lambda: None)
                ctx, cancel = gochan.with_timeout(bg, 0.0001)
                ctx.after_func(lambda: None)
                g.join(timeout=5)
                cancel()

        for _ in range(4):
            threading.Thread(target=churn, daemon=True).start()
        time.sleep(0.05)
    """)
    result = run_python(script, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
