"""Fan-in: several producers, one consumer, one channel.

    python docs/examples/fan_in.py

Five producers each send their own numbered messages into one shared channel; a single consumer
reads them all. A channel must be closed exactly once, and only when nobody will send again, so
with several producers none of them can simply close it when it finishes. Here the producers
count themselves out: the last one to finish closes the channel. (Joining every producer in a
separate thread and closing afterwards works just as well; see pipeline.py.)

The consumer checks what the channel guarantees: every message arrives exactly once, and the
messages of each producer arrive in the order that producer sent them, however they interleave.
"""

import threading

import gochan

PRODUCERS = 5
MESSAGES = 2_000


class LastOneCloses:
    """Closes `out` when the last of `count` producers calls `done()`."""

    def __init__(self, out: gochan.SendChan[tuple[int, int]], count: int) -> None:
        self._out = out
        self._left = count
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._out.close()


def produce(pid: int, out: gochan.SendChan[tuple[int, int]], finish: LastOneCloses) -> None:
    try:
        for seq in range(MESSAGES):
            out.send((pid, seq))
    finally:
        finish.done()  # even if this producer fails, the consumer is not left waiting


def main() -> None:
    ch: gochan.Chan[tuple[int, int]] = gochan.Chan(16)
    finish = LastOneCloses(ch.send_only(), PRODUCERS)
    producers = [
        threading.Thread(target=produce, args=(pid, ch.send_only(), finish))
        for pid in range(PRODUCERS)
    ]
    for p in producers:
        p.start()

    next_seq = [0] * PRODUCERS  # the sequence number expected next from each producer
    switches = 0  # how often consecutive messages came from different producers
    previous = None
    for pid, seq in ch.recv_only():  # ends when the last producer closes the channel
        assert seq == next_seq[pid], f"producer {pid}: got {seq}, expected {next_seq[pid]}"
        next_seq[pid] += 1
        switches += pid != previous
        previous = pid

    for p in producers:
        p.join()
    assert next_seq == [MESSAGES] * PRODUCERS  # nothing lost, nothing duplicated
    print(f"received {sum(next_seq)} messages from {PRODUCERS} producers, each in order")
    print(f"the stream switched producer {switches} times")


if __name__ == "__main__":
    main()
