"""Ask several replicas, keep the first answer, cancel the others; give up after a deadline.

    python docs/examples/context_search.py

Each replica search runs in its own thread with a child of one shared context. The first answer
to arrive wins: the caller cancels the shared context, which wakes the slower searches at once in
whatever they are blocked on, so none of them keeps working (or holds a thread) for an answer
nobody wants. The whole search also has a deadline: if no replica answers in time, the caller
gets DeadlineExceeded and every search is stopped the same way.
"""

import random
import threading
import time

import gochan


def replica(
    name: str, delay: float, query: str, ctx: gochan.Context, out: gochan.Chan[str]
) -> None:
    """A search that takes `delay` seconds; it stops early if ctx is cancelled."""
    try:
        gochan.sleep(delay, ctx=ctx)  # stands for the real work, and is cancellable
        out.send(f"{name}: results for {query!r}", ctx=ctx)
    except gochan.ContextError as exc:
        print(f"  {name} stopped: {type(exc).__name__}")


def first_answer(query: str, delays: dict[str, float], timeout: float) -> str | None:
    results: gochan.Chan[str] = gochan.Chan()
    with gochan.with_timeout(gochan.background(), timeout) as ctx:
        threads = [
            threading.Thread(target=replica, args=(name, delay, query, ctx, results))
            for name, delay in delays.items()
        ]
        for t in threads:
            t.start()
        try:
            answer = results.recv(ctx=ctx)
        except gochan.DeadlineExceeded:
            answer = None
    # Leaving the block cancelled ctx: every replica still running has stopped.
    for t in threads:
        t.join()
    return answer


def main() -> None:
    random.seed(7)
    delays = {f"replica-{i}": random.uniform(0.01, 0.2) for i in range(4)}
    start = time.monotonic()
    answer = first_answer("gochan", delays, timeout=1.0)
    print(f"answer: {answer}  ({time.monotonic() - start:.3f}s)")
    assert answer is not None

    slow = {name: 5.0 for name in delays}
    start = time.monotonic()
    answer = first_answer("gochan", slow, timeout=0.05)
    print(f"answer: {answer}  ({time.monotonic() - start:.3f}s, deadline 0.05s)")
    assert answer is None


if __name__ == "__main__":
    main()
