"""Goroutine leak checking for tests, in the spirit of Go's goleak.

`verify_none()` waits briefly for the goroutines still running to finish, then raises
`GoroutineLeak` with the Python stack of each one that did not::

    import gochan
    from gochan import testing

    stop = gochan.Chan()
    gochan.go(stop.recv)           # blocked until something is sent: a leak...
    try:
        testing.verify_none(timeout=0.1)
    except testing.GoroutineLeak as leak:
        print(leak)                # ...reported with the stack where it waits
    stop.send(None)
    testing.verify_none()

Only goroutines count (those `gochan.go`, `WaitGroup.go` and gochan's own helpers start), not
plain `threading.Thread` objects. The pytest plugin (`gochan.testing.pytest_plugin`, registered
automatically when gochan is installed) offers the same check as the `no_goroutine_leaks`
fixture and marker.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from types import FrameType
from typing import Iterable

from gochan import _core
from gochan._core import Goroutine

__all__ = ["GoroutineLeak", "running", "verify_none"]

#: How often verify_none looks again while it waits for goroutines to finish.
POLL_INTERVAL = 0.002

_THREADING_FILE = os.path.normcase(os.path.abspath(threading.__file__))


class GoroutineLeak(AssertionError):
    """Goroutines were still running when `verify_none` gave up waiting for them.

    `goroutines` lists them; the message shows the stack of each.

        try:
            testing.verify_none()
        except testing.GoroutineLeak as leak:
            print(len(leak.goroutines), "goroutines leaked")
    """

    def __init__(self, message: str, goroutines: list[Goroutine]) -> None:
        super().__init__(message)
        self.goroutines = goroutines


def running() -> list[Goroutine]:
    """The goroutines started and not finished yet, other than the caller's own.

        before = testing.running()
        ...
        testing.verify_none(ignore=before)
    """
    me = threading.get_ident()
    return [g for g in _core._running_goroutines() if g._ident != me]


def verify_none(timeout: float = 1.0, *, ignore: Iterable[Goroutine] = ()) -> None:
    """Raise `GoroutineLeak` if goroutines are still running after `timeout` seconds.

    Returns as soon as none is (the caller's own goroutine, when it runs in one, and those in
    `ignore` do not count); otherwise the error shows the name and Python stack of each.

        def test_worker_stops():
            w = start_worker()
            w.stop()
            testing.verify_none()
    """
    if timeout < 0 or timeout != timeout:
        raise ValueError(f"timeout must be a non-negative number, got {timeout!r}")
    skip = {id(g) for g in ignore}
    deadline = time.monotonic() + timeout
    while True:
        left = [g for g in running() if id(g) not in skip]
        if not left:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(POLL_INTERVAL, remaining))
    raise GoroutineLeak(_describe(left, timeout), left)


def _describe(goroutines: list[Goroutine], timeout: float) -> str:
    frames = sys._current_frames()
    lines = [f"{len(goroutines)} goroutine(s) still running after {timeout:g} s:"]
    for g in goroutines:
        ident = g._ident
        name = g._name or "?"
        if not ident:
            lines.append(f"\n[goroutine {name}, not started yet]")
            continue
        thread = _thread_name(ident)
        lines.append(f"\n[goroutine {name}, on thread {thread}]")
        frame = frames.get(ident)
        if frame is None or g._ident != ident:
            lines.append("  (finished while being described)")
            continue
        lines.extend(line.rstrip("\n") for line in _format_stack(frame))
    return "\n".join(lines)


def _thread_name(ident: int) -> str:
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return str(ident)


def _in_threading(frame: FrameType) -> bool:
    return os.path.normcase(os.path.abspath(frame.f_code.co_filename)) == _THREADING_FILE


def _format_stack(frame: FrameType | None) -> list[str]:
    """The stack ending at `frame`, outermost first, without the worker thread's bootstrap frames
    (those in threading.py, which say nothing about the goroutine)."""
    stack: list[FrameType] = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    stack.reverse()
    while stack and _in_threading(stack[0]):
        stack.pop(0)
    return traceback.StackSummary.extract((f, f.f_lineno) for f in stack).format()
