"""Figures of notebook 09 (serving many users): step times and their cost model, latency
and throughput against load, the batch as the lever between price and latency, goodput,
and speculative decoding against its formula.

Figures layer. Every function draws on the Axes the caller owns, sets a title computed from
the data (the finding) and returns the Axes. The numbers come from course_lib.scheduler's
RunSummary, course_lib.serving_loop's StepTimes and course_lib.speculative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

from course_lib.figures.base import colors, log_axis
from course_lib.formatting import fmt
from course_lib.scheduler import RunSummary
from course_lib.serving_loop import StepTimes
from course_lib.serving_sim import CostModel, expected_tokens_per_step, speculative_speed_up
from course_lib.speculative import SpeculativeTiming
from course_lib.stats import Spread


def _spread_points(ax: Axes, spreads: Mapping[int, Spread], scale: float, color: str,
                   label: str) -> None:
    sizes = sorted(spreads)
    medians = np.array([spreads[s].median for s in sizes]) * scale
    low = medians - np.array([spreads[s].low for s in sizes]) * scale
    high = np.array([spreads[s].high for s in sizes]) * scale - medians
    ax.errorbar(sizes, medians, yerr=[low, high], fmt="o", capsize=3, color=color,
                label=label)


def plot_step_times(axes: Sequence[Axes], times: StepTimes, cost: CostModel) -> Sequence[Axes]:
    """Prefill pass time against its tokens (axes[0]) and decode step time against batch
    (axes[1]): measured medians with their range, and the cost model's straight lines."""
    prefill, decode = axes
    palette = colors()
    _spread_points(prefill, times.spreads("prefill"), 1e3, palette[0], "measured (median, range)")
    tokens = np.linspace(0, max(times.prefill), 50)
    prefill.plot(tokens, [cost.prefill_s(n) * 1e3 for n in tokens], color=palette[1],
                 label="cost model")
    prefill.set_xlabel("tokens in the prefill pass (prompts x longest prompt)")
    prefill.set_title(f"Prefill: {fmt(cost.prefill_fixed_s * 1e3)} ms + "
                      f"{fmt(cost.prefill_per_token_s * 1e6)} µs per token")
    _spread_points(decode, times.spreads("decode"), 1e3, palette[0], "measured (median, range)")
    batches = np.arange(1, max(times.decode) + 1)
    decode.plot(batches, [cost.decode_s(b) * 1e3 for b in batches], color=palette[1],
                label="cost model")
    decode.set_xlabel("batch (sequences in the decode step)")
    most = int(batches[-1])
    decode.set_title(f"Decode: {most} sequences cost {cost.decode_s(most) / cost.decode_s(1):.2f}"
                     f"x one")
    for ax in axes:
        ax.set_ylabel("milliseconds per step")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return axes


def plot_load_sweep(axes: Sequence[Axes], loads: Sequence[float],
                    sweeps: Mapping[str, Sequence[RunSummary]]) -> Sequence[Axes]:
    """p99 time to first token (axes[0]), p50 and p99 time per output token (axes[1]) and
    throughput (axes[2]) against offered load, one colour per policy."""
    ttft, tpot, throughput = axes
    palette = colors()
    for color, (name, runs) in zip(palette, sweeps.items(), strict=False):
        ttft.plot(loads, [r.ttft_p99_s for r in runs], "o-", color=color, label=name)
        tpot.plot(loads, [r.tpot_p99_s * 1e3 for r in runs], "o-", color=color)  # p99
        tpot.plot(loads, [r.tpot_p50_s * 1e3 for r in runs], ":", color=color)  # p50
        throughput.plot(loads, [r.tokens_per_s for r in runs], "o-", color=color, label=name)
    log_axis(ttft, "y", "p99 time to first token (s)", subs=(1.0, 2.0, 5.0))
    tpot.set_ylabel("time per output token (ms): p99 solid, p50 dotted")
    throughput.set_ylabel("output tokens per second")
    for ax in axes:
        ax.set_xlabel("offered load (requests per second)")
        ax.grid(alpha=0.3)
    ttft.legend(fontsize=7)
    best = max(sweeps, key=lambda name: sweeps[name][-1].tokens_per_s)
    worst = min(sweeps, key=lambda name: sweeps[name][-1].tokens_per_s)
    gain = sweeps[best][-1].tokens_per_s / sweeps[worst][-1].tokens_per_s
    waits = [runs[-1].ttft_p99_s for runs in sweeps.values()]
    gaps = [r.tpot_p99_s * 1e3 for runs in sweeps.values() for r in runs]
    ttft.set_title(f"Queues grow: p99 TTFT up to {fmt(max(waits))} s")
    tpot.set_title(f"p99 TPOT from {fmt(min(gaps))} to {fmt(max(gaps))} ms")
    throughput.set_title(f"{gain:.1f}x the tokens/s of {worst}")
    return axes


def plot_batch_tradeoff(ax: Axes, batches: Sequence[int], runs: Sequence[RunSummary],
                        usd_per_hour: float) -> Axes:
    """Price per million output tokens against p99 time per output token, one point per
    maximum batch (labelled): the lever between cost and latency."""
    p99_ms = np.array([r.tpot_p99_s * 1e3 for r in runs])
    usd = np.array([usd_per_hour / 3600 / r.tokens_per_s * 1e6 for r in runs])
    ax.plot(p99_ms, usd, "o-", color=colors()[0])
    for batch, x, y in zip(batches, p99_ms, usd, strict=True):
        ax.annotate(f"{batch}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    log_axis(ax, "y", "USD per million output tokens", subs=(1.0, 2.0, 5.0))
    ax.set_xlabel("p99 time per output token (ms); labels: maximum batch")
    ax.grid(alpha=0.3)
    ax.set_title(f"Batch {batches[0]} to {batches[-1]}: tokens {usd[0] / usd[-1]:.1f}x cheaper, "
                 f"p99 {p99_ms[-1] / p99_ms[0]:.1f}x slower")
    return ax


def plot_goodput(ax: Axes, loads: Sequence[float], goodputs: Mapping[str, Sequence[float]],
                 served: Mapping[str, Sequence[float]] | None = None) -> Axes:
    """Goodput (requests per second served within the latency targets) against offered
    load, per policy; dotted: every request served per second, in or out of target."""
    palette = colors()
    for color, (name, values) in zip(palette, goodputs.items(), strict=False):
        ax.plot(loads, values, "o-", color=color, label=name)
        if served is not None:
            ax.plot(loads, served[name], ":", color=color)
    ax.plot(loads, loads, color="grey", lw=0.8, label="offered load")
    ax.set_xlabel("offered load (requests per second)")
    ax.set_ylabel("requests per second within target")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    best = max(goodputs, key=lambda name: max(goodputs[name]))
    peak = int(np.argmax(goodputs[best]))
    ax.set_title(f"{best}: goodput peaks at {fmt(loads[peak])} requests/s offered")
    return ax


def plot_speculative(axes: Sequence[Axes], rows: Sequence[SpeculativeTiming],
                     cost_ratio: float) -> Sequence[Axes]:
    """Tokens per target pass (axes[0]) and speed-up (axes[1]) against k: measured, and
    Leviathan et al.'s formulas at the measured acceptance rate."""
    tokens, speed = axes
    palette = colors()
    ks = [r.k for r in rows]
    tokens.plot(ks, [r.tokens_per_pass for r in rows], "o", color=palette[0], label="measured")
    tokens.plot(ks, [expected_tokens_per_step(r.acceptance_rate, r.k) for r in rows], "-",
                color=palette[1], label="(1 - a^(k+1)) / (1 - a)")
    tokens.set_ylabel("tokens per target pass")
    best = max(rows, key=lambda r: r.tokens_per_pass)
    tokens.set_title(f"k = {best.k}: {best.tokens_per_pass:.2f} tokens per pass")
    ups = np.array([r.speed_up for r in rows])
    low = ups - np.array([r.plain_seconds.median / r.seconds.high for r in rows])
    high = np.array([r.plain_seconds.median / r.seconds.low for r in rows]) - ups
    speed.errorbar(ks, ups, yerr=[low, high], fmt="o", capsize=3, color=palette[0],
                   label="measured (median, range)")
    speed.plot(ks, [speculative_speed_up(r.acceptance_rate, r.k, cost_ratio) for r in rows],
               "-", color=palette[1], label=f"formula, draft step = {cost_ratio:.2f} target")
    speed.axhline(1, color="grey", lw=0.8)
    speed.set_ylabel("speed-up over plain decoding")
    fastest = max(rows, key=lambda r: r.speed_up)
    speed.set_title(f"Best measured: {fastest.speed_up:.2f}x at k = {fastest.k}")
    for ax in axes:
        ax.set_xlabel("k (tokens the draft proposes per round)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return axes
