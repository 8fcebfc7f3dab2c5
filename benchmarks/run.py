"""Run the gochan benchmarks side by side with their peers and write the results table.

    python3 benchmarks/run.py                 # every row, full size (a few minutes)
    python3 benchmarks/run.py --quick         # smaller sizes, fewer rounds
    python3 benchmarks/run.py --only spsc     # rows whose name contains "spsc" (repeatable)
    python3 benchmarks/run.py --list          # row names
    python3 benchmarks/run.py --only peers    # only the table against other libraries
    python3 benchmarks/run.py --hogs 1        # with a CPU-bound process running alongside

Two tables: every row against its standard-library peer and DESIGN.md's target, then gochan
against other libraries (queue / concurrent.futures, janus, pygolang; bench_peers.py). Prints
them and writes them to benchmarks/results.md, with every raw sample in benchmarks/results.json;
a complete run (no --only, --quick, --no-peers, --cpus, --hogs, no ERROR) also writes the plots
into docs/images/bench/ and refreshes the tables in README.md and docs/performance.md
(publish.py). --no-save writes nothing.
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
from harness import (
    Options,
    PeerResult,
    Result,
    markdown_table,
    peer_markdown_table,
    run_benchmark,
)

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

# gochan against other libraries (queue / concurrent.futures, janus, pygolang): a second table.
PEER_MODULE = "bench_peers"


def load_peer_rows() -> list:
    if not os.path.exists(os.path.join(BENCH_DIR, PEER_MODULE + ".py")):
        return []
    return list(importlib.import_module(PEER_MODULE).PEER_ROWS)


PEER_ROWS = load_peer_rows()

FULL_ROUNDS = 11
QUICK_ROUNDS = 7


def select_benchmarks(patterns: list[str] | None, benchmarks: list | None = None) -> list:
    """The rows whose name contains one of `patterns` (or matches it as a glob); all if None."""
    benchmarks = BENCHMARKS if benchmarks is None else benchmarks
    if not patterns:
        return list(benchmarks)
    chosen = [b for b in benchmarks if _matches(b.name, patterns)]
    if not chosen:
        names = ", ".join(b.name for b in benchmarks)
        raise SystemExit(f"no benchmark matches {patterns}; names: {names}")
    return chosen


def _matches(name: str, patterns: list[str]) -> bool:
    return any(p in name or fnmatch.fnmatchcase(name, p) for p in patterns)


def select_rows(patterns: list[str] | None, peers: bool = True) -> tuple[list, list]:
    """(rows of the main table, rows of the peer table) matching `patterns`; all if None."""
    peer_rows = PEER_ROWS if peers else []
    if not patterns:
        return list(BENCHMARKS), list(peer_rows)
    main = [b for b in BENCHMARKS if _matches(b.name, patterns)]
    others = [b for b in peer_rows if _matches(b.name, patterns)]
    if not main and not others:
        names = ", ".join(b.name for b in BENCHMARKS + peer_rows)
        raise SystemExit(f"no benchmark matches {patterns}; names: {names}")
    return main, others


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


def run_peers(rows: list, opts: Options, *, echo=print) -> list[PeerResult]:
    results = []
    for row in rows:
        echo(f"  {row.name:<18} ...", end="", flush=True)
        result = row.run(opts)
        cells = ", ".join(f"{c.library} {c.text}" for c in result.cells)
        echo(f" {result.error or cells} [{result.seconds:.1f} s]")
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


def render_markdown(results: list[Result], env: dict, peers: list[PeerResult] = ()) -> str:
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
    ]
    if results:
        lines += ["", markdown_table(results)]
        notes = [f"- `{r.name}`: {note}" for r in results for note in r.notes]
        notes += [f"- `{r.name}`: {r.error}" for r in results if r.error]
        if notes:
            lines += ["", *notes]
    if peers:
        lines += ["", render_peers(peers)]
    return "\n".join(lines) + "\n"


def render_peers(peers: list[PeerResult]) -> str:
    """The peer table, what each side ran, and any error; the cells are gochan's speed-ups."""
    lines = [
        "## Against other libraries",
        "",
        "Each cell: how many times gochan's time the library took per operation (above 1x "
        "gochan is faster), then its own time.",
        "",
        peer_markdown_table(peers),
        "",
    ]
    for r in peers:
        sides = [f"gochan {r.gochan_how}"]
        for c in r.cells:
            spread = ""
            if c.speedup_range:
                spread = f", rounds {c.speedup_range[0]:.2f}-{c.speedup_range[1]:.2f}"
            sides.append(f"{c.library} {c.how}{spread}")
        lines.append(f"- `{r.name}` ({r.size:,} per sample): " + "; ".join(sides))
        lines += [f"  - ERROR {e}" for e in r.errors]
    return "\n".join(lines)


def save(
    results: list[Result], env: dict, markdown: str, peers: list[PeerResult] = ()
) -> None:
    with open(os.path.join(BENCH_DIR, "results.md"), "w") as f:
        f.write(markdown)
    with open(os.path.join(BENCH_DIR, "results.json"), "w") as f:
        data = {
            "environment": env,
            "results": [r.as_json() for r in results],
            "peers": [r.as_json() for r in peers],
        }
        json.dump(data, f, indent=2)
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
    parser.add_argument(
        "--no-peers", action="store_true", help="leave out the table against other libraries"
    )
    parser.add_argument(
        "--no-save",
        action="store_true",
        help="do not write results.md/.json, the plots, or the tables in README.md and docs/",
    )
    args = parser.parse_args(argv)

    if args.list:
        for bench in BENCHMARKS:
            print(f"{bench.name:<18} {bench.workload} vs {bench.peer}")
        for row in PEER_ROWS:
            libraries = ", ".join(p.library for p in row.peers if p.variant is not None)
            print(f"{row.name:<18} {row.workload} vs {libraries}")
        return 0
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    opts = Options(quick=args.quick, rounds=rounds)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    benchmarks, peer_rows = select_rows(args.only, peers=not args.no_peers)

    start = time.perf_counter()
    print(f"gochan benchmarks ({'quick' if opts.quick else 'full'}, {rounds} rounds), "
          f"gochan from {getattr(gochan, '__file__', '?')}")
    with cpu_hogs(args.hogs):
        results = run_all(benchmarks, opts)
        if peer_rows:
            print("against other libraries (gochan's speed-up over each):")
        peers = run_peers(peer_rows, opts)
    env = environment(opts)
    env["cpu_hogs"] = args.hogs
    env["peer_versions"] = peer_versions()
    env["total_seconds"] = round(time.perf_counter() - start, 1)
    markdown = render_markdown(results, env, peers)
    print()
    print(markdown)
    print(f"total {env['total_seconds']} s")
    failed = any(r.verdict == "ERROR" for r in results) or any(r.errors for r in peers)
    if not args.no_save:
        save(results, env, markdown, peers)
        print(f"wrote {os.path.join(BENCH_DIR, 'results.md')} and results.json")
        # The published figures come from complete, undisturbed runs only.
        partial = args.only or args.quick or args.no_peers or args.cpus or args.hogs
        if partial or failed:
            why = "a row failed" if failed else "a partial or diagnostic run"
            print(f"plots and the tables in README.md and docs/ left as they were ({why})")
        else:
            import publish  # matplotlib is imported only here, after the timing

            publish.publish(results, peers, env)
    return 1 if failed else 0


def peer_versions() -> dict:
    """The installed versions of the peer libraries (None for one not installed)."""
    from importlib import metadata

    found = {}
    for dist in ("janus", "pygolang"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


if __name__ == "__main__":
    sys.exit(main())
