"""course_lib.serving, serving_cost, serving_lifecycle, serving_calibration: the price of a
token from the roofline. Invariants first (over wide ranges, with hypothesis), then hand
cases, then the calibrations and the lifecycle bridge, then bad input."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from course_lib import costs, devices, references, serving, serving_calibration
from course_lib import serving_cost as sc
from course_lib import serving_lifecycle as sl
from course_lib.roofline import COMPUTE_BOUND, MEMORY_BOUND
from course_lib.serving import Deployment, ServedModel, Workload

H100 = devices.get("h100_sxm")


def dense(params=8e9, layers=32, kv_heads=8, head_dim=128, d_model=4096, context=131072):
    return ServedModel("dense test", params, params, layers, kv_heads, head_dim, d_model,
                       context)


def replica(chips=1, precision="bf16", kv=None, **kwargs):
    return serving.deployment("h100_sxm", chips, precision, kv, **kwargs)


models = st.builds(dense, params=st.floats(1e8, 3e10), layers=st.integers(1, 96),
                   kv_heads=st.sampled_from([1, 2, 8, 16]),
                   head_dim=st.sampled_from([64, 128]), d_model=st.sampled_from([1024, 4096]))
workloads = st.builds(Workload, prompt_tokens=st.integers(0, 8000),
                      output_tokens=st.integers(1, 4000))
precisions = st.sampled_from(serving.SERVING_PRECISIONS)


# --- Invariants -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(models, workloads, precisions, st.sampled_from([1, 2, 4, 8]))
def test_cost_per_output_token_never_rises_with_the_batch(model, work, precision, chips):
    dep = replica(chips, precision)
    try:
        curve = sc.decode_curve(model, dep, work)
    except sc.DoesNotFit:
        assume(False)
    usd = curve["usd_per_million_output"]
    assert np.all(np.isfinite(usd)) and np.all(usd > 0)
    assert np.all(np.diff(usd) <= 1e-12 * usd[:-1])  # falls, then flat once compute-bound
    assert np.all(np.diff(curve["tpot_s"]) >= 0)  # while each user waits longer
    bound = curve["compute_bound"]
    assert np.all(np.diff(bound.astype(int)) >= 0), "compute-bound from one batch size on"
    if bound.any():  # once compute-bound, the price is flat
        flat = usd[bound]
        assert np.allclose(flat, flat[0], rtol=1e-9)
    assert np.all((curve["utilisation"] > 0) & (curve["utilisation"] <= 1 + 1e-12))


@settings(max_examples=60, deadline=None)
@given(models, st.integers(1, 4000), st.integers(1, 4000), precisions)
def test_the_largest_batch_falls_as_context_grows(model, short, extra, precision):
    dep = replica(8, precision)
    sizes = []
    for context in (short, short + extra):
        try:
            sizes.append(sc.largest_batch(model, dep, Workload(context - 1, 1)))
        except sc.DoesNotFit:
            sizes.append(0)
    assert sizes[1] <= sizes[0]


@settings(max_examples=40, deadline=None)
@given(models, st.integers(1, 2000), st.integers(16, 8000))
def test_at_batch_1_a_dense_model_decodes_at_bandwidth_over_bytes(model, output, prompt):
    work = Workload(prompt, output)
    cost = sc.serve(model, replica(), work, 1)
    moved = (model.total_params * 2 + work.decode_context * model.kv_bytes_per_token("bf16"))
    assert cost.decode.regime == MEMORY_BOUND
    assert cost.tpot_s == pytest.approx(moved / H100.bandwidth, rel=1e-12)
    assert cost.decode.tokens_per_s_per_replica == pytest.approx(H100.bandwidth / moved)


@settings(max_examples=40, deadline=None)
@given(models, st.integers(64, 8000), st.integers(1, 500), st.integers(1, 8))
def test_prefill_is_cheaper_per_token_than_decode_at_small_batch(model, prompt, output, batch):
    cost = sc.serve(model, replica(), Workload(prompt, output), batch)
    assert cost.usd_per_million_input < cost.usd_per_million_output


@pytest.mark.parametrize("wide, narrow", [("bf16", "fp8"), ("int8", "int4")])
def test_halving_bytes_per_weight_halves_the_memory_bound_step(wide, narrow):
    model, work = serving.llama31("8b"), Workload(1000, 200)
    for batch in (1, 8, 32):
        a = serving.decode_step(model, replica(1, wide), work, batch)
        b = serving.decode_step(model, replica(1, narrow), work, batch)
        assert not a.compute_bound and not b.compute_bound
        assert float(b.seconds) == pytest.approx(float(a.seconds) / 2, rel=1e-12)


def test_quantized_weights_alone_shrink_only_the_weight_reads():
    model, work = serving.llama31("8b"), Workload(2000, 48)
    full = float(serving.decode_step(model, replica(1, "bf16"), work, 64).memory_s)
    weights_only = float(serving.decode_step(model, replica(1, "int4", "bf16"), work, 64).memory_s)
    kv = 64 * work.decode_context * model.kv_bytes_per_token("bf16") / H100.bandwidth
    assert weights_only == pytest.approx(full - 0.75 * model.total_params * 2 / H100.bandwidth)
    assert kv < weights_only < full


def test_a_mixture_of_experts_reads_its_active_experts_at_batch_1_and_nearly_all_at_large():
    moe = serving.chat_moe()
    assert moe.is_moe and moe.experts_touched(1) == pytest.approx(moe.experts_per_token)
    assert moe.params_read(1) == pytest.approx(moe.active_params)
    assert moe.params_read(256) == pytest.approx(moe.total_params, rel=1e-6)
    reads = moe.params_read(np.arange(1, 200))
    assert np.all(np.diff(reads) >= 0) and reads[-1] <= moe.total_params
    # E (1 - (1 - k/E)^b), by hand for b = 2: E - E (1 - k/E)^2
    e, k = moe.n_experts, moe.experts_per_token
    assert moe.experts_touched(2) == pytest.approx(e - e * (1 - k / e) ** 2)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 64), st.data())
def test_expected_experts_matches_a_simulation_of_uniform_routing(n_experts, data):
    k = data.draw(st.integers(1, n_experts - 1))
    tokens = data.draw(st.integers(1, 64))
    model = ServedModel("moe", 100.0 * n_experts, 100.0 * k, 1, 1, 1, 1, 10, n_experts, k)
    rng = np.random.default_rng(0)
    draws = [len(set(np.concatenate([rng.choice(n_experts, k, replace=False)
                                     for _ in range(tokens)]))) for _ in range(400)]
    assert model.experts_touched(tokens) == pytest.approx(np.mean(draws), abs=0.4)


def test_mixture_of_experts_computes_with_active_and_stores_total_parameters():
    moe, dep, work = serving.chat_moe(), replica(8, "fp8"), Workload(100, 500)
    step = serving.decode_step(moe, dep, work, 10)
    per_token = 2 * moe.active_params + 4 * moe.n_layers * work.decode_context * moe.d_model
    assert float(step.flops) == pytest.approx(10 * per_token)
    assert sc.weight_bytes(moe, dep) == moe.total_params  # fp8: one byte each


def test_tensor_parallelism_divides_the_step_and_counts_the_optional_all_reduce():
    model, work = serving.llama31("70b"), Workload(100, 100)
    two, four = replica(2, "bf16"), replica(4, "bf16")
    t2 = float(serving.decode_step(model, two, work, 8).seconds)
    t4 = float(serving.decode_step(model, four, work, 8).seconds)
    assert t4 == pytest.approx(t2 / 2)
    linked = replica(4, "bf16", interconnect="nvlink4_h100_sxm")
    step = serving.decode_step(model, linked, work, 8)
    assert float(step.allreduce_s) > 0 and float(step.seconds) > t4
    cost = sc.serve(model, four, work, 8)
    assert cost.decode.tokens_per_s_per_chip == pytest.approx(
        cost.decode.tokens_per_s_per_replica / 4)


# --- Hand cases -----------------------------------------------------------------------------


def test_hand_case_llama3_8b_bf16_one_h100_batch_1():
    """16 GB of weights / 3.35 TB/s = 4.8 ms per token, about 209 tokens/s."""
    cost = sc.serve(serving.llama31("8b"), replica(), Workload(16, 16), 1)
    assert cost.tpot_s == pytest.approx(4.8e-3, rel=0.01)
    assert cost.decode.tokens_per_s_per_replica == pytest.approx(209, rel=0.01)


def test_hand_cases_of_the_issue_at_2k_context():
    """$1.5/h: about $2.0 per million output tokens at batch 1, $0.064 at 64, $0.042 at the
    largest batch (238), prefill about 9x cheaper than decode at batch 64."""
    model, dep, work = serving.llama31("8b"), replica(), Workload(2047, 1)
    assert dep.usd_per_chip_hour == references.value("price.h100_usd_per_hour_low")
    assert sc.largest_batch(model, dep, work) == 238
    assert sc.serve(model, dep, work, 1).usd_per_million_output == pytest.approx(2.0, rel=0.02)
    at_64 = sc.serve(model, dep, work, 64)
    assert at_64.usd_per_million_output == pytest.approx(0.064, rel=0.02)
    assert at_64.usd_per_million_output / at_64.usd_per_million_input == pytest.approx(9, rel=0.1)
    assert sc.serve(model, dep, work, 238).usd_per_million_output == pytest.approx(0.042,
                                                                                   rel=0.02)


def test_ten_percent_utilisation_is_a_decode_batch_of_about_30_on_an_h100():
    batch = sc.batch_for_utilisation(serving.llama31("8b"), replica(), Workload(100, 500), 0.1)
    assert 25 <= batch <= 35


def test_cheapest_batch_meets_the_target_and_one_more_would_not():
    model, dep, work = serving.llama31("8b"), replica(), Workload(4000, 1000)
    target = 0.02
    batch = sc.cheapest_batch(model, dep, work, target)
    assert float(serving.decode_step(model, dep, work, batch).seconds) <= target
    assert float(serving.decode_step(model, dep, work, batch + 1).seconds) > target


def test_a_target_below_the_floor_names_the_floor_on_that_chip():
    model, dep, work = serving.llama31("8b"), replica(), Workload(100, 100)
    floor = sc.tpot_floor_s(model, dep, work)
    with pytest.raises(sc.BelowFloor, match="tpot_target_s") as error:
        sc.cheapest_batch(model, dep, work, floor / 2)
    assert f"{floor * 1e3:.3g} ms" in str(error.value) and "H100" in str(error.value)
    assert "within reach" in sc.describe_floor(model, dep, work, 2 * floor)


# --- Calibrations ---------------------------------------------------------------------------


def test_market_prices_sit_above_the_floor_for_both_models_and_both_providers():
    rows = serving_calibration.market_rows()
    assert [row.model for row in rows] == ["llama31_8b", "llama31_70b"]
    for row in rows:
        assert set(row.prices) == set(serving_calibration.PROVIDERS)
        for ratio_in, ratio_out in row.ratios().values():
            assert 1 < ratio_in < 100 and 1 < ratio_out < 100


def test_the_scaling_books_example_is_reproduced_with_its_own_inputs():
    results = serving_calibration.scaling_book_example()
    model_kv, book_kv = results["KV cache per token in int8 (bytes)"]
    assert model_kv == book_kv
    batch, book_batch = results["largest bf16 batch on 16 chips at 8k context (sequences)"]
    assert batch == book_batch
    for key in ("decode step at that batch (s)", "int4 decode step at batch 1 on 4 chips (s)"):
        mine, book = results[key]
        assert mine == pytest.approx(book, rel=0.1)


def test_this_machine_prediction_is_memory_or_compute_bound_and_grows_with_the_batch():
    from course_lib.shapes import ModelConfig

    config = ModelConfig(vocab_size=65)
    result = serving_calibration.this_machine_prediction(config, 8e5, 5e10, 1e10, 8e9,
                                                         [1, 4, 16], 8, 16)
    assert np.all(np.diff(result["tokens_per_s"]) > 0)


# --- The lifecycle bridge -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat", "open_8b", "tiny"])
def test_derived_utilisation_charges_exactly_the_serving_models_chip_seconds(name):
    scenario = costs.presets()[name]
    plan = sl.preset_plans()[name]
    assert scenario.serving == plan
    cost = plan.cost(scenario.input_tokens, scenario.output_tokens)
    hours = costs.cost_per_request(scenario).gpu_hours
    assert hours * 3600 == pytest.approx(cost.chip_seconds_per_request(), rel=1e-9)
    assert 0 < scenario.inference_utilisation <= 1


def test_epochs_assumption_stays_a_named_alternative():
    epoch = costs.chat_service("epoch")
    assert epoch.serving is None
    assert epoch.inference_utilisation == references.value("epoch2025.inference_utilisation")
    derived = costs.chat_service()
    assert costs.epoch_assumption(derived) == epoch.replace(sources=derived.sources)
    # The serving model implies more than Epoch's baseline assumption (10%).
    assert derived.inference_utilisation > epoch.inference_utilisation
    assert costs.crossover_day(derived) > costs.crossover_day(epoch)
    with pytest.raises(ValueError, match="serving"):
        costs.presets("guessed")


def test_the_chat_preset_is_epochs_mixture_of_experts():
    model = sl.chat_plan().model
    assert model.total_params == references.value("epoch2025.total_params")
    assert model.active_params == references.value("epoch2025.active_params")
    assert all(references.get(key) for key in sl.chat_plan().sources)


# --- Bad input ------------------------------------------------------------------------------


def test_a_model_that_does_not_fit_names_memory_needed_available_and_what_fits():
    with pytest.raises(sc.DoesNotFit) as error:
        sc.serve(serving.llama31("70b"), replica(), Workload(100, 100), 1)
    text = str(error.value)
    assert "140 GB" in text and "80 GB" in text and "2 x NVIDIA H100 SXM in bf16" in text
    assert "int4" in text


@pytest.mark.parametrize("batch", [0, -3, 2.5, True])
def test_bad_batch_names_the_parameter(batch):
    with pytest.raises(ValueError, match="batch"):
        sc.serve(serving.llama31("8b"), replica(), Workload(10, 10), batch)


def test_a_batch_that_does_not_fit_says_how_many_do():
    with pytest.raises(ValueError, match="at most 238 sequences"):
        sc.serve(serving.llama31("8b"), replica(), Workload(2047, 1), 239)


def test_context_beyond_the_models_names_both():
    model = serving.llama31("8b")
    with pytest.raises(ValueError, match="prompt_tokens \\+ output_tokens"):
        sc.serve(model, replica(8), Workload(model.max_context, 1), 1)


def test_unknown_chip_precision_and_model_list_the_choices():
    with pytest.raises(ValueError, match="h100_sxm"):
        serving.deployment("tpu_v9")
    with pytest.raises(ValueError, match="int4"):
        serving.deployment("h100_sxm", precision="fp4")
    with pytest.raises(ValueError, match="llama31_8b"):
        serving.served_model("gpt5")
    with pytest.raises(ValueError, match="no published peak"):
        serving.deployment("snapdragon_8_gen3", usd_per_hour=1)


@pytest.mark.parametrize("field, value", [("prompt_tokens", -1), ("output_tokens", 0)])
def test_bad_workload_names_the_parameter(field, value):
    kwargs = {"prompt_tokens": 10, "output_tokens": 10, field: value}
    with pytest.raises(ValueError, match=field):
        Workload(**kwargs)


def test_bad_deployment_and_model_name_the_parameter():
    with pytest.raises(ValueError, match="chips"):
        Deployment(H100, 0)
    with pytest.raises(ValueError, match="fleet_utilisation"):
        replica(fleet_utilisation=1.5)
    with pytest.raises(ValueError, match="active_params"):
        ServedModel("x", 1e9, 2e9, 1, 1, 1, 1, 10)
    with pytest.raises(ValueError, match="dense"):
        ServedModel("x", 2e9, 1e9, 1, 1, 1, 1, 10)
    with pytest.raises(ValueError, match="experts_per_token"):
        ServedModel("x", 2e9, 1e8, 1, 1, 1, 1, 10, 8, 2)
    with pytest.raises(ValueError, match="tpot_target_s"):
        sl.ServingPlan(serving.llama31("8b"), replica(), batch=None, tpot_target_s=None)


def test_every_number_is_finite_for_every_preset_and_precision():
    for key in serving.MODELS:
        model = serving.served_model(key)
        for precision in serving.SERVING_PRECISIONS:
            try:
                cost = sc.serve(model, replica(8, precision), Workload(1000, 500), 4)
            except sc.DoesNotFit:
                assert key == "chat_moe" and precision == "bf16"  # 800 GB > 8 x 80 GB
                continue
            values = [cost.tpot_s, cost.ttft_s, cost.usd_per_million_input,
                      cost.usd_per_million_output, cost.decode.joules_per_token]
            assert all(math.isfinite(v) and v > 0 for v in values)
            assert cost.decode.regime in (MEMORY_BOUND, COMPUTE_BOUND)
