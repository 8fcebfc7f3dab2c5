"""Side-by-side benchmark harness: gochan against its standard-library peers in one process.

A benchmark is a pair of variants (gochan, peer) run interleaved in the same process, round after
round (gochan, peer, peer, gochan, ...), so that whatever the noisy machine does at a given moment
falls on both. Each side's figure is the median over the rounds; the verdict compares the ratio of
the two medians with the target from DESIGN.md. Memory is measured in fresh subprocesses (one per
measurement), so that neither side reuses memory the other freed. A PeerRow runs gochan and
several other libraries the same way, one table cell per library (bench_peers.py). Standard
library only: the peers are imported by the rows that time them.
"""

from __future__ import annotations

import gc
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from itertools import repeat
from typing import Callable

UNROLL = 10
"""Copies of the statement per loop iteration in `loop_timer`, so the loop costs ~1/10 per op."""

HANG_SECONDS = 120.0
"""A threaded sample that has not finished after this long is reported as hung."""


NOISY_SPREAD = 2.0
"""A row whose per-round ratios span more than this factor gets a note (and its best-case ratio)."""


class BenchmarkError(Exception):
    """A variant failed, hung, or moved the wrong number of items; the row is reported as ERROR."""


# ---------------------------------------------------------------------------------------------
# Targets: how a pair of figures becomes a ratio and a verdict.


@dataclass(frozen=True)
class AtMostTimeRatio:
    """gochan's time over the peer's must be at most `limit` (e.g. "<= 1.2x its time")."""

    limit: float

    @property
    def text(self) -> str:
        return f"<= {self.limit:g}x its time"

    def ratio(self, gochan: float, peer: float) -> float:
        return gochan / peer

    def passes(self, ratio: float) -> bool:
        return ratio <= self.limit

    def describe(self, ratio: float) -> str:
        return f"time ratio {ratio:.2f}x"


@dataclass(frozen=True)
class AtLeastFaster:
    """The peer's time divided by gochan's must be at least `factor` ("gochan is 5.00x faster")."""

    factor: float

    @property
    def text(self) -> str:
        return "no slower" if self.factor == 1 else f">= {self.factor:g}x faster"

    def ratio(self, gochan: float, peer: float) -> float:
        return peer / gochan

    def passes(self, ratio: float) -> bool:
        return ratio >= self.factor

    def describe(self, ratio: float) -> str:
        return f"gochan {ratio:.2f}x faster"


@dataclass(frozen=True)
class AtLeastSmaller:
    """The peer's size divided by gochan's must be at least `factor` ("gochan is 4.00x smaller")."""

    factor: float

    @property
    def text(self) -> str:
        return f">= {self.factor:g}x smaller"

    def ratio(self, gochan: float, peer: float) -> float:
        return peer / gochan

    def passes(self, ratio: float) -> bool:
        return ratio >= self.factor

    def describe(self, ratio: float) -> str:
        return f"gochan {ratio:.2f}x smaller"


Target = AtMostTimeRatio | AtLeastFaster | AtLeastSmaller


# ---------------------------------------------------------------------------------------------
# Results.


@dataclass
class Result:
    """One table row: the two medians, their ratio, the target and the verdict, plus raw samples."""

    name: str
    workload: str
    peer: str
    unit: str
    target: str
    kind: str = "time"
    gochan: float | None = None
    peer_value: float | None = None
    ratio: float | None = None
    ratio_text: str = ""
    ratio_range: tuple[float, float] | None = None
    verdict: str = "ERROR"
    error: str | None = None
    size: int = 0
    rounds: int = 0
    seconds: float = 0.0
    samples: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "workload": self.workload,
            "peer": self.peer,
            "kind": self.kind,
            "unit": self.unit,
            "gochan": self.gochan,
            "peer_value": self.peer_value,
            "ratio": self.ratio,
            "ratio_text": self.ratio_text,
            "ratio_range": list(self.ratio_range) if self.ratio_range else None,
            "target": self.target,
            "verdict": self.verdict,
            "error": self.error,
            "size": self.size,
            "rounds": self.rounds,
            "seconds": round(self.seconds, 3),
            "samples": self.samples,
            "notes": self.notes,
        }


def format_value(value: float | None, kind: str, unit: str) -> str:
    """A per-op time in ns/us/ms, or a size in bytes, for the table."""
    if value is None:
        return "-"
    if kind == "memory":
        return f"{value:,.0f} B/{unit}"
    ns = value * 1e9
    if ns < 1_000:
        return f"{ns:.1f} ns/{unit}"
    if ns < 1_000_000:
        return f"{ns / 1e3:.2f} us/{unit}"
    return f"{ns / 1e6:.2f} ms/{unit}"


TABLE_HEADER = (
    "| workload | peer | gochan | peer | ratio | target | verdict |\n"
    "|---|---|---|---|---|---|---|"
)


def markdown_table(results: list[Result]) -> str:
    lines = [TABLE_HEADER]
    for r in results:
        ratio = r.ratio_text
        if r.ratio_range:
            lo, hi = r.ratio_range
            ratio += f" (rounds {lo:.2f}-{hi:.2f})"
        if r.error:
            ratio = ratio or r.error.replace("|", "/")
        gochan_cell = format_value(r.gochan, r.kind, r.unit)
        peer_cell = format_value(r.peer_value, r.kind, r.unit)
        lines.append(
            f"| {r.workload} | {r.peer} | {gochan_cell} | {peer_cell} | {ratio} "
            f"| {r.target} | {r.verdict} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Timing primitives used by the variants.


def loop_timer(stmt: str, **names) -> Callable[[int], float]:
    """Compile `stmt` into a timing loop; the returned function runs it n times, returns seconds.

    The statement is repeated UNROLL times per iteration (n is rounded up to a multiple), and
    `names` become fast locals of the loop, as timeit's setup would make them.
    """
    params = ", ".join(["_it", "_clock", *names])
    body = textwrap.indent(textwrap.dedent(stmt).strip() + "\n", " " * 8) * UNROLL
    source = (
        f"def _loop({params}):\n"
        f"    _t0 = _clock()\n"
        f"    for _ in _it:\n"
        f"{body}"
        f"    return _clock() - _t0\n"
    )
    namespace: dict = {}
    exec(compile(source, f"<loop {stmt.strip()[:40]!r}>", "exec"), namespace)
    loop = namespace["_loop"]
    values = list(names.values())

    def run(n: int) -> float:
        return loop(repeat(None, -(-n // UNROLL)), time.perf_counter, *values)

    return run


def time_threads(
    producers: list[Callable[[], None]],
    consumers: list[Callable[[], None]],
    *,
    between: Callable[[], None] | None = None,
) -> float:
    """Run producers and consumers on threads released together; seconds until all have returned.

    Every thread waits on one barrier with the main thread, which starts the clock when the
    barrier opens, joins the producers, calls `between` (e.g. to close a channel or put
    sentinels), then joins the consumers. Threads are daemons so that a hung variant cannot keep
    the process alive; it is reported as a BenchmarkError instead.
    """
    barrier = threading.Barrier(len(producers) + len(consumers) + 1)
    errors: list[BaseException] = []

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                barrier.wait()
                fn()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        return body

    threads_p = [threading.Thread(target=wrap(f), daemon=True) for f in producers]
    threads_c = [threading.Thread(target=wrap(f), daemon=True) for f in consumers]
    for t in threads_c + threads_p:
        t.start()
    deadline = time.monotonic() + HANG_SECONDS
    barrier.wait()
    t0 = time.perf_counter()
    _join_all(threads_p, deadline, errors)
    if between is not None:
        between()
    _join_all(threads_c, deadline, errors)
    elapsed = time.perf_counter() - t0
    if errors:
        raise BenchmarkError(f"{type(errors[0]).__name__}: {errors[0]}") from errors[0]
    return elapsed


def _join_all(threads: list[threading.Thread], deadline: float, errors: list) -> None:
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            detail = f" after {type(errors[0]).__name__}: {errors[0]}" if errors else ""
            raise BenchmarkError(f"hung for {HANG_SECONDS:g} s{detail}")


def expect_count(got: int, want: int) -> None:
    if got != want:
        raise BenchmarkError(f"moved {got} items, expected {want}")


# ---------------------------------------------------------------------------------------------
# Benchmark kinds.


@dataclass(frozen=True)
class Size:
    """Operations per sample in a full run and in a --quick run."""

    full: int
    quick: int

    def pick(self, quick: bool) -> int:
        return self.quick if quick else self.full


@dataclass(frozen=True)
class Options:
    quick: bool = False
    rounds: int = 11


@dataclass(frozen=True)
class TimedPair:
    """A timed pair: each variant takes n and returns the seconds its n operations took."""

    name: str
    workload: str
    peer: str
    gochan: Callable[[int], float]
    against: Callable[[int], float]
    size: Size
    target: Target
    unit: str = "op"
    requires: tuple[str, ...] = ()

    def run(self, opts: Options) -> Result:
        result = _new_result(self, "time")
        n = self.size.pick(opts.quick)
        result.size = n
        warm = max(1, n // 10)
        self.gochan(warm)
        self.against(warm)
        g_samples: list[float] = []
        p_samples: list[float] = []
        for i in range(opts.rounds):
            order = ((self.gochan, g_samples), (self.against, p_samples))
            for fn, samples in order if i % 2 == 0 else reversed(order):
                samples.append(_sample(fn, n) / n)
        result.rounds = opts.rounds
        result.samples = {"gochan": g_samples, "peer": p_samples}
        _judge(result, self.target, statistics.median(g_samples), statistics.median(p_samples))
        per_round = [self.target.ratio(g, p) for g, p in zip(g_samples, p_samples)]
        lo, hi = min(per_round), max(per_round)
        result.ratio_range = (lo, hi)
        best = self.target.ratio(min(g_samples), min(p_samples))
        result.samples["ratio_of_minimums"] = best
        if hi > NOISY_SPREAD * lo:
            result.notes.append(
                f"noisy: per-round ratios span {lo:.2f}-{hi:.2f}; the fastest samples "
                f"(gochan {format_value(min(g_samples), 'time', self.unit)}, peer "
                f"{format_value(min(p_samples), 'time', self.unit)}) give "
                f"{self.target.describe(best)}; rerun with more --rounds"
            )
        return result


def _sample(fn: Callable[[int], float], n: int) -> float:
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        return fn(n)
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class MemoryPair:
    """Bytes per idle object, each side created `count` times and kept alive, in a subprocess.

    Two methods: tracemalloc (sees everything allocated through Python's allocators, exactly)
    and the resident-set delta from /proc/self/statm (also sees plain malloc, but in pages).
    The peer's figure is its tracemalloc one (pure Python: tracemalloc sees all of it); gochan's
    is the larger of its two, so memory that its C core mallocs cannot hide.
    """

    name: str
    workload: str
    peer: str
    gochan: str  # "module:callable" making one gochan object
    against: str  # "module:callable" making one peer object
    tracemalloc_count: Size
    rss_count: Size
    target: Target
    unit: str = "object"
    rounds: Size = Size(full=3, quick=1)
    requires: tuple[str, ...] = ()

    def run(self, opts: Options) -> Result:
        result = _new_result(self, "memory")
        tm_n = self.tracemalloc_count.pick(opts.quick)
        rss_n = self.rss_count.pick(opts.quick)
        result.size = rss_n
        probes = {
            ("gochan", "tracemalloc"): (self.gochan, tm_n),
            ("peer", "tracemalloc"): (self.against, tm_n),
            ("gochan", "rss"): (self.gochan, rss_n),
            ("peer", "rss"): (self.against, rss_n),
        }
        samples: dict[str, list[float]] = {f"{side}_{m}": [] for side, m in probes}
        rounds = self.rounds.pick(opts.quick)
        for _ in range(rounds):
            for (side, method), (factory, count) in probes.items():
                samples[f"{side}_{method}"].append(_memory_probe(factory, method, count))
        med = {key: statistics.median(values) for key, values in samples.items()}
        gochan_bytes = max(med["gochan_tracemalloc"], med["gochan_rss"])
        result.rounds = rounds
        result.samples = samples
        result.notes.append(
            f"tracemalloc ({tm_n:,} objects): gochan {med['gochan_tracemalloc']:,.0f} B, "
            f"peer {med['peer_tracemalloc']:,.0f} B; RSS delta ({rss_n:,} objects): "
            f"gochan {med['gochan_rss']:,.0f} B, peer {med['peer_rss']:,.0f} B; verdict uses "
            f"gochan's larger figure against the peer's tracemalloc figure"
        )
        _judge(result, self.target, gochan_bytes, med["peer_tracemalloc"])
        return result


def _memory_probe(factory: str, method: str, count: int) -> float:
    """Bytes per object made by `factory`, measured by `method` in a fresh interpreter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--probe-memory", factory, method, str(count)],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_SECONDS,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchmarkError(f"memory probe {factory} failed: {tail}")
    return json.loads(proc.stdout)["bytes_per_object"]


def _probe_memory_main(factory_spec: str, method: str, count: int) -> None:
    module_name, _, attr = factory_spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    keep = [None] * count
    factory()  # first-call allocations (type caches, lazily built state) are not per object
    gc.collect()
    gc.disable()
    if method == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            keep[i] = factory()
        after = tracemalloc.get_traced_memory()[0]
    elif method == "rss":
        before = _rss_bytes()
        for i in range(count):
            keep[i] = factory()
        after = _rss_bytes()
    else:
        raise SystemExit(f"unknown method {method!r}")
    print(json.dumps({"bytes_per_object": (after - before) / count, "count": len(keep)}))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _new_result(bench: TimedPair | MemoryPair, kind: str) -> Result:
    return Result(
        name=bench.name,
        workload=bench.workload,
        peer=bench.peer,
        unit=bench.unit,
        target=bench.target.text,
        kind=kind,
    )


def _judge(result: Result, target: Target, gochan: float, peer: float) -> None:
    result.gochan = gochan
    result.peer_value = peer
    if gochan <= 0 or peer <= 0 or not (math.isfinite(gochan) and math.isfinite(peer)):
        result.verdict = "ERROR"
        result.error = f"unusable figures (gochan {gochan!r}, peer {peer!r})"
        return
    result.ratio = target.ratio(gochan, peer)
    result.ratio_text = target.describe(result.ratio)
    result.verdict = "PASS" if target.passes(result.ratio) else "MISS"


Benchmark = TimedPair | MemoryPair


def run_benchmark(bench: Benchmark, opts: Options, missing: Callable[[str], bool]) -> Result:
    """Run one benchmark; a failure or a missing gochan feature becomes an ERROR/SKIP row."""
    absent = [feature for feature in bench.requires if missing(feature)]
    start = time.perf_counter()
    if absent:
        result = _new_result(bench, "memory" if isinstance(bench, MemoryPair) else "time")
        result.verdict = "SKIP"
        result.error = "gochan lacks " + ", ".join(absent)
        return result
    try:
        result = bench.run(opts)
    except Exception as exc:  # one broken row must not hide the others
        result = _new_result(bench, "memory" if isinstance(bench, MemoryPair) else "time")
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result


# ---------------------------------------------------------------------------------------------
# One against many: gochan and other libraries on one workload (bench_peers.py).


@dataclass(frozen=True)
class Peer:
    """One library's side of a PeerRow: its variant, or why it has none.

    `library` names the table column; `how` says what the variant uses ("`queue.Queue(64)`").
    A peer with no variant is shown as `absent` ("no select", "not installed") and not timed.
    """

    library: str
    how: str
    variant: Callable[[int], float] | None = None
    absent: str = ""


@dataclass
class PeerCell:
    """One library's figures in a PeerRow: its median, and gochan's speed-up over it."""

    library: str
    how: str
    value: float | None = None
    speedup: float | None = None
    speedup_range: tuple[float, float] | None = None
    absent: str = ""
    error: str | None = None
    samples: list[float] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The table cell: "12.3x" (gochan that many times faster), or why there is no figure."""
        if self.error:
            return "ERROR"
        if self.speedup is None:
            return self.absent or "-"
        return f"{self.speedup:.2f}x" if self.speedup < 10 else f"{self.speedup:.0f}x"

    def as_json(self) -> dict:
        return {
            "library": self.library,
            "how": self.how,
            "value": self.value,
            "speedup": self.speedup,
            "speedup_range": list(self.speedup_range) if self.speedup_range else None,
            "absent": self.absent,
            "error": self.error,
            "samples": self.samples,
        }


@dataclass
class PeerResult:
    """One row of the peer table: gochan's median and a PeerCell per library."""

    name: str
    workload: str
    unit: str
    gochan_how: str
    gochan: float | None = None
    cells: list[PeerCell] = field(default_factory=list)
    error: str | None = None
    size: int = 0
    rounds: int = 0
    seconds: float = 0.0
    samples: list[float] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        found = [self.error] if self.error else []
        return found + [f"{c.library}: {c.error}" for c in self.cells if c.error]

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "workload": self.workload,
            "unit": self.unit,
            "gochan_how": self.gochan_how,
            "gochan": self.gochan,
            "cells": [c.as_json() for c in self.cells],
            "error": self.error,
            "size": self.size,
            "rounds": self.rounds,
            "seconds": round(self.seconds, 3),
            "samples": self.samples,
        }


@dataclass(frozen=True)
class PeerRow:
    """gochan against several libraries on one workload, all timed in the same rounds.

    Each round runs every variant once, starting one place further along the list each time
    (gochan, A, B; A, B, gochan; B, gochan, A; ...), so no side always follows the same other.
    The figures are the medians per operation; a peer's cell is its median over gochan's (the
    speed-up: above 1 gochan is faster), with the range of the per-round ratios. A peer that
    fails is reported as an ERROR in its cell and left out of the later rounds; the others go on.
    """

    name: str
    workload: str
    gochan_how: str
    gochan: Callable[[int], float]
    peers: tuple[Peer, ...]
    size: Size
    unit: str = "op"

    def run(self, opts: Options) -> PeerResult:
        start = time.perf_counter()
        result = PeerResult(self.name, self.workload, self.unit, self.gochan_how)
        result.cells = [PeerCell(p.library, p.how, absent=p.absent) for p in self.peers]
        n = self.size.pick(opts.quick)
        result.size = n
        # (cell, variant, samples); gochan's cell is None.
        sides = [(None, self.gochan, result.samples)]
        sides += [
            (cell, peer.variant, cell.samples)
            for cell, peer in zip(result.cells, self.peers)
            if peer.variant is not None
        ]
        try:
            for cell, fn, _ in sides:
                self._guarded(cell, fn, max(1, n // 10))
            for i in range(opts.rounds):
                live = [side for side in sides if side[0] is None or side[0].error is None]
                k = i % len(live)
                for cell, fn, samples in live[k:] + live[:k]:
                    seconds = self._guarded(cell, fn, n)
                    if seconds is not None:
                        samples.append(seconds / n)
        except Exception as exc:  # gochan's own variant failed: the whole row is an ERROR
            result.error = f"{type(exc).__name__}: {exc}"
        else:
            result.rounds = opts.rounds
            result.gochan = statistics.median(result.samples)
            for cell in result.cells:
                if cell.error is None and cell.samples:
                    cell.value = statistics.median(cell.samples)
                    cell.speedup = cell.value / result.gochan
                    ratios = [p / g for g, p in zip(result.samples, cell.samples)]
                    cell.speedup_range = (min(ratios), max(ratios))
        result.seconds = time.perf_counter() - start
        return result

    @staticmethod
    def _guarded(cell: PeerCell | None, fn: Callable[[int], float], n: int) -> float | None:
        """One sample; a peer's failure is recorded in its cell, gochan's is raised."""
        if cell is None:
            return _sample(fn, n)
        try:
            return _sample(fn, n)
        except Exception as exc:
            cell.error = f"{type(exc).__name__}: {exc}"
            return None


PEER_TABLE_LIBRARIES = ("stdlib", "janus", "pygolang")
"""The peer table's columns, in order; a PeerRow's peers name one of these each."""

PEER_TABLE_TITLES = {"stdlib": "queue / concurrent.futures"}


def peer_markdown_table(results: list[PeerResult], *, times: bool = True) -> str:
    """The peer table: one row per workload, gochan's time, then each library's speed-up.

    A cell reads "12x (1.50 us/item)": the library took 12 times gochan's time per operation,
    1.50 us. With times=False only the speed-ups are shown (the README's short table).
    """
    names = [PEER_TABLE_TITLES.get(lib, lib) for lib in PEER_TABLE_LIBRARIES]
    header = ["workload", "gochan", *names] if times else ["workload", *names]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for r in results:
        cells = {c.library: c for c in r.cells}
        row = [r.workload]
        if times:
            row.append("ERROR" if r.error else format_value(r.gochan, "time", r.unit))
        for lib in PEER_TABLE_LIBRARIES:
            cell = cells.get(lib)
            if cell is None or r.error:
                row.append("-")
            elif times and cell.value is not None:
                row.append(f"{cell.text} ({format_value(cell.value, 'time', r.unit)})")
            else:
                row.append(cell.text)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__" and sys.argv[1:2] == ["--probe-memory"]:
    _probe_memory_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
