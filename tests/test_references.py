"""course_lib.references: one cited table, and no published number typed anywhere else."""

import ast
import json
import math
from pathlib import Path

import pytest

from course_lib import outline, references

ROOT = Path(__file__).resolve().parent.parent


def test_every_entry_is_complete_and_finite():
    for entry in references.entries():
        assert entry.unit and entry.what and entry.source and entry.date, entry.key
        assert math.isfinite(entry.value) and entry.value > 0, entry.key
        assert entry.key.count(".") == 1, f"{entry.key}: keys are 'subject.quantity'"


def test_lookup_and_helpful_error():
    assert references.value("gpt3.params") == references.get("gpt3.params").value
    with pytest.raises(KeyError, match="gpt3.params"):
        references.get("gpt3.parameters")


def test_markdown_table_lists_the_entries():
    table = references.as_markdown("gpt3.")
    assert table.count("\n") == 1 + len(references.entries("gpt3."))
    assert "Brown et al. 2020" in table


def test_citation_carries_value_unit_and_source():
    text = references.get("h100_sxm.peak_flops").cite()
    assert "FLOP/s" in text and "NVIDIA" in text and "9.89e14" in text


def test_gpt3_compute_matches_six_n_d_within_a_few_percent():
    """The cited compute agrees with the 6ND rule the course teaches (a consistency check)."""
    six_nd = 6 * references.value("gpt3.params") * references.value("gpt3.training_tokens")
    assert six_nd == pytest.approx(references.value("gpt3.training_flops"), rel=0.01)


def distinctive(value: float) -> bool:
    """Numbers too specific to appear by chance: not powers of ten, not 2-digit round values."""
    if value > 0 and math.log10(value).is_integer():
        return False
    return abs(value) >= 1000 or len(f"{value:.6g}".replace(".", "").strip("0")) >= 3


def code_sources():
    for folder in ("course_lib", "benchmarks", "tools"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name != "references.py":
                yield path, path.read_text()
    for path in outline.every_notebook(ROOT):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        yield path, "\n".join(line for line in code.splitlines()
                              if not line.lstrip().startswith(("%", "!")))


def test_no_published_number_is_typed_outside_the_table():
    published = {entry.value: entry.key for entry in references.entries()
                 if distinctive(entry.value)}
    found = []
    for path, source in code_sources():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                    and not isinstance(node.value, bool) and node.value in published:
                found.append(f"{path.relative_to(ROOT)}: {node.value!r} "
                             f"(use references.value({published[node.value]!r}))")
    assert not found, "published numbers typed outside course_lib/references.py:\n" + \
        "\n".join(found)
