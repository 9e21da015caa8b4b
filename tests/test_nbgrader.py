"""nbgrader on the exercise sets: release, autograde and feedback, as exercises/README.md says.

tools/grade_demo.py (the script behind `make grade-demo`) runs once, in a temporary course
directory: `nbgrader generate_assignment` for every set, two submissions per set made from the
release (every task right; one task with a common mistake), one `nbgrader autograde` for all of
them with strict checks, `nbgrader generate_feedback`. The tests read its marks from nbgrader's
gradebook and the feedback pages it wrote. Two notebook runs per set: 1-2 minutes on 2 cores
(eight sets: 110 s on a shared, busy machine, about 70 s of it CPU time).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_STAMP = ROOT / ".venv" / ".course-test-installed"

if importlib.util.find_spec("nbgrader") is None and not TEST_STAMP.exists():
    pytest.skip("nbgrader is not installed: it comes with the test extra that `make test` "
                "installs; environment.yml (Binder, conda) leaves it out", allow_module_level=True)


def _load_tool():
    spec = importlib.util.spec_from_file_location("grade_demo", ROOT / "tools" / "grade_demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


DEMO = _load_tool()
SETS = DEMO.sets()


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory) -> tuple[Path, dict]:
    """The course directory the round trip left, and its result (marks, seconds)."""
    folder = tmp_path_factory.mktemp("nbgrader")
    course, report = folder / "course", folder / "result.json"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "grade_demo.py"),
                             "--keep", str(course), "--json", str(report)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return course, json.loads(report.read_text())


def _checks(name: str) -> list:
    """The checks of set `name`, in task order (course_lib/checks/exNN.py)."""
    return importlib.import_module(f"course_lib.checks.ex{name[:2]}").CHECKS


@pytest.mark.parametrize("name", SETS)
def test_the_release_is_the_learners_version(round_trip, name):
    """nbgrader's release and `make student-exercises` hand learners the same cells."""
    course, _ = round_trip
    release = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    student = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    assert [c.source for c in release.cells] == [c.source for c in student.cells]


@pytest.mark.parametrize("name", SETS)
def test_every_task_right_gets_full_marks(round_trip, name):
    _, result = round_trip
    marks = result["marks"][name]["correct"]
    assert len(marks) == len(_checks(name)), f"one check cell per task: {marks}"
    assert all(points == 1 for points in marks.values()), marks


@pytest.mark.parametrize("name", SETS)
def test_a_common_mistake_loses_that_tasks_point_only(round_trip, name):
    _, result = round_trip
    mistake = DEMO.mistake_for(name)
    marks = result["marks"][name]["mistake"]
    assert marks[mistake.check] == 0, marks
    assert all(points == 1 for check, points in marks.items() if check != mistake.check), marks


@pytest.mark.parametrize("name", SETS)
def test_the_feedback_names_the_mistake(round_trip, name):
    course, _ = round_trip
    mistake = DEMO.mistake_for(name)
    title = _checks(name)[int(mistake.task.removeprefix("task")) - 1].title
    page = DEMO.feedback_text(course, name, "mistake")
    assert f"[try again] {title}: " in page
    assert mistake.words in page.split(f"[try again] {title}: ", 1)[1].split("\n", 1)[0]
    assert "[try again]" not in DEMO.feedback_text(course, name, "correct")


def test_the_guide_gives_the_commands_the_test_runs():
    guide = (ROOT / "exercises" / "README.md").read_text(encoding="utf-8")
    assert DEMO.CONFIG in guide, "exercises/README.md must show tools/grade_demo.py's CONFIG"
    for command in DEMO.COMMANDS:
        assert command in guide, f"exercises/README.md does not give `{command}`"
    assert "make grade-demo" in guide
