"""A worker pool, with `gochan.Pool` and by hand: a few goroutines sharing one jobs channel.

    python docs/examples/worker_pool.py

Both run at most WORKERS jobs at once and hand back every result. `Pool` takes three lines
(`submit()` for one job, `map()` for many). By hand: WORKERS goroutines iterate over one jobs
channel (each job goes to exactly one of them) and send results down a second channel; the
feeder closes the first when it has sent everything, then the second once a WaitGroup says that
the last worker has returned.
"""

import gochan

WORKERS = 4
IMAGES = list(range(40))


class Gauge:
    """Counts the jobs running now, and remembers the most that ever ran at once."""

    def __init__(self) -> None:
        self._lock = gochan.Mutex()
        self.running = self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.running -= 1


def resize(image: int, gauge: Gauge) -> str:
    with gauge:
        gochan.sleep(0.002)  # the slow part
        return f"thumb-{image}"


def with_pool(gauge: Gauge) -> list[str]:
    with gochan.Pool(WORKERS) as pool:  # on exit: close the pool and wait for its jobs
        first = pool.submit(resize, IMAGES[0], gauge)
        rest = list(pool.map(lambda image: resize(image, gauge), IMAGES[1:]))  # in input order
        return [first.join(timeout=5), *rest]


def by_hand(gauge: Gauge) -> list[str]:
    jobs: gochan.Chan[int] = gochan.Chan()
    results: gochan.Chan[tuple[int, str]] = gochan.Chan(WORKERS)

    def worker(inbox: gochan.RecvChan[int], out: gochan.SendChan[tuple[int, str]]) -> None:
        for image in inbox:  # until the feeder closes `jobs`
            out.send((image, resize(image, gauge)))

    def feed_then_close() -> None:
        jobs.send_many(IMAGES)
        jobs.close()  # the workers' loops end once they have taken every image
        wg.wait()  # every worker has returned: nobody will send to `results` again
        results.close()

    wg = gochan.WaitGroup()
    for _ in range(WORKERS):
        wg.go(worker, jobs.recv_only(), results.send_only())
    gochan.go(feed_then_close)

    thumbs = dict(results)  # collects until `results` is closed
    return [thumbs[image] for image in IMAGES]


def main() -> None:
    expected = [f"thumb-{image}" for image in IMAGES]
    for name, run in (("Pool", with_pool), ("by hand", by_hand)):
        gauge = Gauge()
        thumbs = run(gauge)
        print(f"{name}: {len(thumbs)} thumbnails, at most {gauge.peak} jobs at once")
        assert thumbs == expected
        assert 1 <= gauge.peak <= WORKERS and gauge.running == 0


if __name__ == "__main__":
    main()
