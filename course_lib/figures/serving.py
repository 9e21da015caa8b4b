"""Figures of notebook 08 (the price of a token): cost against batch and latency, memory,
mixture-of-experts reads, and the three calibrations.

Figures layer. Every function draws on an Axes the caller owns, sets a title computed from
the data (the finding) and returns the Axes. The numbers come from course_lib.serving,
serving_cost and serving_calibration; colours from the course palette.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from course_lib.figures.base import colors, log_axis
from course_lib.formatting import fmt
from course_lib.serving import Deployment, ServedModel, Workload, decode_step, prefill_step
from course_lib.serving_calibration import PROVIDERS, MarketRow
from course_lib.serving_cost import PER_MILLION, ServingCost, decode_curve


def plot_cost_by_batch(ax: Axes, model: ServedModel, dep: Deployment, work: Workload,
                       marks: Sequence[int] = (1,)) -> Axes:
    """USD per million output tokens against batch size, memory- and compute-bound parts
    in two colours, prefill's price per input token as a dashed line, `marks` labelled."""
    palette = colors()
    curve = decode_curve(model, dep, work)
    b, usd, bound = curve["batch"], curve["usd_per_million_output"], curve["compute_bound"]
    ax.plot(b[~bound], usd[~bound], color=palette[0], lw=2, label="decode, memory-bound")
    if bound.any():
        ax.plot(b[bound], usd[bound], color=palette[1], lw=2, label="decode, compute-bound")
    if work.prompt_tokens:
        prefill = prefill_step(model, dep, work, b)
        ax.plot(b, dep.usd_per_second * prefill.seconds / prefill.tokens * PER_MILLION,
                color=palette[5], ls="--", label="prefill, per input token")
    for mark in (m for m in marks if m <= b[-1]):
        value = decode_curve(model, dep, work, [mark])["usd_per_million_output"][0]
        ax.annotate(f"b={mark}: ${fmt(value)}", (mark, value), textcoords="offset points",
                    xytext=(6, -12), fontsize=8)
    ax.scatter([b[-1]], [usd[-1]], color="k", zorder=4)
    log_axis(ax, "x", "batch size (sequences decoded together)")
    log_axis(ax, "y", "USD per million tokens")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"{model.name}: batch 1 costs {fmt(usd[0] / usd[-1])}x the largest batch "
                 f"({int(b[-1])}) per output token", fontsize=10)
    return ax


def plot_frontier(ax: Axes, curves: Mapping[str, dict], tpot_target_s: float | None = None,
                  point: tuple[float, float] | None = None) -> Axes:
    """Cost against latency: USD per million output tokens against ms per output token,
    one line per configuration (decode_curve results), a target and a point if given."""
    for color, (label, curve) in zip(cycle(colors()), curves.items()):
        ax.plot(curve["tpot_s"] * 1e3, curve["usd_per_million_output"], color=color, lw=2,
                label=label)
    if point is not None:
        ax.scatter([point[0] * 1e3], [point[1]], color="k", zorder=4, label="this setting")
    log_axis(ax, "y", "USD per million output tokens")
    ax.set_xlabel("time per output token (ms)")
    first = next(iter(curves.values()))
    tpot, usd = first["tpot_s"], first["usd_per_million_output"]
    if tpot_target_s is not None:
        ax.axvline(tpot_target_s * 1e3, color="0.4", ls=":", lw=1, label="latency target")
        meets = tpot <= tpot_target_s
        title = (f"Within {fmt(tpot_target_s * 1e3)} ms/token the cheapest is "
                 f"${fmt(usd[meets][-1])}/M, {fmt(usd[0] / usd[meets][-1])}x less than batch 1"
                 if meets.any() else f"No batch meets {fmt(tpot_target_s * 1e3)} ms/token: "
                 f"the floor is {fmt(tpot[0] * 1e3)} ms")
    else:
        title = (f"Waiting {fmt(tpot[-1] / tpot[0])}x longer per token makes it "
                 f"{fmt(usd[0] / usd[-1])}x cheaper")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title, fontsize=10)
    return ax


def plot_memory(ax: Axes, cost: ServingCost) -> Axes:
    """One stacked bar of the replica's memory: weights, the batch's KV caches, what is left."""
    palette = colors()
    parts = [("weights", cost.weight_bytes, palette[0]), ("KV caches", cost.kv_bytes, palette[1]),
             ("free", max(0.0, cost.free_bytes), "0.85")]
    bottom = 0.0
    for label, size, color in parts:
        ax.bar([0], [size / 1e9], bottom=bottom, color=color, width=0.6,
               label=f"{label} {fmt(size / 1e9)} GB")
        bottom += size / 1e9
    ax.set_xticks([])
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylabel(f"memory of {cost.deployment.chips} x {cost.deployment.device.name} (GB)")
    ax.set_ylim(0, cost.deployment.memory / 1e9)
    ax.legend(fontsize=8, loc="upper right")
    kv, weights = (part / cost.deployment.memory for part in (cost.kv_bytes, cost.weight_bytes))
    ax.set_title(f"{cost.batch} sequences (at most {cost.largest_batch}): KV caches "
                 f"{kv:.0%} of memory, weights {weights:.0%}", fontsize=9)
    return ax


def plot_experts(ax: Axes, model: ServedModel, batches: Sequence[float] | None = None) -> Axes:
    """A mixture of experts: share of its weights a decode step reads, against batch size."""
    b = np.unique(np.logspace(0, 3, 60).round()) if batches is None else np.asarray(batches)
    share = np.asarray(model.params_read(b)) / model.total_params
    ax.plot(b, 100 * share, color=colors()[0], lw=2, label="weights read per step")
    ax.axhline(100 * model.active_params / model.total_params, color="0.4", ls=":", lw=1,
               label="active share (what one token computes with)")
    log_axis(ax, "x", "batch size (tokens per decode step)")
    ax.set_ylabel("share of all weights read (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, loc="lower right")
    most = b[np.argmax(share >= 0.9)] if (share >= 0.9).any() else None
    ax.set_title(f"{model.name}: batch 1 reads {share[0]:.0%} of the weights"
                 + (f", batch {int(most)} already 90%" if most else ""), fontsize=10)
    return ax


def plot_market(ax: Axes, rows: Sequence[MarketRow]) -> Axes:
    """Grouped bars per model and token kind: the serving model's floor and each provider."""
    palette = colors()
    labels, groups = [], []
    for row in rows:
        for i, kind in enumerate(("input", "output")):
            labels.append(f"{row.model.removeprefix('llama31_').upper()} {kind}")
            floor = (row.cost.usd_per_million_input, row.cost.usd_per_million_output)[i]
            groups.append([floor] + [row.prices[p][i] for p in PROVIDERS])
    values = np.array(groups)
    width = 0.8 / values.shape[1]
    names = ["serving model floor"] + list(PROVIDERS.values())
    for j, name in enumerate(names):
        ax.bar(np.arange(len(labels)) + (j - (values.shape[1] - 1) / 2) * width, values[:, j],
               width, color=palette[j], label=name)
    ax.set_xticks(np.arange(len(labels)), labels)
    log_axis(ax, "y", "USD per million tokens")
    ax.legend(fontsize=8, loc="upper left")
    ratios = values[:, 1:] / values[:, :1]
    ax.set_title(f"Market prices sit {fmt(ratios.min())}x to {fmt(ratios.max())}x above the "
                 f"serving model's floor", fontsize=10)
    return ax


def plot_this_machine(ax: Axes, predicted: Mapping[str, np.ndarray],
                      measured_tokens_per_s: Sequence[float]) -> Axes:
    """Decode tokens/s against batch on this machine: the serving model and the measurement."""
    palette = colors()
    b = predicted["batch"]
    ax.plot(b, predicted["tokens_per_s"], "--", color=palette[0], lw=2,
            label="serving model (measured peak and bandwidth)")
    ax.plot(b, measured_tokens_per_s, "o-", color=palette[1], lw=2, label="measured")
    log_axis(ax, "x", "batch size (sequences)", subs=(1, 2, 5))
    log_axis(ax, "y", "decode tokens per second")
    ax.legend(fontsize=8, loc="upper left")
    gaps = np.asarray(predicted["tokens_per_s"]) / np.asarray(measured_tokens_per_s, float)
    ax.set_title(f"Measured decode runs {fmt(gaps.min())}x to {fmt(gaps.max())}x below the "
                 f"serving model: overhead", fontsize=10)
    return ax


def plot_precision(ax: Axes, model: ServedModel, deployments: Mapping[str, Deployment],
                   work: Workload, batch: int = 1) -> Axes:
    """Decode step time at one batch size for several deployments (precisions), bars."""
    palette = colors()
    names = list(deployments)
    seconds = [float(decode_step(model, dep, work, batch).seconds) * 1e3
               for dep in deployments.values()]
    ax.bar(names, seconds, color=[palette[i % len(palette)] for i in range(len(names))])
    for x, value in enumerate(seconds):
        ax.text(x, value, f"{fmt(value)} ms", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(f"decode step at batch {batch} (ms)")
    ax.set_ylim(0, max(seconds) * 1.2)
    ax.set_title(f"{names[-1]} decodes {fmt(seconds[0] / seconds[-1])}x faster than "
                 f"{names[0]} at batch {batch}", fontsize=10)
    return ax


def plot_serving(ax: Axes, cost: ServingCost, curve: Mapping[str, np.ndarray],
                 tpot_target_s: float | None = None) -> Axes:
    """The explorer's figure, lean enough to redraw at once: the cost-latency curve with
    this setting marked, the target if any, and a memory strip (weights, KV caches, free).

    curve: decode_curve for the same model, deployment and workload. No legend: the strip
    and the point carry their own labels, and the readout beside the figure the numbers.
    """
    palette = colors()
    ax.plot(curve["tpot_s"] * 1e3, curve["usd_per_million_output"], color=palette[0], lw=2)
    ax.scatter([cost.tpot_s * 1e3], [cost.usd_per_million_output], color="k", zorder=4)
    ax.annotate(f"batch {cost.batch}", (cost.tpot_s * 1e3, cost.usd_per_million_output),
                textcoords="offset points", xytext=(6, 6), fontsize=8)
    if tpot_target_s is not None:
        ax.axvline(tpot_target_s * 1e3, color="0.4", ls=":", lw=1)
    log_axis(ax, "y", "USD per million output tokens")
    ax.set_xlabel("time per output token (ms)")
    memory = cost.deployment.memory
    left, width = 0.42, 0.55
    for size, color in ((cost.weight_bytes, palette[0]), (cost.kv_bytes, palette[1]),
                        (max(0.0, cost.free_bytes), "0.85")):
        share = size / memory
        ax.add_patch(Rectangle((left, 0.86), width * share, 0.06, transform=ax.transAxes,
                               color=color))
        left += width * share
    ax.text(0.42, 0.94, f"memory: weights {fmt(cost.weight_bytes / 1e9)} GB, KV "
            f"{fmt(cost.kv_bytes / 1e9)} GB, free {fmt(max(0.0, cost.free_bytes) / 1e9)} GB",
            transform=ax.transAxes, fontsize=8)
    ax.set_title(f"${fmt(cost.usd_per_million_output)} per million output tokens at "
                 f"{fmt(cost.tpot_s * 1e3)} ms per token ({cost.decode.regime})", fontsize=10)
    return ax
