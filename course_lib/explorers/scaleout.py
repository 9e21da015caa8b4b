"""Notebook 10's explorer: model size, chips, link and batch -> training vs inference scaling.

Explorers layer. The numbers come from course_lib.scaleout (real_model_scaling), the figure
from course_lib.figures.scaleout.plot_scaling, the controls from explorers.base.
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from course_lib import references, scaleout, validate
from course_lib.explorers.base import Explorer, dropdown, log_slider, table_html, wide
from course_lib.figures.scaleout import plot_scaling
from course_lib.formatting import fmt

MEASURED = "measured"  # the link key of a bandwidth measured on this machine
DEFAULT_LINK = "interconnect.infiniband_ndr_port"
BATCHES = ("gpt3.batch_tokens", "llama31_405b.batch_tokens")  # the cited global batches


def _links(measured_bandwidth: float | None) -> dict[str, tuple[str, float]]:
    """Link key -> (label, one-way bytes/s): every cited interconnect, and the measured one."""
    links = {}
    for entry in references.entries("interconnect."):
        bandwidth = scaleout.one_way_bandwidth(entry.key)
        links[entry.key] = (f"{entry.what.split(' (')[0]} ({fmt(bandwidth / 1e9)} GB/s)",
                            bandwidth)
    if measured_bandwidth is not None:
        validate.positive_array("measured_bandwidth", measured_bandwidth)
        links[MEASURED] = (f"this machine, loopback gloo (measured, "
                           f"{fmt(measured_bandwidth / 1e9)} GB/s)", float(measured_bandwidth))
    return links


class ScaleOutExplorer(Explorer):
    """Training efficiency (all-reduce after the backward, or fully hidden) against chips,
    next to inference replicas, for a model size and a link between chips."""

    figsize = (9.0, 3.6)  # room for the legend beside the plot

    def __init__(self, params: float | None = None, measured_bandwidth: float | None = None):
        self.links = _links(measured_bandwidth)
        params = references.value("llama3_70b.params") if params is None else params
        super().__init__({
            "params": log_slider("parameters N", params, 5, 12),
            "chips": W.SelectionSlider(options=scaleout.CHIP_COUNTS, value=1024,
                                       description="chips", continuous_update=False, **wide()),
            "link": dropdown("link (one way)",
                             tuple((label, key) for key, (label, _) in self.links.items()),
                             DEFAULT_LINK),
            "batch": dropdown("global batch", tuple(
                (f"{references.get(key).what.split(' training')[0]}: "
                 f"{fmt(references.value(key))} tokens", key) for key in BATCHES), BATCHES[0]),
        })

    def draw(self, axes) -> str:
        """The efficiency curves on axes[0]; the readout: one step at the chosen chips."""
        params, chips = self.controls["params"].value, self.controls["chips"].value
        link = self.links[self.controls["link"].value][1]
        batch = references.value(self.controls["batch"].value)
        every = np.asarray(scaleout.CHIP_COUNTS)
        plot_scaling(axes[0], {
            "all-reduce after backward": scaleout.real_model_scaling(params, every, link,
                                                                     batch_tokens=batch),
            "all-reduce fully hidden": scaleout.real_model_scaling(
                params, every, link, overlap=True, batch_tokens=batch)},
            mark_chips=chips)
        here = scaleout.real_model_scaling(params, chips, link, batch_tokens=batch)
        hidden = scaleout.real_model_scaling(params, chips, link, overlap=True,
                                             batch_tokens=batch)
        return table_html([
            ("compute per step (per chip)", fmt(here["compute_s"], "s")),
            ("gradient all-reduce per step", fmt(here["allreduce_s"], "s")),
            ("training speedup over one chip",
             f"{fmt(here['speedup'])}x to {fmt(hidden['speedup'])}x"),
            ("inference throughput over one replica",
             f"{chips:,}x, each request as fast as on one replica"),
            ("assumed", f"global batch {fmt(batch)} tokens, "
                        f"H100 SXM at {references.value('llama31_405b.mfu'):.0%} utilisation, "
                        f"bf16 gradients, {scaleout.ASSUMED_LATENCY_S * 1e6:g} us per ring "
                        f"step"),
        ])


def scaleout_explorer(params: float | None = None,
                     measured_bandwidth: float | None = None) -> ScaleOutExplorer:
    """Notebook 10's widget (params default: Llama 3 70B's). measured_bandwidth: bytes/s one
    way that you measured (loopback gloo), offered as a link. Shows itself when it is the
    last expression of a cell, live or as a static copy."""
    return ScaleOutExplorer(params, measured_bandwidth)
