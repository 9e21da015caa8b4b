"""No figure shows a learner an internal key: every text on it is written for a reader.

A reference key ("llama31_405b.mfu"), its subject ("llama31_405b", or "llama31 405b" with the
underscore swapped for a space), a fit's name ("besiroglu2024") or a chip's key ("h100_sxm")
is the library's vocabulary, not the learner's. Each explorer is drawn at its defaults and at
every dropdown option, and each figure function on sample inputs (SAMPLES); every title,
axis label, legend entry, annotation and tick label is scanned. The coverage test makes sure
every figure function is drawn here, apart from those listed in NOT_YET (whose inputs take
a measurement or a trained model to make; none at present).
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
    compression,
    costs,
    counting,
    devices,
    distill,
    flops,
    inference,
    payback,
    references,
    roofline,
    scaleout,
    scaling,
    serving,
    serving_calibration,
    stats,
    traffic,
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
from course_lib.scheduler import continuous_batching, one_at_a_time
from course_lib.serving import Workload
from course_lib.serving_loop import StepTimes
from course_lib.serving_sim import simulate
from course_lib.shapes import ModelConfig, ModelShape
from course_lib.speculative import SpeculativeTiming
from course_lib.training_config import History

FIGURES = Path(__file__).resolve().parent.parent / "course_lib" / "figures"
NOT_YET: set[str] = set()  # figure functions without a sample yet, each with its reason


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


def _measurements() -> list[compression.Measurement]:
    """Three versions of a model, named as notebook 06 names them, with a range of repeats."""
    return [compression.Measurement(name, int(mb * 1e6), 0, 1, 1.0, loss, ms, 100.0, ms * 0.9,
                                    ms * 1.2)
            for name, mb, loss, ms in (("original (fp32)", 4.0, 1.50, 2.0),
                                       ("int8 weights", 1.0, 1.52, 1.6),
                                       ("pruned 50%", 2.0, 1.70, 2.1))]


def _distillation() -> distill.DistillationResult:
    """Synthetic histories of the three students, on a compute x axis (step_flops set)."""
    def history(end: float) -> History:
        return History(step_loss=[4.0, 3.0, end], eval_iters=[0, 2], train_loss=[4.0, end],
                       val_loss=[4.1, end + 0.05])
    return distill.DistillationResult(
        CONFIG, None, None, None, history(1.4), history(1.5), 1.45, 1.55,
        matched_history=history(1.48), matched_val_loss=1.53,
        step_flops={"distilled": 3e9, "alone": 1e9})


def _step_times() -> StepTimes:
    """Made-up prefill passes (by tokens) and decode steps (by batch), s: straight lines."""
    return StepTimes({4: [0.010, 0.011], 16: [0.014, 0.016]},
                     {1: [0.005, 0.0055], 4: [0.006, 0.0066], 8: [0.0075, 0.008]})


LOADS = (20.0, 80.0)


@functools.cache
def _sweeps() -> dict:
    """The load sweep of notebook 09 in miniature: two policies, simulated on the cost model
    of _step_times (an event simulation: milliseconds)."""
    cost = _step_times().cost_model()
    return {policy.name: [simulate(traffic.workload(40, rate, seed=1), policy, cost,
                                   context=CONFIG.block_size).summary() for rate in LOADS]
            for policy in (one_at_a_time(), continuous_batching(8))}


def _busiest_runs() -> list:
    """One run per maximum batch (1: one at a time, then 8), at the highest load."""
    return [runs[-1] for runs in _sweeps().values()]


def _speculative_rows() -> list[SpeculativeTiming]:
    one = stats.Spread.of
    return [SpeculativeTiming(k, 0.7, tokens, one([0.8 / speed, 1.0 / speed]), one([0.9, 1.0]))
            for k, tokens, speed in ((1, 1.6, 1.3), (3, 2.4, 1.6), (5, 2.7, 1.4))]


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
    "compression.plot_quality_vs_cost": (2, lambda a: _figure(
        "compression", "plot_quality_vs_cost")(a, _measurements(), tolerance=0.05)),
    "compression.plot_distillation": (1, lambda a: _figure("compression", "plot_distillation")(
        a[0], _distillation(), teacher_val_loss=1.3)),
    "compression.plot_payback": (1, lambda a: _figure("compression", "plot_payback")(
        a[0], payback.payback(costs.open_model().replace(requests_per_day=1e6), 1e9, 1e12))),
    "serving_load.plot_step_times": (2, lambda a: _figure("serving_load", "plot_step_times")(
        a, _step_times(), _step_times().cost_model())),
    "serving_load.plot_load_sweep": (3, lambda a: _figure("serving_load", "plot_load_sweep")(
        a, LOADS, _sweeps())),
    "serving_load.plot_batch_tradeoff": (1, lambda a: _figure(
        "serving_load", "plot_batch_tradeoff")(a[0], [1, 8], _busiest_runs(), 2.0)),
    "serving_load.plot_goodput": (1, lambda a: _figure("serving_load", "plot_goodput")(
        a[0], LOADS, {name: [r.requests_per_s for r in runs] for name, runs in _sweeps().items()})),
    "serving_load.plot_speculative": (2, lambda a: _figure("serving_load", "plot_speculative")(
        a, _speculative_rows(), 0.4)),
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
