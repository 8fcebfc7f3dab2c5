"""The documentation runs: every ```python block of README.md and docs/*.md, and every script in
docs/examples/.

Each block runs on its own in a fresh interpreter (so a block that sends itself SIGINT or leaves a
thread behind cannot disturb the others), compiled under the Markdown file's name with its line
numbers kept, so a traceback points at the failing line of the .md file. A block that hangs has
every thread's stack dumped before it is killed. Blocks that are not meant to run must be fenced
as ```text, ```pycon or the language they are in; a fence with an unknown or missing language is
an error, so no Python block can slip out of the test by a typo such as ```py.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import GOCHAN_ROOT

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKDOWN_FILES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))

#: Fence languages that are run.
RUN = {"python"}
#: Fence languages that are shown but not run.
SHOW = {"text", "pycon", "sh", "console", "bash", "c", "toml", "ini", "json", "yaml", "diff"}

#: A child that has not finished after WATCHDOG seconds dumps its threads' stacks and exits;
#: KILL_AFTER is the backstop should even that fail.
WATCHDOG = 30
KILL_AFTER = 60

#: Runs one block read from stdin, as __main__, under the name and line numbers of its file.
RUNNER = """\
import faulthandler, sys
faulthandler.dump_traceback_later({watchdog}, exit=True)
path, first_line = sys.argv[1], int(sys.argv[2])
source = "\\n" * (first_line - 1) + sys.stdin.read()
exec(compile(source, path, "exec"), {{"__name__": "__main__", "__file__": path}})
""".format(watchdog=WATCHDOG)

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def fenced_blocks(path):
    """Yield (language, line of the first code line, code) for every fenced block of `path`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        words = opening["info"].split()
        language = words[0] if words else ""
        start = i + 1
        i = start
        while i < len(lines):
            closing = FENCE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            i += 1
        else:
            raise AssertionError(f"{path}:{start}: the code block opened here is never closed")
        # A fence indented by n spaces (in a list item) indents its lines by up to n spaces.
        body = [
            line[min(indent, len(line) - len(line.lstrip(" "))) :] for line in lines[start:i]
        ]
        yield language, start + 1, "\n".join(body) + "\n"
        i += 1


def name(path):
    return path.relative_to(ROOT).as_posix()


def python_blocks():
    return [
        pytest.param(path, line, code, id=f"{name(path)}:{line}")
        for path in MARKDOWN_FILES
        for language, line, code in fenced_blocks(path)
        if language in RUN
    ]


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [GOCHAN_ROOT, env.get("PYTHONPATH")]))
    return env


def report(result):
    return f"exit code {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.mark.parametrize(("path", "line", "code"), python_blocks())
def test_markdown_block_runs(path, line, code, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path), str(line)],
        input=code,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_env(),
        timeout=KILL_AFTER,
    )
    assert result.returncode == 0, f"the block at {name(path)}:{line} failed\n{report(result)}"


@pytest.mark.parametrize("script", EXAMPLES, ids=name)
def test_example_runs(script, tmp_path):
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_env(),
        timeout=KILL_AFTER,
    )
    assert result.returncode == 0, f"{name(script)} failed\n{report(result)}"
    assert result.stdout.strip(), f"{name(script)} printed nothing"


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=name)
def test_fences_name_a_known_language(path):
    unknown = [
        f"{name(path)}:{line - 1}: ```{language}"
        for language, line, _ in fenced_blocks(path)
        if language not in RUN | SHOW
    ]
    assert not unknown, (
        "fence these blocks as ```python (run by this test) or as ```text / ```pycon / the "
        "language they are in (not run):\n" + "\n".join(unknown)
    )


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=name)
def test_relative_links_resolve(path):
    text = path.read_text(encoding="utf-8")
    prose = re.sub(r"^(`{3,}|~{3,}).*?^\1", "", text, flags=re.S | re.M)
    anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", prose, flags=re.M)}
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        file_part, _, anchor = target.partition("#")
        if file_part and not (path.parent / file_part).exists():
            broken.append(target)
        elif not file_part and anchor not in anchors:
            broken.append(target)
    assert not broken, f"{name(path)}: broken links: {broken}"


def test_there_is_something_to_run():
    assert len(python_blocks()) >= 10
    assert len(EXAMPLES) >= 2
