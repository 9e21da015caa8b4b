"""The library's layers: every module imports only from its own layer and the ones below.

foundation < arithmetic < torch < figures < explorers. checks/ sits beside figures and may
use foundation, arithmetic and torch, never figures or explorers. The arithmetic layer
imports no torch, matplotlib or ipywidgets, so the cost lessons load in well under a second.

A new module must be placed in LAYERS, which is the one map of the library's structure.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "course_lib"

FOUNDATION, ARITHMETIC, TORCH, FIGURES, EXPLORERS, CHECKS = range(6)
LAYER_NAMES = ("foundation", "arithmetic", "torch", "figures", "explorers", "checks")

LAYERS: dict[str, int] = {
    # foundation: standard library and numpy
    "references": FOUNDATION,
    "validate": FOUNDATION,
    "runtime": FOUNDATION,
    "formatting": FOUNDATION,
    "outline": FOUNDATION,
    "claims": FOUNDATION,  # notebook claims checked where they are stated
    # arithmetic: numpy and the standard library, never torch, matplotlib or ipywidgets
    "shapes": ARITHMETIC,
    "stats": ARITHMETIC,
    "flops": ARITHMETIC,
    "utilisation": ARITHMETIC,
    "training_config": ARITHMETIC,
    "scaling": ARITHMETIC,
    "costs": ARITHMETIC,
    "devices": ARITHMETIC,
    "payback": ARITHMETIC,
    "roofline": ARITHMETIC,
    "energy": ARITHMETIC,
    "scaleout": ARITHMETIC,
    "traffic": ARITHMETIC,  # requests, arrivals, percentiles, Little's law, goodput
    "scheduler": ARITHMETIC,  # the serving loop and its batching policies
    "serving_sim": ARITHMETIC,  # the simulated server, capacity, speculative expectation
    "serving": ARITHMETIC,  # the price of a token: serving cost from the roofline
    "serving_cost": ARITHMETIC,
    "serving_lifecycle": ARITHMETIC,
    "serving_calibration": ARITHMETIC,
    # torch: models, data, training, inference, compression, probes of this machine
    "data": TORCH,
    "model": TORCH,
    "counting": TORCH,
    "inference": TORCH,
    "training": TORCH,
    "checkpoints": TORCH,
    "probes": TORCH,
    "quantize": TORCH,
    "prune": TORCH,
    "compression": TORCH,
    "distill": TORCH,
    "launcher": TORCH,
    "data_parallel": TORCH,
    "serving_loop": TORCH,  # TinyGPT served for real: slots, ragged decode step
    "speculative": TORCH,
    # figures: matplotlib over the layers below
    "figures.base": FIGURES,
    "figures.training": FIGURES,
    "figures.inference": FIGURES,
    "figures.scaling": FIGURES,
    "figures.costs": FIGURES,
    "figures.compression": FIGURES,
    "figures.hardware": FIGURES,
    "figures.scaleout": FIGURES,
    "figures.serving_load": FIGURES,
    "figures.serving": FIGURES,
    # explorers: ipywidgets over the figures
    "explorers.base": EXPLORERS,
    "explorers.scaling": EXPLORERS,
    "explorers.costs": EXPLORERS,
    "explorers.compression": EXPLORERS,
    "explorers.hardware": EXPLORERS,
    "explorers.scaleout": EXPLORERS,
    "explorers.serving": EXPLORERS,
    "answers": EXPLORERS,  # worked problems' answers, displayed folded away (IPython)
    "source": EXPLORERS,  # notebook display helper (IPython)
    "envcheck": EXPLORERS,  # shows a widget to prove the widget manager works
}
HEAVY = ("torch", "matplotlib", "ipywidgets")
FORBIDDEN_BELOW_TORCH = HEAVY + ("IPython", "tqdm")


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(name: str) -> int:
    if name == "checks" or name.startswith("checks."):
        return CHECKS
    return LAYERS[name]


def library_modules() -> list[str]:
    names = [module_name(p) for p in sorted(LIB.rglob("*.py"))]
    return [n for n in names if n and n not in {"figures", "explorers"}]


def imports(name: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function?) for every import in module `name`."""
    path = LIB / (name.replace(".", "/") + ".py")
    if not path.exists():
        path = LIB / name.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text())
    found = []
    functions = [n for n in ast.walk(tree)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    nested = {id(inner) for f in functions for inner in ast.walk(f) if inner is not f}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "course_lib":
                targets = [f"course_lib.{alias.name}" for alias in node.names]
            elif node.module.startswith("course_lib.checks"):
                targets = ["course_lib.checks"]
            else:
                targets = [node.module]
        for target in targets:
            found.append((target, node.lineno, id(node) in nested))
    return found


def allowed(importer: int, imported: int) -> bool:
    if importer == CHECKS:
        return imported in (FOUNDATION, ARITHMETIC, TORCH, CHECKS)
    if imported == CHECKS:
        return False
    return imported <= importer


@pytest.mark.parametrize("name", library_modules())
def test_every_module_has_a_layer_and_a_docstring(name):
    assert name == "checks" or name.startswith("checks.") or name in LAYERS, (
        f"course_lib.{name} is not placed in tests/test_layers.py's LAYERS: give it a layer")
    path = LIB / (name.replace(".", "/") + ".py")
    if not path.exists():
        path = LIB / name.replace(".", "/") / "__init__.py"
    assert ast.get_docstring(ast.parse(path.read_text())), (
        f"course_lib.{name} needs a docstring saying what it holds")


@pytest.mark.parametrize("name", library_modules())
def test_imports_go_only_downwards(name):
    mine = layer_of(name)
    for target, line, inside in imports(name):
        if target.startswith("course_lib."):
            other = target.removeprefix("course_lib.")
            if other not in LAYERS and not other.startswith("checks"):
                other = other.rsplit(".", 1)[0]  # `from course_lib.figures import base`
            theirs = layer_of(other)
            assert allowed(mine, theirs), (
                f"course_lib.{name} ({LAYER_NAMES[mine]}) imports course_lib.{other} "
                f"({LAYER_NAMES[theirs]}) at line {line}: a module may import only from its "
                f"own layer and the layers below it")
        elif mine < TORCH and not inside:  # a commented lazy import of torch is allowed
            top = target.split(".")[0]
            assert top not in FORBIDDEN_BELOW_TORCH, (
                f"course_lib.{name} ({LAYER_NAMES[mine]}) imports {target} at line {line}")


@pytest.mark.parametrize("name", library_modules())
def test_no_import_of_the_library_inside_a_function(name):
    late = [(target, line) for target, line, inside in imports(name)
            if inside and target.startswith("course_lib")]
    assert not late, (f"course_lib.{name} imports {late} inside a function: import at the "
                      f"top, and if that makes a cycle, the layers are wrong")


def test_arithmetic_modules_load_no_heavy_library():
    names = [n for n, layer in LAYERS.items() if layer <= ARITHMETIC]
    code = ("import sys\n" + "".join(f"import course_lib.{n}\n" for n in names)
            + f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "[]", f"importing the arithmetic layer loaded {out}"



MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


@pytest.mark.parametrize("name", library_modules())
def test_modules_and_functions_stay_readable_in_one_sitting(name):
    """Modules of at most about 400 lines (the references table aside); functions of at most
    50, unless a notebook shows one whole to teach it and its docstring says so."""
    path = LIB / (name.replace(".", "/") + ".py")
    if not path.exists():
        path = LIB / name.replace(".", "/") / "__init__.py"
    source = path.read_text()
    if name != "references":
        lines = len(source.splitlines())
        assert lines <= MAX_MODULE_LINES, f"course_lib.{name} has {lines} lines: split it"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            shown = "shown whole in notebook" in (ast.get_docstring(node) or "").lower()
            assert length <= MAX_FUNCTION_LINES or shown, (
                f"course_lib.{name}.{node.name} is {length} lines long: split it, or say in "
                f"its docstring that a notebook shows it whole")
