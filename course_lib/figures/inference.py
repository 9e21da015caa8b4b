"""Figures of notebook 03: FLOPs per generated token against context, with and without the
KV cache, and latency and throughput against batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes

from course_lib.figures.base import colors, log_axis
from course_lib.flops import flops_per_generated_token
from course_lib.inference import RequestTiming
from course_lib.shapes import ModelConfig
from course_lib.stats import Spread


def plot_flops_per_token(ax: Axes, config: ModelConfig, contexts: Sequence[int],
                         measured: dict[bool, Sequence[int]] | None = None) -> Axes:
    """FLOPs to generate one token against its context, with and without the KV cache.

    Lines: the formula; markers: `measured` counts ({use_kv_cache: one per context}).
    """
    palette = colors()
    lines = {}
    for color, use_kv_cache, label in ((0, False, "cache off"), (1, True, "cache on")):
        lines[use_kv_cache] = [flops_per_generated_token(config, c, use_kv_cache)
                               for c in contexts]
        ax.plot(contexts, lines[use_kv_cache], color=palette[color], label=f"{label}: formula")
        if measured is not None:
            ax.plot(contexts, measured[use_kv_cache], "o", color=palette[color], mfc="none",
                    label=f"{label}: PyTorch counted")
    log_axis(ax, "y", "FLOPs per generated token", subs=(1.0, 2.0, 5.0))
    ax.set_xlabel("context (tokens the model sees)")
    ratio = lines[False][-1] / lines[True][-1]
    ax.set_title(f"Without the cache, a token at context {contexts[-1]} costs {ratio:.0f}x more")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def _errorbar(ax, batches: list[int], spreads: Sequence[Spread], scale: float, color: str,
              label: str | None = None) -> None:
    medians = [s.median * scale for s in spreads]
    below = [(s.median - s.low) * scale for s in spreads]
    above = [(s.high - s.median) * scale for s in spreads]
    ax.errorbar(batches, medians, yerr=[below, above], marker="o", capsize=3, color=color,
                label=label)


def plot_batch_sweep(axes: Sequence[Axes], timings: Sequence[RequestTiming]) -> Sequence[Axes]:
    """Latency (axes[0]) and throughput (axes[1]) against batch size; bars show the spread.

    Returns the two Axes; the figure's title states how throughput and per-token latency
    changed from the smallest batch to the largest.
    """
    latency, throughput = axes
    batches = [t.batch_size for t in timings]
    palette = colors()
    _errorbar(latency, batches, [t.time_to_first_token_s for t in timings], 1e3, palette[0],
              "time to first token")
    _errorbar(latency, batches, [t.time_per_output_token_s for t in timings], 1e3, palette[1],
              "time per output token")
    log_axis(latency, "y", "milliseconds (median and range)", subs=(1.0, 2.0, 5.0))
    latency.set_title("Latency: what each user waits")
    latency.legend(fontsize=8)
    _errorbar(throughput, batches, [t.tokens_per_s for t in timings], 1, palette[3])
    log_axis(throughput, "y", "output tokens per second (whole batch)", subs=(1.0, 2.0, 5.0))
    throughput.set_title("Throughput: what the machine produces")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, labels=[str(b) for b in batches])
        ax.set_xlabel("batch size (sequences decoded together)")
        ax.grid(alpha=0.3)
    first, last = timings[0], timings[-1]
    gain = last.tokens_per_s.median / first.tokens_per_s.median
    slower = last.time_per_output_token_s.median / first.time_per_output_token_s.median
    latency.figure.suptitle(f"Batch {last.batch_size} vs {first.batch_size}: {gain:.1f}x the "
                            f"tokens per second, each token {slower:.1f}x slower for its user")
    return axes
