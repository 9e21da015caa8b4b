"""The course's sequence, read from the notebooks themselves.

Each notebook's first cell is the source of truth for its title, its
estimated time and its one-paragraph summary; the roadmap in notebook 00
and the index page of `make course` are both built from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
_MINUTES = re.compile(r"Estimated time[^0-9]*(\d+)\s*min", re.IGNORECASE)


@dataclass(frozen=True)
class NotebookInfo:
    path: Path
    title: str
    minutes: int | None
    summary: str


def _first_markdown(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] == "markdown":
            return "".join(cell["source"])
    return ""


def describe(path: Path) -> NotebookInfo:
    """Title (first '# ' line), minutes ('Estimated time: ... N min') and first paragraph."""
    text = _first_markdown(path)
    lines = text.splitlines()
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), path.stem)
    minutes = _MINUTES.search(text)
    paragraphs = [p.strip() for p in text.split("\n\n")]
    summary = next((p for p in paragraphs if p and not p.startswith(("#", "**Estimated",
                                                                       "Estimated", "-", "|"))),
                   "")
    # One line: the summary goes into a Markdown table cell, where a line break ends the row.
    summary = " ".join(summary.split())
    return NotebookInfo(path, title, int(minutes.group(1)) if minutes else None, summary)


def course_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[NotebookInfo]:
    """Every numbered notebook (NN_name.ipynb) in order."""
    return [describe(path) for path in sorted(folder.glob("[0-9][0-9]_*.ipynb"))]


def every_notebook(root: Path = ROOT) -> list[Path]:
    """The course's and the exercises' notebooks (solutions included), without the
    .ipynb_checkpoints copies JupyterLab saves next to a notebook a learner opened."""
    return sorted(path for folder in ("notebooks", "exercises")
                  for path in (root / folder).rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in path.parts)


def exercise_minutes(info: NotebookInfo) -> int | None:
    """Minutes of the notebook's exercise set (exercises/ beside notebooks/), if it has one."""
    path = info.path.parent.parent / "exercises" / info.path.name
    return describe(path).minutes if path.exists() else None


def roadmap_markdown(folder: Path = NOTEBOOKS_DIR) -> str:
    """A Markdown table of the sequence with relative links, for display in a notebook: each
    notebook's time, its exercise set's, and the two together."""
    rows = ["| notebook | what you do | time | exercises | with exercises |",
            "|---|---|---|---|---|"]
    total = exercises = 0
    for info in course_notebooks(folder):
        extra = exercise_minutes(info)
        total += info.minutes or 0
        exercises += extra or 0
        time = f"{info.minutes} min" if info.minutes else "?"
        both = f"{(info.minutes or 0) + (extra or 0)} min"
        rows.append(f"| [{info.title}]({info.path.name}) | {info.summary} | {time} | "
                    f"{f'{extra} min' if extra else '-'} | {both} |")
    hours = round((total + exercises) / 30) / 2
    rows.append(f"| **Total** | | **{total} min** | **{exercises} min** | "
                f"**{total + exercises} min (about {hours:g} hour{'' if hours == 1 else 's'})** |")
    return "\n".join(rows)
