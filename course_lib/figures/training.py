"""Figures of notebook 02: the loss curve (also live, while training) and the training memory
budget against what was measured.
"""

from __future__ import annotations

from collections.abc import Mapping

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
