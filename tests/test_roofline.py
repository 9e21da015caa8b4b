"""course_lib.roofline: ridge points, attainable FLOP/s, step intensities, model shapes,
on-device fit and speed."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import devices, flops, references, roofline
from course_lib.shapes import ModelConfig, ModelShape


def big_model(params=7e9, kv_bytes_per_token=0.0):
    """A model where only the 2N FLOPs per token matter (attention left out on purpose)."""
    return ModelShape("test model", params, lambda context: 2 * params,
                               kv_bytes_per_token)


# --- Ridge points from the reference table ------------------------------------------------


def test_h100_sxm_ridge_point_is_about_295_flop_per_byte():
    assert roofline.chip_ridge_point("h100_sxm") == pytest.approx(295, abs=1)


def test_a100_80gb_ridge_point_is_about_153_flop_per_byte():
    assert roofline.chip_ridge_point("a100_sxm_80gb") == pytest.approx(153, abs=1)


def test_ridge_point_is_peak_over_bandwidth_for_every_chip_with_a_peak():
    for name in devices.names():
        chip = devices.get(name)
        if chip.peak_flops is None:
            with pytest.raises(ValueError, match="no published peak"):
                roofline.chip_ridge_point(name)
        else:
            assert roofline.chip_ridge_point(name) == chip.peak_flops / chip.bandwidth


# --- The roofline -----------------------------------------------------------------------


def test_attainable_is_bandwidth_times_intensity_below_the_ridge_and_peak_above():
    peak, bandwidth = 100e12, 1e12
    assert roofline.attainable_flops(10, peak, bandwidth) == 10e12
    assert roofline.attainable_flops(1000, peak, bandwidth) == peak
    assert roofline.attainable_flops(100, peak, bandwidth) == peak  # the ridge itself
    assert roofline.regime(10, peak, bandwidth) == roofline.MEMORY_BOUND
    assert roofline.regime(1000, peak, bandwidth) == roofline.COMPUTE_BOUND


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6), min_size=2, max_size=20),
       st.floats(1e6, 1e16), st.floats(1e6, 1e13))
def test_attainable_never_exceeds_either_roof_and_never_falls_with_intensity(
        intensities, peak, bandwidth):
    values = np.sort(np.array(intensities))
    attained = roofline.attainable_flops(values, peak, bandwidth)
    assert np.all(attained <= peak * (1 + 1e-12))
    assert np.all(attained <= values * bandwidth * (1 + 1e-12))
    assert np.all(np.diff(attained) >= 0)


@pytest.mark.parametrize("peak, bandwidth, name", [(1e12, 0, "bandwidth"),
                                                   (0, 1e9, "peak_flops"),
                                                   (1e12, -1e9, "bandwidth")])
def test_zero_or_negative_chip_figures_are_refused(peak, bandwidth, name):
    with pytest.raises(ValueError, match=name):
        roofline.ridge_point(peak, bandwidth)
    with pytest.raises(ValueError, match=name):
        roofline.attainable_flops(1.0, peak, bandwidth)


def test_negative_intensity_is_refused():
    with pytest.raises(ValueError, match="intensity"):
        roofline.attainable_flops([-1.0], 1e12, 1e9)


def test_unknown_chip_and_precision_list_the_valid_choices():
    with pytest.raises(ValueError, match="h100_sxm"):
        roofline.chip_ridge_point("tpu_v9")
    with pytest.raises(ValueError, match="int4"):
        flops.bytes_per_weight("fp8e4")


# --- Steps and their intensity -------------------------------------------------------------


def test_decode_at_batch_one_in_bf16_does_about_one_flop_per_byte():
    step = roofline.decode_step(big_model(), batch_size=1, context=1)
    assert step.intensity == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_batch_size_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(ValueError, match="batch_size"):
        roofline.decode_step(big_model(), batch_size=bad, context=8)
    with pytest.raises(ValueError, match="batch_size"):
        roofline.training_step(big_model(), batch_size=bad, sequence_length=8)


def test_decode_intensity_rises_with_batch_and_levels_off_at_flops_per_kv_byte():
    model = big_model(kv_bytes_per_token=131072.0)
    context = 4096
    intensities = [roofline.decode_step(model, b, context).intensity for b in (1, 4, 16, 64, 256)]
    assert all(a < b for a, b in zip(intensities, intensities[1:], strict=False)), intensities
    plateau = model.forward_flops_per_token(context) / (context * model.kv_bytes_per_token)
    assert intensities[-1] < plateau
    assert roofline.decode_step(model, 10**9, context).intensity == pytest.approx(plateau,
                                                                                  rel=1e-3)


def test_decode_becomes_compute_bound_at_the_batch_size_the_formula_gives():
    chip = devices.get("h100_sxm")
    model = big_model(kv_bytes_per_token=1000.0)
    batch = roofline.decode_compute_bound_batch(model, 512, chip.peak_flops, chip.bandwidth)
    ridge = roofline.chip_ridge_point("h100_sxm")
    below = roofline.decode_step(model, math.floor(batch), 512).intensity
    above = roofline.decode_step(model, math.ceil(batch), 512).intensity
    assert below <= ridge <= above


def test_without_kv_traffic_decode_turns_compute_bound_near_the_ridge_point_in_bf16():
    """2 FLOPs per 2-byte weight: b FLOP/byte at batch b, so the batch equals the ridge."""
    chip = devices.get("h100_sxm")
    batch = roofline.decode_compute_bound_batch(big_model(), 1, chip.peak_flops, chip.bandwidth)
    assert batch == pytest.approx(roofline.chip_ridge_point("h100_sxm"))


def test_long_contexts_can_keep_decode_memory_bound_at_any_batch():
    chip = devices.get("h100_sxm")
    model = big_model(kv_bytes_per_token=1e6)
    assert roofline.decode_compute_bound_batch(model, 8192, chip.peak_flops,
                                               chip.bandwidth) is None


def test_the_longest_compute_bound_context_is_where_the_plateau_meets_the_ridge():
    """2N FLOPs per token over K bytes per token per context: the plateau 2N / (K c) meets
    the ridge R at c = 2N / (R K)."""
    chip = devices.get("h100_sxm")
    model = big_model(kv_bytes_per_token=1e5)
    ridge = roofline.chip_ridge_point("h100_sxm")
    longest = roofline.longest_compute_bound_context(model, chip.peak_flops, chip.bandwidth)
    assert longest == math.floor(2 * model.params / (ridge * 1e5) - 1e-9)
    for context, reaches in ((longest, True), (longest + 1, False)):
        batch = roofline.decode_compute_bound_batch(model, context, chip.peak_flops,
                                                    chip.bandwidth)
        assert (batch is not None) is reaches


def test_llama3_8b_on_an_h100_is_compute_bound_only_below_about_420_tokens():
    chip = devices.get("h100_sxm")
    llama8 = roofline.real_model_shape("llama3_8b")
    assert roofline.longest_compute_bound_context(llama8, chip.peak_flops,
                                                  chip.bandwidth) == pytest.approx(420, rel=0.05)
    assert roofline.longest_compute_bound_context(big_model(), chip.peak_flops,
                                                  chip.bandwidth, longest=1000) == 1000
    assert roofline.longest_compute_bound_context(big_model(params=1.0, kv_bytes_per_token=1e9),
                                                  chip.peak_flops, chip.bandwidth) is None


def test_the_kv_caches_that_fit_next_to_the_weights_cap_the_batch():
    llama8 = roofline.real_model_shape("llama3_8b")
    memory = devices.get("h100_sxm").memory
    for context, expected in ((2048, 238), (32768, 14)):
        batch = roofline.largest_batch_in_memory(llama8, context, memory)
        assert batch == expected
        room = memory - roofline.weight_bytes(llama8.params, "bf16")
        assert batch * context * llama8.kv_bytes_per_token <= room
        assert (batch + 1) * context * llama8.kv_bytes_per_token > room
    assert roofline.largest_batch_in_memory(roofline.real_model_shape("llama3_70b"), 128,
                                            memory) == 0


def test_training_and_prefill_are_far_more_intense_than_decode():
    model = big_model()
    decode = roofline.decode_step(model, 1, 512)
    prefill = roofline.prefill_step(model, 1, 512)
    training = roofline.training_step(model, 8, 512)
    assert prefill.intensity > 100 * decode.intensity
    assert training.intensity > 100 * decode.intensity


def test_a_step_knows_its_kind_from_its_name():
    model = big_model()
    kinds = [roofline.decode_step(model, 4, 8).kind, roofline.prefill_step(model, 1, 8).kind,
             roofline.training_step(model, 2, 8).kind]
    assert kinds == ["decode", "prefill", "training"]


def test_step_time_bound_is_the_slower_of_compute_and_memory():
    step = roofline.StepCost("x", flops=1e12, bytes_moved=1e9, tokens=1)
    assert step.seconds_bound(1e12, 1e12) == 1.0
    assert step.seconds_bound(1e15, 1e9) == 1.0


# --- Model shapes: the course's tiny model and published ones -------------------------------


def test_tiny_model_shape_counts_with_course_lib_flops():
    config = ModelConfig(vocab_size=65, n_layer=2, n_head=4, n_embd=64, block_size=32)
    shape = roofline.tiny_model_shape(config, 100_000)
    assert shape.params == 100_000 and shape.name == "tiny model"
    assert shape.forward_flops_per_token(16) == flops.forward_flops_breakdown(config, 16)["total"]
    assert shape.kv_bytes_per_token == 2 * 2 * 4 * 16 * 4  # 2 x layers x heads x dims x fp32
    assert shape.activation_bytes_per_token == flops.activation_bytes(config, 1, 32) / 32


def test_llama3_8b_kv_cache_is_128_kib_per_token_in_bf16():
    """32 layers x 8 KV heads x 128 dims x (key + value) x 2 bytes (grouped-query attention)."""
    shape = roofline.real_model_shape("llama3_8b")
    assert shape.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2
    assert shape.params == references.value("llama3_8b.params")
    assert shape.forward_flops_per_token(0) == pytest.approx(2 * shape.params)


def test_a_model_shape_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="params"):
        ModelShape("bad", 0, lambda context: 1.0, 0.0)
    with pytest.raises(ValueError, match="kv_bytes_per_token"):
        ModelShape("bad", 1e9, lambda context: 1.0, -1.0)


# --- On-device ----------------------------------------------------------------------------


def test_seven_billion_parameters_in_bf16_decode_at_about_240_tokens_per_s_on_h100():
    """references.md: a 7B model in bf16 (~14 GB) gives at most ~240 tok/s on an H100 SXM."""
    rate = roofline.decode_tokens_per_second_bound(7e9, "bf16", devices.get("h100_sxm").bandwidth)
    assert rate == pytest.approx(240, rel=0.02)


def test_quantizing_halves_the_bytes_and_doubles_the_decode_bound():
    bandwidth = devices.get("apple_m4").bandwidth
    fp16 = roofline.decode_tokens_per_second_bound(8e9, "fp16", bandwidth)
    int8 = roofline.decode_tokens_per_second_bound(8e9, "int8", bandwidth)
    int4 = roofline.decode_tokens_per_second_bound(8e9, "int4", bandwidth)
    assert int8 == pytest.approx(2 * fp16) and int4 == pytest.approx(2 * int8)


def test_fit_depends_on_precision_and_memory():
    memory = devices.get("snapdragon_8_gen3").memory
    params = references.value("llama3_8b.params")
    assert roofline.fits_in_memory(params, "int4", memory)
    assert not roofline.fits_in_memory(references.value("llama3_70b.params"), "fp16",
                                       devices.get("h100_sxm").memory)
    assert not roofline.fits_in_memory(params, "int4", memory, usable_fraction=0.1)
    with pytest.raises(ValueError, match="memory_bytes"):
        roofline.fits_in_memory(params, "int4", 0)
    with pytest.raises(ValueError, match="usable_fraction"):
        roofline.fits_in_memory(params, "int4", memory, usable_fraction=1.5)


def test_largest_model_for_a_speed_inverts_the_decode_bound():
    bandwidth = devices.get("snapdragon_8_gen3").bandwidth
    params = roofline.largest_model_for_speed(bandwidth, 20.0, "int4")
    assert roofline.decode_tokens_per_second_bound(params, "int4", bandwidth) == pytest.approx(20)


def test_fit_table_has_a_row_per_chip_model_and_precision():
    rows = roofline.fit_table({"8B": 8e9, "70B": 70e9}, ["h100_sxm", "snapdragon_8_gen3"])
    assert len(rows) == 2 * 2 * 3
    for row in rows:
        assert (row["tokens_per_s"] is None) == (not row["fits"]), row


@pytest.mark.parametrize("fraction", [0, 1.5, math.nan])
def test_usable_fraction_must_be_a_share_of_memory(fraction):
    with pytest.raises(ValueError, match=r"usable_fraction must be a finite number > 0 and <= 1"):
        roofline.fits_in_memory(1e9, "int8", 8e9, usable_fraction=fraction)


def test_describe_fit_gives_size_fit_and_speed_or_says_too_big():
    phone = devices.get("snapdragon_8_gen3")
    fits = roofline.describe_fit("snapdragon_8_gen3", 1e9, "int4")
    assert "fits" in fits and "tokens/s" in fits and phone.name in fits
    assert "too big" in roofline.describe_fit("snapdragon_8_gen3", 1e12, "fp16")
