"""environment.yml (Binder, conda) and pyproject.toml (make) must describe the same course."""

import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from the PyPI names in pyproject.toml.
CONDA_TO_PIP = {"pytorch-cpu": "torch"}
NOT_PACKAGES = {"python", "pip"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements() -> dict[str, SpecifierSet]:
    """The course's and the tests' requirements; the "browser" extra (Playwright, only for
    tests/test_browser.py, installed by `make test`) stays out of the learners' environment."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["test"]
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


def test_same_packages_in_both_files():
    pip, conda = pyproject_requirements(), conda_requirements()
    assert set(pip) == set(conda), (
        f"only in pyproject.toml: {sorted(set(pip) - set(conda))}; "
        f"only in environment.yml: {sorted(set(conda) - set(pip))}"
    )


def test_same_version_bounds_in_both_files():
    pip, conda = pyproject_requirements(), conda_requirements()
    differ = {name: (str(pip[name]), str(conda[name])) for name in pip
              if name in conda and pip[name] != conda[name]}
    assert not differ, f"version bounds differ (pyproject, environment.yml): {differ}"


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
    """ipywidgets 8 renders in JupyterLab 4 only with jupyterlab_widgets 3 (else: text only)."""
    for reqs in (pyproject_requirements(), conda_requirements()):
        missing = {"ipywidgets", "jupyterlab", "jupyterlab-widgets"} - set(reqs)
        assert not missing, f"not listed (sliders would show as plain text): {sorted(missing)}"
        assert "8.0" in reqs["ipywidgets"] and "9.0" not in reqs["ipywidgets"]
        assert "4.0" in reqs["jupyterlab"] and "5.0" not in reqs["jupyterlab"]
        assert "3.0" in reqs["jupyterlab-widgets"] and "4.0" not in reqs["jupyterlab-widgets"]


def test_the_course_library_is_installed_on_binder():
    pip_section = next(e["pip"] for e in environment()["dependencies"] if isinstance(e, dict))
    assert "-e ." in pip_section
    assert "pip install --no-deps -e ." in (ROOT / "postBuild").read_text()
