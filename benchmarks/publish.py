"""What a full `make bench` run publishes: the PNG plots and the tables in README.md and
docs/performance.md, so that the figures a reader sees are the ones the last run measured.

- Plots (matplotlib, Agg backend) go to docs/images/bench/, where the performance page and the
  README link them: `peers.png` (gochan's speed-up over each library, per workload),
  `peer_times.png` (every side's time per operation) and `stdlib.png` (the main table: gochan's
  advantage over its standard-library peer against the DESIGN.md target, per row).
- Tables are written between marker comments, `<!-- bench-NAME:start -->` and
  `<!-- bench-NAME:end -->`: `bench-table` in README.md (the short peer table), `bench-peers`
  and `bench-stdlib` in docs/performance.md. Everything outside the markers is left alone.

matplotlib is the `bench` extra; without it the tables are still written and the plots are
skipped with a message.
"""

from __future__ import annotations

import os
import re
import textwrap

from bench_channels import REPO_ROOT
from harness import (
    PEER_TABLE_LIBRARIES,
    PEER_TABLE_TITLES,
    PeerResult,
    Result,
    markdown_table,
    peer_markdown_table,
)

IMAGES_DIR = os.path.join(REPO_ROOT, "docs", "images", "bench")
README = os.path.join(REPO_ROOT, "README.md")
PERFORMANCE_PAGE = os.path.join(REPO_ROOT, "docs", "performance.md")

COLOURS = {"gochan": "#1b6ca8", "stdlib": "#8c8c8c", "janus": "#d98c1f", "pygolang": "#4f9a4a"}
PASS_COLOUR, MISS_COLOUR = "#4f9a4a", "#d95f3b"


# ---------------------------------------------------------------------------------------------
# Text


def machine_line(env: dict) -> str:
    """One sentence on where and when the figures were measured (no paths, no host names)."""
    load = env.get("loadavg")
    load_text = ", ".join(f"{x:.2f}" for x in load) if load else "n/a"
    versions = env.get("peer_versions") or {}
    peers = ", ".join(f"{name} {v}" for name, v in versions.items() if v)
    return (
        f"Measured by `make bench` on {env['date'][:10]}: CPython {env['python']}, Linux, "
        f"{env['cpus']} vCPUs of a shared VM, load average {load_text} at the end of the run; "
        f"{env['rounds']} interleaved rounds per row, medians"
        + (f"; {peers}" if peers else "")
        + "."
    )


def readme_block(peers: list[PeerResult], env: dict) -> str:
    # Wrapped as the README's own paragraphs are.
    return "\n".join(
        [
            peer_markdown_table(peers, times=False),
            "",
            textwrap.fill(
                "Each cell is gochan's speed-up: the library's time per operation divided by "
                "gochan's, so 3x means gochan took a third of the time and below 1x gochan is "
                "slower. " + machine_line(env),
                78,
            ),
            "",
            "![gochan's speed-up over each library](docs/images/bench/peers.png)",
        ]
    )


def page_peers_block(peers: list[PeerResult], env: dict) -> str:
    lines = [textwrap.fill(machine_line(env), 96), "", peer_markdown_table(peers), ""]
    for r in peers:
        sides = [f"gochan {r.gochan_how}"]
        sides += [f"{PEER_TABLE_TITLES.get(c.library, c.library)}: {c.how}" for c in r.cells]
        item = f"- {_plain(r.workload)}: " + "; ".join(sides) + "."
        lines.append(textwrap.fill(item, 96, subsequent_indent="  ", break_on_hyphens=False))
    return "\n".join(lines)


def page_stdlib_block(results: list[Result], env: dict) -> str:
    lines = [textwrap.fill(machine_line(env), 96), "", markdown_table(results)]
    notes = [f"- `{r.name}`: {r.error}" for r in results if r.error]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def replace_between(path: str, name: str, text: str) -> bool:
    """Put `text` between the `bench-NAME` markers of `path`; False if the markers are missing."""
    start, end = f"<!-- bench-{name}:start -->", f"<!-- bench-{name}:end -->"
    with open(path, encoding="utf-8") as f:
        content = f.read()
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(content):
        return False
    content = pattern.sub(lambda _: f"{start}\n{text.strip()}\n{end}", content, count=1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)
    return True


def _plain(markdown: str) -> str:
    return markdown.replace("`", "")


# ---------------------------------------------------------------------------------------------
# Plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(text: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(_plain(text), width))


def _times_text(seconds: float) -> str:
    ns = seconds * 1e9
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} us"
    return f"{ns / 1e6:.1f} ms"


def plot_peers(peers: list[PeerResult], env: dict, path: str) -> None:
    """Grouped horizontal bars: gochan's speed-up over each library, log scale, 1x marked."""
    plt = _pyplot()
    rows = [r for r in peers if r.gochan is not None]
    libs = PEER_TABLE_LIBRARIES
    height = 0.8 / len(libs)
    fig, ax = plt.subplots(figsize=(10, 1.1 * len(rows) + 1.6))
    values = [c.speedup for r in rows for c in r.cells if c.speedup]
    lo = min([0.5, *values]) / 1.5
    hi = max([2.0, *values]) * 3
    for j, lib in enumerate(libs):
        for i, r in enumerate(rows):
            cell = next((c for c in r.cells if c.library == lib), None)
            y = i + (j - (len(libs) - 1) / 2) * height
            if cell is None or cell.speedup is None:
                reason = "-" if cell is None else (cell.absent or "error")
                ax.text(lo * 1.1, y, reason, va="center", fontsize=7, color="#777777")
                continue
            ax.barh(y, cell.speedup - lo, height * 0.9, left=lo, color=COLOURS[lib],
                    label=PEER_TABLE_TITLES.get(lib, lib) if i == 0 else None)
            text = f"{cell.speedup:.2f}x" if cell.speedup < 10 else f"{cell.speedup:.0f}x"
            ax.text(cell.speedup * 1.08, y, text, va="center", fontsize=7)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.text(1.0, -0.75, " 1x: as fast as gochan", fontsize=7, va="center")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(rows)), [_label(r.workload) for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -1.0)
    ax.set_xlabel("library's time / gochan's time (log scale; right of 1x: gochan is faster)")
    ax.set_title(f"gochan's speed-up over other libraries (CPython {env['python']}, "
                 f"{env['cpus']} vCPUs)", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_peer_times(peers: list[PeerResult], env: dict, path: str) -> None:
    """Grouped horizontal bars: every side's median time per operation, log scale."""
    plt = _pyplot()
    rows = [r for r in peers if r.gochan is not None]
    sides = ("gochan", *PEER_TABLE_LIBRARIES)
    height = 0.8 / len(sides)
    fig, ax = plt.subplots(figsize=(10, 1.3 * len(rows) + 1.4))
    values = [r.gochan for r in rows] + [c.value for r in rows for c in r.cells if c.value]
    lo, hi = min(values) / 3, max(values) * 6
    for j, side in enumerate(sides):
        for i, r in enumerate(rows):
            y = i + (j - (len(sides) - 1) / 2) * height
            if side == "gochan":
                value = r.gochan
            else:
                cell = next((c for c in r.cells if c.library == side), None)
                value = cell.value if cell else None
            if value is None:
                continue
            ax.barh(y, value - lo, height * 0.9, left=lo, color=COLOURS[side],
                    label=PEER_TABLE_TITLES.get(side, side) if i == 0 else None)
            ax.text(value * 1.08, y, f"{_times_text(value)}/{r.unit}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(rows)), [_label(r.workload) for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("median time per operation, seconds (log scale; shorter is faster)")
    ax.set_title(f"Time per operation (CPython {env['python']}, {env['cpus']} vCPUs)",
                 fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def advantage(result: Result) -> tuple[float | None, float | None]:
    """(gochan's advantage, the target's) on one scale: above 1 gochan is faster or smaller.

    The advantage is the peer's figure over gochan's, whichever way the row states its ratio;
    the target is read from its text ("<= 1.2x its time" is a ceiling on gochan's time over the
    peer's, so 1/1.2 on this scale; "no slower" is 1).
    """
    if result.ratio is None or not result.gochan or not result.peer_value:
        return None, None
    value = result.peer_value / result.gochan
    if result.target == "no slower":
        return value, 1.0
    limit = re.search(r"([0-9.]+)x", result.target)
    if limit is None:
        return value, None
    target = float(limit.group(1))
    return value, 1 / target if result.target.startswith("<=") else target


def plot_stdlib(results: list[Result], env: dict, path: str) -> None:
    """The main table: gochan's advantage per row (bars, log scale), its target (a tick)."""
    plt = _pyplot()
    rows = [r for r in results if r.ratio is not None]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.6))
    figures = [advantage(r) for r in rows]
    values = [v for pair in figures for v in pair if v]
    lo, hi = min([0.3, *values]) / 1.5, max(values) * 4
    for i, (r, (value, target)) in enumerate(zip(rows, figures)):
        colour = PASS_COLOUR if r.verdict == "PASS" else MISS_COLOUR
        ax.barh(i, value - lo, 0.7, left=lo, color=colour)
        text = f"{value:.2f}x" if value < 10 else f"{value:.0f}x"
        ax.text(value * 1.08, i, f"{text} {r.verdict}", va="center", fontsize=7)
        if target:
            ax.plot([target, target], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="#555555", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(rows)), [r.name for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("gochan's advantage over the standard-library peer (log scale; black tick: "
                  "target; green PASS, red MISS)", fontsize=8)
    ax.set_title(f"Against the standard library, one row per performance target "
                 f"(CPython {env['python']}, {env['cpus']} vCPUs)", fontsize=10)
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def publish(results: list[Result], peers: list[PeerResult], env: dict, *, echo=print) -> None:
    """Write the plots and refresh the marked tables; say what was written and what was not."""
    written = []
    for path, name, text in (
        (README, "table", readme_block(peers, env)),
        (PERFORMANCE_PAGE, "peers", page_peers_block(peers, env)),
        (PERFORMANCE_PAGE, "stdlib", page_stdlib_block(results, env)),
    ):
        if not os.path.exists(path) or not replace_between(path, name, text):
            echo(f"note: no bench-{name} markers in {os.path.relpath(path, REPO_ROOT)}")
        else:
            written.append(f"{os.path.relpath(path, REPO_ROOT)} (bench-{name})")
    try:
        _pyplot()
    except ImportError:
        echo("note: matplotlib is not installed (the bench extra): no plots written")
    else:
        os.makedirs(IMAGES_DIR, exist_ok=True)
        for fn, data, name in (
            (plot_peers, peers, "peers.png"),
            (plot_peer_times, peers, "peer_times.png"),
            (plot_stdlib, results, "stdlib.png"),
        ):
            path = os.path.join(IMAGES_DIR, name)
            fn(data, env, path)
            written.append(os.path.relpath(path, REPO_ROOT))
    echo("published: " + ", ".join(written))
