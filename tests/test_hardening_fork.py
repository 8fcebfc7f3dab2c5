"""os.fork() in a process that has used everything: channels, select, timers, tickers,
after_func, contexts with deadlines, goroutines, Pool, Group, WaitGroup and Mutex. The child can
use all of them, new and (where no thread of the parent is needed) inherited: the runtime's timer
and dispatcher threads and the goroutine worker threads start again there. The parent goes on as
if nothing happened. test_chan_process.py, test_timers.py and test_goroutines.py fork after
using one part each; here everything is in use at once, and forks are repeated while the parent
is busy, so that no runtime lock held at the moment of the fork is left held in the child.

Each case runs in a child interpreter (which forks in its turn)."""

import os
import textwrap

import pytest

from conftest import run_python, under_asan

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")

#: Everything in use in the parent when it forks. Defines `child_checks()`, which exercises
#: all of gochan and raises AssertionError on anything wrong.
BUSY_PARENT = textwrap.dedent("""
    import os, sys, threading, time, warnings
    import gochan

    warnings.simplefilter("ignore", DeprecationWarning)   # fork() with threads running
    T = 10  # seconds: bound for anything that should take milliseconds

    bg = gochan.background()
    # Channels: items buffered, a goroutine and a thread blocked on them.
    buffered = gochan.Chan(4)
    buffered.send_many(["a", "b"])
    inbox = gochan.Chan()
    blocked_goroutine = gochan.go(inbox.recv, timeout=30)
    blocked_thread_got = []
    blocked_thread = threading.Thread(
        target=lambda: blocked_thread_got.append(inbox.recv(timeout=30)), daemon=True)
    blocked_thread.start()
    # Timers: a ticker ticking, a timer and an after_func pending, a past after() unread.
    ticker = gochan.Ticker(0.002)
    pending_timer = gochan.Timer(0.2)
    fired = threading.Event()
    pending_func = gochan.after_func(0.2, fired.set)
    gochan.after(0.001).recv(timeout=T)
    # Contexts: one with a pending deadline, one cancelled, one with an after_func pending.
    deadline_ctx, deadline_cancel = gochan.with_timeout(bg, 0.3)
    cancelled_ctx, cancel = gochan.with_cancel(bg)
    cancel()
    watched_ctx, watched_cancel = gochan.with_cancel(bg)
    watched = threading.Event()
    watched_ctx.after_func(watched.set)
    # Goroutines, a Pool with idle workers, a Group, a WaitGroup, a Mutex held by main.
    assert gochan.go(pow, 2, 10).join(timeout=T) == 1024
    pool = gochan.Pool(2)
    assert list(pool.map(abs, range(-50, 0))) == list(range(50, 0, -1))
    with gochan.Group(limit=2) as g:
        for i in range(4):
            g.go(time.sleep, 0.001)
    wg = gochan.WaitGroup()
    wg.go(time.sleep, 0.001)
    assert wg.wait(timeout=T)
    mutex = gochan.Mutex()
    mutex.lock()
    gochan.select(gochan.Recv(gochan.after(0.001)), timeout=T)
    # Wait until the goroutine and the thread are both parked on inbox.
    deadline = time.monotonic() + T
    while inbox.statistics().waiting_receivers != 2:
        assert time.monotonic() < deadline, "receivers never blocked"
        time.sleep(0.001)


    def child_checks():
        # Inherited state: buffered items; no phantom receivers (their threads are gone).
        assert buffered.recv_many(8, timeout=T) == ["a", "b"]
        assert inbox.statistics().waiting_receivers == 0
        try:
            inbox.send_nowait("lost?")
            raise AssertionError("a send found a receiver that did not survive the fork")
        except gochan.WouldBlock:
            pass
        assert gochan.num_goroutines() == 0
        # Channels and select, with threads of the child.
        ch = gochan.Chan()
        got = []
        t = threading.Thread(target=lambda: got.extend(ch))
        t.start()
        assert ch.send_many(range(100), timeout=T) == 100
        ch.close()
        t.join(T)
        assert got == list(range(100))
        a, b = gochan.Chan(), gochan.Chan(1)
        b.send("b")
        assert gochan.select(gochan.Recv(a), gochan.Recv(b), timeout=T) == (1, "b", True)
        # Timers: inherited ones still fire; new ones work; the ticker still ticks.
        pending_timer.c.recv(timeout=T)
        assert fired.wait(T)
        gochan.after(0.001).recv(timeout=T)
        gochan.Timer(0.001).c.recv(timeout=T)
        for _ in range(3):
            ticker.c.recv(timeout=T)
        ticker.stop()
        t2 = gochan.Ticker(0.001)
        for _ in range(3):
            t2.c.recv(timeout=T)
        t2.stop()
        ran = threading.Event()
        gochan.after_func(0.001, ran.set)
        assert ran.wait(T)
        gochan.sleep(0.001)
        # Contexts: the inherited deadline still expires; a new one too; cancel propagates.
        deadline_ctx.done().recv_ok(timeout=T)
        assert isinstance(deadline_ctx.err(), gochan.DeadlineExceeded)
        assert isinstance(cancelled_ctx.err(), gochan.Cancelled)
        with gochan.with_timeout(bg, 0.01) as c:
            try:
                gochan.Chan().recv(ctx=c, timeout=T)
                raise AssertionError("no deadline")
            except gochan.DeadlineExceeded:
                pass
        parent, cancel_parent = gochan.with_cancel(bg)
        child_ctx, _ = gochan.with_cancel(parent)
        hook = threading.Event()
        child_ctx.after_func(hook.set)
        cancel_parent()
        child_ctx.done().recv_ok(timeout=T)
        assert hook.wait(T)
        watched_cancel()
        assert watched.wait(T)
        # Goroutines, Pool, Group, WaitGroup, Mutex.
        assert gochan.go(pow, 3, 3).join(timeout=T) == 27
        gs = [gochan.go(time.sleep, 0.001) for _ in range(20)]
        for g in gs:
            g.join(timeout=T)
        with gochan.Pool(3) as p:
            assert list(p.map(lambda x: x * 2, range(200))) == [x * 2 for x in range(200)]
            assert p.submit(sum, [1, 2]).join(timeout=T) == 3
        results = []
        with gochan.Group(limit=2) as grp:
            for i in range(5):
                grp.go(results.append, i)
        assert sorted(results) == list(range(5))
        w = gochan.WaitGroup()
        for _ in range(5):
            w.go(time.sleep, 0.001)
        assert w.wait(timeout=T)
        mutex.unlock()  # held by this (the main) thread at the fork
        assert mutex.lock(timeout=T)
        m2, count = gochan.Mutex(), [0]
        def bump():
            for _ in range(1000):
                with m2:
                    count[0] += 1
        bumpers = [gochan.go(bump) for _ in range(4)]
        for b_ in bumpers:
            b_.join(timeout=T)
        assert count[0] == 4000
        assert sorted(gochan.merge(gochan.generate(range(3)),
                                   gochan.generate(range(3, 6)))) == list(range(6))
        assert list(gochan.stage(abs, gochan.generate(range(-5, 0)), workers=2)) == \\
            [5, 4, 3, 2, 1]
        deadline = time.monotonic() + T
        while gochan.num_goroutines() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert gochan.num_goroutines() == 0, gochan.num_goroutines()


    def run_child():
        try:
            child_checks()
        except BaseException:
            import traceback
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)


    def wait_child(pid, limit=60):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.005)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return "hung"


    def parent_checks():
        # Everything the parent had still works, as if no fork had happened.
        assert buffered.recv_many(8, timeout=T) == ["a", "b"]
        inbox.send("to the goroutine", timeout=T)
        inbox.send("to the thread", timeout=T)
        blocked_thread.join(T)
        got = {blocked_goroutine.join(timeout=T), blocked_thread_got[0]}
        assert got == {"to the goroutine", "to the thread"}, got
        pending_timer.c.recv(timeout=T)
        assert fired.wait(T)
        for _ in range(3):
            ticker.c.recv(timeout=T)
        ticker.stop()
        deadline_ctx.done().recv_ok(timeout=T)
        assert isinstance(deadline_ctx.err(), gochan.DeadlineExceeded)
        watched_cancel()
        assert watched.wait(T)
        assert pool.submit(pow, 2, 5).join(timeout=T) == 32
        assert list(pool.map(abs, [-1, -2])) == [1, 2]
        assert pool.wait(timeout=T)
        mutex.unlock()
        assert gochan.go(abs, -7).join(timeout=T) == 7
""")


def test_forked_child_uses_everything_and_the_parent_is_unaffected():
    script = BUSY_PARENT + textwrap.dedent("""
        pid = os.fork()
        if pid == 0:
            run_child()
        status = wait_child(pid)
        parent_checks()
        print("child", status, flush=True)
    """)
    result = run_python(script, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["child", "0"], result.stdout + result.stderr


def test_grandchild_of_a_fork_uses_everything_too():
    # The at-fork handlers run again in a child that forks: the restarted threads restart.
    script = BUSY_PARENT + textwrap.dedent("""
        pid = os.fork()
        if pid == 0:
            try:
                gochan.go(abs, 1).join(timeout=T)
                gochan.after(0.001).recv(timeout=T)
                grandchild = os.fork()
                if grandchild == 0:
                    run_child()
                os._exit(0 if wait_child(grandchild) == 0 else 1)
            except BaseException:
                import traceback
                traceback.print_exc()
                os._exit(2)
        status = wait_child(pid, limit=90)
        parent_checks()
        print("child", status, flush=True)
    """)
    result = run_python(script, timeout=150)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["child", "0"], result.stdout + result.stderr


def test_repeated_forks_while_the_parent_is_busy_never_leave_a_child_stuck():
    if under_asan():
        # Not gochan's hang but ASan's: its allocator is not fork-safe. Under ASan about one
        # fork in 1 500 of this loop leaves a child stuck (one run of this test in 60), always
        # the same way (gdb): the threads the child's at-fork handlers start (the runtime's
        # timer and dispatcher threads) block at their very first step, in ASan's own
        # AsanThread::ThreadStart -> pthread_getattr_np -> calloc -> SizeClassAllocator64::
        # GetFromAllocator, on a size class's mutex that some thread of the parent held when
        # it forked; the forking thread waits for them to start. No gochan frame is involved,
        # and a script without gochan (threads starting threads, a child starting one) hangs
        # the same way under the preloaded libasan.
        # GCC 12's libasan (libasan8) registers no at-fork handler to take its allocator's
        # locks across fork() (it imports neither pthread_atfork nor __register_atfork; LLVM's
        # ASan gained such a handler in llvm/llvm-project#75290), so any malloc in such a
        # child may hang; glibc's malloc, which the plain builds use, is fork-safe, and 20 000
        # forks of this loop in the plain build left no child stuck.
        pytest.skip("ASan's allocator is not fork-safe: a child of a busy parent can inherit "
                    "one of its locks held (GCC 12 libasan has no at-fork handler)")
    # Runtime locks (the timer heap, the goroutine pool, channels, contexts) are taken all the
    # time by the parent's threads; a fork at any moment must leave none held in the child.
    script = textwrap.dedent("""
        import os, threading, time, warnings
        import gochan

        warnings.simplefilter("ignore", DeprecationWarning)
        T = 10
        stop = threading.Event()
        bg = gochan.background()

        def timers():
            while not stop.is_set():
                t = gochan.Timer(0.0005)
                gochan.after_func(0.0002, lambda: None)
                with gochan.with_timeout(bg, 0.0003) as ctx:
                    gochan.select(gochan.Recv(t.c), gochan.Recv(ctx.done()), timeout=T)
                t.stop()

        def goroutines():
            while not stop.is_set():
                gochan.go(abs, -1).join(timeout=T)

        def pools():
            with gochan.Pool(2) as pool:
                while not stop.is_set():
                    list(pool.map(abs, range(-20, 0)))

        def channels():
            ch = gochan.Chan(2)
            while not stop.is_set():
                try:
                    gochan.select(gochan.Send(ch, 1), gochan.Recv(ch), timeout=0.001)
                except TimeoutError:
                    pass

        ticker = gochan.Ticker(0.0005)
        threads = [threading.Thread(target=f, daemon=True)
                   for f in (timers, goroutines, pools, channels, timers)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        outcomes = []
        for _ in range(25):
            pid = os.fork()
            if pid == 0:
                ok = False
                try:
                    gochan.after(0.001).recv(timeout=T)
                    assert gochan.go(abs, -2).join(timeout=T) == 2
                    with gochan.with_timeout(bg, 0.002) as ctx:
                        ctx.done().recv_ok(timeout=T)
                    with gochan.Pool(2) as pool:
                        assert list(pool.map(abs, [-1, -2, -3])) == [1, 2, 3]
                    ticker.c.recv(timeout=T)
                    ch = gochan.Chan(1)
                    ch.send_nowait(1)
                    ok = ch.recv_nowait() == 1
                finally:
                    os._exit(0 if ok else 1)
            deadline = time.monotonic() + 30
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    outcomes.append(os.waitstatus_to_exitcode(status))
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    outcomes.append("hung")
                    break
                time.sleep(0.002)
        stop.set()
        for t in threads:
            t.join(T)
        ticker.stop()
        print("outcomes", sorted(set(map(str, outcomes))), flush=True)
    """)
    result = run_python(script, timeout=400)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "outcomes ['0']", result.stdout + result.stderr
