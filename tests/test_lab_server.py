"""`make lab` starts a JupyterLab server that serves the course.

Started exactly as the README says (make lab), on a free loopback port and
without a browser, then asked for /lab and the notebook listing.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "course-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.fixture
def lab_server(tmp_path):
    port = free_port()
    flags = (f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
             f"--IdentityProvider.token={TOKEN}")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path))
    process = subprocess.Popen(["make", "-s", "lab", f"LAB_FLAGS={flags}"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"make lab exited early:\n{process.stdout.read().decode()}")
            try:
                fetch(f"{base}/api/status?token={TOKEN}")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 90 s")
        yield base
    finally:
        stop(process)


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


def test_make_lab_serves_the_course(lab_server):
    status, page = fetch(f"{lab_server}/lab?token={TOKEN}")
    assert status == 200 and "JupyterLab" in page
    status, body = fetch(f"{lab_server}/api/contents/notebooks?token={TOKEN}")
    names = {item["name"] for item in json.loads(body)["content"]}
    assert "00_start_here.ipynb" in names, f"notebooks/ listing: {sorted(names)}"


def test_the_widget_manager_is_installed_in_the_lab(lab_server):
    """Without @jupyter-widgets/jupyterlab-manager, sliders show up as plain text."""
    _, body = fetch(f"{lab_server}/lab/api/extensions?token={TOKEN}")
    extensions = {item["name"]: item for item in json.loads(body)}
    manager = [item for name, item in extensions.items() if "jupyterlab-manager" in name]
    assert manager, f"widget manager missing; extensions: {sorted(extensions)}"
    assert manager[0].get("enabled", True), "the widget manager is installed but disabled"
