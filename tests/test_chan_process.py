"""Channels and the life of the process: the interpreter exits normally with threads still blocked
on channels, or waking up while it finalizes (API.md, "Semantics pinned down": a process exits
normally when its main thread ends), and a forked child can use channels. Each case runs in a
child interpreter."""

import textwrap

import pytest

from conftest import run_python

BLOCKED_THREADS = textwrap.dedent("""
    import threading, time
    import gochan

    def wait_until(pred):
        deadline = time.monotonic() + 10
        while not pred():
            assert time.monotonic() < deadline, "threads never blocked"
            time.sleep(0.001)

    unbuffered, full, empty = gochan.Chan(0), gochan.Chan(1), gochan.Chan(4)
    full.send("x")
    for target, args in [(unbuffered.recv, ()), (unbuffered.recv_many, (3,)), (empty.recv, ()),
                         (full.send, ("y",)), (full.send_many, (["z"],))]:
        threading.Thread(target=target, args=args, daemon=True).start()
    wait_until(lambda: unbuffered.statistics().waiting_receivers == 2
               and empty.statistics().waiting_receivers == 1
               and full.statistics().waiting_senders == 2)
""")


def _assert_clean_exit(result):
    assert result.returncode == 0, result.stderr
    assert "Fatal Python error" not in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_interpreter_exits_with_daemon_threads_blocked_forever():
    result = run_python(BLOCKED_THREADS + "print('exiting')\n", timeout=30)
    _assert_clean_exit(result)
    assert result.stdout.strip() == "exiting"


def test_interpreter_exits_when_atexit_closes_channels_with_blocked_threads():
    script = BLOCKED_THREADS + textwrap.dedent("""
        import atexit
        for ch in (unbuffered, full, empty):
            atexit.register(ch.close)
        print("exiting")
    """)
    result = run_python(script, timeout=30)
    _assert_clean_exit(result)


@pytest.mark.parametrize("attempt", range(3))
def test_interpreter_exits_while_threads_keep_timing_out_on_channels(attempt):
    script = textwrap.dedent("""
        import threading, time
        import gochan

        ch = gochan.Chan(0)
        full = gochan.Chan(1)
        full.send(0)

        def spin_recv():
            while True:
                try:
                    ch.recv(timeout=0.0005)
                except TimeoutError:
                    pass

        def spin_send():
            while True:
                try:
                    full.send(1, timeout=0.0005)
                except TimeoutError:
                    pass

        for fn in (spin_recv, spin_recv, spin_send, spin_send):
            threading.Thread(target=fn, daemon=True).start()
        time.sleep(0.1)
        print("exiting")
    """)
    result = run_python(script, timeout=30)
    _assert_clean_exit(result)


def test_interpreter_exits_with_finalizable_items_buffered_in_global_channels():
    script = textwrap.dedent("""
        import gochan

        class Noisy:
            def __del__(self):
                print("finalized", flush=True)

        ch = gochan.Chan(3)
        ch.send_many([Noisy(), Noisy()])
        self_ref = gochan.Chan(1)
        self_ref.send(self_ref)
        print("exiting", flush=True)
    """)
    result = run_python(script, timeout=30)
    _assert_clean_exit(result)
    assert result.stdout.splitlines()[0] == "exiting"


def test_forked_child_can_use_channels():
    script = textwrap.dedent("""
        import os, sys, threading, warnings
        import gochan

        warnings.simplefilter("ignore", DeprecationWarning)
        buffered = gochan.Chan(3)
        buffered.send_many([1, 2])
        other = gochan.Chan(0)
        blocked = threading.Thread(target=other.recv, kwargs={"timeout": 30}, daemon=True)
        blocked.start()
        while other.statistics().waiting_receivers != 1:
            pass

        pid = os.fork()
        if pid == 0:
            ok = buffered.recv_many(5, timeout=1) == [1, 2]
            fresh = gochan.Chan(0)
            got = []
            t = threading.Thread(target=lambda: got.append(fresh.recv(timeout=5)))
            t.start()
            fresh.send("in child", timeout=5)
            t.join(5)
            ok = ok and got == ["in child"]
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        other.send("done", timeout=5)
        blocked.join(5)
        print("child status", os.waitstatus_to_exitcode(status), "parent len", len(buffered))
    """)
    result = run_python(script, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child status 0 parent len 2"


def test_forked_child_does_not_hand_values_to_threads_that_did_not_survive_the_fork():
    # A thread blocked in recv() in the parent does not exist in the child: the child must not
    # count it as a waiting receiver, nor let a send "succeed" into it (the value would be lost).
    script = textwrap.dedent("""
        import os, threading, warnings
        import gochan

        warnings.simplefilter("ignore", DeprecationWarning)
        for capacity in (0, 1):
            ch = gochan.Chan(capacity)
            got = []
            blocked = threading.Thread(target=lambda: got.append(ch.recv(timeout=30)), daemon=True)
            blocked.start()
            while ch.statistics().waiting_receivers != 1:
                pass
            pid = os.fork()
            if pid == 0:
                ok = ch.statistics().waiting_receivers == 0
                if capacity == 0:
                    try:
                        ch.send_nowait("lost?")
                        ok = False
                    except gochan.WouldBlock:
                        pass
                else:
                    ch.send_nowait("kept")
                    ok = ok and ch.recv_nowait() == "kept"
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            ch.send("parent", timeout=5)
            blocked.join(5)
            print(capacity, os.waitstatus_to_exitcode(status), got)
    """)
    result = run_python(script, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0 0 ['parent']", "1 0 ['parent']"]


def test_fork_while_other_threads_hand_values_back_and_forth_never_leaves_a_child_stuck():
    # Threads that wake from a wait unlink their queue entries without the GIL; a fork at that
    # moment must not leave a channel's lock held for ever in the child.
    script = textwrap.dedent("""
        import os, threading, warnings
        import gochan

        warnings.simplefilter("ignore", DeprecationWarning)
        ping, pong = gochan.Chan(0), gochan.Chan(0)
        stop = threading.Event()

        def player(inbox, outbox):
            while not stop.is_set():
                try:
                    outbox.send(inbox.recv(timeout=0.2), timeout=0.2)
                except (TimeoutError, gochan.ChannelClosed):
                    pass

        threads = [threading.Thread(target=player, args=(ping, pong), daemon=True),
                   threading.Thread(target=player, args=(pong, ping), daemon=True)]
        for t in threads:
            t.start()
        ping.send("ball", timeout=5)
        stuck = 0
        for _ in range(40):
            pid = os.fork()
            if pid == 0:
                ping.statistics()
                pong.statistics()
                ch = gochan.Chan(1)
                ch.send_nowait(1)
                os._exit(0 if ch.recv_nowait() == 1 else 1)
            for _ in range(500):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                stop.wait(0.01)
            else:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                stuck += 1
                continue
            stuck += os.waitstatus_to_exitcode(status) != 0
        stop.set()
        print("stuck", stuck)
    """)
    result = run_python(script, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["stuck", "0"]
