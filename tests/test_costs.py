"""course_lib.costs: the lifecycle cost model, its crossover, the comparison and presets."""

import math
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from course_lib import costs, references, scaling

HW = costs.Hardware("test chip", peak_flops=1e15, watts=700, usd_per_hour=2.0)


def scenario(**changes) -> costs.Scenario:
    base = costs.Scenario(
        name="test", n_params=1e9, training_tokens=1e11, retrains_per_year=0,
        requests_per_day=1e6, input_tokens=100, output_tokens=400, hardware=HW,
        training_utilisation=0.4, inference_utilisation=0.1, usd_per_kwh=0.1,
        horizon_days=365)
    return base.replace(**changes)


scenarios = st.builds(
    scenario,
    n_params=st.floats(1e5, 1e13),
    training_tokens=st.floats(1e6, 1e15),
    retrains_per_year=st.integers(0, 12),
    requests_per_day=st.floats(1, 1e11),
    input_tokens=st.floats(0, 1e4),
    output_tokens=st.floats(1, 1e5),
    training_utilisation=st.floats(0.01, 1),
    inference_utilisation=st.floats(0.01, 1),
    usd_per_kwh=st.floats(0, 1),
    horizon_days=st.floats(1, 3650),
)
metrics = st.sampled_from(costs.METRICS)


def no_nan_or_inf(text: str) -> bool:
    return re.search(r"\b(nan|inf|infinity)\b", text, re.IGNORECASE) is None


@settings(max_examples=60, deadline=None)
@given(st.floats(1e5, 1e13), st.floats(1e6, 1e15), st.floats(1, 1e11), st.floats(1, 1e5))
def test_flop_crossover_is_exactly_when_served_tokens_reach_three_times_training(n, d, req, out):
    s = scenario(n_params=n, training_tokens=d, requests_per_day=req, input_tokens=0,
                 output_tokens=out)
    day = costs.crossover_day(s, "flops")
    assert day is not None
    assert day * s.tokens_per_day == pytest.approx(scaling.parity_tokens(d), rel=1e-9)
    assert day * s.tokens_per_day == pytest.approx(3 * d, rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(scenarios, metrics)
def test_doubling_traffic_halves_the_time_to_crossover(s, metric):
    day = costs.crossover_day(s, metric)
    assume(day is not None)
    doubled = costs.crossover_day(s.replace(requests_per_day=2 * s.requests_per_day), metric)
    assert doubled == pytest.approx(day / 2, rel=1e-9)


@pytest.mark.parametrize("metric", costs.METRICS)
def test_zero_traffic_never_crosses_over_and_says_so_in_words(metric):
    s = scenario(requests_per_day=0)
    assert costs.crossover_day(s, metric) is None
    text = costs.describe_crossover(s, metric)
    assert text.startswith("Never")
    assert no_nan_or_inf(text), text
    assert costs.inference_share(s, metric) == 0


def test_a_retrain_before_the_crossover_means_never():
    s = scenario(requests_per_day=1)  # crossover would take many years
    assert costs.crossover_day(s) is not None  # trained once: it does come, eventually
    assert costs.crossover_day(s.replace(retrains_per_year=4)) is None
    assert "retrained" in costs.describe_crossover(s.replace(retrains_per_year=4))


@settings(max_examples=60, deadline=None)
@given(scenarios, metrics)
def test_at_the_crossover_the_cumulative_spends_are_equal(s, metric):
    day = costs.crossover_day(s, metric)
    assume(day is not None)
    train, serve = costs.cumulative(s, [day], metric)
    assert serve[0] == pytest.approx(train[0], rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(scenarios, metrics)
def test_results_are_finite_and_share_grows_with_traffic(s, metric):
    for spend in (costs.training_cost(s), costs.inference_cost_per_day(s)):
        assert math.isfinite(spend[metric]) and spend[metric] >= 0
    share = costs.inference_share(s, metric)
    assert 0 <= share <= 1
    busier = costs.inference_share(s.replace(requests_per_day=s.requests_per_day * 3), metric)
    assert busier >= share
    text = costs.describe_crossover(s, metric)
    assert no_nan_or_inf(text), text


def test_units_follow_from_flops_utilisation_power_and_prices():
    s = scenario()
    run = costs.training_cost(s)
    hours = run.flops / (HW.peak_flops * s.training_utilisation) / 3600
    assert run.gpu_hours == pytest.approx(hours)
    assert run.kwh == pytest.approx(hours * HW.watts / 1000)
    assert run.usd == pytest.approx(hours * HW.usd_per_hour + run.kwh * s.usd_per_kwh)
    # Serving at a quarter of the utilisation takes four times the accelerator-hours.
    a = costs.inference_cost_per_day(s.replace(inference_utilisation=0.4))
    b = costs.inference_cost_per_day(s.replace(inference_utilisation=0.1))
    assert b.gpu_hours == pytest.approx(4 * a.gpu_hours)
    assert b.flops == a.flops


def test_retraining_adds_a_training_run_each_period():
    s = scenario(retrains_per_year=2)
    train, _ = costs.cumulative(s, [0, 100, 200, 364], "flops")
    run = costs.training_cost(s).flops
    assert list(train / run) == [1, 1, 2, 2]


def test_comparison_break_even_scales_with_value_and_vanishes_at_equal_cost():
    s = scenario()
    result = costs.compare(s, cost_ratio=10, extra_value_usd_per_day=1000)
    per_request = costs.cost_per_request(s).usd
    assert result.break_even_requests_per_day == pytest.approx(1000 / (9 * per_request))
    assert float(result.b_advantage_usd_per_day(result.break_even_requests_per_day)) == \
        pytest.approx(0, abs=1e-6)
    doubled = costs.compare(s, 10, 2000).break_even_requests_per_day
    assert doubled == pytest.approx(2 * result.break_even_requests_per_day)
    assert costs.compare(s, 1, 1000).break_even_requests_per_day is None
    # Above the break-even B loses, below it wins.
    be = result.break_even_requests_per_day
    assert result.b_advantage_usd_per_day(be * 2) < 0 < result.b_advantage_usd_per_day(be / 2)


@pytest.mark.parametrize("name", ["chat", "open_8b", "tiny"])
def test_presets_are_valid_and_cited(name):
    s = costs.presets()[name]
    assert s.sources and all(references.get(key) for key in s.sources)
    assert len(s.citations()) == len(s.sources)
    for metric in costs.METRICS:
        assert math.isfinite(costs.training_cost(s)[metric])
        assert 0 <= costs.inference_share(s, metric) <= 1


def test_chat_preset_uses_the_cited_traffic_and_serving_dominates_it():
    s = costs.chat_service()
    assert s.requests_per_day == references.value("chatgpt.prompts_per_day_2025")
    assert costs.inference_share(s, "usd") > 0.5


def test_tiny_preset_takes_your_measured_figures():
    s = costs.tiny_model(n_params=1e6, laptop_flops=2e10)
    assert s.n_params == 1e6 and s.hardware.peak_flops == 2e10


@pytest.mark.parametrize("field, value", [
    ("n_params", 0), ("n_params", -1e9), ("training_tokens", 0), ("requests_per_day", -1),
    ("output_tokens", -5), ("training_utilisation", 1.5), ("inference_utilisation", 0),
    ("usd_per_kwh", -0.1), ("horizon_days", 0), ("retrains_per_year", float("nan")),
])
def test_bad_scenario_input_names_the_parameter(field, value):
    with pytest.raises(ValueError, match=field):
        scenario(**{field: value})


@pytest.mark.parametrize("field, value", [("peak_flops", 0), ("watts", -1),
                                          ("usd_per_hour", 0)])
def test_bad_hardware_names_the_parameter(field, value):
    kwargs = {"name": "x", "peak_flops": 1e12, "watts": 10, "usd_per_hour": 1, field: value}
    with pytest.raises(ValueError, match=field):
        costs.Hardware(**kwargs)


def test_bad_metric_and_chip_are_named():
    with pytest.raises(ValueError, match="metric"):
        costs.crossover_day(scenario(), "euros")
    with pytest.raises(ValueError, match="chip"):
        costs.datasheet_hardware("tpu_v5")
