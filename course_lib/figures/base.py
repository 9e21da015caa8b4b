"""The course's figure style, shared by every figure module in course_lib.figures.

Every course figure uses the colour-blind-safe style "tableau-colorblind10",
labelled axes with units, log scales where a range spans orders of
magnitude, and a title that states the finding.

Figure functions (course_lib.figures.*) take their inputs and a Matplotlib Axes
that the caller owns, draw, set a title computed from the data, and return the
Axes: the same code draws a notebook's static figure and a widget's redraw. Figures are
made with `new_figure()` (a bare matplotlib.figure.Figure, not pyplot): a
widget can redraw one many times without pyplot showing stray copies.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from IPython.display import Image, display
from matplotlib import style as mpl_style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from course_lib.formatting import fmt

STYLE = "tableau-colorblind10"
DPI = 96  # widget images: sharp at 1:1 on a screen, still quick to redraw


def colors() -> list[str]:
    """The colour-blind-safe colour cycle, in order."""
    return mpl_style.library[STYLE]["axes.prop_cycle"].by_key()["color"]


def new_figure(width: float = 7.0, height: float = 3.6, ncols: int = 1) -> tuple[Figure, list]:
    """A Figure in the course style and its list of axes (one per column).

    Margins are fixed rather than computed by a layout engine: constrained layout
    would double the time of every widget redraw.
    """
    with mpl_style.context(STYLE):
        fig = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(fig)  # attach a raster canvas once, not at every savefig
        axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    fig.subplots_adjust(left=0.11, right=0.98, bottom=0.14, top=0.9, wspace=0.3)
    return fig, axes


def to_png(fig: Figure, dpi: float = DPI) -> bytes:
    """The figure rendered as PNG bytes (what a widget's Image and the static fallback show)."""
    buffer = io.BytesIO()
    # Light compression: a few percent larger, several times faster to write.
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def show(fig: Figure, dpi: float = 100) -> None:
    """Display a figure made with new_figure() in a notebook, as a PNG output.

    These figures are not pyplot figures, so a bare `fig` at the end of a cell would
    print its repr; this works the same live, under nbval and in the HTML export.
    """
    display(Image(data=to_png(fig, dpi), format="png"))




def log_axis(ax, axis: str = "x", label: str | None = None,
             subs: Sequence[float] = (1.0,)) -> None:
    """Log scale on `axis` ('x' or 'y'), labelled ticks at subs x each decade ('1e9', not 10^9).

    The default labels one tick per decade, for ranges over many decades; pass
    subs=(1, 2, 5) for a range of one or two decades.
    """
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=subs, numticks=8))
    target.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    target.set_minor_locator(NullLocator())  # minor ticks over 20 decades cost redraw time
    target.set_minor_formatter(NullFormatter())
    if label is not None:
        (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label)


def si_axis(ax, axis: str = "y") -> None:
    """Linear axis whose tick labels use fmt() (short exponents for large numbers)."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
