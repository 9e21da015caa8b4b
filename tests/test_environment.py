"""pyproject.toml (ranges), constraints.txt (the pins) and environment.yml (Binder, conda) agree.

pyproject.toml says which versions the course works with; constraints.txt pins the exact ones
`make lab` and `make test` install (tools/pins.py writes it, `make pins` refreshes it);
environment.yml pins the same ones for Binder and conda. Where `make test` set up .venv from
the pins, the installed versions are checked against them too.
"""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from the PyPI names in pyproject.toml.
CONDA_TO_PIP = {"pytorch-cpu": "torch"}
NOT_PACKAGES = {"python", "pip"}
# In the test extra, not in environment.yml: an instructor's tool (tests/test_nbgrader.py,
# `make grade-demo`) whose JupyterLab extensions Binder's learners should not see.
NOT_ON_BINDER = {"nbgrader"}


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PINS = load_tool("pins")
BOOTSTRAP = load_tool("bootstrap")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements(extras: tuple[str, ...] = ("test",)) -> dict[str, SpecifierSet]:
    """The course's requirements and those of `extras`; by default the test extra, which
    environment.yml mirrors ("browser", Playwright for tests/test_browser.py, stays out)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [line for extra in extras
                                       for line in project["optional-dependencies"][extra]]
    return {normalise(Requirement(line).name): Requirement(line).specifier for line in lines}


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_requirements() -> dict[str, SpecifierSet]:
    found = {}
    for entry in environment()["dependencies"]:
        if not isinstance(entry, str):
            continue  # the pip: section
        name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", entry).groups()
        if name in NOT_PACKAGES:
            continue
        found[normalise(CONDA_TO_PIP.get(name, name))] = SpecifierSet(spec.replace(" ", ""))
    return found


def test_same_packages_in_pyproject_and_environment_yml():
    pip, conda = set(pyproject_requirements()) - NOT_ON_BINDER, set(conda_requirements())
    assert pip == conda, (f"only in pyproject.toml: {sorted(pip - conda)}; "
                          f"only in environment.yml: {sorted(conda - pip)}")


def test_every_dependency_is_pinned_within_its_range():
    lock = PINS.read_lock()
    everything = pyproject_requirements(("test", "browser"))
    missing = sorted(set(everything) - set(lock))
    assert not missing, f"constraints.txt pins none of {missing}: run `make pins`"
    outside = {name: (lock[name], str(spec)) for name, spec in everything.items()
               if not spec.contains(lock[name], prereleases=True)}
    assert not outside, f"pinned outside pyproject.toml's range (pin, range): {outside}"


def test_environment_yml_pins_the_same_versions():
    lock = PINS.read_lock()
    differ = {name: (str(spec), lock.get(name)) for name, spec in conda_requirements().items()
              if str(spec) != f"=={lock.get(name)}"}
    assert not differ, f"environment.yml's pins differ from constraints.txt's: {differ}"


def test_pins_tool_writes_what_is_committed():
    """constraints.txt and environment.yml are tools/pins.py's output (no hand edits)."""
    lock = PINS.read_lock()
    assert (ROOT / "constraints.txt").read_text() == PINS.lock_text(lock)
    text = (ROOT / "environment.yml").read_text()
    assert PINS.pin_environment(text, lock) == text


def test_torch_is_pinned_for_the_cpu_build():
    """Without a local label, so that the CPU build (x.y.z+cpu) that bootstrap installs on
    Linux and PyPI's build elsewhere both satisfy the pin."""
    version = PINS.read_lock()["torch"]
    assert "+" not in version and Version(version) >= Version("2.4")
    assert BOOTSTRAP.locked_version("torch") == version


def test_setup_installs_from_the_pins_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv(BOOTSTRAP.PINS_ENV, raising=False)
    monkeypatch.setenv("TORCH_INDEX_URL", "")  # no index: nothing to reach over the network
    assert BOOTSTRAP.pinning_args() == ["-c", BOOTSTRAP.LOCK]
    assert "torch==" + PINS.read_lock()["torch"] in BOOTSTRAP.torch_install_args("python")
    pinned = BOOTSTRAP.fingerprint()
    monkeypatch.setenv(BOOTSTRAP.PINS_ENV, "none")
    assert BOOTSTRAP.pinning_args()[:3] == ["--upgrade", "--upgrade-strategy", "eager"]
    monkeypatch.setattr(BOOTSTRAP.platform, "system", lambda: "Linux")
    assert "torch==" + PINS.read_lock()["torch"] in BOOTSTRAP.torch_install_args("python"), (
        "newest torch only from a CPU index: PyPI's Linux build bundles CUDA")
    monkeypatch.setenv("TORCH_INDEX_URL", "https://example.invalid/whl/cpu")
    assert "torch" in BOOTSTRAP.torch_install_args("python")
    assert BOOTSTRAP.fingerprint() != pinned, "switching PINS must trigger a reinstall"
    monkeypatch.setenv(BOOTSTRAP.PINS_ENV, "newest")
    with pytest.raises(SystemExit):
        BOOTSTRAP.pins()


def test_installed_versions_equal_the_pins():
    """In the .venv `make test` set up from the pins: pip resolved exactly constraints.txt."""
    stamp = Path(BOOTSTRAP.TEST_STAMP)
    if Path(sys.prefix).resolve() != Path(BOOTSTRAP.VENV).resolve() or not stamp.exists():
        pytest.skip("runs in the .venv that `make test` sets up; this environment was made "
                    "another way")
    if BOOTSTRAP.pins() != "lock" or stamp.read_text().strip() != BOOTSTRAP.fingerprint(True):
        pytest.skip(".venv was set up with PINS=none, or before pyproject.toml, constraints.txt "
                    "or tools/bootstrap.py last changed: `make test` reinstalls it first")
    differ = PINS.differences(PINS.installed_closure(), PINS.read_lock())
    assert not differ, "installed versions differ from constraints.txt:\n" + "\n".join(differ)


def test_python_version_satisfies_requires_python():
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())
                            ["project"]["requires-python"])
    pins = [e for e in environment()["dependencies"]
            if isinstance(e, str) and e.startswith("python")]
    assert len(pins) == 1, "environment.yml must pin python exactly once"
    version = pins[0].split("=")[-1]
    assert version in requires, f"environment.yml's {pins[0]} is outside requires-python {requires}"


def test_conda_forge_only_and_cpu_only_pytorch():
    env = environment()
    assert env["channels"] == ["conda-forge"]
    names = [e.split(">")[0].split("=")[0].split("<")[0] for e in env["dependencies"]
             if isinstance(e, str)]
    assert "pytorch-cpu" in names, "Binder has no GPU: use conda-forge's CPU-only pytorch-cpu"
    assert not any(n in {"pytorch", "pytorch-gpu", "cudatoolkit", "cuda-version"} for n in names)


def test_widget_manager_majors_match_jupyterlab():
    """ipywidgets 8 renders in JupyterLab 4 only with jupyterlab_widgets 3 (else: text only).
    The pins lie within these ranges (test_every_dependency_is_pinned_within_its_range)."""
    reqs = pyproject_requirements()
    missing = {"ipywidgets", "jupyterlab", "jupyterlab-widgets"} - set(reqs)
    assert not missing, f"not listed (sliders would show as plain text): {sorted(missing)}"
    assert "8.0" in reqs["ipywidgets"] and "9.0" not in reqs["ipywidgets"]
    assert "4.0" in reqs["jupyterlab"] and "5.0" not in reqs["jupyterlab"]
    assert "3.0" in reqs["jupyterlab-widgets"] and "4.0" not in reqs["jupyterlab-widgets"]


def test_the_course_library_is_installed_on_binder():
    pip_section = next(e["pip"] for e in environment()["dependencies"] if isinstance(e, dict))
    assert "-e ." in pip_section
    assert "pip install --no-deps -e ." in (ROOT / "postBuild").read_text()
