"""Shared helpers for the gochan test suites.

Every wait in these suites is bounded, so a bug in the implementation makes a test fail instead of
hanging the run: polling goes through `wait_until`, threads through the `spawn` fixture (joined with
a timeout, their exceptions re-raised), child interpreters through `Child`. As a last resort an
autouse watchdog dumps every thread's stack and exits if a single test runs for longer than
GOCHAN_TEST_WATCHDOG seconds (default 300). The test modules import the helpers with
`from conftest import ...`.
"""

import faulthandler
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

# Importable as `conftest` whatever pytest's import mode is.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gochan  # noqa: E402

#: Upper bound, in seconds, for anything that is expected to happen within milliseconds.
LONG = 10.0

#: Long enough that a thread which should be blocked has had every chance to (wrongly) finish.
SETTLE = 0.1

#: The directory that holds the `gochan` package under test, for child interpreters.
GOCHAN_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gochan.__file__)))

WATCHDOG_SECONDS = float(os.environ.get("GOCHAN_TEST_WATCHDOG", "300"))


@pytest.fixture(autouse=True)
def _watchdog():
    """Dump all stacks and exit rather than let one test hang the suite."""
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def under_asan():
    """Whether this process runs with AddressSanitizer's runtime loaded (`make pytest-asan`)."""
    try:
        with open("/proc/self/maps") as maps:
            return "libasan" in maps.read()
    except OSError:
        return False


def skip_unless_rss_is_meaningful():
    """Skip a test that asserts on resident memory where that measure cannot be trusted: without
    /proc to read it, or under AddressSanitizer, whose quarantine holds freed memory."""
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc to read the resident set size")
    if under_asan():
        pytest.skip("AddressSanitizer's quarantine holds freed memory")


def wait_until(predicate, timeout=LONG, interval=0.001, message=None):
    """Poll `predicate()` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


def wait_for_receivers(ch, n, timeout=LONG):
    """Wait until exactly `n` threads are blocked receiving on `ch`."""
    wait_until(
        lambda: ch.statistics().waiting_receivers == n,
        timeout,
        message=f"expected {n} blocked receivers, have {ch.statistics().waiting_receivers}",
    )


def wait_for_senders(ch, n, timeout=LONG):
    """Wait until exactly `n` threads are blocked sending on `ch`."""
    wait_until(
        lambda: ch.statistics().waiting_senders == n,
        timeout,
        message=f"expected {n} blocked senders, have {ch.statistics().waiting_senders}",
    )


def drain_nowait(ch):
    """Every value that `ch.recv_nowait()` gives now, in order (stops at WouldBlock/closed)."""
    items = []
    while True:
        try:
            items.append(ch.recv_nowait())
        except (gochan.WouldBlock, gochan.ChannelClosed):
            return items


class Worker:
    """A function running on its own daemon thread, with a bounded join."""

    def __init__(self, fn, args, kwargs):
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._result = None
        self._exc = None
        self._done = threading.Event()
        self.retrieved = False
        self.thread = threading.Thread(target=self._run, name=getattr(fn, "__name__", "worker"),
                                       daemon=True)

    def _run(self):
        try:
            self._result = self._fn(*self._args, **self._kwargs)
        except BaseException as exc:  # handed to the test by join()/exception()
            self._exc = exc
        finally:
            # Keep no reference to the arguments: leak tests count them.
            self._fn = self._args = self._kwargs = None
            self._done.set()

    @property
    def done(self):
        return self._done.is_set()

    def wait(self, timeout=LONG):
        if not self._done.wait(timeout):
            raise AssertionError(f"thread {self.thread.name!r} still running after {timeout}s")
        self.thread.join(timeout)

    def join(self, timeout=LONG):
        """The function's return value; re-raises the exception it raised."""
        self.wait(timeout)
        self.retrieved = True
        if self._exc is not None:
            raise self._exc
        return self._result

    def exception(self, timeout=LONG):
        """The exception the function raised, or None if it returned."""
        self.wait(timeout)
        self.retrieved = True
        return self._exc


@pytest.fixture
def spawn():
    """`spawn(fn, *args, **kwargs) -> Worker`; checks at teardown that every thread ended."""
    workers = []

    def start(fn, *args, **kwargs):
        worker = Worker(fn, args, kwargs)
        workers.append(worker)
        worker.thread.start()
        return worker

    yield start

    stuck = []
    for worker in workers:
        try:
            worker.wait(LONG + 5)
        except AssertionError:
            stuck.append(worker.thread.name)
    assert not stuck, f"threads still running at the end of the test: {stuck}"
    lost = [w._exc for w in workers if w._exc is not None and not w.retrieved]
    assert not lost, f"exceptions raised in threads and never checked: {lost!r}"


class Child:
    """A child Python interpreter running `script`, read line by line with timeouts."""

    def __init__(self, script):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (GOCHAN_ROOT, env.get("PYTHONPATH")) if p)
        env.pop("PYTHONFAULTHANDLER", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-c", script],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )
        self._lines = queue.Queue()
        self._stderr = []
        self.seen = []
        self._stdout_reader = threading.Thread(target=self._pump_stdout, daemon=True)
        self._stdout_reader.start()
        self._stderr_reader = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_reader.start()

    def _pump_stdout(self):
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _pump_stderr(self):
        self._stderr.append(self.proc.stderr.read())

    def stderr(self):
        self._stderr_reader.join(LONG)
        return "".join(self._stderr)

    def readline(self, timeout=LONG):
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"child printed nothing for {timeout}s; so far {self.seen!r}; "
                                 f"stderr: {self.stderr()}") from None
        if line is None:
            self.proc.wait(LONG)
            raise AssertionError(f"child exited ({self.proc.returncode}) after {self.seen!r}; "
                                 f"stderr: {self.stderr()}")
        self.seen.append(line)
        return line

    def expect(self, expected, timeout=LONG):
        line = self.readline(timeout)
        assert line == expected, f"child printed {line!r}, expected {expected!r}; " \
                                 f"so far {self.seen!r}"

    def write(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(LONG)

    def close(self):
        """Kill the child if it still runs and close its pipes."""
        self.kill()
        self._stdout_reader.join(LONG)
        self._stderr_reader.join(LONG)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass

    def finish(self, timeout=LONG):
        """Wait for exit; return (returncode, remaining stdout lines, stderr)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"child did not exit within {timeout}s; printed {self.seen!r}; "
                                 f"stderr: {self.stderr()}") from None
        rest = []
        while True:
            line = self._lines.get(timeout=LONG)
            if line is None:
                break
            rest.append(line)
        self.seen.extend(rest)
        return self.proc.returncode, rest, self.stderr()


@pytest.fixture
def child():
    """`child(script) -> Child`; every child is killed at teardown if still running."""
    children = []

    def start(script):
        c = Child(script)
        children.append(c)
        return c

    yield start
    for c in children:
        c.close()


def run_python(script, timeout=60):
    """Run `script` in a child interpreter; return the CompletedProcess (text output)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (GOCHAN_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(autouse=True)
def _no_goroutine_leaks(no_goroutine_leaks):
    """Every test ends with none of the goroutines it started still running (gochan.testing's
    pytest plugin; only goroutines count, not the plain threads of `spawn`, which checks its own)."""
