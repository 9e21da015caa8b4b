"""Shared figure helpers, and the figure builders of notebooks 04 and 05.

Every course figure uses the colour-blind-safe style "tableau-colorblind10",
labelled axes with units, log scales where a range spans orders of
magnitude, and a title that states the finding.

Builders here draw onto a Matplotlib Axes that the caller owns, so the same
code draws a notebook's static figure and a widget's redraw. Figures are
made with `new_figure()` (a bare matplotlib.figure.Figure, not pyplot): a
widget can redraw one many times without pyplot showing stray copies.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib import style as mpl_style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from course_lib import costs, references, scaling

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
    from IPython.display import Image, display

    display(Image(data=to_png(fig, dpi), format="png"))


def fmt(value: float, unit: str = "") -> str:
    """A number as a reader takes it in: '0.38', '4096', '1.5e4' (not 1.5e+04), '3e23 FLOP'."""
    if value == 0:
        text = "0"
    elif abs(value) < 1e4 and float(value).is_integer():
        text = str(int(value))
    elif 1e-3 <= abs(value) < 100:
        text = f"{value:.3g}"
    elif 100 <= abs(value) < 1e4:  # .3g would write 9510.3 as 9.51e+03
        text = f"{value:.0f}"
    else:
        mantissa, _, exponent = f"{value:.2e}".partition("e")
        text = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{text} {unit}".strip()


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


# --- Notebook 04: scaling -------------------------------------------------------------------

REAL_RUNS = ("gpt3", "chinchilla", "llama3_8b", "llama3_70b", "llama31_405b")


def draw_training_compute(ax, n_params: float, n_tokens: float, flops: float) -> None:
    """Training FLOPs against parameters: lines of constant tokens per parameter, real runs,
    and the chosen (N, D) as a star."""
    palette = colors()
    n = np.logspace(6, 12.5, 50)
    six = references.value("flops.train_per_param_token")
    for i, ratio in enumerate((1, 20, 300, 3000)):
        ax.plot(n, six * n * ratio * n, color=palette[(i + 3) % len(palette)], lw=1, alpha=0.7,
                label=f"{ratio} tokens per parameter")
    params = np.array([references.value(f"{key}.params") for key in REAL_RUNS])
    tokens = np.array([references.value(f"{key}.training_tokens") for key in REAL_RUNS])
    ax.scatter(params, six * params * tokens, color=palette[1], s=18, zorder=3)
    for key, x, y in zip(REAL_RUNS, params, six * params * tokens, strict=True):
        ax.annotate(key.replace("_", " "), (x, y), fontsize=7, xytext=(3, -8),
                    textcoords="offset points")
    ax.scatter([n_params], [flops], marker="*", s=160, color=palette[0], zorder=4,
               label="your choice")
    log_axis(ax, "x", "parameters N")
    log_axis(ax, "y", "training compute (FLOP)")
    ax.set_ylim(1e10, 1e27)
    ax.legend(fontsize=7, loc="upper left")


def draw_isoflop(ax, budgets: Sequence[float], fit: str = "besiroglu2024") -> None:
    """Loss against N at fixed compute budgets, with each budget's optimum (the frontier)."""
    palette = colors()
    six = references.value("flops.train_per_param_token")
    best = []
    for i, c in enumerate(budgets):
        n_opt, d_opt = scaling.compute_optimal(c, fit)
        n = n_opt * np.logspace(-1.5, 1.5, 60)
        losses = [scaling.loss(x, c / (six * x), fit) for x in n]
        ax.plot(n, losses, color=palette[i % len(palette)], label=f"C = {fmt(c, 'FLOP')}")
        best.append((n_opt, scaling.loss(n_opt, d_opt, fit)))
    frontier_n, frontier_loss = np.array(best).T
    ax.plot(frontier_n, frontier_loss, "k--", lw=1, label="compute-optimal frontier")
    ax.scatter(frontier_n, frontier_loss, color="k", s=14, zorder=3)
    log_axis(ax, "x", "parameters N")
    ax.set_ylabel("predicted loss (nats/token)")
    ax.legend(fontsize=7)


def draw_measured_vs_predicted(ax, params: Sequence[float], measured_s: Sequence[float],
                               predicted_s: Sequence[float]) -> None:
    """Seconds per training step against parameters: measured points, predicted line."""
    palette = colors()
    ax.plot(params, predicted_s, "o--", color=palette[1],
            label="predicted: FLOPs per step / measured matmul FLOP/s")
    ax.plot(params, measured_s, "s-", color=palette[0], label="measured on this machine")
    log_axis(ax, "x", "parameters N", subs=(1, 2, 5))
    log_axis(ax, "y", "seconds per training step", subs=(1, 2, 5))
    ax.legend(fontsize=8)


# --- Notebook 05: lifecycle costs -----------------------------------------------------------


def draw_lifecycle(ax, scenario, metric: str = "usd") -> str:
    """Cumulative training and inference spend over the horizon, crossover marked.

    Returns the title, which states the finding.
    """
    palette = colors()
    days = np.linspace(0, scenario.horizon_days, 400)
    train, serve = costs.cumulative(scenario, days, metric)
    ax.plot(days, train, color=palette[0], lw=2, label="training (and retraining)")
    ax.plot(days, serve, color=palette[1], lw=2, label="inference")
    day = costs.crossover_day(scenario, metric)
    if day is not None and day <= scenario.horizon_days:
        level = costs.cumulative(scenario, [day], metric)[0][0]
        ax.axvline(day, color="0.4", ls=":", lw=1)
        ax.scatter([day], [level], color="k", zorder=4)
        right = day > 0.6 * scenario.horizon_days  # label on the left, inside the axes
        ax.annotate(f"crossover: {costs.format_days(day)}", (day, level),
                    xytext=(-6 if right else 6, 6), textcoords="offset points", fontsize=8,
                    ha="right" if right else "left")
        title = f"Inference overtakes training after {costs.format_days(day)}"
    elif day is not None:
        title = f"Inference overtakes training after {costs.format_days(day)} (past the horizon)"
    else:
        title = "Inference never overtakes training here"
    ax.set_xlabel("days since deployment")
    ax.set_ylabel(f"cumulative spend ({costs.METRIC_UNITS[metric]})")
    si_axis(ax, "y")
    ax.set_xlim(0, scenario.horizon_days)
    # Headroom above the highest line, so the legend never hides a flat training line.
    ax.set_ylim(0, 1.3 * max(np.max(train), np.max(serve)))
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=10)
    return title


def draw_comparison(ax, comparison, requests_per_day: float) -> str:
    """B's extra value per day (flat) against its extra serving spend (rising with traffic)."""
    palette = colors()
    volumes = np.logspace(0, 11, 100)
    extra_cost = (comparison.cost_ratio - 1) * comparison.usd_per_request_a * volumes
    ax.plot(volumes, np.full_like(volumes, max(comparison.extra_value_usd_per_day, 1e-9)),
            color=palette[0], lw=2, label="value of B's better answers")
    ax.plot(volumes, np.maximum(extra_cost, 1e-9), color=palette[1], lw=2,
            label=f"B's extra serving spend ({fmt(comparison.cost_ratio)}x per request)")
    ax.axvline(requests_per_day, color="0.4", ls=":", lw=1, label="your traffic")
    be = comparison.break_even_requests_per_day
    if be is not None and be > 0:
        ax.scatter([be], [comparison.extra_value_usd_per_day], color="k", zorder=4)
        title = f"B loses above {fmt(be)} requests/day"
    else:
        title = "B never loses on serving cost"
    log_axis(ax, "x", "requests per day")
    log_axis(ax, "y", "USD per day")
    ax.set_ylim(1e-3, 1e10)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=10)
    return title


def draw_inference_aware(ax, target_loss: float, inference_tokens: float,
                         fit: str = "besiroglu2024") -> tuple:
    """Total lifetime FLOPs against model size, all sizes reaching target_loss.

    Returns (compute-optimal Sizing, inference-aware Sizing, title).
    """
    palette = colors()
    chinchilla = scaling.inference_aware(target_loss, 0, fit)
    aware = scaling.inference_aware(target_loss, inference_tokens, fit)
    n_min = scaling.smallest_model_for_loss(target_loss, fit)
    n = n_min * np.logspace(0.02, 3, 120)
    sizes = [scaling.sizing(x, target_loss, inference_tokens, fit) for x in n]
    ax.plot(n, [s.training_flops for s in sizes], color=palette[0], lw=1.5, ls="--",
            label="training only")
    ax.plot(n, [s.total_flops for s in sizes], color=palette[1], lw=2,
            label="training + lifetime inference")
    ax.scatter([chinchilla.n_params], [chinchilla.training_flops], color=palette[0], zorder=4,
               label="compute-optimal (Chinchilla)")
    ax.scatter([aware.n_params], [aware.total_flops], color=palette[1], marker="*", s=150,
               zorder=4, label="inference-aware optimum")
    log_axis(ax, "x", "parameters N (each trained to the target loss)")
    log_axis(ax, "y", "FLOP")
    ax.legend(fontsize=7, loc="upper right")
    shrink = chinchilla.n_params / aware.n_params
    title = (f"Serving {fmt(inference_tokens)} tokens: best model is {fmt(shrink)}x smaller "
             f"than Chinchilla-optimal")
    ax.set_title(title, fontsize=10)
    return chinchilla, aware, title
