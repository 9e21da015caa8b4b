"""Figures of notebooks 04 and 05 about scale: training compute against parameters, IsoFLOP
curves and the compute-optimal frontier, measured against predicted step times, and
inference-aware model sizing.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.axes import Axes

from course_lib import references, scaling
from course_lib.figures.base import colors, log_axis
from course_lib.formatting import fmt

REAL_RUNS = ("gpt3", "chinchilla", "llama3_8b", "llama3_70b", "llama31_405b")
# What a learner reads on a figure, for each internal key (never the key itself).
RUN_LABELS = {"gpt3": "GPT-3", "chinchilla": "Chinchilla", "llama3_8b": "Llama 3 8B",
              "llama3_70b": "Llama 3 70B", "llama31_405b": "Llama 3.1 405B"}
FIT_LABELS = {"besiroglu2024": "2024 refit (Besiroglu et al.)",
              "chinchilla2022": "2022 fit (as published, rounded)"}
# Where each run's label sits, in points from its marker, so that no two overlap.
_LABEL_OFFSETS = {"gpt3": (6, -10), "chinchilla": (-4, -10), "llama3_8b": (-9, 0),
                  "llama3_70b": (-6, 6), "llama31_405b": (-6, 6)}
_RUN_MARKERS = {"gpt3": "o", "chinchilla": "s", "llama3_8b": "^", "llama3_70b": "D",
                "llama31_405b": "v"}
RATIOS = (1, 20, 300, 3000)  # tokens per parameter, one line each
FONT = 9


def _tokens_per_parameter(ratio: float) -> str:
    return f"{fmt(ratio)} token{'' if ratio == 1 else 's'} per parameter"


def _label_runs(ax: Axes, x: Sequence[float], y: Sequence[float], color: str) -> None:
    """Mark the real runs at (x, y) and name them, each label placed clear of the others."""
    ax.scatter(x, y, color=color, s=24, zorder=3, edgecolor="white", linewidth=0.5)
    for key, xi, yi in zip(REAL_RUNS, x, y, strict=True):
        dx, dy = _LABEL_OFFSETS[key]
        ax.annotate(RUN_LABELS[key], (xi, yi), fontsize=FONT, xytext=(dx, dy),
                    textcoords="offset points", ha="left" if dx > 0 else "right",
                    va="center")


def plot_training_compute(ax: Axes, n_params: float, n_tokens: float, flops: float) -> Axes:
    """Training FLOPs against parameters: lines of constant tokens per parameter, real runs,
    and the chosen (N, D) as a star."""
    palette = colors()
    n = np.logspace(6, 12.5, 50)
    six = references.value("flops.train_per_param_token")
    for ratio, color, style in zip(RATIOS, (palette[4], palette[5], palette[3], palette[7]),
                                   ("-", "--", "-.", ":"), strict=True):
        ax.plot(n, six * n * ratio * n, color=color, ls=style, lw=1.3,
                label=_tokens_per_parameter(ratio))
    params = np.array([references.value(f"{key}.params") for key in REAL_RUNS])
    tokens = np.array([references.value(f"{key}.training_tokens") for key in REAL_RUNS])
    _label_runs(ax, params, six * params * tokens, palette[1])
    ax.scatter([n_params], [flops], marker="*", s=180, color=palette[0], zorder=4,
               label="your choice")
    log_axis(ax, "x", "parameters N")
    log_axis(ax, "y", "training compute (FLOP)")
    ax.set_ylim(1e10, 1e27)
    ax.legend(fontsize=FONT - 1, loc="upper left")
    gpt3 = references.value("gpt3.training_flops")
    ax.set_title(f"Training this model takes {fmt(flops / gpt3)}x GPT-3's compute", fontsize=10)
    return ax


def plot_isoflop(ax: Axes, budgets: Sequence[float], fit: str = "besiroglu2024",
                 mark_runs: bool = False) -> Axes:
    """Loss against N at fixed compute budgets, with each budget's optimum (the frontier);
    mark_runs also marks the real runs where the fit puts them."""
    palette = colors()
    # Budgets are ordered, so a colour ramp (cividis: colour-blind safe) shows the order;
    # the cycle's greys would make two budgets look alike.
    ramp = matplotlib.colormaps["cividis"](np.linspace(0.0, 0.8, len(budgets)))
    six = references.value("flops.train_per_param_token")
    best = []
    for c, colour in zip(budgets, ramp, strict=True):
        n_opt, d_opt = scaling.compute_optimal(c, fit)
        n = n_opt * np.logspace(-1.2, 1.2, 60)
        losses = [scaling.loss(x, c / (six * x), fit) for x in n]
        ax.plot(n, losses, color=colour, label=f"C = {fmt(c, 'FLOP')}")
        best.append((n_opt, scaling.loss(n_opt, d_opt, fit)))
    frontier_n, frontier_loss = np.array(best).T
    ax.plot(frontier_n, frontier_loss, "k--", lw=1, label="compute-optimal frontier")
    ax.scatter(frontier_n, frontier_loss, color="k", s=14, zorder=3)
    log_axis(ax, "x", "parameters N")
    ax.set_ylabel("predicted loss (nats/token)")
    budgets_legend = ax.legend(fontsize=FONT - 1, loc="upper right")
    if mark_runs:  # a marker each, named in a second legend: their labels would collide
        runs = [ax.scatter([references.value(f"{key}.params")],
                           [scaling.loss(references.value(f"{key}.params"),
                                         references.value(f"{key}.training_tokens"), fit)],
                           marker=_RUN_MARKERS[key], s=36, color=palette[5], zorder=4,
                           edgecolor="white", linewidth=0.5, label=RUN_LABELS[key])
                for key in REAL_RUNS]
        ax.add_artist(budgets_legend)
        ax.legend(handles=runs, fontsize=FONT - 1, loc="center right",
                  title="real runs (as trained)", title_fontsize=FONT - 1)
    low, high = frontier_n[0], frontier_n[-1]
    ax.set_title(f"{fmt(budgets[-1] / budgets[0])}x more compute: the best model grows "
                 f"{fmt(high / low)}x", fontsize=10)
    return ax


def plot_isoflop_fits(axes: Sequence[Axes], budgets: Sequence[float],
                      reference_budget: float,
                      fits: Sequence[str] = tuple(FIT_LABELS)) -> Sequence[Axes]:
    """One IsoFLOP panel per fit, on one shared loss scale, real runs marked; each title gives
    the fit's tokens per parameter at `reference_budget` (e.g. Chinchilla's)."""
    for ax, fit in zip(axes, fits, strict=True):
        plot_isoflop(ax, budgets, fit, mark_runs=True)
        n_opt, d_opt = scaling.compute_optimal(reference_budget, fit)
        ax.set_title(f"{FIT_LABELS[fit]}: {d_opt / n_opt:.0f} tokens/param", fontsize=10)
    low = min(ax.get_ylim()[0] for ax in axes)
    high = max(ax.get_ylim()[1] for ax in axes)
    for ax in axes:
        ax.set_ylim(low, high)
    return axes


def plot_measured_vs_predicted(ax: Axes, params: Sequence[float], measured_s: Sequence[float],
                               predicted_s: Sequence[float]) -> Axes:
    """Seconds per training step against parameters: measured points, predicted line."""
    palette = colors()
    ax.plot(params, predicted_s, "o--", color=palette[1],
            label="predicted: FLOPs per step / measured matmul FLOP/s")
    ax.plot(params, measured_s, "s-", color=palette[0], label="measured on this machine")
    log_axis(ax, "x", "parameters N", subs=(1, 2, 5))
    log_axis(ax, "y", "seconds per training step", subs=(1, 2, 5))
    ax.legend(fontsize=8)
    ratios = np.asarray(measured_s) / np.asarray(predicted_s)
    ax.set_title(f"Measured steps take {fmt(ratios.min())}x to {fmt(ratios.max())}x the "
                 f"prediction", fontsize=10)
    return ax


def plot_inference_aware(ax: Axes, target_loss: float, inference_tokens: float,
                         fit: str = "besiroglu2024") -> Axes:
    """Total lifetime FLOPs against model size, all sizes reaching target_loss.

    The title states how much smaller the inference-aware optimum is.
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
    return ax
