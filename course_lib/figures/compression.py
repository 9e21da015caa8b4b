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
from course_lib.figures.base import colors, log_axis
from course_lib.formatting import fmt
from course_lib.payback import Payback

if TYPE_CHECKING:  # annotations only: the payback widget need not load torch
    from course_lib.compression import Measurement
    from course_lib.distill import DistillationResult


def plot_quality_vs_cost(axes: list[Axes], measurements: Sequence[Measurement],
                         tolerance: float = 0.05) -> list[Axes]:
    """Validation loss against size (axes[0]) and time per token (axes[1]), one point per model.

    The first measurement is the original (a star). A dotted line marks `tolerance` nats
    above its loss. A two-panel figure: it lays out the figure the two Axes belong to (the
    legend to the right) and gives that figure its title (figure.get_suptitle()), which
    names the smallest model within `tolerance` nats of the original. Returns the two Axes.
    """
    size_axes, time_axes = axes
    figure = size_axes.figure
    reference = measurements[0]
    palette = colors()
    for i, m in enumerate(measurements):
        color = palette[i % len(palette)]
        marker = "*" if i == 0 else "o"
        for ax, x in ((size_axes, m.model_bytes / 1e6), (time_axes, m.ms_per_token)):
            ax.scatter([x], [m.val_loss], color=color, marker=marker, s=120 if i == 0 else 45,
                       zorder=3, label=m.name)
    for ax in (size_axes, time_axes):
        ax.axhline(reference.val_loss + tolerance, color="0.4", ls=":", lw=1,
                   label=f"original + {tolerance} nats")
        ax.set_ylabel("validation loss (nats per character)")
        ax.grid(alpha=0.3)
    log_axis(size_axes, "x", "model size (MB, log scale)", subs=(1.0, 2.0, 5.0))
    time_axes.set_xlabel("time per generated token (ms, batch 1)")
    size_axes.set_title("Quality against bytes", fontsize=10)
    time_axes.set_title("Quality against speed", fontsize=10)
    time_axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.subplots_adjust(top=0.84, bottom=0.13, left=0.08, right=0.8)
    close = [m for m in measurements if m.val_loss - reference.val_loss <= tolerance]
    best = min(close, key=lambda m: m.model_bytes)
    figure.suptitle(f"Smallest model within {tolerance} nats of the original: {best.name} "
                    f"({reference.model_bytes / best.model_bytes:.1f}x fewer bytes)")
    return axes


def plot_distillation(ax: Axes, result: DistillationResult, teacher_val_loss: float) -> Axes:
    """Validation loss during training of the distilled student and of the same student
    trained on the data alone, with the teacher's loss as a dotted line."""
    palette = colors()
    for history, label, color in ((result.distilled_history, "with the teacher", palette[0]),
                                  (result.alone_history, "data alone", palette[1])):
        ax.plot(history.eval_iters, history.val_loss, "o-", color=color, label=label)
    ax.axhline(teacher_val_loss, color="0.4", ls=":", label="teacher")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation loss (nats per character)")
    ax.set_title(f"{result.outcome()}: {result.distilled_val_loss:.3f} nats with the "
                 f"teacher, {result.alone_val_loss:.3f} without")
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
