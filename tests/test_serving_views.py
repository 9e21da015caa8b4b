"""Notebook 08's figures (course_lib.figures.serving), explorer (course_lib.explorers.serving)
and exercise checks (course_lib.checks.ex08): Axes in and out with titles from the data,
a clean readout at every control position, and checks that name the listed mistakes."""

import re

import numpy as np
import pytest
from matplotlib.colors import to_hex

from course_lib import references, serving, serving_calibration
from course_lib import serving_cost as sc
from course_lib.checks import WRONG, ex08
from course_lib.explorers.serving import ServingExplorer, serving_explorer
from course_lib.figures import serving as figures
from course_lib.figures.base import colors, new_figure
from course_lib.formatting import fmt
from course_lib.serving import Workload

PALETTE = {to_hex(c) for c in colors()} | {"#000000", to_hex("0.4"), to_hex("0.85")}
LLAMA8, H100 = serving.llama31("8b"), serving.deployment("h100_sxm")
LONG = Workload(2047, 1)


def axes():
    return new_figure()[1][0]


def line_colors(ax):
    return {to_hex(line.get_color()) for line in ax.get_lines()}


# --- Figures --------------------------------------------------------------------------------


def test_cost_by_batch_title_states_how_much_batching_saves():
    ax = axes()
    assert figures.plot_cost_by_batch(ax, LLAMA8, H100, LONG, marks=(1, 64)) is ax
    first = sc.serve(LLAMA8, H100, LONG, 1).usd_per_million_output
    last = sc.serve(LLAMA8, H100, LONG, 238).usd_per_million_output
    assert f"{fmt(first / last)}x the largest batch (238)" in ax.get_title()
    assert line_colors(ax) <= PALETTE and ax.get_yscale() == "log"
    assert [t.get_text().split(":")[0] for t in ax.texts] == ["b=1", "b=64"]


def test_frontier_title_names_the_cheapest_batch_within_the_target_or_the_floor():
    curve = sc.decode_curve(LLAMA8, H100, LONG)
    ax = figures.plot_frontier(axes(), {"2k": curve}, 0.03)
    assert ax.get_title().startswith("Within 30 ms/token the cheapest is $")
    assert fmt(curve["usd_per_million_output"][-1]) in ax.get_title()
    ax = figures.plot_frontier(axes(), {"2k": curve}, 0.001)
    assert "No batch meets 1 ms/token" in ax.get_title()
    ax = figures.plot_frontier(axes(), {"2k": curve})
    assert "cheaper" in ax.get_title()


def test_memory_bar_stacks_weights_caches_and_free_memory_to_the_replicas_total():
    cost = sc.serve(LLAMA8, H100, LONG, 100)
    ax = figures.plot_memory(axes(), cost)
    heights = [patch.get_height() for patch in ax.patches]
    assert sum(heights) == pytest.approx(H100.memory / 1e9)
    assert ax.get_title() == "100 sequences (at most 238): KV caches 34% of memory, weights 20%"


def test_experts_figure_shows_active_share_at_batch_1():
    ax = figures.plot_experts(axes(), serving.chat_moe())
    assert "batch 1 reads 25% of the weights" in ax.get_title()


def test_market_figure_and_this_machine_figure_state_their_gaps():
    rows = serving_calibration.market_rows()
    ax = figures.plot_market(axes(), rows)
    ratios = [r for row in rows for pair in row.ratios().values() for r in pair]
    assert f"{fmt(min(ratios))}x to {fmt(max(ratios))}x" in ax.get_title()
    predicted = {"batch": np.array([1.0, 4.0]), "tokens_per_s": np.array([100.0, 400.0])}
    ax = figures.plot_this_machine(axes(), predicted, [10.0, 200.0])
    assert "2x to 10x below" in ax.get_title()


def test_precision_figure_compares_the_first_and_last_deployment():
    deps = {p: serving.deployment("h100_sxm", 1, p) for p in ("bf16", "int4")}
    ax = figures.plot_precision(axes(), LLAMA8, deps, Workload(16, 16))
    assert ax.get_title() == "int4 decodes 4x faster than bf16 at batch 1"


def test_serving_figure_marks_the_setting_and_draws_a_memory_strip():
    cost = sc.serve(LLAMA8, H100, LONG, 64)
    ax = figures.plot_serving(axes(), cost, sc.decode_curve(LLAMA8, H100, LONG), 0.03)
    assert fmt(cost.usd_per_million_output) in ax.get_title()
    assert len(ax.patches) == 3 and "memory: weights 16 GB" in ax.texts[-1].get_text()


# --- Explorer -------------------------------------------------------------------------------


def clean(explorer):
    text = explorer.readout.value
    assert re.search(r"\b(nan|inf|infinity)\b", text, re.IGNORECASE) is None, text
    assert bytes(explorer.image.value).startswith(b"\x89PNG")
    return text


def test_explorer_readout_shows_the_serving_models_numbers():
    explorer = serving_explorer()
    text = clean(explorer)
    cost, _ = explorer.cost()
    assert f"${fmt(cost.usd_per_million_output)} per million output tokens" in text
    assert "lifecycle, served like this" in text and "Epoch" in text


def test_explorer_at_every_control_extreme_shows_numbers_or_a_sentence():
    explorer = ServingExplorer()
    for name, control in explorer.controls.items():
        values = ([key for _, key in control.options] if hasattr(control, "options")
                  else [control.base ** control.min, control.base ** control.max])
        for value in values:
            explorer.controls[name].value = value
            text = clean(explorer)
            if "Cannot compute" in text:
                assert "does not fit" in text or "exceeds" in text, text
        explorer.set(model="llama31_8b", chip="h100_sxm", chips="1", precision="bf16",
                     prompt_tokens=100, output_tokens=500, choose="target", tpot_ms=30,
                     batch=64)


def test_explorer_explains_a_target_below_the_floor_and_a_model_that_does_not_fit():
    explorer = ServingExplorer()
    explorer.set(tpot_ms=1.0)
    assert "No batch size meets 1 ms" in clean(explorer)
    explorer.set(model="llama31_70b")
    text = clean(explorer)
    assert "does not fit" in text and "2 x NVIDIA H100 SXM in bf16" in text


def test_explorer_batch_is_clamped_to_what_fits():
    explorer = ServingExplorer()
    explorer.set(choose="batch", batch=1e4)
    cost, _ = explorer.cost()
    assert cost.batch == cost.largest_batch


# --- Exercise checks: expected values agree with the library, mistakes are named ------------

SETUP = {"model": "llama3_8b", "chip": "h100_sxm", "price_key": "price.h100_usd_per_hour_low",
         "long_context": 16384, "context": 2048, "batches": (1, 64, 238), "prefill_batch": 64,
         "moe_attention": "llama3_70b", "moe_chips": 8, "moe_context": 512, "moe_batch": 2048,
         "experts_batch": 8}
MOE, SERVER = serving.chat_moe(), serving.deployment("h100_sxm", 8, "fp8")


def library_price(batch):
    return sc.serve(LLAMA8, H100, Workload(2047, 1), batch).usd_per_million_output


def test_checks_agree_with_the_serving_model():
    tpot = sc.serve(LLAMA8, H100, Workload(16383, 1), 1).tpot_s * 1e3
    assert ex08.tpot_ms(tpot, SETUP).passed
    assert ex08.usd_per_million_output(library_price, SETUP).passed
    moe_work = Workload(511, 1)
    largest = sc.largest_batch(MOE, SERVER, moe_work)
    assert ex08.moe_largest_batch(largest, SETUP).passed
    cost = sc.serve(MOE, SERVER, moe_work, 2048)
    assert ex08.moe_decode(MOE.experts_touched(8), cost.decode.tokens_per_s_per_chip,
                           SETUP).passed
    prefill = sc.serve(LLAMA8, H100, Workload(2047, 1), 64)
    assert ex08.input_price(prefill.usd_per_million_input,
                            library_price(64) / prefill.usd_per_million_input, SETUP).passed


def _wrong(feedback, words):
    assert feedback.status == WRONG and words in feedback.message, feedback
    return feedback


def test_checks_name_the_listed_mistakes():
    v = references.value
    weights_only = 1e3 * 2 * v("llama3_8b.params") / v("h100_sxm.bandwidth")
    _wrong(ex08.tpot_ms(weights_only, SETUP), "forget the KV cache")
    _wrong(ex08.usd_per_million_output(lambda b: library_price(b) * b, SETUP), "per decode step")
    moe_work = Workload(511, 1)
    kv = MOE.held(512) * MOE.kv_bytes_per_token("fp8")
    active_only = int((SERVER.memory - MOE.active_params) // kv)
    _wrong(ex08.moe_largest_batch(active_only, SETUP), "only the active parameters")
    cost = sc.serve(MOE, SERVER, moe_work, 2048)
    _wrong(ex08.moe_decode(MOE.experts_touched(8), 8 * cost.decode.tokens_per_s_per_chip, SETUP),
           "per replica")
    total = serving.ServedModel("dense 400B", MOE.total_params, MOE.total_params, MOE.n_layers,
                                MOE.n_kv_heads, MOE.head_dim, MOE.d_model, MOE.max_context)
    slow = sc.serve(total, SERVER, moe_work, 2048).decode.tokens_per_s_per_chip
    _wrong(ex08.moe_decode(MOE.experts_touched(8), slow, SETUP), "total parameters")
    _wrong(ex08.input_price(library_price(64), 1, SETUP), "output (decode) price")
