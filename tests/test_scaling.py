"""course_lib.scaling: the scaling law, compute-optimal and inference-aware sizing.

The tests check the model's invariants (what must hold for any input), not
sample values copied from the implementation.
"""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import references, scaling

params = st.floats(min_value=1e5, max_value=1e13)
tokens = st.floats(min_value=1e6, max_value=1e15)
budgets = st.floats(min_value=1e15, max_value=1e28)
losses = st.floats(min_value=1.9, max_value=3.5)
demand = st.floats(min_value=0, max_value=1e17)
fits = st.sampled_from(scaling.FITS)


def test_refit_gives_about_20_tokens_per_parameter_at_chinchillas_budget():
    budget = references.value("chinchilla.training_flops")
    n, d = scaling.compute_optimal(budget, "besiroglu2024")
    assert 15 <= d / n <= 25, f"refit: {d / n:.1f} tokens per parameter, expected about 20"


def test_rounded_2022_constants_do_not_give_20_tokens_per_parameter():
    budget = references.value("chinchilla.training_flops")
    n, d = scaling.compute_optimal(budget, "chinchilla2022")
    assert not 15 <= d / n <= 25, (
        f"the rounded 2022 constants gave {d / n:.1f} tokens per parameter; they are known "
        f"not to reproduce Chinchilla's ~20")


def test_the_refit_is_the_default():
    assert scaling.get_fit().name == "besiroglu2024"
    assert scaling.loss(1e9, 1e10) == scaling.loss(1e9, 1e10, "besiroglu2024")


@settings(max_examples=50, deadline=None)
@given(budgets, fits)
def test_compute_optimal_spends_the_budget_and_minimises_loss(c, fit):
    n, d = scaling.compute_optimal(c, fit)
    assert scaling.training_flops(n, d) == pytest.approx(c, rel=1e-9)
    best = scaling.loss(n, d, fit)
    for factor in (0.9, 1.1):  # moving along the budget either way loses
        other = scaling.loss(n * factor, c / (6 * n * factor), fit)
        assert other >= best - 1e-12, f"N*x{factor} beat the optimum at C={c:g}"


@settings(max_examples=50, deadline=None)
@given(budgets, budgets, fits)
def test_compute_optimal_grows_with_budget(c1, c2, fit):
    low, high = sorted((c1, c2))
    n1, d1 = scaling.compute_optimal(low, fit)
    n2, d2 = scaling.compute_optimal(high, fit)
    assert n2 >= n1 and d2 >= d1


@settings(max_examples=60, deadline=None)
@given(params, tokens, fits)
def test_loss_is_finite_above_e_and_falls_with_more_params_and_tokens(n, d, fit):
    value = scaling.loss(n, d, fit)
    assert math.isfinite(value) and value > scaling.get_fit(fit).E
    assert scaling.loss(n * 2, d, fit) < value
    assert scaling.loss(n, d * 2, fit) < value


@settings(max_examples=60, deadline=None)
@given(params, tokens)
def test_flop_parity_is_at_three_times_the_training_tokens_whatever_n(n, d):
    served = scaling.parity_tokens(d)
    assert served == pytest.approx(3 * d, rel=1e-12)
    assert scaling.inference_flops(n, served) == pytest.approx(scaling.training_flops(n, d),
                                                               rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(params, losses, fits)
def test_tokens_for_loss_inverts_the_loss(n, target, fit):
    d = scaling.tokens_for_loss(n, target, fit)
    if math.isinf(d):  # the model is too small: even infinite data stays above target
        assert n <= scaling.smallest_model_for_loss(target, fit) * (1 + 1e-9)
    else:
        assert scaling.loss(n, d, fit) == pytest.approx(target, rel=1e-9)


@pytest.mark.parametrize("fit", scaling.FITS)
def test_inference_aware_without_inference_is_compute_optimal(fit):
    sized = scaling.inference_aware(2.2, 0, fit)
    n, d = scaling.compute_optimal(sized.training_flops, fit)
    assert sized.n_params == pytest.approx(n, rel=1e-3)
    assert sized.n_tokens == pytest.approx(d, rel=1e-3)


@settings(max_examples=40, deadline=None)
@given(losses, demand, fits)
def test_inference_aware_is_a_minimum_and_reaches_the_target(target, d_inf, fit):
    sized = scaling.inference_aware(target, d_inf, fit)
    assert math.isfinite(sized.total_flops) and sized.total_flops > 0
    assert scaling.loss(sized.n_params, sized.n_tokens, fit) == pytest.approx(target, rel=1e-9)
    for factor in (0.98, 1.02):
        other = scaling.sizing(sized.n_params * factor, target, d_inf, fit)
        assert other.total_flops >= sized.total_flops * (1 - 1e-9)


@settings(max_examples=40, deadline=None)
@given(losses, demand, demand, fits)
def test_more_inference_demand_means_a_smaller_model_on_more_tokens(target, a, b, fit):
    low, high = sorted((a, b))
    small_demand = scaling.inference_aware(target, low, fit)
    big_demand = scaling.inference_aware(target, high, fit)
    assert big_demand.n_params <= small_demand.n_params * (1 + 1e-6)
    assert big_demand.n_tokens >= small_demand.n_tokens * (1 - 1e-6)


def test_large_demand_moves_far_from_chinchilla():
    chinchilla = scaling.inference_aware(2.1, 0)
    heavy = scaling.inference_aware(2.1, 1e16)
    assert heavy.n_params < chinchilla.n_params / 2
    assert heavy.tokens_per_param > 5 * chinchilla.tokens_per_param


@settings(max_examples=50, deadline=None)
@given(params, tokens, st.sampled_from([2**k for k in range(7, 18)]),
       st.sampled_from(["h100_sxm", "a100_sxm_80gb"]))
def test_run_estimate_is_finite_and_consistent(n, d, context, chip):
    run = scaling.estimate_run(n, d, context, chip=chip)
    for name, value in vars(run).items():
        assert math.isfinite(value) and value > 0, f"{name} = {value}"
    assert run.training_flops >= scaling.training_flops(n, d)  # attention only adds
    assert 0 < run.attention_share < 1
    assert run.usd_low < run.usd_high


def test_longer_context_costs_more_per_token():
    short = scaling.estimate_run(1e9, 1e11, 2**10)
    long = scaling.estimate_run(1e9, 1e11, 2**15)
    assert long.forward_flops_per_token > short.forward_flops_per_token
    assert long.serving_memory_bytes > short.serving_memory_bytes


def test_serving_memory_counts_kv_heads_not_query_heads():
    n, context = 8e9, 8192
    run = scaling.estimate_run(n, 1e12, context)
    n_layer, d_model = scaling.model_shape(n)
    query_head_bytes = 2 * n_layer * d_model * scaling.BF16_BYTES * context
    kv_bytes = run.serving_memory_bytes - scaling.BF16_BYTES * n
    share = references.value("llama3_8b.n_kv_heads") / references.value("llama3_8b.n_heads")
    assert kv_bytes == pytest.approx(share * query_head_bytes), (
        "the KV cache must be counted over KV heads (grouped-query attention), not query heads")


@pytest.mark.parametrize("call, name", [
    (lambda: scaling.loss(0, 1e9), "n_params"),
    (lambda: scaling.loss(1e9, -5), "n_tokens"),
    (lambda: scaling.compute_optimal(-1), "c_flops"),
    (lambda: scaling.training_flops(float("nan"), 1e9), "n_params"),
    (lambda: scaling.inference_aware(1.0, 1e12), "target_loss"),
    (lambda: scaling.inference_aware(2.0, -1), "inference_tokens"),
    (lambda: scaling.estimate_run(1e9, 1e9, 1024, utilisation=1.5), "utilisation"),
    (lambda: scaling.estimate_run(1e9, 1e9, 0), "context"),
    (lambda: scaling.get_fit("kaplan"), "fit"),
    (lambda: scaling.estimate_run(1e9, 1e9, 1024, chip="tpu"), "chip"),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
