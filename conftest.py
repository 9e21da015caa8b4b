"""Test-wide settings: fast mode, and a cache folder of the tests' own.

The tests (and the notebooks nbval executes, whose kernels inherit this
environment) must never overwrite a learner's full-size checkpoints in
their home cache with fast-mode ones. These two are set once, here, before
any test runs; no test or tool may change os.environ afterwards
(tests/conftest.py's environment_unchanged fails the one that does).

pytester runs small pytest sessions inside a test (tests/test_isolation.py).

`make test` sets COURSE_REQUIRE_BROWSER=1: the browser test (tests/test_browser.py) may
then be skipped only because no Chromium is installed; skipped for any other reason
(Playwright missing, Chromium failing to start), the run fails.

At the end, the time spent per part of the suite (unit tests, notebooks, exercise sets,
JupyterLab and browser).
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
pytest_plugins = ["pytester"]

os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("COURSE_CACHE_DIR", str(ROOT / "build" / "test-cache"))

# Where `make test` spends its time, summed over each test's setup, call and teardown.
REQUIRE_BROWSER_ENV = "COURSE_REQUIRE_BROWSER"
BROWSER_TESTS = "tests/test_browser.py"
NO_CHROMIUM = "no Chromium found"  # the one reason to skip the browser test under make test
_browser_skips: list[str] = []

PARTS = (("notebooks/", "notebooks (nbval)"), ("tests/test_exercises.py", "exercise sets"),
         ("tests/test_browser.py", "JupyterLab and browser"),
         ("tests/test_lab_server.py", "JupyterLab and browser"))
_seconds_per_part: dict[str, float] = {}


def _note_browser_skip(report) -> None:
    if report.skipped and report.nodeid.startswith(BROWSER_TESTS):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        if NO_CHROMIUM not in str(reason):
            _browser_skips.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report) -> None:
    _note_browser_skip(report)


def pytest_runtest_logreport(report) -> None:
    _note_browser_skip(report)
    part = next((name for prefix, name in PARTS if report.nodeid.startswith(prefix)),
                "unit tests")
    _seconds_per_part[part] = _seconds_per_part.get(part, 0.0) + report.duration


def pytest_sessionfinish(session) -> None:
    if _browser_skips and os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if _browser_skips and os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        terminalreporter.section("browser test required", red=True)
        terminalreporter.write_line(f"{REQUIRE_BROWSER_ENV}=1 (make test): the browser test may "
                                    f"be skipped only when no Chromium is installed, but:")
        for line in dict.fromkeys(_browser_skips):
            terminalreporter.write_line(f"  {line}")
    if not _seconds_per_part:
        return
    terminalreporter.section("time per part of the suite")
    for part, seconds in sorted(_seconds_per_part.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{part:<26} {seconds:8.1f} s")
    terminalreporter.write_line(f"{'all tests':<26} {sum(_seconds_per_part.values()):8.1f} s")
