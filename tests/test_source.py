"""show_source: notebooks display the library's real code instead of copying it."""

import pytest

from course_lib import flops, source


def test_show_source_displays_the_running_code(monkeypatch):
    shown = []
    monkeypatch.setattr(source, "display", shown.append)
    source.show_source(flops.train_flops_per_step)
    text = shown[0].data
    assert text.startswith("```python\ndef train_flops_per_step(") and text.endswith("```")


def test_show_source_names_the_parameter_for_something_without_source():
    with pytest.raises(TypeError, match="obj must be a function, class or method"):
        source.show_source(42)
