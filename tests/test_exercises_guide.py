"""The instructor guide, exercises/README.md, lists every exercise set with its time."""

from __future__ import annotations

import re
from pathlib import Path

from course_lib import outline

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "exercises" / "README.md"
STUDENT_VERSIONS = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))
# A Markdown link's target: "[text](target)", an optional "#anchor" dropped.
LINK = re.compile(r"\]\(([^)\s#]*)[^)]*\)")


def local_links() -> list[str]:
    """Targets of the guide's links into the repository (web addresses and anchors left out)."""
    return [target for target in LINK.findall(GUIDE.read_text(encoding="utf-8"))
            if target and "://" not in target]


def test_guide_links_every_student_version():
    # That every link resolves is tests/test_links.py's job.
    assert STUDENT_VERSIONS, "no exercises/NN_*.ipynb found"
    targets = local_links()
    unlinked = [p.name for p in STUDENT_VERSIONS if p.name not in targets]
    assert not unlinked, f"exercises/README.md does not link {unlinked}"


def test_guide_gives_each_set_the_time_its_first_cell_states():
    rows = GUIDE.read_text(encoding="utf-8").splitlines()
    for path in STUDENT_VERSIONS:
        minutes = outline.describe(path).minutes
        row = next((line for line in rows if line.startswith("| [") and f"]({path.name})" in line),
                   None)
        assert row, f"exercises/README.md has no table row for {path.name}"
        assert row.rstrip().endswith(f"| {minutes} min |"), (
            f"exercises/README.md gives another time for {path.name} than its first cell "
            f"({minutes} min): {row}")
