"""Run the gochan benchmarks side by side with their peers and write the results table.

    python3 benchmarks/run.py                 # every row, full size (under a minute)
    python3 benchmarks/run.py --quick         # smaller sizes, fewer rounds
    python3 benchmarks/run.py --only spsc     # rows whose name contains "spsc" (repeatable)
    python3 benchmarks/run.py --list          # row names
    python3 benchmarks/run.py --hogs 1        # with a CPU-bound process running alongside

Prints a markdown table and writes it to benchmarks/results.md, with every raw sample in
benchmarks/results.json (unless --no-save).
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from operator import attrgetter

from bench_channels import BENCH_DIR, gochan
from harness import Options, Result, markdown_table, run_benchmark

# The modules whose BENCHMARKS lists make up the table, in DESIGN.md's order.
BENCH_MODULES = [
    "bench_channels", "bench_select", "bench_timers", "bench_contexts", "bench_sync",
    "bench_pipeline",
    "bench_patterns",
]


def load_benchmarks() -> list:
    """Every row of every module in BENCH_MODULES that exists in this checkout."""
    rows = []
    for name in BENCH_MODULES:
        if os.path.exists(os.path.join(BENCH_DIR, name + ".py")):
            rows.extend(importlib.import_module(name).BENCHMARKS)
    return rows


BENCHMARKS = load_benchmarks()

FULL_ROUNDS = 11
QUICK_ROUNDS = 7


def select_benchmarks(patterns: list[str] | None, benchmarks: list | None = None) -> list:
    """The rows whose name contains one of `patterns` (or matches it as a glob); all if None."""
    benchmarks = BENCHMARKS if benchmarks is None else benchmarks
    if not patterns:
        return list(benchmarks)
    chosen = [
        b
        for b in benchmarks
        if any(p in b.name or fnmatch.fnmatchcase(b.name, p) for p in patterns)
    ]
    if not chosen:
        names = ", ".join(b.name for b in benchmarks)
        raise SystemExit(f"no benchmark matches {patterns}; names: {names}")
    return chosen


def gochan_lacks(feature: str) -> bool:
    """True if `feature` (a dotted attribute path under the gochan module) is missing."""
    try:
        attrgetter(feature)(gochan)
    except AttributeError:
        return True
    return False


def run_all(benchmarks: list, opts: Options, *, echo=print) -> list[Result]:
    results = []
    for bench in benchmarks:
        echo(f"  {bench.name:<18} ...", end="", flush=True)
        result = run_benchmark(bench, opts, gochan_lacks)
        tail = result.ratio_text or result.error or ""
        echo(f" {result.verdict:<5} {tail} [{result.seconds:.1f} s]")
        results.append(result)
    return results


@contextmanager
def cpu_hogs(count: int):
    """Run `count` busy-looping processes for the duration (a diagnostic for oversubscription)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def environment(opts: Options) -> dict:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": load,
        "gochan": getattr(gochan, "__file__", None),
        "gochan_version": getattr(gochan, "__version__", None),
        "mode": "quick" if opts.quick else "full",
        "rounds": opts.rounds,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
    }


def render_markdown(results: list[Result], env: dict) -> str:
    load = env["loadavg"]
    load_text = ", ".join(f"{x:.2f}" for x in load) if load else "n/a"
    hogs = env.get("cpu_hogs")
    hogs_text = f"; {hogs} CPU-bound processes running alongside" if hogs else ""
    lines = [
        "# gochan benchmarks",
        "",
        f"{env['date']} - Python {env['python']} ({env['implementation']}) on "
        f"{env['platform']}, {env['cpus']} CPUs, load average {load_text}.",
        f"Mode: {env['mode']}, {env['rounds']} interleaved rounds per timed row, medians; "
        f"gochan from `{env['gochan']}`; CPU affinity {env['cpu_affinity']}{hogs_text}.",
        "",
        markdown_table(results),
    ]
    notes = [f"- `{r.name}`: {note}" for r in results for note in r.notes]
    notes += [f"- `{r.name}`: {r.error}" for r in results if r.error]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def save(results: list[Result], env: dict, markdown: str) -> None:
    with open(os.path.join(BENCH_DIR, "results.md"), "w") as f:
        f.write(markdown)
    with open(os.path.join(BENCH_DIR, "results.json"), "w") as f:
        json.dump({"environment": env, "results": [r.as_json() for r in results]}, f, indent=2)
        f.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run rows whose name contains NAME or matches it as a glob (repeatable)",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds per timed row")
    parser.add_argument(
        "--cpus",
        metavar="LIST",
        help="pin the process to these CPUs, e.g. 0 or 0,1 (a diagnostic: see README)",
    )
    parser.add_argument(
        "--hogs",
        type=int,
        default=0,
        metavar="N",
        help="keep N CPU-bound processes running meanwhile (a diagnostic: see README)",
    )
    parser.add_argument("--list", action="store_true", help="print the row names and exit")
    parser.add_argument("--no-save", action="store_true", help="do not write results.md/.json")
    args = parser.parse_args(argv)

    if args.list:
        for bench in BENCHMARKS:
            print(f"{bench.name:<18} {bench.workload} vs {bench.peer}")
        return 0
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    opts = Options(quick=args.quick, rounds=rounds)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    benchmarks = select_benchmarks(args.only)

    start = time.perf_counter()
    print(f"gochan benchmarks ({'quick' if opts.quick else 'full'}, {rounds} rounds), "
          f"gochan from {getattr(gochan, '__file__', '?')}")
    with cpu_hogs(args.hogs):
        results = run_all(benchmarks, opts)
    env = environment(opts)
    env["cpu_hogs"] = args.hogs
    env["total_seconds"] = round(time.perf_counter() - start, 1)
    markdown = render_markdown(results, env)
    print()
    print(markdown)
    print(f"total {env['total_seconds']} s")
    if not args.no_save:
        save(results, env, markdown)
        print(f"wrote {os.path.join(BENCH_DIR, 'results.md')} and results.json")
    return 1 if any(r.verdict == "ERROR" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
