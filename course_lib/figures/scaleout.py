"""Notebook 10's figures: scaling efficiency against chips, and the all-reduce fit.

Figures layer. Every function draws on an Axes the caller owns, sets a title computed from
the data and returns the Axes. The numbers come from course_lib.scaleout.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes

from course_lib import scaleout
from course_lib.figures.base import colors, log_axis
from course_lib.formatting import fmt

# A fitted line within this factor of every measured point counts as a close fit.
CLOSE_FIT = 1.5
LEGEND_RIGHT = 0.62  # share of the figure's width the scaling plot keeps; the legend the rest
LEGEND_CHARS = 30  # longest line of a legend entry beside the scaling plot
# Palette positions: training curves in colours (blue, orange, brown, light blue), the
# replicas in dark grey, so that no two lines share a near-identical grey.
TRAINING_COLOURS, REPLICA_COLOUR = (0, 1, 5, 4), 3


def _wrap(label: str) -> str:
    """A legend entry on lines of at most LEGEND_CHARS characters."""
    return "\n".join(textwrap.wrap(label, LEGEND_CHARS))


def _percent(fraction: float) -> str:
    """0.38 -> '38%', 0.004 -> '0.4%', 2e-6 -> '0.0%': an efficiency as a reader takes it in."""
    return f"{fraction:.0%}" if fraction >= 0.01 else f"{fraction:.1%}"


def plot_scaling(ax: Axes, curves: Mapping[str, dict], mark_chips: int | None = None) -> Axes:
    """Scaling efficiency against chips: one line per training case, and inference replicas.

    curves: label -> the dict returned by scaleout.data_parallel_scaling (arrays over the
    same chips). The title reads the efficiencies at `mark_chips` (marked with a dotted
    line; default: the largest chip count).
    """
    palette = colors()
    lines = [palette[i] for i in TRAINING_COLOURS]
    chips = next(iter(curves.values()))["chips"]
    for i, (label, result) in enumerate(curves.items()):
        ax.plot(result["chips"], result["efficiency"], "o-", ms=3,
                color=lines[i % len(lines)], label=_wrap(f"training: {label}"))
    replicas = scaleout.replica_scaling(chips, 1.0, 1.0)
    ax.plot(chips, replicas["efficiency"], "--", color=palette[REPLICA_COLOUR], lw=2,
            label=_wrap("inference replicas (any model, any link)"))
    at = int(chips[-1]) if mark_chips is None else mark_chips
    if mark_chips is not None:
        ax.axvline(mark_chips, color="grey", lw=1, ls=":")
    log_axis(ax, "x", "chips (data-parallel workers or inference replicas)")
    ax.set_ylabel("scaling efficiency\n(speedup / chips)")
    ax.set_ylim(0, 1.08)
    ax.grid(alpha=0.3)
    # Right of the plot, where no curve runs: inside, it would hide the falling curves. The
    # figure gives the plot the left part of its width for that.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.figure.subplots_adjust(right=LEGEND_RIGHT)
    kept = [float(np.interp(np.log(at), np.log(r["chips"]), r["efficiency"]))
            for r in curves.values()]
    span = _percent(min(kept)) if len(kept) == 1 or min(kept) == max(kept) \
        else f"{_percent(min(kept))} to {_percent(max(kept))}"
    ax.set_title(f"At {at:,} chips training keeps {span}; inference replicas 100%",
                 fontsize=10)
    return ax


def plot_allreduce_fit(ax: Axes, measured: Mapping, fit: Mapping,
                       gradient_bytes: int | None = None) -> Axes:
    """Measured all-reduce seconds against message bytes (log-log) and the fitted ring model.

    measured: as data_parallel.measure_allreduce returns (bytes, seconds, world_size);
    fit: as scaleout.fit_allreduce returns (latency_s, bandwidth). The title says how far
    the line misses the farthest point, and names the message size below which the latency
    term outweighs the bandwidth term:
    2(p-1) x latency = 2(p-1)/p x bytes / bandwidth at bytes = p x latency x bandwidth.
    """
    palette = colors()
    p = measured["world_size"]
    sizes = np.logspace(np.log10(measured["bytes"].min()), np.log10(measured["bytes"].max()))
    ax.plot(measured["bytes"], measured["seconds"], "o", color=palette[0],
            label=f"measured, {p} processes (gloo, loopback)")
    ax.plot(sizes, scaleout.ring_allreduce_seconds(sizes, p, fit["bandwidth"], fit["latency_s"]),
            color=palette[1], label=f"ring model: {fmt(fit['bandwidth'] / 1e9)} GB/s, "
                                    f"{fmt(fit['latency_s'] * 1e6)} us per step")
    if gradient_bytes:
        ax.axvline(gradient_bytes, color="grey", ls=":", label="TinyGPT's gradients")
    log_axis(ax, "x", "message size (bytes)")
    log_axis(ax, "y", "all-reduce time (s)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    miss = scaleout.worst_miss(scaleout.fit_misses(measured["bytes"], measured["seconds"], p,
                                                   fit))
    crossover = p * fit["latency_s"] * fit["bandwidth"]
    finding = (f"latency dominates below about {fmt(crossover)} bytes" if crossover > 0
               else "every size pays bandwidth, not latency")
    verdict = (f"Ring model within {miss:.1f}x of every point:" if miss <= CLOSE_FIT else
               f"Ring model off by up to {miss:.1f}x; roughly,")
    ax.set_title(f"{verdict} {finding}", fontsize=10)
    return ax
