"""Notebooks are committed clean: valid, no outputs, and with a kernelspec.

Outputs in git make diffs unreadable and can leak a machine's paths; a
missing kernelspec greets the learner with a kernel-picker dialog.
"""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for folder in ("notebooks", "exercises")
                   for p in (ROOT / folder).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)


def test_the_course_has_its_first_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"00_start_here.ipynb", "01_two_demands.ipynb"} <= names


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
