"""Notebooks are committed clean: valid, no outputs, and with a kernelspec.

Outputs in git make diffs unreadable and can leak a machine's paths; a
missing kernelspec greets the learner with a kernel-picker dialog.
"""

import ast
from pathlib import Path

import nbformat
import pytest

from course_lib import outline

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = outline.every_notebook(ROOT)


def test_the_course_has_every_notebook_of_the_sequence():
    numbers = sorted(p.name[:2] for p in NOTEBOOKS if p.parent.name == "notebooks")
    assert numbers == [f"{n:02d}" for n in range(11)], f"notebooks 00-10 expected, found {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_valid_and_clean(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts committed"
    spec = notebook.metadata.get("kernelspec", {})
    assert spec.get("name") == "python3", f"{path.name}: kernelspec name must be python3"
    assert spec.get("display_name"), f"{path.name}: kernelspec needs a display_name"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.parent.name == "notebooks"],
                         ids=lambda p: p.name)
def test_notebook_states_title_and_estimated_time(path):
    """The course index (tools/build_course.py) reads both from the first cell."""
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "Estimated time" in first.source, f"{path.name}: first cell must give 'Estimated time'"


@pytest.mark.parametrize("info", outline.course_notebooks(), ids=lambda info: info.path.name)
def test_readme_lists_the_notebook_with_its_estimated_time(info):
    """The README's table is what a learner plans with: it must match the notebooks."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next((line for line in readme.splitlines()
                if f"(notebooks/{info.path.name})" in line), None)
    assert row, f"README.md has no row linking notebooks/{info.path.name}"
    cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
    extra = outline.exercise_minutes(info)
    assert cells[2:] == [f"{info.minutes} min", f"{extra} min" if extra else "-",
                         f"{info.minutes + (extra or 0)} min"], (
        f"README.md gives other times for {info.path.name} than its first cell and its "
        f"exercise set's ({info.minutes} min, {extra} min): {row}")


@pytest.mark.parametrize("info", [info for info in outline.course_notebooks()
                                  if (ROOT / "exercises" / info.path.name).exists()],
                         ids=lambda info: info.path.name)
def test_notebook_links_its_exercise_set(info):
    """A learner finishes a notebook and should find its exercises from there."""
    text = "".join(c.source for c in nbformat.read(info.path, as_version=4).cells
                   if c.cell_type == "markdown")
    assert f"](../exercises/{info.path.name})" in text, (
        f"{info.path.name} should link its exercise set ../exercises/{info.path.name}")


def definitions(path: Path) -> set[str]:
    """Names of the functions and classes a notebook's code cells define."""
    cells = nbformat.read(path, as_version=4).cells
    code = "\n".join(line for c in cells if c.cell_type == "code" for line in c.source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))
    return {node.name for node in ast.walk(ast.parse(code))
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def test_notebooks_import_code_instead_of_copying_it():
    # A helper defined twice drifts apart; the library is where shared code lives.
    library = set()
    for module in (ROOT / "course_lib").rglob("*.py"):
        library |= definitions_in_source(module.read_text())
    seen: dict[str, str] = {}
    for info in outline.course_notebooks():
        for name in definitions(info.path):
            assert name not in library, f"{info.path.name} defines {name}, which course_lib has"
            assert name not in seen, f"{name} is defined in {seen[name]} and {info.path.name}"
            seen[name] = info.path.name


def definitions_in_source(text: str) -> set[str]:
    """A module's public top-level functions and classes (methods may share a common name)."""
    return {node.name for node in ast.parse(text).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")}
