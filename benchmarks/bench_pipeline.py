"""Worker pool and pipeline benchmarks: gochan.Pool and gochan.generate/stage against the
standard library's ThreadPoolExecutor and a queue.Queue pipeline, side by side.

- `pool_map`: `Pool(4).map` over no-op tasks vs `ThreadPoolExecutor(4).map` (DESIGN.md and the
  patterns issue: >= 20x faster).
- `pipeline`: `generate` -> `stage(workers=2)` -> a consumer loop, vs the same three steps built
  from threads and two `queue.Queue(1024)`s with sentinels (>= 5x faster).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench_channels import CAPACITY, gochan
from harness import AtLeastFaster, Size, TimedPair, expect_count

WORKERS = 4
STAGE_WORKERS = 2


def noop(x):
    return x


# ---------------------------------------------------------------------------------------------
# a. Pool.map over no-op tasks


def pool_map_gochan(n: int) -> float:
    items = range(n)
    with gochan.Pool(WORKERS) as pool:
        start = time.perf_counter()
        count = sum(1 for _ in pool.map(noop, items))
        elapsed = time.perf_counter() - start
    expect_count(count, n)
    return elapsed


def pool_map_executor(n: int) -> float:
    items = range(n)
    with ThreadPoolExecutor(WORKERS) as pool:
        start = time.perf_counter()
        count = sum(1 for _ in pool.map(noop, items))
        elapsed = time.perf_counter() - start
    expect_count(count, n)
    return elapsed


# ---------------------------------------------------------------------------------------------
# b. a three-step pipeline: a source, a stage of two workers adding one, a consumer


def pipeline_gochan(n: int) -> float:
    start = time.perf_counter()
    src = gochan.generate(range(n), cap=CAPACITY)
    out = gochan.stage(lambda x: x + 1, src, workers=STAGE_WORKERS, cap=CAPACITY)
    count = 0
    for _ in out:
        count += 1
    elapsed = time.perf_counter() - start
    expect_count(count, n)
    return elapsed


def pipeline_queue(n: int) -> float:
    stop = object()
    q1: queue.Queue = queue.Queue(CAPACITY)
    q2: queue.Queue = queue.Queue(CAPACITY)

    def source() -> None:
        put = q1.put
        for i in range(n):
            put(i)
        for _ in range(STAGE_WORKERS):
            put(stop)

    def worker() -> None:
        get, put = q1.get, q2.put
        while True:
            x = get()
            if x is stop:
                put(stop)
                return
            put(x + 1)

    threads = [threading.Thread(target=source, daemon=True)]
    threads += [threading.Thread(target=worker, daemon=True) for _ in range(STAGE_WORKERS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    count = stops = 0
    get = q2.get
    while stops < STAGE_WORKERS:
        if get() is stop:
            stops += 1
        else:
            count += 1
    elapsed = time.perf_counter() - start
    for t in threads:
        t.join()
    expect_count(count, n)
    return elapsed


BENCHMARKS = [
    TimedPair(
        "pool_map",
        "`Pool(4).map` over no-op tasks",
        "`ThreadPoolExecutor(4).map`",
        gochan=pool_map_gochan,
        against=pool_map_executor,
        size=Size(full=50_000, quick=20_000),
        target=AtLeastFaster(20),
        unit="task",
        requires=("Pool",),
    ),
    TimedPair(
        "pipeline",
        "`generate` -> `stage(workers=2)` -> consumer, caps 1024",
        "threads and two `queue.Queue(1024)`",
        gochan=pipeline_gochan,
        against=pipeline_queue,
        size=Size(full=200_000, quick=50_000),
        target=AtLeastFaster(5),
        unit="item",
        requires=("stage",),
    ),
]
