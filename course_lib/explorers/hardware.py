"""Notebook 07's on-device explorer: which model sizes fit a chip, and how fast they decode.

Explorers layer. The numbers come from course_lib.roofline (fit and decode bound), the
figure from course_lib.figures.hardware.plot_fit, the controls from explorers.base.
"""

from __future__ import annotations

import html

import ipywidgets as W

from course_lib import devices, references
from course_lib.explorers.base import Explorer, dropdown, log_slider, wide
from course_lib.figures.hardware import plot_fit
from course_lib.roofline import ON_DEVICE_PRECISIONS, describe_fit


class FitExplorer(Explorer):
    """Chip, model size and usable memory -> weight size per precision, fit, decode bound."""

    figsize = (7.0, 3.4)

    def __init__(self, chip: str = "snapdragon_8_gen3", params: float | None = None,
                 usable_fraction: float = 0.5):
        params = references.value("llama3_8b.params") if params is None else params
        chips = tuple((devices.get(key).name, key) for key in devices.names())
        super().__init__({
            "chip": dropdown("chip", chips, chip),
            # 100M to 1T parameters: every position is a valid model size.
            "params": log_slider("parameters", params, 8, 12),
            "usable_fraction": W.FloatSlider(value=usable_fraction, min=0.1, max=1.0,
                                             step=0.05, description="share of memory usable",
                                             continuous_update=False, **wide()),
        })

    def draw(self, axes) -> str:
        """The fit bars on axes[0]; the readout: one describe_fit sentence per precision."""
        c = {name: control.value for name, control in self.controls.items()}
        plot_fit(axes[0], c["chip"], c["params"], c["usable_fraction"])
        lines = [describe_fit(c["chip"], c["params"], precision, c["usable_fraction"])
                 for precision in ON_DEVICE_PRECISIONS]
        return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def fit_explorer(chip: str = "snapdragon_8_gen3", params: float | None = None,
                 usable_fraction: float = 0.5) -> FitExplorer:
    """Notebook 07's on-device explorer (params default: Llama 3 8B's); shows itself when
    it is the last expression of a cell, live or as a static copy."""
    return FitExplorer(chip, params, usable_fraction)
