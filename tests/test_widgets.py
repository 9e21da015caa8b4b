"""course_lib.widgets: explorers driven by setting slider values, and the static fallback.

Each test moves controls programmatically (as a learner's drag would) and
checks that the readout shows the pure functions' numbers and the figure
(PNG bytes) changes.
"""

import importlib.util
import re
from pathlib import Path

import ipywidgets as W
import pytest

from course_lib import costs, plots, scaling, widgets

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


EXPLORERS = [widgets.ScalingExplorer, widgets.LifecycleExplorer, widgets.ComparisonExplorer,
             widgets.SizingExplorer]


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
    explorer = widgets.ScalingExplorer()
    before = png(explorer)
    explorer.controls["params"].value = 1e9
    run = scaling.estimate_run(1e9, explorer.controls["tokens"].value,
                               explorer.controls["context"].value)
    assert plots.fmt(run.training_flops, "FLOP") in explorer.readout.value
    assert png(explorer) != before, "the figure did not change when N changed"
    explorer.controls["tokens"].value = explorer.controls["tokens"].value * 10
    more = scaling.estimate_run(1e9, explorer.controls["tokens"].value,
                                explorer.controls["context"].value)
    assert plots.fmt(more.training_flops, "FLOP") in explorer.readout.value
    assert plots.fmt(run.training_flops, "FLOP") not in explorer.readout.value


def test_lifecycle_explorer_states_the_crossover_and_doubling_traffic_halves_it():
    explorer = widgets.LifecycleExplorer("chat")
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
    explorer = widgets.LifecycleExplorer("open_8b")
    explorer.set(requests_per_day=1, retrains_per_year=1)
    assert "Never" in explorer.readout.value


def test_lifecycle_explorer_loads_presets_and_metric():
    explorer = widgets.LifecycleExplorer("chat")
    explorer.controls["preset"].value = "tiny"
    tiny = costs.tiny_model()
    assert explorer.controls["params"].value == pytest.approx(tiny.n_params, rel=0.06)
    assert explorer.controls["requests_per_day"].value == pytest.approx(tiny.requests_per_day,
                                                                         rel=0.06)
    explorer.controls["metric"].value = "kwh"
    assert "(kWh)" in explorer.readout.value


def test_comparison_explorer_shows_the_break_even_volume():
    explorer = widgets.ComparisonExplorer("chat")
    explorer.set(cost_ratio=10, extra_value=1e5)
    a = explorer._presets["chat"].replace(
        requests_per_day=explorer.controls["requests_per_day"].value)
    result = costs.compare(a, 10, 1e5)
    assert plots.fmt(result.break_even_requests_per_day) in explorer.readout.value
    before = png(explorer)
    explorer.controls["extra_value"].value = 1e6
    assert plots.fmt(10 * result.break_even_requests_per_day) in explorer.readout.value
    assert png(explorer) != before
    explorer.controls["cost_ratio"].value = 1
    assert "never" in explorer.readout.value


def test_sizing_explorer_moves_to_smaller_models_as_demand_grows():
    explorer = widgets.SizingExplorer()
    explorer.set(target_loss=2.1, inference_tokens=1e10)
    light = scaling.inference_aware(2.1, 1e10)
    assert f"N = {plots.fmt(light.n_params)}" in explorer.readout.value
    before = png(explorer)
    explorer.controls["inference_tokens"].value = 1e16
    heavy = scaling.inference_aware(2.1, 1e16)
    assert f"N = {plots.fmt(heavy.n_params)}" in explorer.readout.value
    assert heavy.n_params < light.n_params
    assert png(explorer) != before


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, obj, raw=False):
        self.calls.append((obj, raw))


def test_show_static_gives_a_caption_and_a_png(monkeypatch):
    monkeypatch.setenv(widgets.WIDGETS_ENV, "static")
    shown = Recorder()
    monkeypatch.setattr(widgets, "display", shown)
    explorer = widgets.LifecycleExplorer("tiny")
    explorer._ipython_display_()
    caption, image = shown.calls[0][0], shown.calls[1][0]
    assert "Static copy" in caption.data and "Settings:" in caption.data
    assert costs.describe_crossover(explorer.scenario(), "usd") in caption.data
    assert image.data.startswith(PNG_MAGIC)


def test_show_live_bundles_the_widget_view_with_a_png_fallback(monkeypatch):
    monkeypatch.setenv(widgets.WIDGETS_ENV, "live")
    shown = Recorder()
    monkeypatch.setattr(widgets, "display", shown)
    explorer = widgets.SizingExplorer()
    explorer._ipython_display_()
    assert len(shown.calls) == 1
    bundle, raw = shown.calls[0]
    assert raw
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == \
        explorer.view.model_id
    assert bundle["image/png"] and "text/plain" in bundle


def test_live_frontend_guess_and_override(monkeypatch):
    monkeypatch.delenv(widgets.WIDGETS_ENV, raising=False)
    monkeypatch.setenv(widgets.SESSION_ENV, "notebooks/05.ipynb")
    assert widgets.live_frontend() is False  # pytest is not an IPython kernel
    monkeypatch.setenv(widgets.WIDGETS_ENV, "live")
    assert widgets.live_frontend() is True
    monkeypatch.setenv(widgets.WIDGETS_ENV, "sometimes")
    with pytest.raises(ValueError, match=widgets.WIDGETS_ENV):
        widgets.live_frontend()


def test_benchmark_script_imports():
    path = ROOT / "benchmarks" / "bench_widgets.py"
    spec = importlib.util.spec_from_file_location("bench_widgets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions; main() only runs as a script
    assert callable(module.main)


@pytest.mark.parametrize("value, shown", [(0, "0"), (0.38, "0.38"), (12, "12"), (99.5, "99.5"),
                                          (9510.3, "9510"), (4096, "4096"), (15000, "1.5e4"),
                                          (3.21e23, "3.21e23"), (0.0004, "4e-4")])
def test_numbers_read_as_a_person_writes_them(value, shown):
    # Never Python's "9.51e+03" or "1.5e+04": learners read these in every readout.
    assert plots.fmt(value) == shown


@pytest.mark.parametrize("preset", list(costs.presets()))
def test_lifecycle_figure_leaves_room_for_its_legend(preset):
    # The legend sits top left: without headroom it hides a flat training line (open_8b).
    fig, (ax,) = plots.new_figure()
    plots.draw_lifecycle(ax, costs.presets()[preset])
    highest = max(line.get_ydata().max() for line in ax.get_lines() if len(line.get_ydata()) > 2)
    assert ax.get_ylim()[1] >= 1.2 * highest
