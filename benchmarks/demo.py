"""gochan in one minute: a threaded pipeline built on channels, then the quick benchmark table.

    python3 benchmarks/demo.py

The pipeline is the shape most gochan programs have: a generator thread sends text records
down a channel, three worker threads parse and square them concurrently, a closer thread closes
the results channel once every worker is done, and the main thread collects. Each stage gets
only the view it needs (`send_only()` / `recv_only()`), every channel is closed by the stage
that owns its sending side, and receivers simply iterate until the channel is closed and
drained. The result is checked against a closed formula; the script exits 1 if it is wrong
(or if a benchmark row breaks), and a watchdog ends it if anything hangs.
"""

from __future__ import annotations

import faulthandler
import sys
import threading
import time

import harness
from bench_channels import gochan
from run import QUICK_ROUNDS, run_all, select_benchmarks
from harness import Options, markdown_table

ITEMS = 50_000
WORKERS = 3
DEMO_ROWS = ["pair", "pingpong", "spsc_simplequeue", "spsc_queue", "nowait", "memory"]
WATCHDOG_SECONDS = 50


def generate(out, count: int) -> None:
    """Send the records "1".."count" (as a file reader would), then close the channel."""
    try:
        for i in range(1, count + 1):
            out.send(str(i))
    finally:
        out.close()


def square(records, out) -> None:
    """Parse each record and send (n, n*n) on until the records channel is closed and drained."""
    for record in records:
        n = int(record)
        out.send((n, n * n))


def close_when_done(workers: list[threading.Thread], out) -> None:
    """Close the results channel once every worker has returned (Go's WaitGroup + close)."""
    try:
        for worker in workers:
            worker.join()
    finally:
        out.close()


def run_pipeline(count: int) -> tuple[int, int, set[int], float]:
    records = gochan.Chan(64)
    results = gochan.Chan(64)
    start = time.perf_counter()
    with records, results:  # a safety net: whatever happens below, both end up closed
        generator = threading.Thread(
            target=generate, args=(records.send_only(), count), name="generate", daemon=True
        )
        workers = [
            threading.Thread(
                target=square,
                args=(records.recv_only(), results.send_only()),
                name=f"square-{i}",
                daemon=True,
            )
            for i in range(WORKERS)
        ]
        closer = threading.Thread(
            target=close_when_done, args=(workers, results.send_only()), name="closer", daemon=True
        )
        for thread in (generator, *workers, closer):
            thread.start()

        received = 0
        total = 0
        seen: set[int] = set()
        for n, n_squared in results.recv_only():
            received += 1
            total += n_squared
            seen.add(n)
        generator.join()
        closer.join()
    return received, total, seen, time.perf_counter() - start


def check_pipeline() -> bool:
    print(
        f"Pipeline: 1 generator -> Chan(64) -> {WORKERS} workers (parse, square) -> Chan(64) -> "
        f"collector, {ITEMS:,} records."
    )
    received, total, seen, elapsed = run_pipeline(ITEMS)
    expected = ITEMS * (ITEMS + 1) * (2 * ITEMS + 1) // 6
    ok = received == ITEMS and seen == set(range(1, ITEMS + 1)) and total == expected
    rate = received / elapsed if elapsed > 0 else float("inf")
    print(
        f"  received {received:,} results in {elapsed * 1e3:.0f} ms ({rate:,.0f} items/s); "
        f"sum of squares {total:,}, expected {expected:,}"
    )
    if ok:
        print("  check: OK (every record squared exactly once, channels closed and drained)")
    else:
        missing = len(set(range(1, ITEMS + 1)) - seen)
        print(f"  check: WRONG ({missing:,} records missing, {received - len(seen):,} duplicated)")
    return ok


def run_benchmarks() -> bool:
    print(f"\nQuick side-by-side benchmarks ({QUICK_ROUNDS} interleaved rounds, medians):")
    harness.HANG_SECONDS = 20.0
    results = run_all(select_benchmarks(DEMO_ROWS), Options(quick=True, rounds=QUICK_ROUNDS))
    print()
    print(markdown_table(results))
    for result in results:
        for note in result.notes:
            print(f"\n{result.name}: {note}")
    print(
        "\nRatios compare medians measured in the same run; PASS/MISS is against DESIGN.md's "
        "targets. Full run: python3 benchmarks/run.py"
    )
    return all(r.verdict != "ERROR" for r in results)


def main() -> int:
    started = time.perf_counter()
    print(f"gochan demo (gochan from {getattr(gochan, '__file__', '?')})\n")
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    try:
        pipeline_ok = check_pipeline()
    finally:
        faulthandler.cancel_dump_traceback_later()
    if not pipeline_ok:
        print("\nFAILED: the pipeline's result is wrong.")
        return 1
    benchmarks_ok = run_benchmarks()
    print(f"\ndone in {time.perf_counter() - started:.1f} s")
    if not benchmarks_ok:
        print("FAILED: a benchmark row raised or hung (see ERROR above).")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
