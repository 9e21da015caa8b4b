"""No figure shows a learner an internal key: every text on it is written for a reader.

A reference key ("llama31_405b.mfu"), its subject ("llama31_405b", or "llama31 405b" with the
underscore swapped for a space), a fit's name ("besiroglu2024") or a chip's key ("h100_sxm")
is the library's vocabulary, not the learner's. Each explorer is drawn at its defaults and at
every dropdown option, and each figure function on sample inputs (SAMPLES); every title,
axis label, legend entry, annotation and tick label is scanned. The coverage test makes sure
every figure function is drawn here, apart from those listed in NOT_YET (whose inputs take
a measurement or a simulation to make).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import ipywidgets as W
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_lib import (
    costs,
    counting,
    devices,
    flops,
    inference,
    references,
    roofline,
    scaleout,
    scaling,
    serving,
    serving_calibration,
    stats,
)
from course_lib import serving_cost as sc
from course_lib.explorers import compression as compression_explorers
from course_lib.explorers import costs as cost_explorers
from course_lib.explorers import hardware as hardware_explorers
from course_lib.explorers import scaleout as scaleout_explorers
from course_lib.explorers import scaling as scaling_explorers
from course_lib.explorers import serving as serving_explorers
from course_lib.figures.base import new_figure
from course_lib.model import TinyGPT
from course_lib.serving import Workload
from course_lib.shapes import ModelConfig, ModelShape
from course_lib.training_config import History

FIGURES = Path(__file__).resolve().parent.parent / "course_lib" / "figures"
NOT_YET = {"compression.plot_quality_vs_cost", "compression.plot_distillation",
           "compression.plot_payback", "serving_load.plot_step_times",
           "serving_load.plot_load_sweep", "serving_load.plot_batch_tradeoff",
           "serving_load.plot_goodput", "serving_load.plot_speculative"}


def _internal_names() -> set[str]:
    names = {entry.key for entry in references.entries()} | set(scaling.FITS)
    names |= set(devices.names())
    subjects = {entry.key.split(".")[0] for entry in references.entries()}
    names |= {s for s in subjects if re.search(r"[\d_]", s)}
    return names | {name.replace("_", " ") for name in names if "_" in name}


INTERNAL = re.compile("|".join(rf"(?<![\w.-]){re.escape(name)}(?![\w-])"
                               for name in sorted(_internal_names(), key=len, reverse=True)))
ONE_PLURAL = re.compile(r"(?<![\d.,])1 (tokens|parameters|days|chips|requests|sequences|steps|"
                        r"layers|heads|GPUs|accelerators|hours|seconds)\b")


def figure_texts(fig: Figure) -> list[str]:
    """Every text a reader sees on the figure (tick labels drawn first)."""
    fig.canvas.draw()
    texts = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        texts.append(fig._suptitle.get_text())
    for ax in fig.axes:
        texts += [ax.get_title(loc) for loc in ("left", "center", "right")]
        texts += [ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.texts]
        texts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        for legend in [ax.get_legend(), *[a for a in ax.artists if hasattr(a, "get_texts")]]:
            if legend is not None:
                texts += [t.get_text() for t in legend.get_texts()]
                texts.append(legend.get_title().get_text())
    return [t for t in texts if t]


def bad_labels(fig: Figure) -> list[str]:
    return [t for t in figure_texts(fig) if INTERNAL.search(t) or ONE_PLURAL.search(t)]


def test_the_scan_catches_keys_and_spares_prose():
    fig, (ax,) = new_figure()
    ax.set_title("Llama 3.1 405B at 41% MFU; 2024 refit")
    ax.plot([1, 2], label="1 token per parameter")
    ax.legend()
    assert bad_labels(fig) == []
    for wrong in ("llama31 405b", "besiroglu2024: 18 tokens/param", "h100_sxm", "gpt3",
                  "1 tokens per parameter", "llama31_405b.mfu"):
        fig, (ax,) = new_figure()
        ax.annotate(wrong, (0.5, 0.5))
        assert bad_labels(fig) == [wrong], wrong


# --- Sample inputs for each figure function -------------------------------------------------

CONFIG = ModelConfig(vocab_size=50, n_layer=2, n_head=2, n_embd=64, block_size=32)
LLAMA8, H100 = serving.llama31("8b"), serving.deployment("h100_sxm")
LONG = Workload(2047, 1)


def _history() -> History:
    return History(step_loss=[4.0, 3.0, 2.5], eval_iters=[0, 2], train_loss=[4.1, 2.6],
                   val_loss=[4.2, 2.71])


def _memory(ax):
    torch.manual_seed(0)
    model = TinyGPT(CONFIG)
    idx = torch.randint(0, CONFIG.vocab_size, (4, 20))
    budget = flops.training_memory_budget(CONFIG, model.num_params()["total"], 4, 20)
    return _figure("training", "plot_memory_budget")(
        ax, budget, counting.measure_training_memory(model, idx, idx))


def _timing(batch: int, tokens_per_s: float, per_token_s: float) -> inference.RequestTiming:
    one = stats.Spread.of
    return inference.RequestTiming(batch, 8, 16, True, one([0.01]), one([per_token_s]),
                                   one([0.2]), one([tokens_per_s]))


def _shape() -> ModelShape:
    return ModelShape("test model", 1e6, lambda context: 2e6, 100.0)


def _decode_points():
    return [(roofline.decode_step(_shape(), b, 8, "fp32"), 1e-3) for b in (1, 4, 16)]


def _scaling_curves():
    chips = np.asarray(scaleout.CHIP_COUNTS)
    link = scaleout.one_way_bandwidth("interconnect.infiniband_ndr_port")
    params = references.value("llama3_70b.params")
    return {"after backward": scaleout.real_model_scaling(params, chips, link),
            "hidden": scaleout.real_model_scaling(params, chips, link, overlap=True)}


def _allreduce():
    sizes = np.array([4096, 2**20, 2**24])
    fit = {"latency_s": 50e-6, "bandwidth": 2e9}
    seconds = scaleout.ring_allreduce_seconds(sizes, 2, fit["bandwidth"], fit["latency_s"])
    return {"bytes": sizes, "world_size": 2, "seconds": seconds}, fit


def _figure(module: str, name: str):
    return getattr(importlib.import_module(f"course_lib.figures.{module}"), name)


# name -> (columns, draw(axes)): each draws one figure function on sample inputs.
SAMPLES: dict[str, tuple[int, Callable]] = {
    "scaling.plot_training_compute": (1, lambda a: _figure("scaling", "plot_training_compute")(
        a[0], 8e9, 15e12, 7e23)),
    "scaling.plot_isoflop": (1, lambda a: _figure("scaling", "plot_isoflop")(
        a[0], [1e19, 1e23], "chinchilla2022", mark_runs=True)),
    "scaling.plot_isoflop_fits": (2, lambda a: _figure("scaling", "plot_isoflop_fits")(
        a, [1e19, 1e21, 1e23], 5.76e23)),
    "scaling.plot_measured_vs_predicted": (1, lambda a: _figure(
        "scaling", "plot_measured_vs_predicted")(a[0], [1e5, 1e6], [0.1, 0.5], [0.05, 0.4])),
    "scaling.plot_inference_aware": (1, lambda a: _figure("scaling", "plot_inference_aware")(
        a[0], 2.1, 1e13)),
    "training.plot_block_parameters": (1, lambda a: _figure("training", "plot_block_parameters")(
        a[0], 128)),
    "training.plot_history": (1, lambda a: _figure("training", "plot_history")(a[0],
                                                                            _history())),
    "training.plot_memory_budget": (1, lambda a: _memory(a[0])),
    "inference.plot_flops_per_token": (1, lambda a: _figure("inference", "plot_flops_per_token")(
        a[0], CONFIG, [1, 8, 32])),
    "inference.plot_batch_sweep": (2, lambda a: _figure("inference", "plot_batch_sweep")(
        a, [_timing(1, 100, 0.010), _timing(8, 500, 0.016)])),
    "costs.plot_lifecycle": (1, lambda a: _figure("costs", "plot_lifecycle")(
        a[0], costs.presets()["chat"])),
    "costs.plot_comparison": (1, lambda a: _figure("costs", "plot_comparison")(
        a[0], costs.compare(costs.presets()["chat"]), 1e9)),
    "hardware.plot_roof": (1, lambda a: _figure("hardware", "plot_roof")(a[0], 1e11, 1e10,
                                                                         "a chip")),
    "hardware.plot_measured_roofline": (1, lambda a: _figure("hardware", "plot_measured_roofline")(
        a[0], 1e11, 1e10, (roofline.training_step(_shape(), 4, 8), 1e-3),
        {"tiny model": _decode_points()})),
    "hardware.plot_decode_throughput": (1, lambda a: _figure("hardware", "plot_decode_throughput")(
        a[0], {"tiny model": _decode_points()}, 1e11, 1e10, 12.3, "tiny model")),
    "hardware.plot_chip_rooflines": (1, lambda a: _figure("hardware", "plot_chip_rooflines")(
        a[0], ["h100_sxm", "a100_sxm_80gb", "apple_m4"],
        [roofline.decode_step(roofline.real_model_shape("llama3_8b"), 1, 2048)], "Llama 3 8B")),
    "hardware.plot_fit": (1, lambda a: _figure("hardware", "plot_fit")(
        a[0], "snapdragon_8_gen3", references.value("llama3_8b.params"))),
    "serving.plot_cost_by_batch": (1, lambda a: _figure("serving", "plot_cost_by_batch")(
        a[0], LLAMA8, H100, LONG, marks=(1, 64))),
    "serving.plot_frontier": (1, lambda a: _figure("serving", "plot_frontier")(
        a[0], {"2k": sc.decode_curve(LLAMA8, H100, LONG)}, 0.03)),
    "serving.plot_memory": (1, lambda a: _figure("serving", "plot_memory")(
        a[0], sc.serve(LLAMA8, H100, LONG, 100))),
    "serving.plot_experts": (1, lambda a: _figure("serving", "plot_experts")(
        a[0], serving.chat_moe())),
    "serving.plot_market": (1, lambda a: _figure("serving", "plot_market")(
        a[0], serving_calibration.market_rows())),
    "serving.plot_this_machine": (1, lambda a: _figure("serving", "plot_this_machine")(
        a[0], {"batch": np.array([1.0, 4.0]), "tokens_per_s": np.array([100.0, 400.0])},
        [10.0, 200.0])),
    "serving.plot_precision": (1, lambda a: _figure("serving", "plot_precision")(
        a[0], LLAMA8, {p: serving.deployment("h100_sxm", 1, p) for p in ("bf16", "int4")},
        Workload(16, 16))),
    "serving.plot_serving": (1, lambda a: _figure("serving", "plot_serving")(
        a[0], sc.serve(LLAMA8, H100, LONG, 64), sc.decode_curve(LLAMA8, H100, LONG), 0.03)),
    "scaleout.plot_scaling": (1, lambda a: _figure("scaleout", "plot_scaling")(
        a[0], _scaling_curves(), mark_chips=1024)),
    "scaleout.plot_allreduce_fit": (1, lambda a: _figure("scaleout", "plot_allreduce_fit")(
        a[0], *_allreduce(), gradient_bytes=2**21)),
}


def figure_functions() -> set[str]:
    found = set()
    for path in sorted(FIGURES.glob("*.py")):
        module = importlib.import_module(f"course_lib.figures.{path.stem}")
        found |= {f"{path.stem}.{name}" for name, value in vars(module).items()
                  if name.startswith("plot_") and inspect.isfunction(value)
                  and value.__module__ == module.__name__}
    return found


def test_every_figure_function_is_drawn_here_or_listed_as_not_yet():
    functions = figure_functions()
    assert not set(SAMPLES) & NOT_YET
    missing = functions - set(SAMPLES) - NOT_YET
    assert not missing, f"add a sample for each of these to SAMPLES: {sorted(missing)}"
    assert set(SAMPLES) | NOT_YET <= functions, "SAMPLES or NOT_YET names a figure that is gone"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_figure_shows_no_internal_key(name):
    columns, draw = SAMPLES[name]
    fig, axes = new_figure(width=5 * columns, ncols=columns)
    draw(axes)
    assert not bad_labels(fig), f"{name} shows: {bad_labels(fig)}"


# --- Every explorer, at its defaults and at each dropdown option -----------------------------

EXPLORERS = {
    "scaling": scaling_explorers.scaling_explorer, "sizing": scaling_explorers.sizing_explorer,
    "lifecycle": cost_explorers.lifecycle_explorer,
    "comparison": cost_explorers.comparison_explorer,
    "fit": hardware_explorers.fit_explorer, "scaleout": scaleout_explorers.scaleout_explorer,
    "serving": serving_explorers.serving_explorer,
    "payback": compression_explorers.PaybackExplorer,
}


@functools.cache
def _explorer(name: str):
    return EXPLORERS[name]()


@pytest.mark.parametrize("name", sorted(EXPLORERS))
def test_an_explorer_shows_no_internal_key_in_any_setting(name):
    explorer = _explorer(name)
    seen = {}
    settings = [{}] + [{control: value} for control, widget in explorer.controls.items()
                       if isinstance(widget, W.Dropdown) for _, value in widget.options]
    for setting in settings:
        explorer.set(**setting)
        bad = bad_labels(explorer.figure)
        if bad:
            seen[str(setting)] = bad
    assert not seen, f"{name} explorer shows internal keys: {seen}"
