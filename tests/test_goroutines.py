"""Goroutines (API.md, "Goroutines"): go() on pooled threads, Goroutine.join() and done(),
num_goroutines(), exceptions that nobody retrieves, Ctrl-C on join, and the exit of a process
whose goroutines are still blocked (in child interpreters)."""

import gc
import inspect
import os
import pickle
import signal
import sys
import textwrap
import threading
import time
import weakref

import pytest

import gochan
import gochan.testing
from conftest import LONG, SETTLE, run_python, wait_until



def blocked_until(ch):
    """A goroutine body that waits for one value on `ch` and returns it."""
    return ch.recv(timeout=LONG)


# --- go and join --------------------------------------------------------------------------------

def test_go_returns_a_goroutine_whose_join_gives_the_result():
    g = gochan.go(sum, [1, 2, 3])
    assert isinstance(g, gochan.Goroutine)
    assert g.join(timeout=LONG) == 6
    assert g.join() == 6  # again: the result is kept


def test_go_passes_positional_and_keyword_arguments():
    def f(a, b, *, c, fn):
        return (a, b, c, fn)

    # `fn` is positional-only in go(), so it can be a keyword of the function itself.
    assert gochan.go(f, 1, 2, c=3, fn=4).join(timeout=LONG) == (1, 2, 3, 4)


def test_join_reraises_the_exception_every_time():
    def fail():
        raise KeyError("boom")

    g = gochan.go(fail)
    with pytest.raises(KeyError) as first:
        g.join(timeout=LONG)
    with pytest.raises(KeyError) as second:
        g.join(timeout=LONG)
    assert first.value is second.value
    assert any(entry.name == "fail" for entry in first.traceback)


def test_join_reraises_base_exceptions_too():
    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gochan.go(interrupt).join(timeout=LONG)


def test_join_returns_none_for_a_function_without_result():
    assert gochan.go(lambda: None).join(timeout=LONG) is None


def test_join_waits_for_the_function_to_finish():
    ch = gochan.Chan()
    g = gochan.go(blocked_until, ch)
    with pytest.raises(TimeoutError):
        g.join(timeout=0)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        g.join(timeout=0.05)
    assert time.monotonic() - start >= 0.05
    ch.send("go on")
    assert g.join(timeout=LONG) == "go on"


def test_goroutines_run_concurrently():
    barrier = threading.Barrier(8, timeout=LONG)
    goroutines = [gochan.go(barrier.wait) for _ in range(8)]
    assert sorted(g.join(timeout=LONG) for g in goroutines) == list(range(8))


def test_a_goroutine_cannot_join_itself():
    me = []
    ready = gochan.Chan(1)

    def body():
        ready.recv(timeout=LONG)
        return me[0].join()

    me.append(gochan.go(body))
    ready.send(None)
    with pytest.raises(RuntimeError, match="itself"):
        me[0].join(timeout=LONG)


@pytest.mark.parametrize("args", [(), (42,), ("not callable",)])
def test_go_needs_a_callable(args):
    with pytest.raises(TypeError):
        gochan.go(*args)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"timeout": -1}, ValueError),
    ({"timeout": float("nan")}, ValueError),
    ({"timeout": "1"}, TypeError),
    ({"ctx": "not a context"}, TypeError),
    ({"deadline": 1}, TypeError),
])
def test_join_rejects_bad_arguments(kwargs, error):
    g = gochan.go(int)
    g.join(timeout=LONG)
    with pytest.raises(error):
        g.join(**kwargs)


def test_join_takes_no_positional_argument():
    g = gochan.go(int)
    with pytest.raises(TypeError):
        g.join(1.0)
    g.join(timeout=LONG)


def test_goroutine_cannot_be_made_directly_or_pickled():
    with pytest.raises(TypeError):
        gochan.Goroutine()
    g = gochan.go(int)
    g.join(timeout=LONG)
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(g)


def test_repr_tells_the_function_and_the_state():
    ch = gochan.Chan()
    g = gochan.go(blocked_until, ch)
    wait_until(lambda: "running" in repr(g))
    assert "blocked_until" in repr(g)
    ch.send(1)
    g.join(timeout=LONG)
    assert "finished" in repr(g)
    failed = gochan.go(int, "x")
    with pytest.raises(ValueError):
        failed.join(timeout=LONG)
    assert "ValueError" in repr(failed)


def test_signatures_are_introspectable():
    assert str(inspect.signature(gochan.go)) == "(fn, /, *args, **kwargs)"
    assert str(inspect.signature(gochan.Goroutine.join)) == "(self, /, *, timeout=None, ctx=None)"
    assert str(inspect.signature(gochan.Goroutine.done)) == "(self, /)"
    assert str(inspect.signature(gochan.num_goroutines)) == "()"


# --- contexts ------------------------------------------------------------------------------------

def test_join_raises_when_its_context_is_cancelled_while_waiting():
    ctx, cancel = gochan.with_cancel(gochan.background())
    ch = gochan.Chan()
    g = gochan.go(blocked_until, ch)
    threading.Timer(SETTLE, cancel).start()
    with pytest.raises(gochan.Cancelled):
        g.join(ctx=ctx)
    ch.send(None)  # the goroutine itself runs on
    assert g.join(timeout=LONG) is None


def test_join_with_a_done_context_raises_even_when_finished():
    ctx, cancel = gochan.with_cancel(gochan.background())
    cancel()
    g = gochan.go(int)
    g.join(timeout=LONG)
    with pytest.raises(gochan.Cancelled):
        g.join(ctx=ctx)


def test_join_deadline_of_a_context_raises_deadline_exceeded():
    ch = gochan.Chan()
    g = gochan.go(blocked_until, ch)
    ctx, cancel = gochan.with_timeout(gochan.background(), 0.05)
    with pytest.raises(gochan.DeadlineExceeded):
        g.join(ctx=ctx)
    cancel()
    ch.send(None)
    g.join(timeout=LONG)


# --- done() --------------------------------------------------------------------------------------

def test_done_is_a_recv_chan_closed_when_the_function_ends():
    ch = gochan.Chan()
    g = gochan.go(blocked_until, ch)
    done = g.done()
    assert isinstance(done, gochan.RecvChan)
    assert g.done() is done
    assert not done.closed
    with pytest.raises(TimeoutError):
        done.recv(timeout=SETTLE)
    ch.send(None)
    assert done.recv_ok(timeout=LONG) == (None, False)
    assert done.closed


def test_done_of_a_finished_goroutine_is_closed_at_once():
    g = gochan.go(int)
    g.join(timeout=LONG)
    assert g.done().closed


def test_done_also_closes_when_the_function_raises():
    g = gochan.go(int, "x")
    assert g.done().recv_ok(timeout=LONG) == (None, False)
    with pytest.raises(ValueError):
        g.join()


def test_done_works_in_select():
    ch = gochan.Chan()
    g = gochan.go(blocked_until, ch)
    other = gochan.Chan()
    gochan.go(ch.send, "finish")  # lets g end
    index, value, ok = gochan.select(gochan.Recv(g.done()), gochan.Recv(other), timeout=LONG)
    assert (index, ok) == (0, False)
    g.join(timeout=LONG)


# --- the pool of threads and num_goroutines ------------------------------------------------------

def test_threads_are_reused():
    first = gochan.go(threading.get_ident).join(timeout=LONG)
    idents = {gochan.go(threading.get_ident).join(timeout=LONG) for _ in range(20)}
    assert idents == {first}


def test_a_goroutine_runs_on_a_daemon_worker_thread():
    def who():
        t = threading.current_thread()
        return t.name, t.daemon, t is threading.main_thread()

    name, daemon, main = gochan.go(who).join(timeout=LONG)
    assert name.startswith("gochan-worker-") and daemon and not main


def test_threads_are_started_on_demand_one_per_blocked_goroutine():
    ch = gochan.Chan()
    goroutines = [gochan.go(lambda: (threading.get_ident(), ch.recv(timeout=LONG)))
                  for _ in range(6)]
    wait_until(lambda: ch.statistics().waiting_receivers == 6)
    for _ in range(6):
        ch.send(None)
    idents = {g.join(timeout=LONG)[0] for g in goroutines}
    assert len(idents) == 6


def test_idle_threads_retire():
    previous = gochan._core._set_idle_timeout(0.05)
    try:
        ident = gochan.go(threading.get_ident).join(timeout=LONG)
        wait_until(lambda: all(t.ident != ident for t in threading.enumerate()))
        # and a new one starts for the next goroutine
        assert gochan.go(lambda: 42).join(timeout=LONG) == 42
    finally:
        gochan._core._set_idle_timeout(previous)


def test_set_idle_timeout_rejects_nonsense():
    with pytest.raises(ValueError):
        gochan._core._set_idle_timeout(-1)
    with pytest.raises(TypeError):
        gochan._core._set_idle_timeout("1")


def test_num_goroutines_counts_started_and_not_finished():
    base = gochan.num_goroutines()
    ch = gochan.Chan()
    goroutines = [gochan.go(blocked_until, ch) for _ in range(3)]
    assert gochan.num_goroutines() == base + 3
    for _ in range(3):
        ch.send(None)
    for g in goroutines:
        g.join(timeout=LONG)
    assert gochan.num_goroutines() == base


def test_the_worker_keeps_no_reference_to_a_finished_goroutine():
    g = gochan.go(int)
    g.join(timeout=LONG)
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None


def test_function_and_arguments_are_dropped_once_it_returns():
    class Payload:
        pass

    payload = Payload()
    ref = weakref.ref(payload)
    g = gochan.go(lambda p: "ok", payload)
    del payload
    assert g.join(timeout=LONG) == "ok"
    gc.collect()
    assert ref() is None  # g is still alive, but holds only its result


def test_many_goroutines_at_once():
    results = [gochan.go(pow, i, 2) for i in range(500)]
    assert [g.join(timeout=LONG) for g in results] == [i * i for i in range(500)]


# --- exceptions nobody retrieves -----------------------------------------------------------------

class HookRecorder:
    """Stands in for threading.excepthook and records what it is given."""

    def __init__(self):
        self.calls = []

    def __call__(self, args):
        self.calls.append((args.exc_type, args.exc_value, getattr(args.thread, "name", None)))


@pytest.fixture
def hook(monkeypatch):
    recorder = HookRecorder()
    monkeypatch.setattr(threading, "excepthook", recorder)
    yield recorder


class Boom(Exception):
    pass


def explode(tag):
    raise Boom(tag)


def test_an_exception_of_a_dropped_goroutine_is_reported_exactly_once(hook):
    gochan.go(explode, "dropped")  # nobody keeps the Goroutine
    wait_until(lambda: hook.calls)
    time.sleep(SETTLE)
    gc.collect()
    assert len(hook.calls) == 1
    exc_type, exc, name = hook.calls[0]
    assert exc_type is Boom and exc.args == ("dropped",)
    assert "goroutine" in name and "explode" in name


def test_an_exception_is_reported_when_the_unjoined_goroutine_is_dropped(hook):
    g = gochan.go(explode, "held")
    g.done().recv_ok(timeout=LONG)
    time.sleep(SETTLE)
    assert hook.calls == []  # someone could still join it
    del g
    gc.collect()
    assert [c[1].args for c in hook.calls] == [("held",)]


def test_an_exception_raised_by_join_is_not_reported(hook):
    g = gochan.go(explode, "joined")
    with pytest.raises(Boom):
        g.join(timeout=LONG)
    del g
    gc.collect()
    assert hook.calls == []


def test_an_exception_in_a_reference_cycle_is_reported_once_by_the_collector(hook):
    holder = []

    def fail_with_cycle():
        me = holder[0]  # the frame, kept by the traceback, refers to the goroutine
        raise Boom(me is not None)

    ready = gochan.Chan(1)
    holder.append(gochan.go(lambda: (ready.recv(timeout=LONG), fail_with_cycle())))
    holder[0].done()
    ready.send(None)
    holder[0].done().recv_ok(timeout=LONG)
    holder.clear()
    gc.collect()
    wait_until(lambda: hook.calls)
    gc.collect()
    assert len(hook.calls) == 1


def test_a_failing_excepthook_still_shows_the_exception(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("the hook itself failed")

    unraisable = []
    monkeypatch.setattr(threading, "excepthook", broken)
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    gochan.go(explode, "lost")
    wait_until(lambda: len(unraisable) >= 2)
    values = [type(u.exc_value) for u in unraisable]
    assert RuntimeError in values and Boom in values


def test_default_report_goes_to_stderr(child):
    proc = child(textwrap.dedent("""
        import time, gochan
        def explode():
            raise ValueError("nobody joins me")
        gochan.go(explode)
        time.sleep(0.2)
        print("done", flush=True)
    """))
    proc.expect("done")
    returncode, _, stderr = proc.finish()
    assert returncode == 0
    assert stderr.count("ValueError: nobody joins me") == 1
    assert "goroutine explode" in stderr


# --- Ctrl-C and the end of the process (child interpreters) ----------------------------------

def test_sigint_interrupts_join_in_the_main_thread(child):
    proc = child(textwrap.dedent("""
        import sys, threading, time, gochan
        ch = gochan.Chan()
        g = gochan.go(ch.recv)
        def announce():
            while ch.statistics().waiting_receivers != 1:
                time.sleep(0.001)
            time.sleep(0.05)
            print("ready", flush=True)
        threading.Thread(target=announce, daemon=True).start()
        try:
            g.join()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        ch.send("later")
        print("joined", g.join(timeout=10), flush=True)
    """))
    proc.expect("ready")
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.expect("interrupted")
    proc.expect("joined later")
    returncode, _, stderr = proc.finish()
    assert returncode == 0, stderr


BLOCKED_FOREVER = textwrap.dedent("""
    import time, gochan
    ch, out = gochan.Chan(), gochan.Chan()  # a receive and a send that never meet
    m = gochan.Mutex(); m.lock()
    rw = gochan.RWMutex(); rw.lock()
    sem = gochan.Semaphore(1); sem.acquire()
    wg = gochan.WaitGroup(); wg.add(1)
    blocked = [
        gochan.go(ch.recv), gochan.go(out.send, 1), gochan.go(m.lock), gochan.go(rw.rlock),
        gochan.go(rw.lock), gochan.go(sem.acquire), gochan.go(wg.wait),
        gochan.go(gochan.go(ch.recv).join), gochan.go(time.sleep, 3600),
    ]
    blocked.append(gochan.go(gochan.sleep, 3600))
    blocked.append(gochan.go(gochan.select, gochan.Recv(gochan.Chan())))
    deadline = time.monotonic() + 10
    while gochan.num_goroutines() < len(blocked) + 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    print("blocked", gochan.num_goroutines(), flush=True)
""")


def test_process_exits_normally_with_goroutines_blocked():
    start = time.monotonic()
    result = run_python(BLOCKED_FOREVER, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("blocked ")
    assert int(result.stdout.split()[1]) == 12
    assert result.stderr == ""
    assert time.monotonic() - start < 30


def test_process_exits_normally_with_a_goroutine_busy_in_python():
    result = run_python(textwrap.dedent("""
        import time, gochan
        def spin():
            while True:
                sum(range(100))
        gochan.go(spin)
        time.sleep(0.1)
        print("leaving", flush=True)
    """), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "leaving\n"
    assert result.stderr == ""


def test_sys_exit_with_goroutines_blocked_keeps_the_exit_code():
    result = run_python(BLOCKED_FOREVER + "import sys; sys.exit(7)\n", timeout=60)
    assert result.returncode == 7, result.stderr
    assert result.stderr == ""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_runs_goroutines_and_forgets_the_parents():
    result = run_python(textwrap.dedent("""
        import os, gochan
        gochan.go(int).join(timeout=10)               # an idle worker waits in the parent
        ch = gochan.Chan()
        lost = gochan.go(ch.recv)                     # runs on a thread the child will not have
        while gochan.num_goroutines() != 1:
            pass
        pid = os.fork()
        if pid == 0:
            ok = gochan.num_goroutines() == 0
            ok = ok and gochan.go(lambda: 42).join(timeout=10) == 42
            try:
                lost.join(timeout=10)
                ok = False
            except RuntimeError:
                pass
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        ch.send(None)
        lost.join(timeout=10)
        print("child", status >> 8, flush=True)
    """), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child 0", result.stdout + result.stderr


# --- bursts: a bounded number of threads starting, the rest pending (goroutine.c, "Bursts") ---

WAKING_MAX = 4  # goroutine.c


def without_idle_workers():
    """Let the idle workers retire, so that the next go() cannot hand its goroutine to one."""
    previous = gochan._core._set_idle_timeout(0.01)
    try:
        wait_until(lambda: gochan._core._pool_state()[2] == 0)
    finally:
        gochan._core._set_idle_timeout(previous)


class DeferredStarts:
    """Holds back the start of the next `count` worker threads: Thread.start() returns at once,
    so go() sees them all waking and queues the goroutines that follow as pending.  release()
    starts them; after it, starting a worker raises `fail` if set."""

    def __init__(self, monkeypatch, count):
        self.held = []
        self.fail = None
        self.started = 0
        real = threading.Thread.start

        def start(thread):
            if not thread.name.startswith("gochan-worker-"):
                return real(thread)
            if len(self.held) < count and not self.released:
                self.held.append(thread)
                return None
            if self.fail is not None:
                raise self.fail
            self.started += 1
            return real(thread)

        self.real = real
        self.released = False
        monkeypatch.setattr(threading.Thread, "start", start)

    def release(self):
        self.released = True
        held, self.held = self.held, []
        for thread in held:
            self.real(thread)


@pytest.fixture
def deferred(monkeypatch):
    without_idle_workers()
    starts = DeferredStarts(monkeypatch, WAKING_MAX)
    yield starts
    starts.release()


def test_a_burst_of_short_goroutines_starts_few_threads(monkeypatch):
    starts = DeferredStarts(monkeypatch, 0)
    without_idle_workers()
    goroutines = [gochan.go(int, str(i)) for i in range(10_000)]  # holds the GIL throughout
    assert [g.join(timeout=LONG) for g in goroutines] == list(range(10_000))
    # One thread per goroutine before the pool was bounded (over 200 here, thousands on a busy
    # machine); about 10 now.  Each waking thread may start one more while the queue is not empty.
    assert starts.started <= 100


def test_goroutines_beyond_the_waking_threads_wait_pending_and_are_counted(deferred):
    ch = gochan.Chan()
    goroutines = [gochan.go(ch.recv, timeout=LONG) for _ in range(10)]
    assert gochan._core._pool_state()[:2] == (WAKING_MAX, 10 - WAKING_MAX)
    assert gochan.num_goroutines() >= 10
    assert set(goroutines) <= set(gochan.testing.running())
    assert "starting" in repr(goroutines[-1])
    deferred.release()
    # Every pending goroutine gets a thread of its own, though every running one blocks.
    wait_until(lambda: ch.statistics().waiting_receivers == 10)
    assert gochan._core._pool_state()[:2] == (0, 0)
    for i in range(10):
        ch.send(i)
    assert sorted(g.join(timeout=LONG) for g in goroutines) == list(range(10))


def test_a_burst_of_goroutines_that_all_wait_for_each_other_completes():
    n = 500
    arrived = gochan.WaitGroup()
    arrived.add(n)

    def meet(i):
        arrived.done()
        arrived.wait(timeout=LONG)  # returns only once all n run at the same time
        return i

    goroutines = [gochan.go(meet, i) for i in range(n)]
    # Order is not promised (pending goroutines start in order, hand-offs may overtake them):
    # only that every one runs.
    assert {g.join(timeout=LONG) for g in goroutines} == set(range(n))
    wait_until(lambda: gochan._core._pool_state()[:2] == (0, 0))


def test_a_pending_goroutine_whose_thread_cannot_start_fails_with_the_error(deferred, hook):
    ch = gochan.Chan()
    running = [gochan.go(ch.recv, timeout=LONG) for _ in range(WAKING_MAX)]
    pending = [gochan.go(ch.recv, timeout=LONG) for _ in range(5)]
    gochan.go(explode, "never runs")  # pending too, and nobody joins it
    deferred.fail = RuntimeError("can't start new thread")
    deferred.release()
    for g in pending:
        with pytest.raises(RuntimeError, match="can't start new thread"):
            g.join(timeout=LONG)
        with pytest.raises(RuntimeError):  # every time, like any exception of a goroutine
            g.join(timeout=LONG)
    # The one nobody joins is reported once, with the error that kept it from running.
    wait_until(lambda: len(hook.calls) == 1)
    assert hook.calls[0][0] is RuntimeError and hook.calls[0][2] == "goroutine explode"
    wait_until(lambda: gochan._core._pool_state()[:2] == (0, 0))
    # The goroutines that had threads run on.
    for i in range(WAKING_MAX):
        ch.send(i)
    assert sorted(g.join(timeout=LONG) for g in running) == list(range(WAKING_MAX))


def test_go_raises_when_the_thread_it_needs_cannot_start(monkeypatch):
    without_idle_workers()

    def fail(thread):
        raise RuntimeError("can't start new thread")

    before = gochan.num_goroutines()
    monkeypatch.setattr(threading.Thread, "start", fail)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        gochan.go(int)
    assert gochan.num_goroutines() == before
    assert gochan._core._pool_state()[:2] == (0, 0)


def test_exceptions_of_pending_goroutines_are_reported_exactly_once(deferred, hook):
    for i in range(20):
        gochan.go(explode, i)  # nobody keeps them; 16 of them pending
    deferred.release()
    wait_until(lambda: len(hook.calls) >= 20)
    time.sleep(SETTLE)
    assert sorted(call[1].args[0] for call in hook.calls) == list(range(20))
    assert all(call[0] is Boom for call in hook.calls)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_finishes_the_parents_pending_goroutines():
    result = run_python(textwrap.dedent("""
        import os, threading, time, gochan
        gochan._core._set_idle_timeout(0.01)
        gochan.go(int).join(timeout=10)
        while gochan._core._pool_state()[2]:
            time.sleep(0.01)
        real = threading.Thread.start
        held = []
        threading.Thread.start = lambda t: held.append(t)  # the workers wait to be started
        ch = gochan.Chan()
        lost = [gochan.go(ch.recv, timeout=10) for _ in range(10)]
        threading.Thread.start = real
        ok = gochan._core._pool_state()[:2] == (4, 6)
        pid = os.fork()
        if pid == 0:
            ok = ok and gochan._core._pool_state() == (0, 0, 0)
            ok = ok and gochan.num_goroutines() == 0
            for g in lost:
                try:
                    g.join(timeout=10)
                    ok = False
                except RuntimeError:
                    pass
            ok = ok and gochan.go(lambda: 42).join(timeout=10) == 42
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        for t in held:
            t.start()
        for i in range(10):
            ch.send(i)
        ok = ok and sorted(g.join(timeout=10) for g in lost) == list(range(10))
        print("child", status >> 8, ok, flush=True)
    """), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child 0 True", result.stdout + result.stderr
