"""Ctrl-C on a blocked channel call (API.md, "Conventions for every blocking call"): SIGINT
interrupts a call blocked in the main thread with KeyboardInterrupt and the operation has no
effect; a handler that does not raise lets the call go on waiting. Each case runs in a child
interpreter, which a helper thread announces with "ready" once the main thread is registered as
a waiter (seen through statistics())."""

import random
import signal
import textwrap
import threading
import time

import pytest

from conftest import LONG

PRELUDE = textwrap.dedent("""
    import signal, sys, threading, time
    import gochan

    def drain(ch):
        items = []
        while True:
            try:
                items.append(ch.recv_nowait())
            except (gochan.WouldBlock, gochan.ChannelClosed):
                return items

    def announce_when_blocked(ch, senders=0, receivers=0):
        def watch():
            deadline = time.monotonic() + 10
            while True:
                st = ch.statistics()
                if (st.waiting_senders, st.waiting_receivers) == (senders, receivers):
                    print("ready", flush=True)
                    return
                if time.monotonic() > deadline:
                    print("never blocked", flush=True)
                    return
                time.sleep(0.001)
        threading.Thread(target=watch, daemon=True).start()
""")

#: How long the parent leaves a child parked after "ready" before signalling it.
PARK_DELAY = 0.05

# name: (setup, blocking call taking {timeout}, who waits, check printing one line, expected line)
INTERRUPT_CASES = {
    "recv_unbuffered": (
        "ch = gochan.Chan(0)",
        "ch.recv({timeout})",
        "receivers=1",
        """
        st = ch.statistics()
        try:
            ch.send_nowait("x")
            print("a receiver is still registered")
        except gochan.WouldBlock:
            print("unchanged", st.waiting_senders, st.waiting_receivers)
        """,
        "unchanged 0 0",
    ),
    "recv_buffered": (
        "ch = gochan.Chan(2)",
        "ch.recv({timeout})",
        "receivers=1",
        """
        ch.send_nowait("x")
        print("unchanged", len(ch), drain(ch), ch.statistics().waiting_receivers)
        """,
        "unchanged 1 ['x'] 0",
    ),
    "recv_ok": (
        "ch = gochan.Chan(0)",
        "ch.recv_ok({timeout})",
        "receivers=1",
        """
        try:
            ch.send_nowait("x")
            print("a receiver is still registered")
        except gochan.WouldBlock:
            print("unchanged", ch.statistics().waiting_receivers)
        """,
        "unchanged 0",
    ),
    "recv_many": (
        "ch = gochan.Chan(0)",
        "ch.recv_many(4, {timeout})",
        "receivers=1",
        """
        try:
            ch.send_nowait("x")
            print("a receiver is still registered")
        except gochan.WouldBlock:
            print("unchanged", ch.statistics().waiting_receivers)
        """,
        "unchanged 0",
    ),
    "send_unbuffered": (
        "ch = gochan.Chan(0)",
        "ch.send('payload', {timeout})",
        "senders=1",
        """
        st = ch.statistics()
        try:
            print("delivered", ch.recv_nowait())
        except gochan.WouldBlock:
            print("unchanged", st.waiting_senders, st.waiting_receivers, ch.closed)
        """,
        "unchanged 0 0 False",
    ),
    "send_full": (
        "ch = gochan.Chan(2); ch.send('a'); ch.send('b')",
        "ch.send('payload', {timeout})",
        "senders=1",
        """
        print("unchanged", ch.statistics().waiting_senders, drain(ch))
        """,
        "unchanged 0 ['a', 'b']",
    ),
    "send_many": (
        "ch = gochan.Chan(1)",
        "ch.send_many(['a', 'payload'], {timeout})",
        "senders=1",
        """
        print("unchanged", ch.statistics().waiting_senders, drain(ch))
        """,
        "unchanged 0 ['a']",
    ),
}


def _interrupt_script(case, timeout):
    setup, call, waiting, check, _ = INTERRUPT_CASES[case]
    timeout_arg = "" if timeout is None else f"timeout={timeout}"
    call = call.format(timeout=timeout_arg).replace(", )", ")")
    return PRELUDE + textwrap.dedent(f"""
        {setup}
        announce_when_blocked(ch, {waiting})
        try:
            {call}
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        except BaseException as exc:
            print("raised", type(exc).__name__, exc, flush=True)
            sys.exit(4)
        else:
            print("returned", flush=True)
            sys.exit(3)
    """) + textwrap.dedent(check) + "sys.exit(0)\n"


@pytest.mark.parametrize("timeout", [None, 30], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("case", list(INTERRUPT_CASES))
def test_sigint_interrupts_a_blocked_call_in_the_main_thread_without_effect(child, case, timeout):
    proc = child(_interrupt_script(case, timeout))
    proc.expect("ready")
    time.sleep(PARK_DELAY)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.expect("interrupted")
    assert time.monotonic() - start < 2.0
    proc.expect(INTERRUPT_CASES[case][4])
    returncode, rest, stderr = proc.finish()
    assert returncode == 0, stderr


@pytest.mark.parametrize("direction", ["recv", "send"])
def test_blocked_call_keeps_waiting_after_a_sigint_handler_that_does_not_raise(child, direction):
    if direction == "recv":
        blocked, waiting, partner = "ch.recv()", "receivers=1", "ch.send(42, timeout=10)"
    else:
        blocked, waiting, partner = "ch.send(42)", "senders=1", "ch.recv(timeout=10)"
    script = PRELUDE + textwrap.dedent(f"""
        ch = gochan.Chan(0)
        received = []

        def handler(signum, frame):
            print("handled", flush=True)

        signal.signal(signal.SIGINT, handler)

        def partner():
            sys.stdin.readline()
            received.append({partner})

        announce_when_blocked(ch, {waiting})
        helper = threading.Thread(target=partner, daemon=True)
        helper.start()
        result = {blocked}
        helper.join(10)
        print("got", result if result is not None else received[0], flush=True)
        st = ch.statistics()
        print("done", st.waiting_senders, st.waiting_receivers, flush=True)
    """)
    proc = child(script)
    proc.expect("ready")
    time.sleep(PARK_DELAY)
    proc.send_signal(signal.SIGINT)
    proc.expect("handled")
    time.sleep(PARK_DELAY)
    assert proc.proc.poll() is None, "the blocked call ended after the handler returned"
    proc.write("go\n")
    proc.expect("got 42")
    proc.expect("done 0 0")
    returncode, rest, stderr = proc.finish()
    assert returncode == 0, stderr


def test_exception_raised_by_a_signal_handler_propagates_from_the_blocked_call(child):
    script = PRELUDE + textwrap.dedent("""
        class Stop(Exception):
            pass

        def handler(signum, frame):
            raise Stop("from handler")

        signal.signal(signal.SIGINT, handler)
        ch = gochan.Chan(0)
        announce_when_blocked(ch, senders=1)
        try:
            ch.send("payload", timeout=30)
        except Stop as exc:
            print("stopped", exc, flush=True)
        try:
            print("delivered", ch.recv_nowait())
        except gochan.WouldBlock:
            print("unchanged", ch.statistics().waiting_senders)
    """)
    proc = child(script)
    proc.expect("ready")
    time.sleep(PARK_DELAY)
    proc.send_signal(signal.SIGINT)
    proc.expect("stopped from handler")
    proc.expect("unchanged 0")
    returncode, rest, stderr = proc.finish()
    assert returncode == 0, stderr


def test_handled_signal_does_not_extend_or_cut_short_the_timeout(child):
    script = PRELUDE + textwrap.dedent("""
        signal.signal(signal.SIGINT, lambda signum, frame: print("handled", flush=True))
        ch = gochan.Chan(0)
        announce_when_blocked(ch, receivers=1)
        start = time.monotonic()
        try:
            ch.recv(timeout=1.0)
        except TimeoutError:
            elapsed = time.monotonic() - start
            print("timed out", elapsed >= 1.0, elapsed < 4.0, flush=True)
    """)
    proc = child(script)
    proc.expect("ready")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.expect("handled")
    proc.expect("timed out True True")
    returncode, rest, stderr = proc.finish()
    assert returncode == 0, stderr


def test_sigint_does_not_disturb_a_call_blocked_in_another_thread(child):
    script = PRELUDE + textwrap.dedent("""
        ch = gochan.Chan(0)
        got = []
        worker = threading.Thread(target=lambda: got.append(ch.recv(timeout=30)))
        worker.start()
        announce_when_blocked(ch, receivers=1)
        try:
            time.sleep(30)
        except KeyboardInterrupt:
            print("main interrupted", flush=True)
        time.sleep(0.05)
        print("worker alive", worker.is_alive(), ch.statistics().waiting_receivers, flush=True)
        ch.send("after", timeout=10)
        worker.join(10)
        print("worker got", got, flush=True)
    """)
    proc = child(script)
    proc.expect("ready")
    time.sleep(PARK_DELAY)
    proc.send_signal(signal.SIGINT)
    proc.expect("main interrupted")
    proc.expect("worker alive True 1")
    proc.expect("worker got ['after']")
    returncode, rest, stderr = proc.finish()
    assert returncode == 0, stderr



# --- a storm of SIGINTs: nothing lost, nothing duplicated ---------------------------------------
#
# The child's main thread moves values with C-level loops (list.extend over an iterator, map over
# ch.send), so that its Python code has no point between "the value moved" and "the value was
# recorded" where a signal handler could run. The handler raises only while armed (inside
# attempt()) and disarms itself, so the code that counts an interruption cannot be interrupted.
# A worker thread is the other side and paces itself so that the main thread is mostly blocked.

STORM_ITEMS = 1000

STORM_PRELUDE = PRELUDE + textwrap.dedent("""
    import functools

    class Interrupted(Exception):
        pass

    armed = [False]

    def on_sigint(signum, frame):
        if armed[0]:
            armed[0] = False
            raise Interrupted

    signal.signal(signal.SIGINT, on_sigint)
    N = int(sys.argv[1]) if len(sys.argv) > 1 else %d
""" % STORM_ITEMS)

RECV_LOOPS = {
    "iterate": "ch",
    "recv": "iter(ch.recv, object())",
    "recv_ok": "iter(functools.partial(ch.recv_ok, timeout=30), (None, False))",
    # Batches are recorded whole and flattened afterwards (itertools.chain would give up for good
    # on the first exception from its source).
    "recv_many": "iter(functools.partial(ch.recv_many, 7), None)",
}


def _storm(proc):
    """SIGINT the child every 0.5-3 ms until it prints its result line; return that line."""
    done = threading.Event()
    result = []

    def read():
        try:
            result.append(proc.readline(timeout=60))
        finally:
            done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    signals = 0
    deadline = time.monotonic() + 60
    while not done.is_set() and time.monotonic() < deadline and proc.proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        signals += 1
        time.sleep(random.uniform(0.0005, 0.003))
    reader.join(LONG)
    assert result, f"child gave no result after {signals} signals; stderr: {proc.stderr()}"
    return result[0]


@pytest.mark.parametrize("capacity", [0, 1])
@pytest.mark.parametrize("loop", list(RECV_LOOPS))
def test_sigint_storm_neither_loses_nor_duplicates_received_values(child, loop, capacity):
    script = STORM_PRELUDE + textwrap.dedent(f"""
        ch = gochan.Chan({capacity})

        def produce():
            for i in range(N):
                ch.send(i, timeout=30)
                time.sleep(0.0002)
            ch.close()

        threading.Thread(target=produce, daemon=True).start()
        received = []
        source = {RECV_LOOPS[loop]}
        interrupts = 0

        def attempt():
            try:
                armed[0] = True
                received.extend(source)
            except gochan.ChannelClosed:
                pass
            finally:
                armed[0] = False

        print("ready", flush=True)
        while True:
            try:
                attempt()
                break
            except Interrupted:
                interrupts += 1
        if {loop!r} == "recv_ok":
            received = [v for v, ok in received]
        if {loop!r} == "recv_many":
            received = [v for batch in received for v in batch]
        print("ok" if received == list(range(N)) else
              f"received {{len(received)}} values, first differences: "
              f"{{[(i, v) for i, v in enumerate(received) if i != v][:5]}}",
              interrupts > 0, flush=True)
        time.sleep(0.3)
    """)
    proc = child(script)
    proc.expect("ready")
    assert _storm(proc) == "ok True"
    returncode, rest, stderr = proc.finish()
    assert returncode == 0, stderr


@pytest.mark.parametrize("capacity", [0, 2])
@pytest.mark.parametrize("timeout", [None, 30], ids=["no-timeout", "timeout"])
def test_sigint_storm_never_delivers_an_interrupted_send(child, timeout, capacity):
    script = STORM_PRELUDE + textwrap.dedent(f"""
        ch = gochan.Chan({capacity})
        got = []

        def consume():
            while True:
                try:
                    got.append(ch.recv(timeout=30))
                except gochan.ChannelClosed:
                    return
                time.sleep(0.0002)

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        it = iter(range(N))
        sends = map(functools.partial(ch.send, timeout={timeout}), it)
        sent = []          # one None per send that returned
        skipped = []       # values whose send raised

        def attempt():
            try:
                armed[0] = True
                sent.extend(sends)
            finally:
                armed[0] = False

        print("ready", flush=True)
        while True:
            try:
                attempt()
                break
            except Interrupted:
                consumed = N - it.__length_hint__()
                if consumed > len(sent) + len(skipped):
                    skipped.append(consumed - 1)
        ch.close()
        consumer.join(30)
        expected = [v for v in range(N) if v not in set(skipped)]
        delivered_anyway = sorted(set(skipped) & set(got))
        print("ok" if got == expected and len(sent) == len(expected) else
              f"interrupted yet delivered: {{delivered_anyway[:5]}}; "
              f"received {{len(got)}}, expected {{len(expected)}}",
              len(skipped) > 0, flush=True)
        time.sleep(0.3)
    """)
    proc = child(script)
    proc.expect("ready")
    assert _storm(proc) == "ok True"
    returncode, rest, stderr = proc.finish()
    assert returncode == 0, stderr


# --- a SIGINT that lands while the call is about to sleep ---------------------------------------
#
# The main thread lets go of the GIL before it parks; a thread that takes the GIL right then and
# signals the main thread lands the signal while the waiter spins or just before its futex wait,
# where it does not wake the waiter. The call must still raise KeyboardInterrupt promptly (not
# sleep to its timeout and let the interrupt surface afterwards).

def test_sigint_arriving_as_the_call_goes_to_sleep_still_interrupts_it():
    from conftest import run_python
    script = textwrap.dedent("""
        import signal, threading, time
        import gochan

        main = threading.get_ident()
        ch = gochan.Chan(1)
        go, fired = threading.Event(), threading.Event()

        def kicker():
            while True:
                go.wait()
                go.clear()
                signal.pthread_kill(main, signal.SIGINT)
                fired.set()

        threading.Thread(target=kicker, daemon=True).start()
        late = 0
        for _ in range(40):
            try:
                go.set()
                ch.recv(timeout=2.0)
                raise SystemExit("recv returned a value from an empty channel")
            except KeyboardInterrupt:
                pass
            except TimeoutError:
                late += 1
                try:
                    time.sleep(0)
                except KeyboardInterrupt:
                    pass
            fired.wait()
            fired.clear()
        print("late", late)
    """)
    result = run_python(script, timeout=LONG * 4)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["late", "0"]
