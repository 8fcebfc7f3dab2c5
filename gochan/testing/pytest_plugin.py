"""pytest plugin: goroutine leak checking (`gochan.testing.verify_none`) as a fixture and a marker.

Registered through the ``pytest11`` entry point, so it is active wherever gochan is installed.
A test that uses the ``no_goroutine_leaks`` fixture, or carries the marker of that name, fails at
teardown if goroutines it started are still running (after a grace period, 1 s by default, for
them to finish); the report shows the stack of each. Goroutines already running when the test
began are not its own and are left alone::

    import pytest

    @pytest.mark.no_goroutine_leaks(timeout=2.0)
    def test_pool_stops():
        ...

    def test_worker_stops(no_goroutine_leaks):
        ...

To check every test of a suite, use the fixture from an autouse fixture in conftest.py::

    @pytest.fixture(autouse=True)
    def _no_goroutine_leaks(no_goroutine_leaks):
        pass
"""

from __future__ import annotations

import pytest

from gochan import testing

MARKER = "no_goroutine_leaks"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(timeout=1.0): fail the test if goroutines it started are still running "
        "`timeout` seconds after it ends (gochan.testing.verify_none)",
    )


def _timeout(request: pytest.FixtureRequest) -> float:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return 1.0
    if marker.args:
        return float(marker.args[0])
    return float(marker.kwargs.get("timeout", 1.0))


@pytest.fixture
def no_goroutine_leaks(request: pytest.FixtureRequest):
    """Fail the test at teardown if goroutines it started are still running.

        def test_worker_stops(no_goroutine_leaks):
            stop = start_worker()
            stop()
    """
    __tracebackhide__ = True  # the report is the leak's, not the plugin's
    before = testing.running()
    yield
    testing.verify_none(_timeout(request), ignore=before)


@pytest.fixture(autouse=True)
def _gochan_leak_marker(request: pytest.FixtureRequest) -> None:
    """Apply the check to tests carrying the marker."""
    if request.node.get_closest_marker(MARKER) is not None:
        request.getfixturevalue("no_goroutine_leaks")
