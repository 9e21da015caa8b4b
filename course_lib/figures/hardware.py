"""Notebook 07's figures: rooflines, measured steps on them, and what fits on a device.

Figures layer. Every function draws on an Axes the caller owns, sets a title computed from
the data and returns the Axes. The numbers come from course_lib.roofline; a measured step
is passed as (StepCost, seconds): the step's FLOPs and bytes, and the time it took.
Colours come from the course palette (figures.base.colors), never matplotlib's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import NullLocator

from course_lib import devices, roofline
from course_lib.figures.base import colors, log_axis
from course_lib.formatting import fmt
from course_lib.roofline import StepCost

MeasuredStep = tuple[StepCost, float]  # a step and the seconds it took
THIS_MACHINE = "k"  # this machine's roof is drawn in black, chips in the palette
CROWDED_DECADES = 0.2  # steps closer than this on the intensity axis: names on both sides


def plot_roof(ax: Axes, peak_flops: float, bandwidth: float, label: str,
              color: str | None = None, intensities: tuple[float, float] = (1e-2, 1e4)) -> Axes:
    """One chip's roofline on log-log axes (FLOP/byte against FLOP/s), its ridge marked."""
    ridge = roofline.ridge_point(peak_flops, bandwidth)
    color = colors()[0] if color is None else color
    grid = np.logspace(np.log10(intensities[0]), np.log10(intensities[1]), 200)
    ax.plot(grid, roofline.attainable_flops(grid, peak_flops, bandwidth), color=color,
            label=f"{label} (ridge {ridge:.3g} FLOP/byte)")
    ax.plot([ridge], [peak_flops], "o", color=color)
    log_axis(ax, "x", "arithmetic intensity (FLOP per byte moved, log scale)")
    log_axis(ax, "y", "FLOP/s (log scale)")
    ax.set_title(f"{label}: memory-bound below {ridge:.3g} FLOP/byte")
    return ax


def plot_measured_roofline(ax: Axes, peak_flops: float, bandwidth: float,
                           training: MeasuredStep, sweeps: Mapping[str, Sequence[MeasuredStep]],
                           intensities: tuple[float, float] = (0.1, 1e3)) -> Axes:
    """This machine's roofline with a measured training step and measured decode sweeps.

    sweeps maps a model's name to its decode steps (one per batch size) and their times.
    """
    palette = colors()
    plot_roof(ax, peak_flops, bandwidth, "this machine (measured)", THIS_MACHINE, intensities)
    train_step, train_seconds = training
    achieved = train_step.flops / train_seconds
    ax.plot([train_step.intensity], [achieved], "s", markersize=9, color=palette[0],
            label=f"{train_step.name} (measured)")
    for color, (label, points) in zip(cycle(palette[1:]), sweeps.items()):
        x = [step.intensity for step, _ in points]
        y = [step.flops / seconds for step, seconds in points]
        ax.plot(x, y, "o-", color=color, label=f"decode, {label} (measured)")
        for (step, _), xi, yi in zip(points, x, y, strict=True):
            ax.annotate(f"b={step.tokens:g}", (xi, yi), fontsize=8,
                        textcoords="offset points", xytext=(4, -10))
    gap = roofline.attainable_flops(train_step.intensity, peak_flops, bandwidth) / achieved
    ax.set_title(f"Decode climbs the memory slope as the batch grows; training runs at "
                 f"1/{gap:.1f} of its roof")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_decode_throughput(ax: Axes, sweeps: Mapping[str, Sequence[MeasuredStep]],
                           peak_flops: float, bandwidth: float,
                           ridge_batch: float | None = None, ridge_model: str = "") -> Axes:
    """Decode tokens/s against batch size, measured and the roofline's bound, per model.

    ridge_batch: the batch at which `ridge_model`'s decode reaches the ridge point, or
    None if it never does (decode_compute_bound_batch).
    """
    for color, (label, points) in zip(cycle(colors()), sweeps.items()):
        batches = [step.tokens for step, _ in points]
        ax.plot(batches, [step.tokens / seconds for step, seconds in points], "o-",
                color=color, label=f"{label}: measured")
        ax.plot(batches, [step.tokens_per_second_bound(peak_flops, bandwidth)
                          for step, _ in points], "--", color=color,
                label=f"{label}: roofline bound")
    if ridge_batch:
        ax.axvline(ridge_batch, color="grey", linestyle=":", label=f"{ridge_model}'s ridge batch")
    ax.set_xscale("log", base=2)
    batches = sorted({step.tokens for points in sweeps.values() for step, _ in points})
    ax.set_xticks(batches, [fmt(b) for b in batches])
    ax.xaxis.set_minor_locator(NullLocator())
    log_axis(ax, "y", "tokens per second (log scale)")
    ax.set_xlabel("batch size (sequences decoded together, log scale)")
    ax.set_title(_throughput_finding(sweeps.get(ridge_model, ()), ridge_batch, ridge_model),
                 fontsize=10)
    ax.legend(fontsize=8)
    return ax


# Measured tokens/s that grow less than this past the ridge batch count as flattening.
FLAT_GROWTH = 1.3


def _throughput_finding(points: Sequence[MeasuredStep], ridge_batch: float | None,
                        model: str) -> str:
    """The throughput figure's title: where the bound flattens, and what the measured line
    of `model` does past that batch."""
    if not ridge_batch:
        return "Tokens/s grow with the batch; decode never reaches this machine's ridge"
    past = [(step.tokens, step.tokens / seconds) for step, seconds in points
            if step.tokens >= ridge_batch]
    bound = f"Bound flattens at batch {ridge_batch:.0f} ({model})"
    if len(past) < 2:
        return f"{bound}; no measured batch lies past it"
    (first, rate_first), (last, rate_last) = past[0], past[-1]
    growth = rate_last / rate_first
    if growth < FLAT_GROWTH:
        return (f"{bound}; the measured tokens/s flatten too ({growth:.1f}x from batch "
                f"{first:g} to {last:g})")
    return f"{bound}, yet measured tokens/s grow {growth:.1f}x from batch {first:g} to {last:g}"


def _verb(kinds: list[str], one: str, many: str) -> str:
    return f"{' and '.join(kinds)} {one if len(kinds) == 1 else many}"


def _placement(steps: Sequence[StepCost], ridges: Sequence[float]) -> str:
    """Which kinds of step sit left of every ridge, right of every ridge, or between."""
    spans: dict[str, list[float]] = {}
    for step in steps:
        spans.setdefault(step.kind, []).append(step.intensity)
    left = [kind for kind, values in spans.items() if max(values) < min(ridges)]
    right = [kind for kind, values in spans.items() if min(values) >= max(ridges)]
    between = [kind for kind in spans if kind not in left and kind not in right]
    parts = []
    if left:
        parts.append(_verb(left, "sits", "sit") + " left of every ridge")
    if right:
        parts.append(_verb(right, "sits", "sit") + " right")
    if between:
        parts.append(_verb(between, "straddles", "straddle") + " the ridges")
    return "; ".join(parts)


def plot_chip_rooflines(ax: Axes, chips: Sequence[str | devices.Device],
                        steps: Sequence[StepCost], model_name: str,
                        intensities: tuple[float, float] = (0.3, 3e4)) -> Axes:
    """Several chips' rooflines, with one model's steps marked at their intensity.

    Every chip needs a published peak (a ValueError names one that has none).
    """
    ridges = [roofline.chip_ridge_point(chip) for chip in chips]
    for color, chip in zip(cycle(colors()), chips):
        device = devices.get(chip)
        plot_roof(ax, device.peak_flops, device.bandwidth, device.name, color, intensities)
    _mark_steps(ax, steps)
    ax.set_title(f"{model_name} {_placement(steps, ridges)}")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def _mark_steps(ax: Axes, steps: Sequence[StepCost]) -> None:
    """A vertical line per step, named along it. When the next step is too close to leave
    room, this name goes left of its line and the next one starts higher up, so that two
    names never share a stretch of the axis."""
    ordered = sorted(steps, key=lambda step: step.intensity)
    raised = False  # whether this step's name starts higher up (the one before was close)
    for step, after in zip(ordered, ordered[1:] + [None], strict=True):
        crowded = after is not None and after.intensity < step.intensity * 10**CROWDED_DECADES
        ax.axvline(step.intensity, color="grey", alpha=0.4, linewidth=1)
        ax.text(step.intensity, 0.5 if raised else 0.02, f" {step.name} ", rotation=90,
                fontsize=8, va="bottom", ha="right" if crowded else "left",
                transform=ax.get_xaxis_transform())
        raised = crowded and not raised


def plot_fit(ax: Axes, chip: str | devices.Device, params: float,
             usable_fraction: float = 1.0,
             precisions: tuple[str, ...] = roofline.ON_DEVICE_PRECISIONS) -> Axes:
    """Bars of weight GB per precision against the chip's usable memory, tokens/s on top."""
    device = devices.get(chip)
    fits_color, too_big_color = colors()[:2]
    room = usable_fraction * device.memory / 1e9
    sizes = [roofline.weight_bytes(params, p) / 1e9 for p in precisions]
    ax.bar(precisions, sizes, color=[fits_color if size <= room else too_big_color
                                     for size in sizes])
    ax.axhline(room, color="k", linestyle="--", label=f"usable memory {room:.3g} GB")
    for x, (precision, size) in enumerate(zip(precisions, sizes, strict=True)):
        rate = roofline.decode_tokens_per_second_bound(params, precision, device.bandwidth)
        ax.text(x, size, f"{rate:.3g} tok/s" if size <= room else "does not fit",
                ha="center", va="bottom")
    ax.set_ylabel("weights (GB)")
    ax.set_xlabel("precision (bytes per weight: fp16 2, int8 1, int4 0.5)")
    ax.set_ylim(0, max(max(sizes), room) * 1.25)
    ax.legend(loc="upper right")
    fitting = [p for p, size in zip(precisions, sizes, strict=True) if size <= room]
    ax.set_title(f"{params / 1e9:.3g}B on {device.name}: "
                 + (f"fits at {', '.join(fitting)}" if fitting else "fits at no precision"))
    return ax
