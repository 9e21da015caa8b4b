"""The nbgrader round trip on the exercise sets: release, autograde, feedback.

    make grade-demo                                  the round trip; prints the marks
    .venv/bin/python tools/grade_demo.py --keep DIR  the same, the course directory kept in DIR

It does what exercises/README.md tells an instructor to do, with the same nbgrader_config.py
(CONFIG) and the same commands (COMMANDS), in a temporary course directory:

1. source/NN_topic/NN_topic.ipynb for every set, copied from exercises/solutions/;
2. `nbgrader generate_assignment` for every set (release/: the learners' version);
3. two submissions per set, made from that release: "correct", every answer cell as the
   instructor version has it, and "mistake", the same with one task carrying a common mistake
   that the set's check names (MISTAKES);
4. `nbgrader autograde` for every set and both submissions, with COURSE_CHECKS_STRICT=1;
5. `nbgrader generate_feedback`: the HTML a learner gets back.

tests/test_nbgrader.py runs this script and checks that the correct submission gets full marks,
that the mistake loses exactly its task's point, and that the feedback names the mistake.
nbgrader comes with the course's test extra (`make test` installs it).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "exercises" / "solutions"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
STUDENTS = ("correct", "mistake")

# nbgrader_config.py of the course directory. The code stub is the one
# tools/make_student_exercises.py writes, so nbgrader's release is exercises/NN_topic.ipynb.
CONFIG = """c = get_config()
c.CourseDirectory.course_id = "training-vs-inference"
c.ClearSolutions.code_stub = {
    "python": '# YOUR CODE HERE\\nraise NotImplementedError("Your answer here")'}
c.Execute.timeout = 300
"""
# Run in the course directory, in this order. "*" is every set; strict checks raise, so a
# check that does not pass scores 0.
COMMANDS = (
    'nbgrader generate_assignment "*"',
    'COURSE_CHECKS_STRICT=1 nbgrader autograde "*"',
    'nbgrader generate_feedback "*"',
)


@dataclass(frozen=True)
class Mistake:
    """A common mistake in one task: `wrong` replaces `right` in that task's answer cell, and
    the check's feedback contains `words`. None of them is reused by a later task."""

    task: str
    right: str
    wrong: str
    words: str

    @property
    def check(self) -> str:
        """The grade id of the check cell that marks this task."""
        return self.task.replace("task", "check")


MISTAKES = {
    "01": Mistake("task1", "return 2 * n_in * n_out * tokens", "return n_in * n_out * tokens",
                  "multiply-adds"),
    "02": Mistake("task5", 'gpu_hours") * 3600', 'gpu_hours")', "3600"),
    "03": Mistake("task1", "2 * references.value", "references.value", "multiply-adds"),
    "04": Mistake("task4", "return n, tokens_per_param * n", "return tokens_per_param * n, n",
                  "swapped"),
    "05": Mistake("task4", "days * serving_usd_per_day", "serving_usd_per_day + 0 * days",
                  "per-day"),
    "06": Mistake("task1", "* bits / 8", "* bits", "bits"),
    "07": Mistake("task4", "* BYTES_PER_WEIGHT[PHONE_PRECISION]", "* 4", "bits"),
    "08": Mistake("task3", 'v("epoch2025.total_params") * FP8',
                  'v("epoch2025.active_params") * FP8', "only the active parameters"),
    "09": Mistake("task1", "MEAN_IN_SYSTEM / ARRIVAL_RATE", "MEAN_IN_SYSTEM * ARRIVAL_RATE",
                  "You multiplied"),
}


def sets() -> list[str]:
    """Every exercise set's name, e.g. "01_two_demands"."""
    return [path.stem for path in sorted(SOLUTIONS.glob("[0-9]*.ipynb"))]


def make_course(course: Path) -> None:
    """A course directory: nbgrader_config.py and source/NN_topic/NN_topic.ipynb per set."""
    (course / "nbgrader_config.py").write_text(CONFIG)
    for name in sets():
        (course / "source" / name).mkdir(parents=True)
        shutil.copy(SOLUTIONS / f"{name}.ipynb", course / "source" / name)


def answers(name: str) -> dict[str, str]:
    """The instructor version's answer cells, by grade id, without the solution markers."""
    notebook = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]:
            "\n".join(line for line in cell.source.splitlines() if line.strip() not in MARKERS)
            for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("solution")}


def mistake_for(name: str) -> Mistake:
    """The common mistake the demo makes in set `name`."""
    if name[:2] not in MISTAKES:
        raise KeyError(f"set {name} has no entry in MISTAKES in {__file__}: add one (a task "
                       f"no later task reuses, and words its check's feedback contains)")
    return MISTAKES[name[:2]]


def with_mistake(name: str, source: str) -> str:
    """`source`, the answer to the task MISTAKES names, with its common mistake."""
    mistake = mistake_for(name)
    if source.count(mistake.right) != 1:
        raise ValueError(f"{name}, {mistake.task}: the answer no longer contains "
                         f"{mistake.right!r} exactly once; update MISTAKES in {__file__}")
    return source.replace(mistake.right, mistake.wrong)


def submit(course: Path, name: str, student: str) -> None:
    """submitted/<student>/<set>/: nbgrader's release with every answer cell filled in."""
    notebook = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    filled = answers(name)
    for cell in notebook.cells:
        task = cell.metadata.get("nbgrader", {}).get("grade_id")
        if task in filled:
            cell.source = filled[task]
            if student == "mistake" and task == mistake_for(name).task:
                cell.source = with_mistake(name, cell.source)
    folder = course / "submitted" / student / name
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{name}.ipynb")


def run(command: str, course: Path) -> None:
    """One of COMMANDS, in the course directory (its NAME=value words set variables)."""
    words, env = shlex.split(command), dict(os.environ)
    while "=" in words[0]:
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    print(f"$ {command}", flush=True)
    result = subprocess.run(words, cwd=course, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{command}` failed (exit {result.returncode}):\n"
                           + result.stderr[-3000:])


def marks(course: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Points per check cell: {set: {student: {"check1": 1.0, ...}}}, from nbgrader's database."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    # Imported here: nbgrader is in the test extra only, and this script is its one user.
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for name in sets():
            checks = [cell.name for cell in gradebook.find_notebook(name, name).grade_cells]
            found[name] = {student: {check: gradebook.find_grade(check, name, name,
                                                                 student).score
                                     for check in sorted(checks)}
                           for student in STUDENTS}
    return found


def feedback_text(course: Path, name: str, student: str) -> str:
    """The feedback page nbgrader made for a submission, as text (tags and escapes removed)."""
    page = (course / "feedback" / student / name / f"{name}.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def round_trip(course: Path) -> dict:
    """Every step, in `course` (an empty folder): marks, feedback words found, seconds."""
    start = time.perf_counter()
    make_course(course)
    run(COMMANDS[0], course)
    for name in sets():
        for student in STUDENTS:
            submit(course, name, student)
    for command in COMMANDS[1:]:
        run(command, course)
    found = marks(course)
    named = {name: mistake_for(name).words in feedback_text(course, name, "mistake")
             for name in sets()}
    return {"marks": found, "feedback_names_mistake": named,
            "seconds": round(time.perf_counter() - start, 1)}


def table(result: dict) -> str:
    """The marks as a Markdown table, one row per set."""
    rows = ["| set | correct | with a mistake | mistake (task) | feedback names it |",
            "|---|---|---|---|---|"]
    for name, by_student in result["marks"].items():
        mistake = mistake_for(name)
        total = {student: sum(points.values()) for student, points in by_student.items()}
        possible = len(by_student["correct"])
        lost = [check for check, points in by_student["mistake"].items() if points == 0]
        rows.append(f"| {name} | {total['correct']:g} / {possible} | "
                    f"{total['mistake']:g} / {possible} (0 for {', '.join(lost) or 'none'}) | "
                    f"\"{mistake.words}\" ({mistake.task}) | "
                    f"{'yes' if result['feedback_names_mistake'][name] else 'NO'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="make the course directory here and keep it")
    parser.add_argument("--json", type=Path, help="also write the marks to this JSON file")
    args = parser.parse_args(argv)
    # nbgrader, and the `alembic` command its gradebook runs, from this Python's environment
    # (the course's .venv), as with the .venv active. This script's own process only.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                          os.environ.get("PATH", "")])
    with tempfile.TemporaryDirectory(prefix="grade-demo-") as scratch:
        course = args.keep or Path(scratch) / "course"
        if course.exists() and any(course.iterdir()):
            parser.error(f"{course} is not empty")
        course.mkdir(parents=True, exist_ok=True)
        result = round_trip(course.resolve())
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"round trip: {result['seconds']:.0f} s"
          + (f"; course directory kept in {args.keep}" if args.keep else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
