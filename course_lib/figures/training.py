"""Figures of notebook 02: one transformer block and where its weights are, the loss curve (also
live, while training) and the training memory budget against what was measured.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
from IPython import get_ipython
from IPython.display import Image, display
from matplotlib.axes import Axes

from course_lib.figures.base import colors, new_figure, to_png
from course_lib.training_config import History

MEMORY_PARTS = ("weights", "gradients", "optimizer", "activations")


def plot_history(ax: Axes, history: History) -> Axes:
    """Training loss per step and estimated train/validation loss, in nats per character."""
    palette = colors()
    ax.plot(history.step_loss, color=palette[0], alpha=0.35, lw=0.8, label="batch loss")
    ax.plot(history.eval_iters, history.train_loss, "o-", color=palette[1], label="train")
    ax.plot(history.eval_iters, history.val_loss, "s-", color=palette[2], label="validation")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats per character)")
    final = f"{history.val_loss[-1]:.2f}" if history.val_loss else "?"
    ax.set_title(f"Loss falls as the model learns (validation: {final} nats/char)")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


class LiveLossPlot:
    """A loss curve redrawn in place while a model trains: pass one as train(on_evaluate=...).

    Outside a Jupyter kernel it does nothing. The figure is shown as a PNG, so it works
    whatever matplotlib backend the notebook uses (and under nbval, where nobody looks).
    """

    def __init__(self) -> None:
        shell = get_ipython()
        self.enabled = shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
        self.handle = None
        if self.enabled:
            self.figure, (self.ax,) = new_figure(6, 3.2)
            self.handle = display(self._image(), display_id=True)

    def _image(self) -> Image:
        return Image(data=to_png(self.figure), format="png")

    def __call__(self, history: History) -> None:
        if self.handle is None:
            return
        self.ax.clear()
        plot_history(self.ax, history)
        self.handle.update(self._image())


def plot_memory_budget(ax: Axes, budget: Mapping[str, float],
                       measured: Mapping[str, float]) -> Axes:
    """Grouped bars: the formula's bytes next to the measured bytes for each kind of tensor."""
    palette = colors()
    positions = range(len(MEMORY_PARTS))
    width = 0.38
    ax.bar([p - width / 2 for p in positions], [budget[k] / 1e6 for k in MEMORY_PARTS], width,
           color=palette[0], label="formula")
    ax.bar([p + width / 2 for p in positions], [measured[k] / 1e6 for k in MEMORY_PARTS], width,
           color=palette[1], label="measured tensors")
    ax.set_xticks(list(positions), MEMORY_PARTS)
    ax.set_ylabel("memory (MB)")
    largest = max(MEMORY_PARTS, key=lambda k: measured[k])
    ax.set_title(f"Training memory: the largest part is the {largest}")
    ax.legend()
    return ax


# One transformer block, top to bottom: (label, weights in units of n_embd^2 or None, colour).
_BLOCK = (
    ("x: n_embd numbers per position, from the block below", None, None),
    ("LayerNorm: rescale each position's vector, then a gain and a bias per number", None, 2),
    ("attention: Q, K and V projections (3 matrices n_embd × n_embd), the heads mix earlier "
     "positions, an output projection (n_embd × n_embd)", 4, 0),
    ("+ residual: add x back", None, None),
    ("LayerNorm", None, 2),
    ("MLP: widen to 4 n_embd (a matrix n_embd × 4 n_embd), GELU, back to n_embd "
     "(4 n_embd × n_embd)", 8, 1),
    ("+ residual: add back what entered the MLP", None, None),
)


def plot_block_parameters(ax: Axes, n_embd: int) -> Axes:
    """One transformer block as a labelled flow chart, its weight matrices counted: 4 n_embd^2
    for attention, 8 n_embd^2 for the MLP, 12 n_embd^2 per block (biases and LayerNorm aside).
    """
    palette = colors()
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.06, 1.02)
    rows = np.linspace(0.95, 0.05, len(_BLOCK))
    for (label, weights, colour), y in zip(_BLOCK, rows, strict=True):
        box = dict(boxstyle="round,pad=0.35", fc="white" if colour is None else "none",
                   ec="0.6" if colour is None else palette[colour], lw=1.2)
        ax.text(0.07, y, textwrap.fill(label, 66), fontsize=9, va="center", ha="left",
                bbox=box)
        if weights is not None:
            ax.text(0.985, y, f"{weights} n_embd² = {weights * n_embd**2:,}", fontsize=10,
                    va="center", ha="right", weight="bold",
                    color=palette[colour] if colour is not None else "k")
    for upper, lower in zip(rows[:-1], rows[1:], strict=True):
        ax.annotate("", (0.33, lower + 0.05), (0.33, upper - 0.05),
                    arrowprops=dict(arrowstyle="->", color="0.4", lw=1))
    for start, end in ((0, 3), (3, 6)):  # the residual path around attention, then the MLP
        ax.plot([0.062, 0.035, 0.035], [rows[start], rows[start], rows[end]], color="0.25",
                lw=1.3)
        ax.annotate("", (0.062, rows[end]), (0.035, rows[end]),
                    arrowprops=dict(arrowstyle="->", color="0.25", lw=1.3))
    ax.text(0.018, (rows[0] + rows[3]) / 2, "residual", rotation=90, fontsize=8, va="center",
            ha="center", color="0.25")
    total = 12 * n_embd**2
    ax.text(0.985, rows[-1] - 0.09, f"per block: 12 n_embd² = {total:,}", fontsize=10,
            ha="right", va="center", weight="bold")
    ax.set_title(f"One block holds 4 + 8 = 12 n_embd² weights: {total:,} at n_embd = {n_embd}",
                 fontsize=11)
    return ax
