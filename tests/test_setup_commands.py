"""The set-up behind `make lab` / `make test` and the course build behind `make course`.

Tests that need `make` itself or the .venv it sets up are skipped, with the reason, where
they are missing: a learner on the README's conda route runs pytest without either.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
MAKE_VENV_STAMP = ROOT / ".venv" / ".course-installed"

needs_make = pytest.mark.skipif(
    shutil.which("make") is None,
    reason="needs the `make` command (the README's route without make uses conda)")
needs_make_venv = pytest.mark.skipif(
    not MAKE_VENV_STAMP.exists(),
    reason="needs the .venv that `make lab` / `make test` set up; this environment was made "
           "another way (conda: the README's route without make), so there is none to check")


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_old_python_gets_a_clear_message(monkeypatch, capsys):
    bootstrap = load_tool("bootstrap")
    monkeypatch.setattr(sys, "version_info", (3, 8, 10))
    with pytest.raises(SystemExit) as stop:
        bootstrap.main()
    assert stop.value.code == 1
    message = capsys.readouterr().err
    assert "Python 3.10 or newer" in message and "environment.yml" in message


@needs_make
def test_missing_python_gets_a_clear_message():
    # -W pretends pyproject.toml changed, so make must run the set-up rule.
    result = subprocess.run(["make", "-s", "PYTHON=no-such-python3", "-W", "pyproject.toml",
                             ".venv/.course-installed"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert "'no-such-python3' was not found. Install Python 3.10 or newer" in result.stdout


def refuse_to_install(args):
    raise AssertionError(f"the set-up ran a command although nothing changed: {args}")


def test_setup_is_skipped_when_the_stamp_matches(tmp_path, monkeypatch, capsys):
    """A second `make test` must not reinstall anything: the stamp matches, nothing runs."""
    bootstrap = load_tool("bootstrap")
    stamp = tmp_path / ".course-installed"
    stamp.write_text(bootstrap.fingerprint() + "\n")
    monkeypatch.setattr(bootstrap, "STAMP", str(stamp))
    monkeypatch.setattr(bootstrap, "run", refuse_to_install)
    bootstrap.main()
    assert capsys.readouterr().out == ""


@needs_make_venv
def test_make_venv_stamp_is_current(monkeypatch, capsys):
    """The .venv `make` set up is the one pyproject.toml and bootstrap.py describe."""
    bootstrap = load_tool("bootstrap")
    if Path(bootstrap.STAMP).read_text().strip() != bootstrap.fingerprint():
        pytest.skip("pyproject.toml or tools/bootstrap.py changed since make set up .venv; "
                    "`make test` brings it up to date before it runs the tests")
    monkeypatch.setattr(bootstrap, "run", refuse_to_install)
    bootstrap.main()
    assert capsys.readouterr().out == ""


def test_course_build_executes_and_indexes_notebooks(tmp_path, monkeypatch):
    build = load_tool("build_course")
    notebook = new_notebook(metadata={"kernelspec": {"name": "python3",
                                                     "display_name": "Python 3"}})
    notebook.cells = [new_markdown_cell("# 99 · A tiny notebook\n\n**Estimated time:** about "
                                        "3 minutes.\n\nIt adds two numbers."),
                      new_code_cell("import os\nprint(20 + 22)\n"
                                    "print('kernel fast', os.environ.get('COURSE_FAST'), "
                                    "'threads', os.environ.get('COURSE_THREADS'))")]
    source = tmp_path / "notebooks" / "99_tiny.ipynb"
    source.parent.mkdir()
    nbformat.write(notebook, source)

    monkeypatch.setattr(build, "BUILD", tmp_path / "build")
    monkeypatch.setattr(build.outline, "course_notebooks",
                        lambda: [build.outline.describe(source)])
    monkeypatch.setattr(sys, "argv", ["build_course.py", "--fast", "--threads", "1",
                                      "--max-memory-gb", "100"])
    before = dict(os.environ)
    assert build.main() == 0
    assert dict(os.environ) == before, "the build must not change its caller's environment"

    page = (tmp_path / "build" / "99_tiny.html").read_text()
    assert "42" in page, "the executed output must be in the HTML copy"
    assert "kernel fast 1 threads 1" in page, "the kernel must get --fast and --threads"
    index = (tmp_path / "build" / "index.html").read_text()
    assert 'href="99_tiny.html"' in index and "A tiny notebook" in index and "3 min" in index


def test_course_build_fails_when_a_kernel_uses_too_much_memory(tmp_path, monkeypatch):
    build = load_tool("build_course")
    source = tmp_path / "00_x.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 00 · x"), new_code_cell("1")],
                                metadata={"kernelspec": {"name": "python3",
                                                         "display_name": "Python 3"}}), source)
    monkeypatch.setattr(build, "BUILD", tmp_path / "build")
    monkeypatch.setattr(build.outline, "course_notebooks",
                        lambda: [build.outline.describe(source)])
    monkeypatch.setattr(sys, "argv", ["build_course.py", "--fast", "--max-memory-gb", "0.001"])
    assert build.main() == 1
    assert (tmp_path / "build" / "index.html").exists()


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_peak_memory_counts_the_processes_a_kernel_starts():
    """Notebook 10 starts training workers: Binder's limit applies to all of them together."""
    build = load_tool("build_course")
    hold = ("import sys, time; block = bytearray(b'x') * (300 * 2**20); "
            "print('ready', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        alone = build.tree_rss_bytes(child.pid)
        with_child = build.tree_rss_bytes(os.getpid())
    finally:
        child.communicate("")
    assert alone >= 300 * 2**20, f"the worker holds 300 MiB, measured {alone / 2**20:.0f} MiB"
    assert with_child >= alone, "a parent's tree must include its children"


def test_course_build_refuses_an_unknown_notebook(monkeypatch, capsys):
    build = load_tool("build_course")
    monkeypatch.setattr(sys, "argv", ["build_course.py", "notebooks/99_missing.ipynb"])
    with pytest.raises(SystemExit):
        build.main()
    assert "no such notebook: notebooks/99_missing.ipynb" in capsys.readouterr().err


def test_kernel_env_sets_the_mode_on_a_copy():
    build = load_tool("build_course")
    caller = {"COURSE_FAST": "1", "COURSE_CACHE_DIR": "/tmp/cache", "PATH": "/bin"}
    full = build.kernel_env(fast=False, threads=None, base=caller)
    assert full["COURSE_FAST"] == "0", "full mode must override a fast caller"
    assert "COURSE_THREADS" not in full and full["COURSE_CACHE_DIR"] == "/tmp/cache"
    fast = build.kernel_env(fast=True, threads=2, base={})
    assert fast == {"COURSE_FAST": "1", "COURSE_THREADS": "2"}
    assert caller == {"COURSE_FAST": "1", "COURSE_CACHE_DIR": "/tmp/cache", "PATH": "/bin"}
