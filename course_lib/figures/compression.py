"""Notebook 06's figures: quality against cost, two students' learning curves, payback.

Figures layer (matplotlib). Each function draws on Axes the caller owns, sets a title that
states the finding (computed from the data) and returns its Axes:

- `plot_quality_vs_cost(axes, measurements, tolerance)`: two panels, validation loss
  against bytes and against time per token, one point per version of the model
  (course_lib.compression.Measurement); the finding is the figure's title;
- `plot_distillation(ax, result, teacher_val_loss)`: the distilled and the data-alone
  student's validation loss during training (course_lib.distill.DistillationResult);
- `plot_payback(ax, result, metric)`: cumulative spend of serving the teacher against
  distilling then serving the student (course_lib.payback.Payback).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes

from course_lib import costs
from course_lib.figures.base import colors, log_axis, si_axis
from course_lib.formatting import fmt
from course_lib.payback import Payback

if TYPE_CHECKING:  # annotations only: the payback widget need not load torch
    from course_lib.compression import Measurement
    from course_lib.distill import DistillationResult


# Palette positions for the versions of the model: colours only (the palette's four greys
# look alike), told apart further by the marker shape; the original is a black star.
POINT_COLOURS = (0, 1, 4, 5, 7, 8)
POINT_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LABEL_OFFSETS = ((4, 3), (4, -10), (-10, 3), (-10, -10))  # points: a number's corner
LEGEND_ROW_INCHES = 0.2  # height of one legend row below the panels
AXIS_LABELS_INCHES = 0.75  # room under the panels for the tick and axis labels


def plot_quality_vs_cost(axes: list[Axes], measurements: Sequence[Measurement],
                         tolerance: float = 0.05) -> list[Axes]:
    """Validation loss against size (axes[0]) and time per token (axes[1]), one point per model.

    The first measurement is the original (a black star); the others are numbered on both
    panels, in colours and marker shapes that no two share, and named in full in a legend
    under the panels. On the time panel a bar spans each model's fastest to slowest repeat
    (Measurement.ms_low to ms_high). A dotted line marks `tolerance` nats above the
    original's loss. A two-panel figure: it lays out the figure the two Axes belong to
    and gives it its title (figure.get_suptitle()), which names the smallest model within
    `tolerance` nats of the original. Returns the two Axes.
    """
    size_axes, time_axes = axes
    figure = size_axes.figure
    reference = measurements[0]
    handles = []
    for i, m in enumerate(measurements):
        style = _point_style(i)
        label = m.name if i == 0 else f"{i}  {m.name}"
        for ax, x in ((size_axes, m.model_bytes / 1e6), (time_axes, m.ms_per_token)):
            point = ax.scatter([x], [m.val_loss], zorder=3, label=label, **style)
            if i:  # numbers of neighbouring points go to different corners
                ax.annotate(str(i), (x, m.val_loss), textcoords="offset points", fontsize=8,
                            xytext=LABEL_OFFSETS[(i - 1) % len(LABEL_OFFSETS)])
        if m.ms_low is not None:
            time_axes.errorbar([m.ms_per_token], [m.val_loss], fmt="none", lw=1,
                               color=style["color"], xerr=[[m.ms_per_token - m.ms_low],
                                                           [m.ms_high - m.ms_per_token]])
        handles.append(point)
    for ax in (size_axes, time_axes):
        line = ax.axhline(reference.val_loss + tolerance, color="0.4", ls=":", lw=1,
                          label=f"original + {tolerance} nats")
        ax.set_ylabel("validation loss (nats per character)")
        ax.grid(alpha=0.3)
    log_axis(size_axes, "x", "model size (MB, log scale)", subs=(1.0, 2.0, 5.0))
    time_axes.set_xlabel("ms per generated token, batch 1 (bar: range of repeats)")
    size_axes.set_title("Quality against bytes", fontsize=10)
    time_axes.set_title("Quality against speed", fontsize=10)
    _legend_below(figure, handles + [line])
    close = [m for m in measurements if m.val_loss - reference.val_loss <= tolerance]
    best = min(close, key=lambda m: m.model_bytes)
    figure.suptitle(f"Smallest model within {tolerance} nats of the original: {best.name} "
                    f"({reference.model_bytes / best.model_bytes:.1f}x fewer bytes)")
    return axes


def _point_style(i: int) -> dict:
    """Scatter style of the i-th version: the original (0) a black star, the others each a
    colour and a marker shape."""
    if i == 0:
        return {"color": "k", "marker": "*", "s": 140}
    return {"color": colors()[POINT_COLOURS[(i - 1) % len(POINT_COLOURS)]],
            "marker": POINT_MARKERS[(i - 1) % len(POINT_MARKERS)], "s": 45}


def _legend_below(figure, handles: list) -> None:
    """A two-column legend under the panels, every name in full, and the room it needs."""
    rows = math.ceil(len(handles) / 2)
    figure.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=2,
                  fontsize=8, frameon=False)
    figure.subplots_adjust(top=0.86, left=0.08, right=0.98, wspace=0.25,
                           bottom=(AXIS_LABELS_INCHES + LEGEND_ROW_INCHES * rows)
                           / figure.get_figheight())


def plot_distillation(ax: Axes, result: DistillationResult, teacher_val_loss: float) -> Axes:
    """Validation loss during training of the distilled student, of the same student trained
    on the data alone for the same steps, and (when result.matched_history is set) for as
    many training FLOPs as distillation took; the teacher's loss as a dotted line.

    With result.step_flops the x axis is training compute (FLOPs, the teacher's forward
    passes included), so that runs of equal cost end at the same place; else steps.
    """
    palette = colors()
    runs = [(result.distilled_history, "with the teacher", palette[0], "o-", "distilled"),
            (result.alone_history, "data alone, same steps", palette[1], "s-", "alone")]
    if result.matched_history is not None:  # dashed, under the same-steps run it begins as
        runs.append((result.matched_history, "data alone, same compute", palette[3], "^--",
                     "alone"))
    for order, (history, label, color, style, kind) in enumerate(runs):
        per_step = 1 if result.step_flops is None else result.step_flops[kind]
        ax.plot(np.asarray(history.eval_iters) * per_step, history.val_loss, style, ms=4,
                color=color, label=label, zorder=3 - order)
    ax.axhline(teacher_val_loss, color="0.4", ls=":", label="teacher")
    ax.set_xlim(left=0)  # steps and FLOPs start at zero: no negative tick from the margin
    if result.step_flops is None:
        ax.set_xlabel("training step")
    else:
        ax.set_xlabel("training compute (FLOPs, the teacher's forward passes included)")
        si_axis(ax, "x")
    ax.set_ylabel("validation loss (nats per character)")
    matched = ("" if result.matched_val_loss is None else
               f", {result.matched_val_loss:.3f} alone with the same compute")
    ax.set_title(f"{result.outcome()}: {result.distilled_val_loss:.3f} nats with the "
                 f"teacher, {result.alone_val_loss:.3f} alone (same steps){matched}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def plot_payback(ax: Axes, result: Payback, metric: str = "usd") -> Axes:
    """Cumulative spend against requests served: serve the teacher, or distil then serve.

    The title states after how many requests, and days of traffic, distillation pays back.
    """
    palette = colors()
    break_even = result.requests(metric)
    requests = np.logspace(math.log10(break_even) - 3, math.log10(break_even) + 3, 200)
    teacher = requests * result.teacher_per_request[metric]
    student = result.extra_training[metric] + requests * result.student_per_request[metric]
    ax.plot(requests, teacher, color=palette[0], lw=2, label="serve the teacher")
    ax.plot(requests, student, color=palette[1], lw=2, label="distil a student, serve it")
    level = break_even * result.teacher_per_request[metric]
    ax.scatter([break_even], [level], color="k", zorder=4)
    ax.annotate(f"payback: {fmt(break_even)} requests", (break_even, level),
                xytext=(8, -14), textcoords="offset points", fontsize=8)
    if result.requests_per_day > 0:
        ax.axvline(result.requests_per_day * 30, color="0.4", ls=":", lw=1,
                   label="one month of your traffic")
    log_axis(ax, "x", "requests served")
    log_axis(ax, "y", f"cumulative spend ({costs.METRIC_UNITS[metric]})")
    ax.set_xlim(requests[0], requests[-1])
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"Distillation pays for itself after {fmt(break_even)} requests "
                 f"({costs.format_days(result.days(metric))} of traffic)", fontsize=10)
    return ax
