"""Interactive explorers for notebooks 04 and 05, and the course's "widget with a static
fallback" pattern.

The pattern: `show(widget, figure, caption_html)`
==================================================

A course widget must work in two places:

1. Live, in JupyterLab (or Notebook 7, Binder, VS Code): the learner moves sliders.
2. Headless: nbval, `make course` (nbclient + nbconvert to HTML), nbviewer.
   Nothing renders widgets there, yet the figure must still show.

Why not simply `display(widget)`? A widget output is only a reference to
state that lives in the kernel (mimetype application/vnd.jupyter.widget-view+json).
nbconvert's HTML exporter renders it only if the widget state was saved in the
notebook (nbclient saves it by default), and then only by loading
@jupyter-widgets/html-manager from a CDN in the reader's browser: offline the
page shows nothing, and there is never an <img> in the HTML.

So `show()` decides once, at display time, whether a widget frontend is attached:

- Live (see `live_frontend()`): one output whose mimebundle holds the widget
  view AND an image/png of the initial figure. JupyterLab's widget renderer
  outranks images, so the learner sees the live widget; where the widget
  manager is missing (jupyterlab_widgets not installed, an untrusted notebook),
  or when a saved notebook is converted without widget state, the PNG shows
  instead of the text "VBox(...)".
- Headless: plain outputs only, an HTML caption (the readout: the numbers and
  the slider settings) and the figure as image/png. nbconvert turns them into
  HTML and an <img>, which work offline and everywhere.

A frontend is taken to be attached when the kernel was started by a Jupyter
server session (JupyterLab, Notebook 7, Binder and VS Code set
JPY_SESSION_NAME for the kernel; nbclient, nbconvert and nbval do not). Set
COURSE_WIDGETS=live or COURSE_WIDGETS=static to override the guess.

To build a new widget, subclass `Explorer` (controls + readout + figure,
redrawn by `update()`): it displays itself through `show()` when it is the
last expression of a cell. For a widget that is not an Explorer, call
`show(view, figure, caption_html)` yourself.

Widgets here are thin: every number comes from course_lib.scaling and
course_lib.costs, every figure from course_lib.plots. Slider ranges only
allow valid inputs, so no position shows NaN, inf or an exception.
"""

from __future__ import annotations

import base64
import html
import os

import ipywidgets as W
from IPython.display import HTML, Image, display
from matplotlib.figure import Figure

from course_lib import costs, plots, references, scaling

WIDGETS_ENV = "COURSE_WIDGETS"
SESSION_ENV = "JPY_SESSION_NAME"  # set by jupyter_server for kernels it starts for a notebook


def live_frontend() -> bool:
    """True when a widget frontend is (very likely) attached to this kernel.

    COURSE_WIDGETS=live or =static decides; otherwise: inside an IPython kernel
    that a Jupyter server session started (JPY_SESSION_NAME is set).
    """
    mode = os.environ.get(WIDGETS_ENV, "").strip().lower()
    if mode in {"live", "static"}:
        return mode == "live"
    if mode not in {"", "auto"}:
        raise ValueError(f"{WIDGETS_ENV} must be 'live', 'static' or 'auto', got {mode!r}")
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel") and bool(os.environ.get(SESSION_ENV))


def show(widget: W.Widget, figure: Figure | bytes, caption_html: str = "") -> None:
    """Display `widget` live, or its static copy (caption + figure) where nothing renders it.

    figure: the widget's current figure, as a Matplotlib Figure or PNG bytes (an
    ipywidgets Image's value, a memoryview, works too).
    caption_html: what the static copy shows above the figure (the widget's readout).
    """
    if isinstance(figure, Figure):
        png = plots.to_png(figure)
    else:
        png = bytes(figure)
    bundle = widget._repr_mimebundle_() if live_frontend() else None
    if bundle:  # a widget with a view: live widget, PNG as its in-place fallback
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
        display(bundle, raw=True)
        return
    note = ("<p><em>Static copy of an interactive figure: run this notebook in JupyterLab to "
            "move the sliders.</em></p>")
    display(HTML(note + caption_html))
    display(Image(data=png, format="png"))


def table_html(rows: list[tuple[str, str]]) -> str:
    """A two-column HTML table (label, bold value) for an explorer's readout."""
    body = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
                   f"<td style='text-align:left'><b>{html.escape(v)}</b></td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def log_slider(description: str, value: float, low_exp: float, high_exp: float,
                step: float = 0.05) -> W.FloatLogSlider:
    """A slider over 10**low_exp .. 10**high_exp that redraws when released, not while dragged."""
    return W.FloatLogSlider(value=value, base=10, min=low_exp, max=high_exp, step=step,
                            description=description, readout_format=".3g",
                            continuous_update=False, **wide())


def wide() -> dict:
    """Keyword arguments for a control: a label column wide enough for the longest
    description ("prompt tokens/request") and a long track. A fresh Layout each call,
    since widgets that share a Layout also share its changes."""
    return {"style": {"description_width": "14em"}, "layout": W.Layout(width="38em")}


class Explorer:
    """Controls, a readout and a figure; `update()` recomputes and redraws.

    Subclasses define `controls` (name -> ipywidget, each with a description)
    and `draw(axes) -> readout HTML`. Tests set `explorer.controls[name].value`
    and read `explorer.readout.value` and `explorer.image.value` (PNG bytes).
    """

    figsize = (7.0, 3.6)

    def __init__(self, controls: dict[str, W.ValueWidget]):
        self.controls = controls
        self.figure, self.axes = plots.new_figure(*self.figsize)
        self.readout = W.HTML()
        # flex-start: a VBox would stretch the image to the output's width and blur it.
        self.image = W.Image(format="png", layout=W.Layout(align_self="flex-start"))
        self._holding = False
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.view = W.VBox([W.VBox(list(controls.values())), self.readout, self.image])
        self.update()

    def _on_change(self, _change) -> None:
        if not self._holding:
            self.update()

    def set(self, **values) -> None:
        """Set several controls at once and redraw once."""
        self._holding = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        self.update()

    def draw(self, axes) -> str:
        raise NotImplementedError

    def update(self) -> None:
        """Recompute the numbers and redraw the figure (what the benchmark times)."""
        for ax in self.axes:
            ax.clear()
        try:
            self.readout.value = self.draw(self.axes)
        except ValueError as error:  # shown to the learner, never a traceback
            self.readout.value = f"<p><b>Cannot compute this:</b> {html.escape(str(error))}</p>"
        self.image.value = plots.to_png(self.figure)

    def settings_html(self) -> str:
        """The controls' current values, for the static copy."""
        parts = []
        for control in self.controls.values():
            value = control.value
            if isinstance(control, W.Dropdown):
                value = control.label
            elif isinstance(value, (int, float)):
                value = plots.fmt(value)
            parts.append(f"{html.escape(control.description)} {html.escape(str(value))}")
        return "<p>Settings: " + "; ".join(parts) + ".</p>"

    def _ipython_display_(self) -> None:
        show(self.view, self.image.value, self.settings_html() + self.readout.value)


# --- Notebook 04: the scaling explorer -------------------------------------------------------

CHIP_LABELS = (("NVIDIA H100 SXM", "h100_sxm"), ("NVIDIA A100 SXM 80GB", "a100_sxm_80gb"))
CONTEXTS = tuple(2**k for k in range(7, 18))  # 128 to 131,072 tokens


class ScalingExplorer(Explorer):
    """Parameters, training tokens and context -> FLOPs, memory, accelerator-days, dollars."""

    def __init__(self, n_params: float | None = None, n_tokens: float | None = None):
        n = references.value("llama3_8b.params") if n_params is None else n_params
        d = references.value("llama3_8b.training_tokens") if n_tokens is None else n_tokens
        super().__init__({
            "params": log_slider("parameters N", n, 6, 12.5),
            "tokens": log_slider("training tokens D", d, 6, 14),
            "context": W.SelectionSlider(options=CONTEXTS, value=CONTEXTS[5],
                                         description="context (tokens)",
                                         continuous_update=False,
                                         **wide()),
            "chip": W.Dropdown(options=CHIP_LABELS, value="h100_sxm", description="accelerator",
                               **wide()),
        })

    def draw(self, axes) -> str:
        c = {name: control.value for name, control in self.controls.items()}
        run = scaling.estimate_run(c["params"], c["tokens"], c["context"], chip=c["chip"])
        chip_memory = references.value(f"{c['chip']}.memory")
        gpt3 = references.value("gpt3.training_flops")
        plots.draw_training_compute(axes[0], run.n_params, run.n_tokens, run.training_flops)
        axes[0].set_title(f"Training this model takes {plots.fmt(run.training_flops / gpt3)}x "
                          f"GPT-3's compute", fontsize=10)
        mfu = references.value("llama31_405b.mfu")
        return table_html([
            ("training compute (6ND + attention)", plots.fmt(run.training_flops, "FLOP")),
            ("forward FLOPs per token at this context",
             f"{plots.fmt(run.forward_flops_per_token, 'FLOP')} "
             f"({run.attention_share:.0%} of it attention)"),
            ("tokens per parameter", plots.fmt(run.n_tokens / run.n_params)),
            ("training memory before activations (16 bytes/param)",
             f"{plots.fmt(run.training_memory_bytes / 1e9, 'GB')} "
             f"(at least {max(1, -(-run.training_memory_bytes // chip_memory)):.0f} "
             f"accelerators' memory)"),
            ("serving memory: bf16 weights + one sequence's KV cache",
             plots.fmt(run.serving_memory_bytes / 1e9, "GB")),
            (f"accelerator-days at {mfu:.0%} utilisation", plots.fmt(run.accelerator_days)),
            ("rental price (cited range)",
             f"${plots.fmt(run.usd_low)} to ${plots.fmt(run.usd_high)}"),
            ("predicted loss (2024 refit)", f"{run.chinchilla_loss:.3f} nats/token"),
        ])


# --- Notebook 05: lifecycle, comparison, inference-aware sizing ------------------------------

PRESET_LABELS = (("Chat service (ChatGPT-scale traffic)", "chat"),
                 ("Open 8B model (Llama 3 8B-like)", "open_8b"),
                 ("Your tiny model on your laptop", "tiny"))
METRIC_LABELS = (("US dollars", "usd"), ("accelerator-hours", "gpu_hours"),
                 ("energy (kWh)", "kwh"), ("FLOPs", "flops"))


def _preset_dropdown(value: str = "chat") -> W.Dropdown:
    return W.Dropdown(options=PRESET_LABELS, value=value, description="preset",
                      **wide())


class LifecycleExplorer(Explorer):
    """Cumulative training vs inference spend over time, the crossover marked and in words."""

    figsize = (7.0, 3.4)

    def __init__(self, preset: str = "chat"):
        self._presets = costs.presets()
        if preset not in self._presets:
            raise ValueError(f"preset must be one of {', '.join(self._presets)}, got {preset!r}")
        s = self._presets[preset]
        slider = {**wide(), "continuous_update": False}
        super().__init__({
            "preset": _preset_dropdown(preset),
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
            "metric": W.Dropdown(options=METRIC_LABELS, value="usd", description="measure in",
                                 **wide()),
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
        plots.draw_lifecycle(axes[0], s, metric)
        train, day = costs.training_cost(s), costs.inference_cost_per_day(s)
        rows = [(f"{label}", f"one training run {plots.fmt(train[m])}; inference "
                 f"{plots.fmt(day[m])} per day; inference share at the horizon "
                 f"{costs.inference_share(s, m):.0%}")
                for label, m in METRIC_LABELS]
        return (f"<p><b>{html.escape(costs.describe_crossover(s, metric))}</b></p>"
                + table_html(rows))


class ComparisonExplorer(Explorer):
    """Model B costs k times model A per request but gives better answers: when does it lose?"""

    figsize = (7.0, 3.4)

    def __init__(self, preset: str = "chat"):
        self._presets = costs.presets()
        s = self._presets[preset]
        super().__init__({
            "preset": _preset_dropdown(preset),
            "cost_ratio": log_slider("B's cost per request (x A's)", 10, 0, 2),
            "extra_value": log_slider("value of B's answers, USD/day", 1e4, 0, 8),
            "requests_per_day": log_slider("requests per day", s.requests_per_day, 0, 11),
        })

    def draw(self, axes) -> str:
        c = {name: control.value for name, control in self.controls.items()}
        a = self._presets[c["preset"]].replace(requests_per_day=c["requests_per_day"])
        result = costs.compare(a, c["cost_ratio"], c["extra_value"])
        plots.draw_comparison(axes[0], result, c["requests_per_day"])
        advantage = float(result.b_advantage_usd_per_day(c["requests_per_day"]))
        verdict = "B is worth it" if advantage > 0 else "B loses"
        be = result.break_even_requests_per_day
        return table_html([
            ("A's serving cost per request", f"${plots.fmt(result.usd_per_request_a)}"),
            ("B's serving cost per request",
             f"${plots.fmt(result.usd_per_request_a * result.cost_ratio)}"),
            ("B stops paying off above",
             "never" if be is None else f"{plots.fmt(be)} requests per day"),
            ("at your traffic", f"{verdict}: B's net advantage is "
             f"${plots.fmt(advantage)} per day"),
        ])


FIT_LABELS = (("2024 replication refit (default)", "besiroglu2024"),
              ("2022 published (rounded)", "chinchilla2022"))


class SizingExplorer(Explorer):
    """Inference-aware sizing: the model that reaches a target loss with the fewest total FLOPs."""

    figsize = (7.0, 3.6)

    def __init__(self):
        slider = {**wide(), "continuous_update": False}
        super().__init__({
            "fit": W.Dropdown(options=FIT_LABELS, value="besiroglu2024", description="fit",
                              **wide()),
            # Both fits' irreducible loss E is below 1.9, so every position is reachable.
            "target_loss": W.FloatSlider(value=2.1, min=1.9, max=3.5, step=0.01,
                                         description="target loss (nats/token)", **slider),
            "inference_tokens": log_slider("lifetime tokens served", 1e13, 9, 17),
        })

    def draw(self, axes) -> str:
        c = {name: control.value for name, control in self.controls.items()}
        chinchilla, aware, _ = plots.draw_inference_aware(axes[0], c["target_loss"],
                                                          c["inference_tokens"], c["fit"])
        served = scaling.sizing(chinchilla.n_params, c["target_loss"], c["inference_tokens"],
                                c["fit"])
        saving = 1 - aware.total_flops / served.total_flops

        def describe(s: scaling.Sizing) -> str:
            return (f"N = {plots.fmt(s.n_params)}, D = {plots.fmt(s.n_tokens)} "
                    f"({plots.fmt(s.tokens_per_param)} tokens/param)")

        return table_html([
            ("compute-optimal (Chinchilla) model", describe(chinchilla)),
            ("inference-aware model", describe(aware)),
            ("lifetime FLOPs, Chinchilla model serving the same tokens",
             plots.fmt(served.total_flops, "FLOP")),
            ("lifetime FLOPs, inference-aware model",
             f"{plots.fmt(aware.total_flops, 'FLOP')} ({saving:.0%} less)"),
        ])


def scaling_explorer(**kwargs) -> ScalingExplorer:
    """Notebook 04's explorer; the last expression of a cell shows it (live or static)."""
    return ScalingExplorer(**kwargs)


def lifecycle_explorer(preset: str = "chat") -> LifecycleExplorer:
    """Notebook 05's lifecycle explorer, starting from a preset ('chat', 'open_8b', 'tiny')."""
    return LifecycleExplorer(preset)


def comparison_explorer(preset: str = "chat") -> ComparisonExplorer:
    """Notebook 05's two-model comparison (B costs k times more per request)."""
    return ComparisonExplorer(preset)


def sizing_explorer() -> SizingExplorer:
    """Notebook 05's inference-aware sizing explorer."""
    return SizingExplorer()
