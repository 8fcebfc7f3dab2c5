"""Goroutine leak checking (gochan.testing): goleak-style self-tests of verify_none, and of the
pytest plugin that the pytest11 entry point registers (run in a child pytest)."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import gochan
from conftest import GOCHAN_ROOT, LONG, SETTLE
from gochan import testing


def park_forever(ch):
    """A goroutine body that waits on `ch` until the test releases it."""
    return ch.recv(timeout=LONG)


def test_verify_none_returns_when_nothing_runs():
    testing.verify_none(timeout=0)
    assert testing.running() == []


def test_a_leaked_goroutine_is_caught_with_its_stack():
    ch = gochan.Chan()
    g = gochan.go(park_forever, ch)
    try:
        start = time.monotonic()
        with pytest.raises(testing.GoroutineLeak) as leak:
            testing.verify_none(timeout=0.1)
        assert time.monotonic() - start >= 0.1
        assert leak.value.goroutines == [g]
        message = str(leak.value)
        assert "1 goroutine(s) still running" in message
        assert "[goroutine park_forever, on thread gochan-worker-" in message
        # the stack: where the goroutine waits, in this file, without the worker's bootstrap
        assert "test_leakcheck.py" in message and "in park_forever" in message
        assert "return ch.recv(timeout=LONG)" in message
        assert "threading.py" not in message
        assert isinstance(leak.value, AssertionError)
    finally:
        ch.send(None)
        g.join(timeout=LONG)
    testing.verify_none()


def test_verify_none_waits_for_goroutines_that_finish_in_time():
    g = gochan.go(time.sleep, SETTLE)
    testing.verify_none(timeout=LONG)
    assert g.done().closed


def test_verify_none_ignores_what_it_is_told_to():
    ch = gochan.Chan()
    before = gochan.go(park_forever, ch)
    try:
        testing.verify_none(timeout=0, ignore=testing.running())
        testing.verify_none(timeout=0, ignore=[before])
    finally:
        ch.send(None)
        before.join(timeout=LONG)


def test_verify_none_inside_a_goroutine_does_not_count_itself():
    def check():
        testing.verify_none(timeout=0)
        return "clean"

    assert gochan.go(check).join(timeout=LONG) == "clean"


def test_several_leaks_are_all_listed():
    ch = gochan.Chan()
    goroutines = [gochan.go(park_forever, ch) for _ in range(3)]
    try:
        with pytest.raises(testing.GoroutineLeak) as leak:
            testing.verify_none(timeout=0.05)
        assert len(leak.value.goroutines) == 3
        assert str(leak.value).count("[goroutine park_forever") == 3
    finally:
        for _ in goroutines:
            ch.send(None)
        for g in goroutines:
            g.join(timeout=LONG)


def test_plain_threads_are_not_goroutines():
    release = threading.Event()
    t = threading.Thread(target=release.wait, args=(LONG,), daemon=True)
    t.start()
    try:
        testing.verify_none(timeout=0)
    finally:
        release.set()
        t.join(LONG)


@pytest.mark.parametrize("timeout", [-1, float("nan")])
def test_verify_none_rejects_a_bad_timeout(timeout):
    with pytest.raises(ValueError):
        testing.verify_none(timeout)


def test_the_suite_runs_with_the_leak_check_on(request):
    assert "no_goroutine_leaks" in request.fixturenames


# --- the pytest plugin, in a child pytest ------------------------------------------------------

INNER_TESTS = textwrap.dedent("""
    import pytest, gochan

    stuck = gochan.Chan()

    def wait_forever():
        stuck.recv()

    @pytest.mark.no_goroutine_leaks(timeout=0.1)
    def test_marked_leak():
        gochan.go(wait_forever)

    def test_fixture_leak(no_goroutine_leaks):
        gochan.go(wait_forever)

    @pytest.mark.no_goroutine_leaks
    def test_marked_clean():
        gochan.go(int).join()

    def test_unchecked_leak():
        gochan.go(wait_forever)
""")


def run_inner_pytest(tmp_path, *args):
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (GOCHAN_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
         "--rootdir", str(tmp_path), "-c", os.devnull, *args, str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )


@pytest.fixture(scope="module")
def inner_result(tmp_path_factory):
    return run_inner_pytest(tmp_path_factory.mktemp("inner"))


def test_plugin_marker_fails_a_leaking_test(inner_result):
    out = inner_result.stdout
    assert "ERROR test_inner.py::test_marked_leak" in out, out
    assert "GoroutineLeak" in out and "in wait_forever" in out


def test_plugin_fixture_fails_a_leaking_test(inner_result):
    assert "ERROR test_inner.py::test_fixture_leak" in inner_result.stdout


def test_plugin_passes_clean_and_unchecked_tests(inner_result):
    out = inner_result.stdout
    assert "PASSED test_inner.py::test_marked_clean" in out
    # a test without the check is not blamed, and neither is it for the leaks of the others
    assert "PASSED test_inner.py::test_unchecked_leak" in out


def test_plugin_registers_its_marker(tmp_path):
    result = run_inner_pytest(tmp_path, "--markers")
    assert "@pytest.mark.no_goroutine_leaks(timeout=1.0)" in result.stdout
