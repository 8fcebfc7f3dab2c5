"""A three-stage pipeline: a generator, a pool of workers, a collector.

    python docs/examples/pipeline.py

The generator sends the numbers 1..N down `numbers`, then closes it. Four workers take numbers
from `numbers` and send their squares down `squares`. Once every worker has finished, a closer
thread closes `squares`, and the main thread, which has been collecting all along, sees the end
of the stream.

Each stage gets only the view of a channel it needs: the generator a SendChan, the workers a
RecvChan to read from and a SendChan to write to, the collector a RecvChan. A channel is closed by
the side that sends into it, and every receiver simply iterates until the channel is closed and
drained. This pipeline runs to the end of its input; pipeline_cancel.py stops one mid-stream, and
patterns.md builds the same stages with `generate` and `stage`.
"""

import threading

import gochan

N = 10_000
WORKERS = 4


def generate(out: gochan.SendChan[int], count: int) -> None:
    try:
        for i in range(1, count + 1):
            out.send(i)  # blocks while the buffer is full: backpressure
    finally:
        out.close()  # the generator owns the end of `numbers`


def square(inbox: gochan.RecvChan[int], out: gochan.SendChan[tuple[str, int]], name: str) -> None:
    for n in inbox:  # ends once `numbers` is closed and drained
        out.send((name, n * n))
    # No close here: `squares` has several senders, so it is closed once, after all of them.


def close_when_done(workers: list[threading.Thread], out: gochan.SendChan[object]) -> None:
    for w in workers:
        w.join()
    out.close()


def main() -> None:
    numbers: gochan.Chan[int] = gochan.Chan(64)
    squares: gochan.Chan[tuple[str, int]] = gochan.Chan(64)

    threads = [threading.Thread(target=generate, args=(numbers.send_only(), N))]
    workers = [
        threading.Thread(
            target=square, args=(numbers.recv_only(), squares.send_only(), f"worker-{i}")
        )
        for i in range(WORKERS)
    ]
    threads += workers
    threads.append(threading.Thread(target=close_when_done, args=(workers, squares.send_only())))
    for t in threads:
        t.start()

    total = 0
    per_worker: dict[str, int] = {}
    for name, sq in squares.recv_only():  # the collector: ends once `squares` is closed
        total += sq
        per_worker[name] = per_worker.get(name, 0) + 1

    for t in threads:
        t.join()

    expected = N * (N + 1) * (2 * N + 1) // 6  # sum of the first N squares
    assert total == expected, (total, expected)
    assert sum(per_worker.values()) == N  # every number squared exactly once
    assert numbers.closed and squares.closed
    for name in sorted(per_worker):
        print(f"{name}: {per_worker[name]} numbers")
    print(f"sum of squares 1..{N} = {total}")


if __name__ == "__main__":
    main()
