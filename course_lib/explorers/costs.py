"""Explorers of notebook 05: the lifecycle cost explorer (when serving spend overtakes
training) and the two-model comparison (B costs k times more per request).
"""

from __future__ import annotations

import html

import ipywidgets as W

from course_lib import costs
from course_lib.explorers.base import Explorer, dropdown, log_slider, table_html, wide
from course_lib.figures.costs import plot_comparison, plot_lifecycle
from course_lib.formatting import fmt

PRESET_LABELS = (("Chat service (ChatGPT-scale traffic)", "chat"),
                 ("Open 8B model (Llama 3 8B-like)", "open_8b"),
                 ("Your tiny model on your laptop", "tiny"))
METRIC_LABELS = (("US dollars", "usd"), ("accelerator-hours", "gpu_hours"),
                 ("energy (kWh)", "kwh"), ("FLOPs", "flops"))


class LifecycleExplorer(Explorer):
    """Cumulative training vs inference spend over time, the crossover marked and in words."""

    figsize = (7.0, 3.4)

    def __init__(self, preset: str = "chat"):
        self._presets = costs.presets()
        preset_control = dropdown("preset", PRESET_LABELS, preset)
        s = self._presets[preset]
        slider = {**wide(), "continuous_update": False}
        super().__init__({
            "preset": preset_control,
            "params": log_slider("parameters N", s.n_params, 5, 12.5),
            "training_tokens": log_slider("training tokens D", s.training_tokens, 6, 14),
            "retrains_per_year": W.IntSlider(value=int(s.retrains_per_year), min=0, max=12,
                                             description="retrains per year", **slider),
            "requests_per_day": log_slider("requests per day", s.requests_per_day, 0, 11),
            "input_tokens": W.IntSlider(value=int(s.input_tokens), min=0, max=10_000, step=10,
                                        description="prompt tokens/request", **slider),
            "output_tokens": log_slider("answer tokens/request", s.output_tokens, 0, 5),
            "training_utilisation": W.FloatSlider(value=s.training_utilisation, min=0.01,
                                                  max=1, step=0.01,
                                                  description="training utilisation",
                                                  **slider),
            "inference_utilisation": W.FloatSlider(value=s.inference_utilisation, min=0.01,
                                                   max=1, step=0.01,
                                                   description="serving utilisation", **slider),
            "usd_per_hour": log_slider("USD per accelerator-hour", s.hardware.usd_per_hour,
                                        -2, 2),
            "horizon_days": W.IntSlider(value=int(s.horizon_days), min=30, max=5 * 365, step=5,
                                        description="horizon (days)", **slider),
            "metric": dropdown("measure in", METRIC_LABELS, "usd"),
        })
        self.controls["preset"].observe(self._load_preset, names="value")

    def _on_change(self, change) -> None:
        if change["owner"] is not self.controls["preset"]:  # _load_preset redraws once
            super()._on_change(change)

    def _load_preset(self, change) -> None:
        s = self._presets[change["new"]]
        self.set(params=s.n_params, training_tokens=s.training_tokens,
                 retrains_per_year=int(s.retrains_per_year),
                 requests_per_day=s.requests_per_day, input_tokens=int(s.input_tokens),
                 output_tokens=s.output_tokens, training_utilisation=s.training_utilisation,
                 inference_utilisation=s.inference_utilisation,
                 usd_per_hour=s.hardware.usd_per_hour, horizon_days=int(s.horizon_days))

    def scenario(self) -> costs.Scenario:
        """The Scenario the sliders describe."""
        c = {name: control.value for name, control in self.controls.items()}
        base = self._presets[c["preset"]]
        hardware = costs.Hardware(base.hardware.name, base.hardware.peak_flops,
                                  base.hardware.watts, c["usd_per_hour"])
        return base.replace(
            n_params=c["params"], training_tokens=c["training_tokens"],
            retrains_per_year=c["retrains_per_year"], requests_per_day=c["requests_per_day"],
            input_tokens=c["input_tokens"], output_tokens=c["output_tokens"],
            training_utilisation=c["training_utilisation"],
            inference_utilisation=c["inference_utilisation"], hardware=hardware,
            horizon_days=c["horizon_days"])

    def draw(self, axes) -> str:
        s = self.scenario()
        metric = self.controls["metric"].value
        plot_lifecycle(axes[0], s, metric)
        train, day = costs.training_cost(s), costs.inference_cost_per_day(s)
        rows = [(f"{label}", f"one training run {fmt(train[m])}; inference "
                 f"{fmt(day[m])} per day; inference share at the horizon "
                 f"{costs.inference_share(s, m):.0%}")
                for label, m in METRIC_LABELS]
        return (f"<p><b>{html.escape(costs.describe_crossover(s, metric))}</b></p>"
                + table_html(rows))


class ComparisonExplorer(Explorer):
    """Model B costs k times model A per request but gives better answers: when does it lose?"""

    figsize = (7.0, 3.4)

    def __init__(self, preset: str = "chat"):
        self._presets = costs.presets()
        preset_control = dropdown("preset", PRESET_LABELS, preset)
        s = self._presets[preset]
        super().__init__({
            "preset": preset_control,
            "cost_ratio": log_slider("B's cost per request (x A's)", 10, 0, 2),
            "extra_value": log_slider("value of B's answers, USD/day", 1e4, 0, 8),
            "requests_per_day": log_slider("requests per day", s.requests_per_day, 0, 11),
        })

    def draw(self, axes) -> str:
        c = {name: control.value for name, control in self.controls.items()}
        a = self._presets[c["preset"]].replace(requests_per_day=c["requests_per_day"])
        result = costs.compare(a, c["cost_ratio"], c["extra_value"])
        plot_comparison(axes[0], result, c["requests_per_day"])
        advantage = float(result.b_advantage_usd_per_day(c["requests_per_day"]))
        verdict = "B is worth it" if advantage > 0 else "B loses"
        be = result.break_even_requests_per_day
        return table_html([
            ("A's serving cost per request", f"${fmt(result.usd_per_request_a)}"),
            ("B's serving cost per request",
             f"${fmt(result.usd_per_request_a * result.cost_ratio)}"),
            ("B stops paying off above",
             "never" if be is None else f"{fmt(be)} requests per day"),
            ("at your traffic", f"{verdict}: B's net advantage is "
             f"${fmt(advantage)} per day"),
        ])


def lifecycle_explorer(preset: str = "chat") -> LifecycleExplorer:
    """Notebook 05's lifecycle explorer, starting from a preset ('chat', 'open_8b', 'tiny')."""
    return LifecycleExplorer(preset)


def comparison_explorer(preset: str = "chat") -> ComparisonExplorer:
    """Notebook 05's two-model comparison (B costs k times more per request)."""
    return ComparisonExplorer(preset)
