"""Notebook 00's environment checks and roadmap."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell, new_notebook

from course_lib import envcheck, outline, runtime


def test_all_checks_pass_in_the_course_environment():
    failed = [c for c in envcheck.run_all() if not c.ok]
    assert not failed, failed


def test_missing_widget_manager_is_explained(tmp_path):
    check = envcheck.check_widgets(prefixes=(tmp_path,))
    assert not check.ok
    assert "widget manager is missing" in check.message and "jupyterlab_widgets" in check.message


def test_unwritable_cache_is_explained(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "file" / "cache"))
    check = envcheck.check_cache()
    assert not check.ok and runtime.CACHE_ENV in check.message


def test_report_marks_problems():
    report = envcheck.report_markdown([envcheck.Check("A", True, "fine"),
                                       envcheck.Check("B", False, "broken: do X")])
    assert "| A | OK | fine |" in report and "| B | **PROBLEM** | broken: do X |" in report


def test_widget_demo_reacts_to_the_slider():
    box = envcheck.widget_demo()
    slider, answer = box.children
    slider.value = 7
    assert "at 7" in answer.value and "49" in answer.value


def write(folder: Path, name: str, first_cell: str) -> None:
    nbformat.write(new_notebook(cells=[new_markdown_cell(first_cell)]), folder / name)


def test_outline_reads_title_time_and_summary(tmp_path):
    write(tmp_path, "01_b.ipynb", "# 01 · Second\n\n**Estimated time:** about 25 minutes.\n\n"
          "You do the second thing.")
    write(tmp_path, "00_a.ipynb", "# 00 · First\n\nYou start.\n\nEstimated time: 5 min")
    write(tmp_path, "notes.ipynb", "# not part of the sequence")
    infos = outline.course_notebooks(tmp_path)
    assert [i.title for i in infos] == ["00 · First", "01 · Second"]
    assert [i.minutes for i in infos] == [5, 25]
    assert infos[1].summary == "You do the second thing."
    table = outline.roadmap_markdown(tmp_path)
    assert "[00 · First](00_a.ipynb)" in table and "**30 min**" in table


def test_roadmap_rows_stay_on_one_line_when_the_summary_wraps(tmp_path):
    # A line break inside a Markdown table cell ends the row and breaks the table.
    write(tmp_path, "00_a.ipynb", "# 00 · First\n\nYou start here\nand go on there.\n\n"
          "**Estimated time:** about 5 minutes.")
    rows = outline.roadmap_markdown(tmp_path).splitlines()
    assert all(row.startswith("|") and row.endswith("|") for row in rows), rows
    assert "You start here and go on there." in rows[2]


def test_roadmap_adds_each_exercise_set_to_its_notebook(tmp_path):
    for folder, minutes in (("notebooks", 30), ("exercises", 20)):
        (tmp_path / folder).mkdir()
        write(tmp_path / folder, "01_b.ipynb", f"# 01 · B\n\nYou do it.\n\n"
              f"**Estimated time:** about {minutes} min.")
    rows = outline.roadmap_markdown(tmp_path / "notebooks").splitlines()
    assert rows[2].endswith("| 30 min | 20 min | 50 min |"), rows[2]
    assert rows[-1].endswith("| **30 min** | **20 min** | **50 min (about 1 hour)** |"), rows[-1]
