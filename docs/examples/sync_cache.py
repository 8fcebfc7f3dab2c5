"""A cache shared by many goroutines: read-mostly, filled once per key, with a lazy setting.

An `RWMutex` lets lookups share the cache while a store has it alone; `once_value` loads the
settings the first time they are needed, whichever goroutine needs them first; a `Mutex` per key
(kept in a `Map`) makes sure a missing value is computed by one goroutine while the others asking
for it wait. Run it:

    python docs/examples/sync_cache.py
"""

from collections.abc import Callable

import gochan

computations: gochan.Map[int, int] = gochan.Map()


@gochan.once_value
def settings() -> dict[str, int]:
    print("loading settings (once)")
    return {"scale": 10}


class Cache:
    def __init__(self) -> None:
        self._rw = gochan.RWMutex()
        self._data: dict[int, int] = {}
        self._filling: gochan.Map[int, gochan.Mutex] = gochan.Map()

    def get(self, key: int, compute: Callable[[int], int]) -> int:
        with self._rw.read():
            if key in self._data:
                return self._data[key]
        lock, _ = self._filling.load_or_store(key, gochan.Mutex())
        with lock:  # one goroutine computes; the others wait here, then find the value
            with self._rw.read():
                if key in self._data:
                    return self._data[key]
            value = compute(key)
            with self._rw.write():
                self._data[key] = value
            return value


def expensive(key: int) -> int:
    gochan.sleep(0.01)
    count, _ = computations.load_or_store(key, 0)
    while not computations.compare_and_swap(key, count, count + 1):
        count, _ = computations.load_or_store(key, 0)  # the count now (the key is there)
    return key * settings()["scale"]


def main() -> None:
    cache = Cache()
    results: gochan.Chan[tuple[int, int]] = gochan.Chan(100)
    wg = gochan.WaitGroup()

    def lookup(key: int) -> None:
        results.send((key, cache.get(key, expensive)))

    for i in range(100):
        wg.go(lookup, i % 5)
    wg.wait()
    results.close()
    answers = dict(results)
    print("answers:", answers)
    assert answers == {k: k * 10 for k in range(5)}
    counts: list[int] = []
    computations.range(lambda key, count: counts.append(count))
    print("each key computed", set(counts), "time(s)")
    assert counts == [1] * 5


if __name__ == "__main__":
    main()
