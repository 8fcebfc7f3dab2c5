"""Retrying a flaky service with exponential back-off, with gochan.retry.

    python docs/examples/retry_with_backoff.py

1. A flaky service fails now and then; `@gochan.retrying` calls it again after 10, 20, 40 ms...
   (with jitter, so that clients that failed together do not come back together).
2. A "not found" is final: the client raises it wrapped in `gochan.Permanent`, and retry stops at
   once instead of hammering the server.
3. Retries against a shared budget: every attempt of every thread first waits on one
   `gochan.Limiter`, so that a thundering herd of retries cannot exceed 50 calls a second.
"""

import random
import threading
import time

import gochan


class FlakyService:
    """Fails with ConnectionError on a (seeded) random third of the calls."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.calls = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> str:
        with self.lock:
            self.calls += 1
            unlucky = self.rng.random() < 1 / 3
        if key.startswith("missing"):
            raise LookupError(f"{key}: not found")
        if unlucky:
            raise ConnectionError("connection reset by peer")
        return f"value of {key}"


def flaky_reads() -> None:
    service = FlakyService(seed=7)
    policy = gochan.Backoff(initial=0.01, multiplier=2.0, max_delay=0.1, jitter=0.2)

    @gochan.retrying(attempts=6, backoff=policy, retry_on=ConnectionError)
    def read(key: str) -> str:
        return service.get(key)

    values = [read(f"key-{i}") for i in range(10)]
    print(f"1. read {len(values)} keys in {service.calls} calls "
          f"({service.calls - len(values)} retried)")
    assert values == [f"value of key-{i}" for i in range(10)]


def final_failures() -> None:
    service = FlakyService(seed=1)

    def read(key: str) -> str:
        try:
            return service.get(key)
        except LookupError as exc:
            raise gochan.Permanent(exc)  # retrying cannot make it exist

    try:
        gochan.retry(read, "missing-42", attempts=10, backoff=gochan.Backoff(initial=0.01))
    except LookupError as exc:
        print(f"2. gave up after {service.calls} call: {exc}")
    assert service.calls == 1


def retry_budget() -> None:
    service = FlakyService(seed=3)
    budget = gochan.Limiter(50, burst=5)  # all attempts of all threads share it

    def paced_read(key: str) -> str:
        budget.wait()
        return service.get(key)

    results = []

    def client(n: int) -> None:
        for i in range(5):
            results.append(gochan.retry(paced_read, f"k{n}-{i}", attempts=20,
                                        backoff=gochan.Backoff(initial=0.001)))

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    print(f"3. {len(results)} reads, {service.calls} attempts in {elapsed:.2f} s "
          f"({service.calls / elapsed:.0f} attempts/s, budget 50/s)")
    assert len(results) == 20
    assert service.calls <= 5 + 50 * elapsed + 1  # never above the budget


if __name__ == "__main__":
    flaky_reads()
    final_failures()
    retry_budget()
