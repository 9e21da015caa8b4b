"""Create the course environment (.venv) if it is missing or out of date.

Called by `make lab` and `make test`. Idempotent and quiet when nothing changed.
Written for any python3 so that an old interpreter gets a clear message
instead of a syntax error.
"""
import hashlib
import os
import platform
import socket
import subprocess
import sys

MIN_PYTHON = (3, 10)
TORCH_VERSION = "2.13.0"
# PyTorch publishes CPU-only Linux wheels on its own index; PyPI's Linux wheel
# bundles CUDA (several GB). macOS and Windows wheels on PyPI are CPU-only already.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
STAMP = os.path.join(VENV, ".course-installed")


def fail(message):
    sys.stderr.write("\nSet-up stopped: " + message + "\n\n")
    sys.exit(1)


def venv_python():
    if os.name == "nt":
        return os.path.join(VENV, "Scripts", "python.exe")
    return os.path.join(VENV, "bin", "python")


def fingerprint():
    """Hash of what decides the environment, so edits trigger a reinstall."""
    digest = hashlib.sha256()
    for name in ("pyproject.toml", os.path.join("tools", "bootstrap.py")):
        with open(os.path.join(ROOT, name), "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


def reachable(url, seconds=3.0):
    host = url.split("/")[2]
    try:
        socket.create_connection((host, 443), timeout=seconds).close()
        return True
    except OSError:
        return False


def run(args):
    print("  $ " + " ".join(args))
    code = subprocess.call(args)
    if code != 0:
        fail("this command failed (exit %d): %s" % (code, " ".join(args)))


def torch_install_args(python):
    args = [python, "-m", "pip", "install", "-qq", "torch==" + TORCH_VERSION]
    index = os.environ.get("TORCH_INDEX_URL")
    if index is None and platform.system() == "Linux" and reachable(TORCH_CPU_INDEX):
        index = TORCH_CPU_INDEX
    if index:
        # An extra index for torch only. Its "+cpu" build sorts above the plain
        # release of the same version, so pip picks the CPU build.
        args += ["--extra-index-url", index]
    return args


def main():
    if sys.version_info < MIN_PYTHON:
        fail(
            "the course needs Python %d.%d or newer, and '%s' is Python %s.\n"
            "Install a newer Python (python.org, your package manager, or conda: "
            "'conda env create -f environment.yml') and run make again, or point make "
            "at it: make PYTHON=/path/to/python3.11 test"
            % (MIN_PYTHON + (sys.executable, platform.python_version()))
        )
    wanted = fingerprint()
    if os.path.exists(STAMP):
        with open(STAMP) as handle:
            if handle.read().strip() == wanted:
                return
    print("Setting up the course environment in .venv (first run takes a few minutes)...")
    python = venv_python()
    if not os.path.exists(python):
        run([sys.executable, "-m", "venv", VENV])
    run([python, "-m", "pip", "install", "-qq", "--upgrade", "pip"])
    run(torch_install_args(python))
    run([python, "-m", "pip", "install", "-qq", "-e", ROOT + "[test]"])
    with open(STAMP, "w") as handle:
        handle.write(wanted + "\n")
    print("Course environment ready: " + VENV)


if __name__ == "__main__":
    main()
