"""Create the course environment (.venv) if it is missing or out of date.

    python3 tools/bootstrap.py          the course (`make lab`)
    python3 tools/bootstrap.py --test   the course and the test tools (`make test`)

Installs the versions pinned in constraints.txt (pip constraints). With COURSE_PINS=none
(`make lab PINS=none`) it installs the newest versions pyproject.toml allows instead.
Idempotent and quiet when nothing changed: a stamp in .venv records what was installed.
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
# PyTorch publishes CPU-only Linux wheels on its own index; PyPI's Linux wheel
# bundles CUDA (several GB). macOS and Windows wheels on PyPI are CPU-only already.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PINS_ENV = "COURSE_PINS"
PINS_CHOICES = ("lock", "none")  # lock: constraints.txt; none: the newest allowed versions
# nbgrader (test extra) runs from the command line only: its JupyterLab and server extensions
# stay off, so that the course's JupyterLab (and the browser test) is the one learners see.
NBGRADER_SERVER_EXTENSIONS = ["nbgrader.server_extensions." + name for name in
                              ("formgrader", "validate_assignment", "assignment_list",
                               "course_list")]
NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
LOCK = os.path.join(ROOT, "constraints.txt")
STAMP = os.path.join(VENV, ".course-installed")
TEST_STAMP = os.path.join(VENV, ".course-test-installed")
TORCH_HELD = os.path.join(VENV, "torch-held.txt")  # with PINS=none: the torch installed first


def fail(message):
    sys.stderr.write("\nSet-up stopped: " + message + "\n\n")
    sys.exit(1)


def venv_python():
    if os.name == "nt":
        return os.path.join(VENV, "Scripts", "python.exe")
    return os.path.join(VENV, "bin", "python")


def pins():
    """Which versions to install: lock (constraints.txt, the default) or none (the newest)."""
    choice = os.environ.get(PINS_ENV, "lock")
    if choice not in PINS_CHOICES:
        fail("PINS (or %s) is '%s': use lock (the pinned versions, the default) or none "
             "(the newest), e.g. make lab PINS=none" % (PINS_ENV, choice))
    return choice


def fingerprint(test=False):
    """Hash of what decides the environment, so edits trigger a reinstall."""
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt", os.path.join("tools", "bootstrap.py")):
        with open(os.path.join(ROOT, name), "rb") as handle:
            digest.update(handle.read())
    digest.update(("pins=%s test=%s" % (pins(), test)).encode())
    return digest.hexdigest()


def up_to_date(stamp, wanted):
    if not os.path.exists(stamp):
        return False
    with open(stamp) as handle:
        return handle.read().strip() == wanted


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


def run_quietly(args):
    """run(args), its output shown only if it fails."""
    print("  $ " + " ".join(args))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.communicate()[0]
    if process.returncode != 0:
        sys.stdout.write(output.decode("utf-8", "replace"))
        fail("this command failed (exit %d): %s" % (process.returncode, " ".join(args)))


def locked_version(name):
    """The version constraints.txt pins `name` to."""
    with open(LOCK) as handle:
        for line in handle:
            if line.split("==")[0].strip().lower() == name:
                return line.split("==")[1].split("#")[0].strip()
    fail("constraints.txt pins no %s; run `make pins` to write it again" % name)


def pinning_args():
    """pip arguments that install the pinned versions, or the newest allowed ones (torch
    held at the build installed first, so that no upgrade swaps it for another)."""
    if pins() == "lock":
        return ["-c", LOCK]
    return ["--upgrade", "--upgrade-strategy", "eager", "-c", TORCH_HELD]


def torch_install_args(python):
    index = os.environ.get("TORCH_INDEX_URL")
    if index is None and platform.system() == "Linux" and reachable(TORCH_CPU_INDEX):
        index = TORCH_CPU_INDEX
    # Newest only where the build stays CPU-only: PyPI's newest Linux build bundles CUDA.
    newest = pins() == "none" and (index or platform.system() != "Linux")
    torch = "torch" if newest else "torch==" + locked_version("torch")
    args = [python, "-m", "pip", "install", "-qq", torch]
    args += ["--upgrade"] if pins() == "none" else ["-c", LOCK]
    if index:
        # An extra index for torch only. Its "+cpu" build sorts above the plain
        # release of the same version, so pip picks the CPU build.
        args += ["--extra-index-url", index]
    return args


def hold_torch(python):
    """Write TORCH_HELD: torch at the version installed in .venv (PINS=none only)."""
    version = subprocess.check_output(
        [python, "-c", "import importlib.metadata as m; print(m.version('torch'))"])
    with open(TORCH_HELD, "w") as handle:
        handle.write("torch==%s\n" % version.decode().strip().split("+")[0])


def install_course(python):
    """The venv, pip, torch and the course's helper library with its dependencies."""
    if not os.path.exists(python):
        run([sys.executable, "-m", "venv", VENV])
    run([python, "-m", "pip", "install", "-qq", "--upgrade", "pip"])
    run(torch_install_args(python))
    if pins() == "none":
        hold_torch(python)
    run([python, "-m", "pip", "install", "-qq", "-e", ROOT] + pinning_args())


def install_test_tools(python):
    """The test and browser extras; nbgrader's Jupyter extensions switched off."""
    if pins() == "none":
        hold_torch(python)
    run([python, "-m", "pip", "install", "-qq", "-e", ROOT + "[test,browser]"] + pinning_args())
    run_quietly([python, "-m", "jupyter", "server", "extension", "disable", "--sys-prefix"]
                + NBGRADER_SERVER_EXTENSIONS)
    run_quietly([python, "-m", "jupyter", "labextension", "disable", "--level=sys_prefix",
                 NBGRADER_LAB_EXTENSION])


def write(stamp, wanted):
    with open(stamp, "w") as handle:
        handle.write(wanted + "\n")


def main(test=False):
    if sys.version_info < MIN_PYTHON:
        fail(
            "the course needs Python %d.%d or newer, and '%s' is Python %s.\n"
            "Install a newer Python (python.org, your package manager, or conda: "
            "'conda env create -f environment.yml') and run make again, or point make "
            "at it: make PYTHON=/path/to/python3.11 test"
            % (MIN_PYTHON + (sys.executable, platform.python_version()))
        )
    wanted = fingerprint()
    python = venv_python()
    if not up_to_date(STAMP, wanted):
        print("Setting up the course environment in .venv (first run takes a few minutes; "
              "%s=%s)..." % (PINS_ENV, pins()))
        install_course(python)
        write(STAMP, wanted)
        print("Course environment ready: " + VENV)
    if test and not up_to_date(TEST_STAMP, fingerprint(test=True)):
        print("Adding the test tools (pytest, nbgrader, Playwright, ...) to .venv...")
        install_test_tools(python)
        write(TEST_STAMP, fingerprint(test=True))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments not in ([], ["--test"]):
        fail("unknown arguments %s; usage: python3 tools/bootstrap.py [--test]" % arguments)
    main(test=arguments == ["--test"])
