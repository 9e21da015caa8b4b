"""Generate the learners' exercise notebooks from the instructor versions.

    make student-exercises                          write exercises/NN_topic.ipynb
    python tools/make_student_exercises.py --check  exit 1 if a committed one is out of date

The instructor versions in exercises/solutions/ are the only source: each solution sits
between `### BEGIN SOLUTION` and `### END SOLUTION` lines (the nbgrader convention). The
student version replaces each such block with a placeholder that raises
NotImplementedError, at the block's indentation, and drops every output. Edit the
instructor version, then run this script; never edit a student version by hand.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "exercises"
SOLUTIONS = EXERCISES / "solutions"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = ("# YOUR CODE HERE", 'raise NotImplementedError("Your answer here")')


def strip_solutions(source: str, where: str = "cell") -> str:
    """`source` with every solution block replaced by the placeholder lines."""
    out: list[str] = []
    indent: str | None = None  # the open block's indentation, None outside a block
    for number, line in enumerate(source.splitlines(), 1):
        marker = line.strip()
        if marker == BEGIN:
            if indent is not None:
                raise ValueError(f"{where}, line {number}: {BEGIN} inside another block")
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + text for text in PLACEHOLDER)
        elif marker == END:
            if indent is None:
                raise ValueError(f"{where}, line {number}: {END} without {BEGIN}")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise ValueError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(out)


def student_version(instructor: nbformat.NotebookNode, name: str = "notebook"
                    ) -> nbformat.NotebookNode:
    """A copy of the instructor notebook with solutions replaced and no outputs."""
    notebook = copy.deepcopy(instructor)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"{name}, cell {index}")
            cell.outputs = []
            cell.execution_count = None
        elif BEGIN in cell.source:
            raise ValueError(f"{name}, cell {index}: solution markers belong in code cells")
    return notebook


def render(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def pairs() -> list[tuple[Path, Path]]:
    """(instructor version, student version) for every exercise set."""
    return [(path, EXERCISES / path.name) for path in sorted(SOLUTIONS.glob("[0-9]*.ipynb"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a student version is out of date")
    args = parser.parse_args(argv)
    stale = []
    for source, target in pairs():
        text = render(student_version(nbformat.read(source, as_version=4), source.name))
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.relative_to(ROOT))
        elif not target.exists() or target.read_text() != text:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print("out of date (run `make student-exercises`): " + ", ".join(map(str, stale)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
