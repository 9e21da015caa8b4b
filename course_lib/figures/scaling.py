"""Figures of notebooks 04 and 05 about scale: training compute against parameters, IsoFLOP
curves and the compute-optimal frontier, measured against predicted step times, and
inference-aware model sizing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from course_lib import references, scaling
from course_lib.figures.base import colors, log_axis
from course_lib.formatting import fmt

REAL_RUNS = ("gpt3", "chinchilla", "llama3_8b", "llama3_70b", "llama31_405b")


def plot_training_compute(ax: Axes, n_params: float, n_tokens: float, flops: float) -> Axes:
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
    gpt3 = references.value("gpt3.training_flops")
    ax.set_title(f"Training this model takes {fmt(flops / gpt3)}x GPT-3's compute", fontsize=10)
    return ax


def plot_isoflop(ax: Axes, budgets: Sequence[float], fit: str = "besiroglu2024") -> Axes:
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
    low, high = frontier_n[0], frontier_n[-1]
    ax.set_title(f"{fmt(budgets[-1] / budgets[0])}x more compute: the best model grows "
                 f"{fmt(high / low)}x", fontsize=10)
    return ax


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
