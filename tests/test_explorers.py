"""course_lib.explorers: explorers driven by setting slider values, and the static fallback.

Each test moves controls programmatically (as a learner's drag would) and
checks that the readout shows the pure functions' numbers and the figure
(PNG bytes) changes.
"""

import importlib.util
import re
from pathlib import Path

import ipywidgets as W
import pytest

from course_lib import costs, scaling
from course_lib.explorers import base
from course_lib.explorers.costs import (
    ComparisonExplorer,
    LifecycleExplorer,
    comparison_explorer,
    lifecycle_explorer,
)
from course_lib.explorers.scaling import ScalingExplorer, SizingExplorer
from course_lib.formatting import fmt

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG"


def png(explorer) -> bytes:
    return bytes(explorer.image.value)


def clean(explorer) -> None:
    """The explorer shows numbers, a figure, and no NaN, inf or error."""
    text = explorer.readout.value
    assert "Cannot compute" not in text, text
    assert re.search(r"\b(nan|inf|infinity)\b", text, re.IGNORECASE) is None, text
    assert png(explorer).startswith(PNG_MAGIC)


def extremes(explorer):
    """(name, value) for every slider's ends and every dropdown option."""
    for name, control in explorer.controls.items():
        if isinstance(control, W.Dropdown):
            for _, value in control.options:
                yield name, value
        elif isinstance(control, W.SelectionSlider):
            yield name, control.options[0]
            yield name, control.options[-1]
        elif isinstance(control, W.FloatLogSlider):
            yield name, control.base ** control.min
            yield name, control.base ** control.max
        else:
            yield name, control.min
            yield name, control.max


EXPLORERS = [ScalingExplorer, LifecycleExplorer, ComparisonExplorer,
             SizingExplorer]


@pytest.mark.parametrize("cls", EXPLORERS, ids=lambda c: c.__name__)
def test_extreme_positions_show_numbers_never_nan_inf_or_an_error(cls):
    explorer = cls()
    clean(explorer)
    defaults = {name: c.value for name, c in explorer.controls.items() if name != "preset"}
    for name, value in extremes(explorer):
        explorer.controls[name].value = value
        clean(explorer)
        explorer.set(**defaults)
    low = {n: v for n, v in list(extremes(explorer))[::2] if n not in ("preset",)}
    high = {n: v for n, v in list(extremes(explorer))[1::2] if n not in ("preset",)}
    for corner in (low, high):  # every slider at its end at once
        explorer.set(**corner)
        clean(explorer)


def test_scaling_explorer_shows_the_estimate_and_redraws():
    explorer = ScalingExplorer()
    before = png(explorer)
    explorer.controls["params"].value = 1e9
    run = scaling.estimate_run(1e9, explorer.controls["tokens"].value,
                               explorer.controls["context"].value)
    assert fmt(run.training_flops, "FLOP") in explorer.readout.value
    assert png(explorer) != before, "the figure did not change when N changed"
    explorer.controls["tokens"].value = explorer.controls["tokens"].value * 10
    more = scaling.estimate_run(1e9, explorer.controls["tokens"].value,
                                explorer.controls["context"].value)
    assert fmt(more.training_flops, "FLOP") in explorer.readout.value
    assert fmt(run.training_flops, "FLOP") not in explorer.readout.value


def test_lifecycle_explorer_states_the_crossover_and_doubling_traffic_halves_it():
    explorer = LifecycleExplorer("chat")
    s = explorer.scenario()
    assert costs.describe_crossover(s, "usd") in explorer.readout.value
    day = costs.crossover_day(s, "usd")
    before = png(explorer)
    explorer.controls["requests_per_day"].value = 2 * s.requests_per_day
    doubled = explorer.scenario()
    assert costs.crossover_day(doubled, "usd") == pytest.approx(day / 2, rel=1e-6)
    assert costs.format_days(day / 2) in explorer.readout.value
    assert png(explorer) != before


def test_lifecycle_explorer_says_never_at_tiny_traffic_with_retraining():
    explorer = LifecycleExplorer("open_8b")
    explorer.set(requests_per_day=1, retrains_per_year=1)
    assert "Never" in explorer.readout.value


def test_lifecycle_explorer_loads_presets_and_metric():
    explorer = LifecycleExplorer("chat")
    explorer.controls["preset"].value = "tiny"
    tiny = costs.tiny_model()
    assert explorer.controls["params"].value == pytest.approx(tiny.n_params, rel=0.06)
    assert explorer.controls["requests_per_day"].value == pytest.approx(tiny.requests_per_day,
                                                                         rel=0.06)
    explorer.controls["metric"].value = "kwh"
    assert "(kWh)" in explorer.readout.value


def test_comparison_explorer_shows_the_break_even_volume():
    explorer = ComparisonExplorer("chat")
    explorer.set(cost_ratio=10, extra_value=1e5)
    a = explorer._presets["chat"].replace(
        requests_per_day=explorer.controls["requests_per_day"].value)
    result = costs.compare(a, 10, 1e5)
    assert fmt(result.break_even_requests_per_day) in explorer.readout.value
    before = png(explorer)
    explorer.controls["extra_value"].value = 1e6
    assert fmt(10 * result.break_even_requests_per_day) in explorer.readout.value
    assert png(explorer) != before
    explorer.controls["cost_ratio"].value = 1
    assert "never" in explorer.readout.value


def test_sizing_explorer_moves_to_smaller_models_as_demand_grows():
    explorer = SizingExplorer()
    explorer.set(target_loss=2.1, inference_tokens=1e10)
    light = scaling.inference_aware(2.1, 1e10)
    assert f"N = {fmt(light.n_params)}" in explorer.readout.value
    before = png(explorer)
    explorer.controls["inference_tokens"].value = 1e16
    heavy = scaling.inference_aware(2.1, 1e16)
    assert f"N = {fmt(heavy.n_params)}" in explorer.readout.value
    assert heavy.n_params < light.n_params
    assert png(explorer) != before


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, obj, raw=False):
        self.calls.append((obj, raw))


def test_show_static_gives_a_caption_and_a_png(monkeypatch):
    monkeypatch.setenv(base.WIDGETS_ENV, "static")
    shown = Recorder()
    monkeypatch.setattr(base, "display", shown)
    explorer = LifecycleExplorer("tiny")
    explorer._ipython_display_()
    caption, image = shown.calls[0][0], shown.calls[1][0]
    assert "Static copy" in caption.data and "Settings:" in caption.data
    assert costs.describe_crossover(explorer.scenario(), "usd") in caption.data
    assert image.data.startswith(PNG_MAGIC)


def test_show_live_bundles_the_widget_view_with_a_png_fallback(monkeypatch):
    monkeypatch.setenv(base.WIDGETS_ENV, "live")
    shown = Recorder()
    monkeypatch.setattr(base, "display", shown)
    explorer = SizingExplorer()
    explorer._ipython_display_()
    assert len(shown.calls) == 1
    bundle, raw = shown.calls[0]
    assert raw
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == \
        explorer.view.model_id
    assert bundle["image/png"] and "text/plain" in bundle


def test_live_frontend_guess_and_override(monkeypatch):
    monkeypatch.delenv(base.WIDGETS_ENV, raising=False)
    monkeypatch.setenv(base.SESSION_ENV, "notebooks/05.ipynb")
    assert base.live_frontend() is False  # pytest is not an IPython kernel
    monkeypatch.setenv(base.WIDGETS_ENV, "live")
    assert base.live_frontend() is True
    monkeypatch.setenv(base.WIDGETS_ENV, "sometimes")
    with pytest.raises(ValueError, match=base.WIDGETS_ENV):
        base.live_frontend()


def test_every_benchmarked_control_changes_its_figure():
    """The benchmark times real updates: each case's two values draw different figures."""
    path = ROOT / "benchmarks" / "bench_widgets.py"
    spec = importlib.util.spec_from_file_location("bench_widgets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions; main() only runs as a script
    names = []
    for name, explorer, control, (first, second) in module.cases():
        explorer.controls[control].value = first
        before = png(explorer)
        explorer.controls[control].value = second
        assert png(explorer) != before, f"{name}: moving {control} did not change the figure"
        clean(explorer)
        names.append(name)
    assert len(names) >= 4, names


@pytest.mark.parametrize("factory", [lifecycle_explorer, comparison_explorer])
def test_an_unknown_preset_is_refused_with_the_choices(factory):
    with pytest.raises(ValueError, match="preset must be one of chat, open_8b, tiny"):
        factory("x")


@pytest.mark.parametrize("value, shown", [(0, "0"), (0.38, "0.38"), (12, "12"), (99.5, "99.5"),
                                          (9510.3, "9510"), (4096, "4096"), (15000, "1.5e4"),
                                          (3.21e23, "3.21e23"), (0.0004, "4e-4")])
def test_numbers_read_as_a_person_writes_them(value, shown):
    # Never Python's "9.51e+03" or "1.5e+04": learners read these in every readout.
    assert fmt(value) == shown
