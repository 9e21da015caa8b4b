"""Worked problems' answers state numbers the notebook computed, never numbers typed by hand.

An answer typed into a markdown <details> block goes stale the day a cited reference changes.
So in a converted notebook a worked problem is a markdown question and a code cell calling
`answers.show_answer(f"...")`, whose numbers the f-string formats from the notebook's own
variables. The rule checked here: no markdown <details> block of a converted notebook holds a
number of two or more digits (notebook numbers such as "notebook 07", years and arXiv ids
aside: they are names, not results). One-digit numbers stay allowed for the formula constants
that teach ("2 bytes per parameter", "6 N D").

CONVERTED lists the notebooks that follow the rule; a notebook joins it once its answers are
rendered. NOT_YET lists the others, so that a new notebook must be placed in one of the two.
Every course notebook follows the rule now, so NOT_YET is empty; it stays for a new notebook
drafted before its answers are rendered.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from course_lib import answers, outline

ROOT = Path(__file__).resolve().parent.parent
CONVERTED = {"00_start_here", "01_two_demands", "02_training_a_tiny_model",
             "03_running_inference", "04_how_compute_scales", "05_when_inference_dominates",
             "06_making_inference_cheaper", "07_hardware", "08_the_price_of_a_token",
             "09_serving_many_users", "10_beyond_one_machine"}
NOT_YET: set[str] = set()

DETAILS = re.compile(r"<details>(.*?)</details>", re.DOTALL | re.IGNORECASE)
NAMES = re.compile(r"notebooks?\s+\d{2}(?:\s*(?:-|to|and)\s*\d{2})?|\b\d{2}_\w+"
                   r"|\b(?:19|20)\d\d\b|\b\d{4}\.\d{4,5}\b", re.IGNORECASE)
NUMBER = re.compile(r"\d[\d,.]*\d")


def typed_numbers(markdown: str) -> list[str]:
    """The numbers of two or more digits inside the markdown's <details> blocks."""
    found = []
    for block in DETAILS.findall(markdown):
        found += NUMBER.findall(NAMES.sub(" ", block))
    return found


def notebook(stem: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)


def test_the_rule_finds_typed_results_and_spares_names():
    assert typed_numbers("<details><summary>A</summary>\n\nabout 1,014x, 3.8e25 and 42%"
                         "</details>") == ["1,014", "3.8", "25", "42"]
    assert typed_numbers("<details>see notebook 07 and notebooks 05-07, 01_two_demands, "
                         "Hoffmann 2022, arXiv:2203.15556; 6 N D, 2 bytes</details>") == []
    assert typed_numbers("outside a block: 175 billion") == []


def test_every_notebook_is_either_converted_or_listed_as_not_yet():
    stems = {info.path.stem for info in outline.course_notebooks()}
    assert not CONVERTED & NOT_YET
    assert stems == CONVERTED | NOT_YET, (
        f"place these in CONVERTED or NOT_YET: {sorted(stems ^ (CONVERTED | NOT_YET))}")


@pytest.mark.parametrize("stem", sorted(CONVERTED))
def test_a_converted_notebook_types_no_result_into_an_answer(stem):
    for cell in notebook(stem).cells:
        if cell.cell_type == "markdown":
            assert not typed_numbers(cell.source), (
                f"{stem}: a <details> answer states {typed_numbers(cell.source)}: render it with "
                f"answers.show_answer(f'...') from the notebook's variables instead")


@pytest.mark.parametrize("stem", sorted(CONVERTED))
def test_rendered_answers_take_their_numbers_from_variables(stem):
    calls = [node for cell in notebook(stem).cells if cell.cell_type == "code"
             for node in ast.walk(ast.parse(cell.source))
             if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "show_answer"]
    for call in calls:
        text = call.args[0]
        assert isinstance(text, ast.Name) or any(
            isinstance(part, ast.FormattedValue) for part in ast.walk(text)), (
            f"{stem}: show_answer is given a fixed string; format its numbers from variables")


def test_show_answer_folds_the_answer_away():
    text = answers.answer_markdown("It is 42.")
    assert text.startswith("<details>") and text.endswith("</details>")
    assert "It is 42." in text and answers.SUMMARY in text
    with pytest.raises(ValueError, match="non-empty"):
        answers.answer_markdown("  ")
