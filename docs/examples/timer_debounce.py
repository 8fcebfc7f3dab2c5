"""Debouncing with after_func: act once a burst of events has gone quiet.

Each event pushes the deadline back with `Timer.reset()`; the callback runs (in its own
goroutine) only when no event came for QUIET seconds, and sees every event of the burst. Run it:

    python docs/examples/timer_debounce.py
"""

import threading
from collections.abc import Callable

import gochan

QUIET = 0.03  # seconds without an event before the burst is handled


class Debouncer:
    def __init__(self, handle: Callable[[list[str]], object]) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._timer = gochan.after_func(3600, self._flush)
        self._timer.stop()

    def event(self, item: str) -> None:
        with self._lock:
            self._pending.append(item)
        self._timer.reset(QUIET)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self._handle(batch)


def main() -> None:
    batches: gochan.Chan[list[str]] = gochan.Chan(10)
    debouncer = Debouncer(batches.send)
    for burst in ("abc", "de"):
        for item in burst:
            debouncer.event(item)
            gochan.sleep(0.002)
        gochan.sleep(5 * QUIET)
    got = [batches.recv(timeout=5), batches.recv(timeout=5)]
    print("batches:", got)
    assert got == [list("abc"), list("de")]


if __name__ == "__main__":
    main()
