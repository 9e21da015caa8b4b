"""The course's "widget with a static fallback" pattern, the Explorer base class and the
control helpers every explorer shares.

The pattern: `show_with_fallback(widget, figure, caption_html)`
==============================================================

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

So `show_with_fallback()` decides once, at display time, whether a widget frontend is
attached:

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
redrawn by `update()`): it displays itself through `show_with_fallback()` when it is the
last expression of a cell. For a widget that is not an Explorer, call
`show_with_fallback(view, figure, caption_html)` yourself.

Explorers are thin: every number comes from the arithmetic layer, every figure
from a course_lib.figures function. Slider ranges only allow valid inputs, so no
position shows NaN, inf or an exception.
"""

from __future__ import annotations

import base64
import contextlib
import html
import os
from collections.abc import Iterator

import ipywidgets as W
from IPython import get_ipython
from IPython.display import HTML, Image, display
from matplotlib.figure import Figure

from course_lib.figures.base import new_figure, to_png
from course_lib.formatting import fmt

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
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel") and bool(os.environ.get(SESSION_ENV))


def show_with_fallback(widget: W.Widget, figure: Figure | bytes, caption_html: str = "") -> None:
    """Display `widget` live, or its static copy (caption + figure) where nothing renders it.

    figure: the widget's current figure, as a Matplotlib Figure or PNG bytes (an
    ipywidgets Image's value, a memoryview, works too).
    caption_html: what the static copy shows above the figure (the widget's readout).
    """
    if isinstance(figure, Figure):
        png = to_png(figure)
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


def dropdown(description: str, options: tuple[tuple[str, str], ...], value: str
             ) -> W.Dropdown:
    """A dropdown of (label, key) pairs; an unknown `value` gets a ValueError listing the keys."""
    keys = [key for _, key in options]
    if value not in keys:
        raise ValueError(f"{description.rstrip(': ')} must be one of {', '.join(keys)}; "
                         f"got {value!r}")
    return W.Dropdown(options=list(options), value=value, description=description, **wide())


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
        self.figure, self.axes = new_figure(*self.figsize)
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

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Change controls inside this block without a redraw per change (nesting allowed)."""
        holding, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = holding

    def set(self, **values) -> None:
        """Set several controls at once and redraw once."""
        with self.held():
            for name, value in values.items():
                self.controls[name].value = value
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
        self.image.value = to_png(self.figure)

    def settings_html(self) -> str:
        """The controls' current values, for the static copy."""
        parts = []
        for control in self.controls.values():
            value = control.value
            if isinstance(control, W.Dropdown):
                value = control.label
            elif isinstance(value, (int, float)):
                value = fmt(value)
            parts.append(f"{html.escape(control.description)} {html.escape(str(value))}")
        return "<p>Settings: " + "; ".join(parts) + ".</p>"

    def _ipython_display_(self) -> None:
        show_with_fallback(self.view, self.image.value, self.settings_html() + self.readout.value)
