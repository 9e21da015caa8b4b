"""The course's pinned versions: constraints.txt and environment.yml, written from a working .venv.

    make pins                          newest versions into .venv, every test, then this script
    .venv/bin/python tools/pins.py     write the pins from this environment as it is
    .venv/bin/python tools/pins.py --verify   exit 1 unless this environment matches the pins

constraints.txt pins every package that `pip install -e ".[test,browser]"` brings in, at the
version installed here (Linux, Python 3.11, the CPU build of PyTorch). tools/bootstrap.py installs
with it as pip constraints (`-c constraints.txt`), so `make lab` and `make test` get exactly these
versions. environment.yml (Binder, conda) pins the packages it lists to the same versions.
tests/test_environment.py fails when pyproject.toml, constraints.txt and environment.yml disagree.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
ENVIRONMENT = ROOT / "environment.yml"
EXTRAS = ("test", "browser")
# conda-forge names that differ from the PyPI names.
CONDA_TO_PIP = {"pytorch-cpu": "torch"}
# One environment.yml dependency line: "  - name<spec>" (python and pip are not pinned here).
CONDA_LINE = re.compile(r"^(\s+- )([A-Za-z0-9_.\-]+)\s*([<>=!].*)?$")
NOT_PINNED = {"python", "pip"}
HEADER = """\
# Pinned versions for the course: every package `pip install -e ".[test,browser]"` brings in,
# as `make test` last passed with them (Linux, Python 3.11, PyTorch's CPU build).
# Used as pip constraints: tools/bootstrap.py runs `pip install -c constraints.txt ...`.
# torch is pinned without its local label: on Linux bootstrap takes the CPU build (2.x.y+cpu)
# from PyTorch's CPU index, which satisfies torch==2.x.y.
# Written by tools/pins.py (`make pins`); do not edit by hand.
"""


def public(version: str) -> str:
    """The version without a local label: "2.13.0+cpu" -> "2.13.0"."""
    return version.split("+", 1)[0]


def project_requirements(extras: tuple[str, ...] = EXTRAS) -> list[Requirement]:
    """pyproject.toml's dependencies and those of `extras` (read from the file: an editable
    install's metadata keeps the list it was installed with)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [line for extra in extras
                                       for line in project["optional-dependencies"][extra]]
    return [Requirement(line) for line in lines]


def installed_closure(extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """{canonical name: installed version} of every distribution the course with `extras`
    needs here. Markers are evaluated for this interpreter and platform."""
    found: dict[str, str] = {}
    wanted: dict[str, set[str]] = {}
    todo = [(r.name, set(r.extras)) for r in project_requirements(extras)
            if r.marker is None or r.marker.evaluate()]
    while todo:
        name, requested = todo.pop()
        key = canonicalize_name(name)
        if key in wanted and requested <= wanted[key]:
            continue
        wanted[key] = wanted.get(key, set()) | requested
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is needed but not installed in {sys.prefix}") from None
        found[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra})
                                     for extra in wanted[key] | {""}):
                todo.append((requirement.name, set(requirement.extras)))
    return found


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """{canonical name: version} from constraints.txt."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def lock_text(versions: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={public(versions[name])}\n" for name in sorted(versions))


def _package_lines(text: str) -> list[tuple[str, re.Match | None]]:
    """Each line of environment.yml, with its match if it names a conda package to pin."""
    found, section = [], None
    for line in text.splitlines():
        if line and not line[0].isspace():
            section = line.split(":", 1)[0]
        match = CONDA_LINE.match(line) if section == "dependencies" else None
        found.append((line, match if match and match.group(2) not in NOT_PINNED else None))
    return found


def conda_pins(text: str) -> dict[str, str]:
    """{canonical PyPI name: spec} of environment.yml's conda packages (python, pip left out)."""
    pins = {}
    for _, match in _package_lines(text):
        if match:
            name = CONDA_TO_PIP.get(match.group(2), match.group(2))
            pins[canonicalize_name(name)] = (match.group(3) or "").strip()
    return pins


def pin_environment(text: str, lock: dict[str, str]) -> str:
    """environment.yml's text with every conda package pinned (==) to the lock's version."""
    lines = []
    for line, match in _package_lines(text):
        if match:
            name = canonicalize_name(CONDA_TO_PIP.get(match.group(2), match.group(2)))
            if name not in lock:
                raise SystemExit(f"environment.yml lists {match.group(2)}, which the lock lacks")
            line = f"{match.group(1)}{match.group(2)}=={lock[name]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def differences(installed: dict[str, str], lock: dict[str, str]) -> list[str]:
    """How this environment differs from the lock, one line per package."""
    lines = [f"{name}: lock {lock[name]}, installed {public(installed[name])}"
             for name in sorted(set(lock) & set(installed))
             if public(installed[name]) != lock[name]]
    lines += [f"{name}: installed {installed[name]}, not in the lock"
              for name in sorted(set(installed) - set(lock))]
    lines += [f"{name}: lock {lock[name]}, not installed"
              for name in sorted(set(lock) - set(installed))]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", action="store_true",
                        help="write nothing; exit 1 unless this environment matches the lock")
    args = parser.parse_args(argv)
    installed = installed_closure()
    if args.verify:
        differ = differences(installed, read_lock())
        print("\n".join(differ) or f"{len(installed)} packages, all at the lock's versions")
        return 1 if differ else 0
    LOCK.write_text(lock_text(installed))
    ENVIRONMENT.write_text(pin_environment(ENVIRONMENT.read_text(), read_lock()))
    print(f"wrote {LOCK.name} ({len(installed)} packages) and pinned {ENVIRONMENT.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
