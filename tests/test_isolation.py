"""Every test leaves the environment as it found it (tests/conftest.py's environment_unchanged).

A test that changed os.environ once made every notebook after it run in full mode (fast
mode removed by a tool called in-process). The guard restores the environment after each
test and fails the one that changed it; here a small pytest session with the real
tests/conftest.py shows that it does.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFTEST = ROOT / "tests" / "conftest.py"


def load_conftest():
    """tests/conftest.py under a name of its own (pytest keeps several modules "conftest")."""
    spec = importlib.util.spec_from_file_location("tests_conftest", CONFTEST)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module

LEAKING_AND_CLEAN_TESTS = """
import os

def test_leaks_a_variable():
    os.environ["COURSE_LEAK_PROBE"] = "1"

def test_removes_a_variable():
    del os.environ["COURSE_FAST"]

def test_uses_monkeypatch(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "0")
    monkeypatch.setenv("COURSE_OTHER_PROBE", "x")

def test_sees_the_environment_restored():
    assert "COURSE_LEAK_PROBE" not in os.environ
    assert os.environ["COURSE_FAST"] == "1"
"""


def test_environment_changes_names_each_variable():
    before = {"KEEP": "1", "GONE": "a", "MOVED": "x", "PYTEST_CURRENT_TEST": "t (setup)"}
    after = {"KEEP": "1", "NEW": "b", "MOVED": "y", "PYTEST_CURRENT_TEST": "t (teardown)",
             "TORCHINDUCTOR_CACHE_DIR": "/tmp/torchinductor"}
    changes = load_conftest().environment_changes
    assert changes(before, after) == [
        "GONE removed (was 'a')", "MOVED changed from 'x' to 'y'", "NEW added ('b')"]
    assert changes(before, dict(before)) == []


def test_a_test_that_changes_the_environment_fails_by_name(pytester, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_probe=LEAKING_AND_CLEAN_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_leaks_a_variable*",
        "*test_probe.py::test_leaks_a_variable left the environment changed: "
        "COURSE_LEAK_PROBE added ('1')*monkeypatch.setenv*",
        "*ERROR at teardown of test_removes_a_variable*",
        "*COURSE_FAST removed (was '1')*",
    ])
    assert "test_uses_monkeypatch left" not in result.stdout.str()
