"""Rate limiting three ways, with gochan.Limiter.

    python docs/examples/rate_limiting.py

1. Pacing: four crawler threads share one limiter and together fetch at most 40 pages a second
   (bursts of 4), however many threads there are. `wait()` spaces them out.
2. Load shedding: a server takes what its limiter allows and turns the rest away at once with
   `allow()`, one limiter per client so that a noisy client cannot starve the others.
3. Booking ahead: a job scheduler `reserve()`s capacity for batches and, when a batch would have
   to wait too long, cancels the booking and defers the batch instead.
"""

import threading
import time

import gochan


def crawl() -> None:
    limiter = gochan.Limiter(40, burst=4)
    pages: gochan.Chan[str] = gochan.Chan(100)
    pages.send_many(f"https://example.com/page/{i}" for i in range(24))
    pages.close()
    fetched = []
    lock = threading.Lock()

    def crawler() -> None:
        for url in pages:
            limiter.wait()  # at most 40 a second across all the crawlers
            with lock:
                fetched.append((time.monotonic(), url))

    start = time.monotonic()
    threads = [threading.Thread(target=crawler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    print(f"1. fetched {len(fetched)} pages in {elapsed:.2f} s "
          f"({len(fetched) / elapsed:.0f} pages/s, limit 40/s after a burst of 4)")
    assert len(fetched) == 24
    assert elapsed >= (24 - 4) / 40 * 0.9  # the burst, then one page every 25 ms


def shed_load() -> None:
    limiters: dict[str, gochan.Limiter] = {}

    def handle(client: str) -> str:
        limiter = limiters.setdefault(client, gochan.Limiter(10, burst=5))
        return "200 OK" if limiter.allow() else "429 Too Many Requests"

    # A noisy client sends 50 requests at once; a quiet one sends 3.
    noisy = [handle("noisy") for _ in range(50)]
    quiet = [handle("quiet") for _ in range(3)]
    print(f"2. noisy client: {noisy.count('200 OK')} served, "
          f"{noisy.count('429 Too Many Requests')} turned away; "
          f"quiet client: {quiet.count('200 OK')} of 3 served")
    assert noisy.count("200 OK") in (5, 6)  # its burst (and perhaps one token refilled)
    assert quiet == ["200 OK"] * 3


def schedule_batches() -> None:
    capacity = gochan.Limiter(100, burst=100)  # 100 rows a second
    ran, deferred = [], []
    for name, rows in [("a", 60), ("b", 30), ("c", 50), ("d", 10)]:
        booking = capacity.reserve(rows)
        if booking.delay() > 0.2:
            booking.cancel()  # give the capacity back for the batches that fit
            deferred.append(name)
            continue
        time.sleep(booking.delay())
        ran.append(name)
    print(f"3. ran batches {ran}, deferred {deferred}")
    assert ran == ["a", "b", "d"] and deferred == ["c"]


if __name__ == "__main__":
    crawl()
    shed_load()
    schedule_batches()
