"""Fixtures shared by several test modules.

`environment_unchanged` (autouse) holds every test to leaving os.environ as it found it:
it restores the environment after each test and fails the test that changed it, by name.
(A test changes variables with monkeypatch.setenv; tools and subprocesses get a copied env.)

`torch_threads` and `tiny_data` serve the model tests: PyTorch kept to the CPUs this process
may use, and a tiny deterministic corpus that trains in seconds. `one_torch_thread` holds a
module of tiny-model tests to one thread (the serving loop's steps: two threads crawl there).

`lab_server` starts the course's JupyterLab exactly as the README says (`make lab`), on a
free loopback port, without a browser, with its runtime files, settings and workspaces in
a temporary folder so that a learner's own JupyterLab state neither leaks in nor changes.
One server serves every test of the session that asks for it. Where the .venv that
`make lab` sets up is missing (the README's conda route), those tests are skipped with the
reason: starting make would install a whole new environment first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from course_lib import data, launcher, runtime

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "course-test-token"
MAKE_VENV_STAMP = ROOT / ".venv" / ".course-installed"
# pytest itself sets this one while each test runs (its phase changes from setup to teardown).
PYTEST_OWN = {"PYTEST_CURRENT_TEST"}
# PyTorch's compiler writes its default cache folders into os.environ the first time it is
# used (torch/_inductor/runtime/cache_dir_utils.py): adding these is no test's doing.
ADDED_BY_LIBRARIES = {"TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"}
# A loaded 2-core CI machine can take a while to import JupyterLab's server extensions.
START_SECONDS = 180
# Settings written into the test server's own settings folder. No news or update
# pop-ups covering the notebook, and every cell kept in the page (JupyterLab 4 otherwise
# detaches cells scrolled out of view, which a browser test would then not find).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base address and the token that opens it."""

    base: str
    token: str = TOKEN

    def url(self, path: str) -> str:
        """`path` on this server, with the token (what a learner's browser would open)."""
        return f"{self.base}{path}{'&' if '?' in path else '?'}token={self.token}"

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(self.url(path), timeout=5) as response:
            return response.status, response.read().decode()


def write_settings(folder: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        path = folder / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def stop(process: subprocess.Popen) -> None:
    """Stop make and the server it started (one process group), whatever state they are in."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def environment_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What differs between two environments, one readable line per variable."""
    changes = []
    added = set(after) - set(before)
    for name in sorted((set(before) | added) - PYTEST_OWN - (added & ADDED_BY_LIBRARIES)):
        if name not in after:
            changes.append(f"{name} removed (was {before[name]!r})")
        elif name not in before:
            changes.append(f"{name} added ({after[name]!r})")
        elif before[name] != after[name]:
            changes.append(f"{name} changed from {before[name]!r} to {after[name]!r}")
    return changes


def restore_environment(before: Mapping[str, str]) -> None:
    """Put os.environ back to `before`, touching only the variables that differ."""
    for name in set(os.environ) - set(before) - PYTEST_OWN - ADDED_BY_LIBRARIES:
        del os.environ[name]
    for name, value in before.items():
        if name not in PYTEST_OWN and os.environ.get(name) != value:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def environment_unchanged(request) -> Iterator[None]:
    """Restore os.environ after every test, and fail the test that changed it.

    Autouse fixtures are set up before the ones a test asks for, so monkeypatch has undone
    its own changes by the time this looks: only a change nobody undoes is reported.
    """
    before = dict(os.environ)
    yield
    changes = environment_changes(before, os.environ)
    if changes:
        restore_environment(before)
        pytest.fail(f"{request.node.nodeid} left the environment changed: {'; '.join(changes)}. "
                    f"A test changes variables with monkeypatch.setenv/delenv; a tool passes a "
                    f"copied env= to the processes it starts instead of changing os.environ.",
                    pytrace=False)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory) -> Iterator[Lab]:
    if shutil.which("make") is None or not MAKE_VENV_STAMP.exists():
        pytest.skip("needs `make` and the .venv that `make lab` sets up; this environment was "
                    "made another way (conda: the README's route without make), and starting "
                    "make here would install a whole new .venv first")
    state = tmp_path_factory.mktemp("jupyter")
    write_settings(state / "settings")
    port = launcher.free_port()
    flags = (f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
             f"--IdentityProvider.token={TOKEN}")
    # Kernels inherit this environment, COURSE_FAST and COURSE_CACHE_DIR (conftest.py) included.
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(state / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"))
    env.pop("COURSE_WIDGETS", None)  # kernels decide live or static themselves, as for a learner
    process = subprocess.Popen(["make", "-s", "lab", f"LAB_FLAGS={flags}"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"make lab exited early:\n{process.stdout.read().decode()}")
            try:
                lab.get("/api/status")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not answer within {START_SECONDS} s")
        yield lab
    finally:
        stop(process)


@pytest.fixture(autouse=True, scope="session")
def torch_threads() -> None:
    """Honour COURSE_THREADS (or the CPU quota): oversubscribed threads crawl on shared CPUs."""
    runtime.configure_threads()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread for a module of tiny models, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fox_corpus() -> data.Corpus:
    """A tiny, repetitive text: models learn it within a few steps."""
    return data.Corpus("fox", "the quick brown fox jumps over the lazy dog. " * 120, "test")


@pytest.fixture(scope="module")
def tiny_data(fox_corpus: data.Corpus) -> data.TokenData:
    return data.prepare(fox_corpus, block_size=16)
