"""Anti-pattern: holding a Mutex while doing slow work, so that every goroutine waits its turn.

    python docs/examples/antipattern_lock_held_too_long.py

Twenty goroutines each send a report built from a shared price list. Sending takes 20 ms (I/O,
or anything slow). Done inside `with lock:`, the sends cannot overlap: the twenty goroutines
queue up behind the lock and the whole takes at least 20 x 20 ms, however many threads there
are. The lock only needs to protect the price list, so the fix takes a copy of it under the lock,
which costs microseconds, lets go, and does the slow part on the copy: the twenty sends overlap
and the whole takes about 20 ms.
"""

import time
from collections.abc import Callable

import gochan

GOROUTINES = 20
SEND_TIME = 0.02  # seconds

lock = gochan.Mutex()
prices = {"apple": 3, "pear": 4, "plum": 5}  # shared: read and written only under `lock`


def send(report: dict[str, int]) -> int:
    gochan.sleep(SEND_TIME)  # slow I/O
    return sum(report.values())


def report_holding_the_lock() -> int:
    with lock:
        return send(prices)  # the lock is held for the whole send


def report_from_a_copy() -> int:
    with lock:
        snapshot = dict(prices)  # only the copy happens under the lock
    return send(snapshot)


def timed(report: Callable[[], int]) -> float:
    start = time.monotonic()
    goroutines = [gochan.go(report) for _ in range(GOROUTINES)]
    assert all(g.join(timeout=5) == 12 for g in goroutines)
    return time.monotonic() - start


def main() -> None:
    serial = GOROUTINES * SEND_TIME
    slow = timed(report_holding_the_lock)
    fast = timed(report_from_a_copy)
    print(f"lock held during the send: {slow * 1000:.0f} ms (at least {serial * 1000:.0f} ms)")
    print(f"copy under the lock, send outside it: {fast * 1000:.0f} ms")
    assert slow >= serial * 0.95  # the sends were serialised by the lock
    assert fast < serial / 2  # they overlapped (about SEND_TIME; the bound is 10x looser)

    with lock:  # writers keep the lock as short as readers do
        prices["fig"] = 6
    assert report_from_a_copy() == 18


if __name__ == "__main__":
    main()
