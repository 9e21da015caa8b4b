"""The serving loop's arithmetic: traffic, the scheduler's policies and defined behaviour,
Little's law, the simulator and its cost model, capacity, and speculative decoding in
expectation. Everything runs on the simulated clock: no timing, no torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import scheduler, serving_sim, traffic
from course_lib.scheduler import continuous_batching, one_at_a_time, static_batching
from course_lib.serving_sim import CostModel, SimulatedEngine, simulate
from course_lib.traffic import CUT_OFF, REJECTED, SERVED, Request

COST = CostModel(prefill_fixed_s=0.002, prefill_per_token_s=1e-5, decode_fixed_s=0.001,
                 decode_per_sequence_s=2e-4)
CONTEXT = 64
POLICIES = [one_at_a_time(), static_batching(4, 0.02), continuous_batching(8)]


def _workload(rate: float, count: int = 200, seed: int = 0) -> list[Request]:
    return traffic.workload(count, rate, prompt_tokens=(4, 16), mean_output=12,
                            longest_output=40, seed=seed)


# --- Traffic ----------------------------------------------------------------------------------


def test_workload_is_seeded_and_its_arrivals_are_poisson():
    assert _workload(50, seed=3) == _workload(50, seed=3)
    assert _workload(50, seed=3) != _workload(50, seed=4)
    requests = traffic.workload(20_000, 40.0, seed=1)
    arrivals = np.array([r.arrival_s for r in requests])
    gaps = np.diff(np.concatenate([[0.0], arrivals]))
    assert np.all(gaps > 0)
    assert gaps.mean() == pytest.approx(1 / 40, rel=0.03)
    assert gaps.std() == pytest.approx(gaps.mean(), rel=0.05)  # exponential: std = mean
    outputs = np.array([r.output_tokens for r in requests])
    assert outputs.min() >= 1 and outputs.max() <= 48
    prompts = np.array([r.prompt_tokens for r in requests])
    assert prompts.min() == 4 and prompts.max() == 16


def test_output_lengths_are_geometric_with_the_stated_mean():
    lengths = traffic.output_lengths(50_000, 10, 10_000, np.random.default_rng(0))
    assert lengths.mean() == pytest.approx(10, rel=0.03)
    assert np.mean(lengths == 1) == pytest.approx(0.1, abs=0.01)  # P(1) = 1 / mean


@pytest.mark.parametrize("bad", [dict(rate_per_s=0), dict(count=0), dict(mean_output=0.5),
                                 dict(mean_output=100), dict(prompt_tokens=(5, 4)),
                                 dict(seed=-1)])
def test_workload_refuses_bad_settings(bad):
    arguments = dict(count=10, rate_per_s=1.0) | bad
    with pytest.raises(ValueError):
        traffic.workload(**arguments)


def test_percentile_is_numpys_and_refuses_nonsense():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert traffic.percentile(samples, 50) == 3.0
    assert traffic.percentile(samples, 99) == pytest.approx(np.percentile(samples, 99))
    with pytest.raises(ValueError, match="at least one"):
        traffic.percentile([], 50)
    with pytest.raises(ValueError):
        traffic.percentile(samples, 101)


def test_time_average_weights_each_count_by_how_long_it_held():
    assert traffic.time_average([0, 1, 3], [2, 4, 0], end_s=4) == pytest.approx((2 + 8) / 4)
    with pytest.raises(ValueError):
        traffic.time_average([0, 2, 1], [1, 1, 1], end_s=3)


def test_littles_law_on_hand_made_records():
    records = []
    for i, (arrive, finish) in enumerate([(0.0, 2.0), (1.0, 2.0)]):
        record = traffic.RequestRecord(Request(i, arrive, 1, 1), admitted_s=arrive)
        record.add_token(finish)
        records.append(record)
    law = traffic.littles_law(records, [0.0, 1.0, 2.0], [1, 2, 0], end_s=2.0)
    assert law.arrival_rate_per_s == 1.0 and law.mean_time_in_system_s == 1.5
    assert law.mean_in_system == 1.5 and law.relative_gap == 0.0


# --- The scheduler and its defined behaviour --------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_request_ends_served_with_all_its_tokens(policy):
    run = simulate(_workload(100), policy, COST, context=CONTEXT)
    assert {r.status for r in run.records} == {SERVED}
    for r in run.records:
        assert r.tokens == r.request.output_tokens
        assert r.request.arrival_s <= r.admitted_s < r.first_token_s <= r.finished_s
    assert max(run.batch_sizes) <= policy.max_batch
    assert run.littles_law().relative_gap == pytest.approx(0, abs=0.1)


def test_one_at_a_time_serves_in_arrival_order():
    run = simulate(_workload(400), one_at_a_time(), COST, context=CONTEXT)
    admitted = [r.admitted_s for r in run.records]
    assert admitted == sorted(admitted) and set(run.batch_sizes) == {1}


def test_continuous_batching_refills_a_freed_slot_at_the_next_step():
    requests = [Request(i, 0.0, 4, 2 + i % 5) for i in range(40)]  # all waiting at once
    continuous = simulate(requests, continuous_batching(8), COST, context=CONTEXT).batch_sizes
    # full until the queue is empty, then shrinking: no step runs with a slot left empty
    assert continuous[0] == 8 and continuous == sorted(continuous, reverse=True)
    assert sum(1 for b in continuous if b < 8) <= 6  # the tail: the last answers finishing
    static = simulate(requests, static_batching(8, 0.0), COST, context=CONTEXT).batch_sizes
    assert static != sorted(static, reverse=True)  # each batch shrinks, then a full one starts
    assert len(static) > len(continuous)


def test_static_batching_waits_for_a_full_batch_or_the_deadline():
    requests = [Request(0, 0.0, 4, 3), Request(1, 0.01, 4, 3), Request(2, 0.5, 4, 3),
                Request(3, 0.51, 4, 3), Request(4, 0.52, 4, 3)]
    run = simulate(requests, static_batching(3, wait_s=0.1), COST, context=CONTEXT)
    starts = [r.admitted_s for r in run.records]
    assert starts[0] == starts[1] == pytest.approx(0.1)  # two waited for the deadline
    assert starts[2] == starts[3] == starts[4] == pytest.approx(0.52)  # three filled a batch


def test_static_batching_starts_no_new_batch_while_one_runs():
    requests = [Request(i, 0.0, 4, 30 if i == 0 else 2) for i in range(6)]
    run = simulate(requests, static_batching(3, wait_s=0.0), COST, context=CONTEXT)
    first_batch_end = max(r.finished_s for r in run.records[:3])
    assert all(r.admitted_s >= first_batch_end for r in run.records[3:])


def test_refused_requests_get_a_reason_and_are_counted():
    requests = [Request(0, 0.0, 60, 10), Request(1, 0.0, 5, 0), Request(2, 0.0, 0, 5),
                *[Request(i, 0.001, 4, 4) for i in range(3, 13)]]
    run = simulate(requests, one_at_a_time(), COST, context=CONTEXT, queue_limit=4)
    reasons = {r.request.id: r.reason for r in run.records if r.status == REJECTED}
    assert "longer than the context: 60 prompt + 10 output tokens > 64" in reasons[0]
    assert "nothing to generate" in reasons[1]
    assert "empty prompt" in reasons[2]
    full = [i for i, reason in reasons.items() if "queue is full" in reason]
    assert len(full) == 10 - 4  # four wait; the queue refuses the rest
    assert run.count(REJECTED) == 3 + len(full) and run.count(SERVED) == 4
    assert run.summary().rejected == run.count(REJECTED)


def test_a_run_stops_at_its_time_bound_and_says_what_it_cut_off():
    requests = _workload(2000, count=300)  # far beyond what one slot serves
    run = simulate(requests, one_at_a_time(), COST, context=CONTEXT, time_bound_s=0.5,
                   queue_limit=1000)
    assert run.end_s < 0.5 + COST.prefill_s(CONTEXT) + COST.decode_s(1)
    cut = [r for r in run.records if r.status == CUT_OFF]
    assert cut and all("time bound (0.5 s)" in r.reason for r in cut)
    assert run.count(SERVED) + len(cut) == len(requests)


def test_an_empty_workload_and_a_lone_one_token_request_end_at_once():
    assert simulate([], continuous_batching(4), COST, context=CONTEXT).records == []
    run = simulate([Request(0, 1.0, 4, 1)], continuous_batching(4), COST, context=CONTEXT)
    assert run.records[0].status == SERVED and run.records[0].tpot_s is None
    assert run.batch_sizes == []  # the prefill gave the only token


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(1, 5000), wait=st.floats(0, 0.05), batch=st.integers(1, 9),
       seed=st.integers(0, 10_000), refill=st.booleans())
def test_no_workload_or_policy_deadlocks(rate, wait, batch, seed, refill):
    policy = continuous_batching(batch) if refill else static_batching(batch, wait)
    requests = traffic.workload(60, rate, prompt_tokens=(1, 30), mean_output=10,
                                longest_output=50, seed=seed)
    run = simulate(requests, policy, COST, context=CONTEXT, queue_limit=20)
    assert all(r.status in (SERVED, REJECTED) for r in run.records)


def test_policies_refuse_bad_settings():
    with pytest.raises(ValueError):
        continuous_batching(0)
    with pytest.raises(ValueError):
        static_batching(4, -1.0)
    with pytest.raises(ValueError):
        simulate(_workload(10), one_at_a_time(), COST, context=CONTEXT, time_bound_s=0)


# --- The cost model and the simulator ---------------------------------------------------------


def test_fit_line_recovers_a_line_and_never_goes_negative():
    assert serving_sim.fit_line([1, 2, 4], [3, 5, 9]) == pytest.approx((1, 2))
    assert serving_sim.fit_line([1, 2, 3], [3, 2, 1]) == (2.0, 0.0)  # flat, not falling
    intercept, slope = serving_sim.fit_line([10, 20], [1, 3])  # would cross below zero
    assert intercept == 0 and slope > 0
    with pytest.raises(ValueError):
        serving_sim.fit_line([1, 1], [1, 2])
    with pytest.raises(ValueError):
        serving_sim.fit_line([1, 2], [1, -2])


def test_a_cost_model_fitted_to_a_simulated_run_is_the_one_that_ran_it():
    runs = [simulate(_workload(rate), continuous_batching(8), COST, context=CONTEXT)
            for rate in (50, 300)]
    fitted, jitter = serving_sim.fit_to_runs(runs)
    for name in ("prefill_fixed_s", "prefill_per_token_s", "decode_fixed_s",
                 "decode_per_sequence_s"):
        assert getattr(fitted, name) == pytest.approx(getattr(COST, name), rel=1e-6)
    assert jitter == pytest.approx([1.0] * len(jitter))


def test_jitter_slows_steps_by_the_drawn_factors_reproducibly():
    engine = SimulatedEngine(COST, 4, CONTEXT, jitter=[2.0], seed=0)
    engine.decode([0, 1])
    assert engine.now() == pytest.approx(2 * COST.decode_s(2))
    runs = [simulate(_workload(200), continuous_batching(4), COST, context=CONTEXT,
                     jitter=[0.5, 1.5], seed=7) for _ in range(2)]
    assert runs[0].summary() == runs[1].summary()


def test_agreement_of_a_run_with_itself_is_zero():
    summary = simulate(_workload(200), continuous_batching(8), COST, context=CONTEXT).summary()
    assert serving_sim.agreement(summary, summary) == {"p50 TPOT": 0, "p99 TPOT": 0,
                                                       "throughput": 0}


def test_throughput_saturates_at_the_capacity_the_formula_gives():
    capacity = serving_sim.capacity_requests_per_s(COST, 8, prompt_tokens=10, output_tokens=12)
    requests = [Request(i, 0.0, 10, 12) for i in range(400)]  # everyone at once: saturated
    run = simulate(requests, continuous_batching(8), COST, context=CONTEXT, queue_limit=400)
    # prompts admitted together share one prefill pass, so the server does at least as well
    assert run.summary().requests_per_s >= capacity
    assert run.summary().requests_per_s <= 8 / (11 * COST.decode_s(8))


def test_goodput_counts_only_requests_within_both_targets():
    run = simulate(_workload(100), continuous_batching(8), COST, context=CONTEXT)
    assert run.goodput(10.0, 10.0) == pytest.approx(run.summary().requests_per_s)
    assert run.goodput(1e-9, 10.0) == 0.0


def test_highest_load_within_and_replicas_needed():
    assert serving_sim.highest_load_within([1, 2, 3, 4], [0.1, 0.2, 0.9, 0.3], 0.5) == 2
    assert serving_sim.highest_load_within([1, 2], [0.9, float("nan")], 0.5) == 0.0
    assert serving_sim.replicas_needed(100, 10, 0.8) == 13
    assert serving_sim.replicas_needed(80, 10, 1.0) == 8
    with pytest.raises(ValueError):
        serving_sim.replicas_needed(100, 10, 1.5)


# --- Speculative decoding in expectation ------------------------------------------------------


@pytest.mark.parametrize("a", [0.0, 0.3, 0.75, 0.999])
@pytest.mark.parametrize("k", [1, 2, 6])
def test_expected_tokens_per_step_is_the_geometric_sum(a, k):
    expected = sum(a**i for i in range(k + 1))
    assert serving_sim.expected_tokens_per_step(a, k) == pytest.approx(expected)


def test_expected_tokens_edge_cases_and_speed_up():
    assert serving_sim.expected_tokens_per_step(1.0, 4) == 5
    assert serving_sim.expected_tokens_per_step(0.0, 4) == 1
    assert serving_sim.speculative_speed_up(0.8, 3, 0.0) == \
        serving_sim.expected_tokens_per_step(0.8, 3)
    assert serving_sim.speculative_speed_up(0.0, 3, 0.5) == pytest.approx(1 / 2.5)
    for bad in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError):
            serving_sim.expected_tokens_per_step(bad, 2)
    with pytest.raises(ValueError):
        serving_sim.expected_tokens_per_step(0.5, 0)


def test_summary_of_a_run_with_nothing_served_is_nan_not_a_crash():
    run = simulate([Request(0, 0.0, 100, 5)], one_at_a_time(), COST, context=CONTEXT)
    summary = run.summary()
    assert summary.served == 0 and summary.rejected == 1 and math.isnan(summary.tpot_p99_s)
    assert isinstance(run, scheduler.ServingRun)


def test_a_run_whose_every_request_is_refused_ends_at_once_not_at_its_time_bound():
    # Before: with nothing queued or running after the last refusal, the loop idled until
    # time_bound_s (a minute of real sleep in serve()).
    refused = [Request(i, 0.5 * i, 100, 5) for i in range(3)]  # longer than the context
    run = simulate(refused, one_at_a_time(), COST, context=CONTEXT, time_bound_s=3600.0)
    summary = run.summary()
    assert summary.rejected == 3 and summary.served == 0
    assert summary.duration_s <= 1.0 + 1e-9, summary
    assert summary.tokens_per_s == 0.0 and summary.requests_per_s == 0.0, summary
