"""Worked problems' answers, folded away until the learner opens them, with their numbers
computed.

An answer typed into a markdown cell goes stale the day a cited reference changes; an
answer rendered by `show_answer` from the notebook's own variables cannot. Notebooks keep
the question in markdown (so the learner can predict first) and render the answer here.
Explorers layer: it displays through IPython.
"""

from __future__ import annotations

from IPython.display import Markdown, display

SUMMARY = "Answer (click to open)"


def answer_markdown(text: str, summary: str = SUMMARY) -> str:
    """The folded-away answer as Markdown: a <details> block around `text`."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be the answer, a non-empty string of Markdown")
    return f"<details>\n<summary>{summary}</summary>\n\n{text.strip()}\n\n</details>"


def show_answer(text: str, summary: str = SUMMARY) -> None:
    """Display a worked problem's answer, folded away (numbers formatted by the caller)."""
    display(Markdown(answer_markdown(text, summary)))
