"""Checks for exercises/09_serving_many_users.ipynb: Little's law, a p99 from samples, the
batch that meets a latency target, speculative decoding's tokens per step, replicas.

The p99 and speculative checks call the learner's functions on inputs of their own (latency
samples drawn with a fixed seed; acceptance rates from 0 to 1, the edge a = 1 included) and
compare with numpy and the closed form; every mistake they name is one the task invites.
"""

from __future__ import annotations

import math

import numpy as np

from course_lib.checks import Wrong, as_number, call, compare, task
from course_lib.checks import summary as _summary

MS_FOR_S = ("Off by 1000: check your units. Times here are in seconds unless the name says "
            "ms.")


@task("Task 1 · Little's law")
def time_in_system(answer, arrival_rate_per_s: float, mean_in_system: float) -> str:
    expected = mean_in_system / arrival_rate_per_s
    compare(answer, expected, [
        (mean_in_system * arrival_rate_per_s, "You multiplied: L = λ × W, so W = L / λ."),
        (arrival_rate_per_s / mean_in_system, "Upside down: W = L / λ (requests divided by "
                                              "requests per second gives seconds)."),
        (expected * 1000, MS_FOR_S)], rel=0.01)
    return "a measurement that breaks L = λW has a bug: that is why servers check it."


def _latency_samples() -> list[np.ndarray]:
    """Two sets of made-up latencies (s): a long-tailed thousand, and a short list."""
    rng = np.random.default_rng(9)
    return [rng.lognormal(-3.0, 0.8, 1000), rng.lognormal(-2.0, 0.5, 37)]


def _p99_mistakes(samples: np.ndarray) -> list[tuple[float, str]]:
    index = int(0.99 * len(samples))
    return [
        (float(np.mean(samples)), "That is the mean: p99 is the value 99% of samples stay "
                                  "below."),
        (float(np.median(samples)), "That is the median (p50), not p99."),
        (float(np.max(samples)), "That is the largest sample (p100): p99 leaves out the "
                                 "slowest 1%."),
        (float(np.percentile(samples, 0.99)), "np.percentile takes a percent (99), not a "
                                              "fraction; np.quantile takes 0.99."),
        (float(samples[min(index, len(samples) - 1)]), "Sort the samples first: position "
                                                       "0.99 n means something only in order."),
    ]


@task("Task 2 · p99 from samples")
def p99(function) -> str:
    for samples in _latency_samples():
        ordered = np.sort(samples)
        accepted = {float(np.percentile(samples, 99, method=m))
                    for m in ("linear", "lower", "higher", "nearest", "inverted_cdf")}
        got = as_number(call(function, list(samples), name="p99"), "p99(samples)")
        if any(math.isclose(got, value, rel_tol=1e-9) for value in accepted):
            continue
        hints = [text for value, text in _p99_mistakes(samples)
                 if math.isclose(got, value, rel_tol=1e-9)]
        if hints:
            raise Wrong(f"p99 of {len(samples)} samples: {hints[0]}")
        where = "below" if got < ordered[int(0.98 * len(samples))] else "above"
        raise Wrong(f"p99 of {len(samples)} samples: your value lies {where} the slowest few "
                    "samples; sort them and take the one 99% of the way up.")
    return "one unlucky request in a hundred waits at least this long."


@task("Task 3 · The batch that meets a latency target")
def largest_batch(answer, fixed_ms: float, per_sequence_ms: float, target_ms: float) -> str:
    value = as_number(answer, "largest_batch")
    expected = math.floor((target_ms - fixed_ms) / per_sequence_ms)
    if value == expected:
        return "larger batches make cheaper tokens, but no longer meet the target."
    if value == expected + 1:
        raise Wrong("One too many: at that batch a step takes longer than the target. Round "
                    "down.")
    if value == math.floor(target_ms / per_sequence_ms):
        raise Wrong("You left out the fixed part of the step (reading the weights): it is paid "
                    "whatever the batch.")
    raise Wrong(f"not yet: {'too large' if value > expected else 'too small'}. Solve "
                "fixed + per sequence x batch <= target for the batch, a whole number.")


@task("Task 4 · Expected tokens per speculative step")
def expected_tokens(function) -> str:
    for a, k in ((0.0, 3), (0.5, 1), (0.7, 4), (0.9, 6), (0.35, 2)):
        expected = sum(a**i for i in range(k + 1))
        got = as_number(call(function, a, k, name="expected_tokens"),
                        f"expected_tokens({a}, {k})")
        compare(got, expected, [
            (sum(a**i for i in range(k)), "You left out the token that comes free: every round "
                                          "yields one more token (the target's own choice), "
                                          "so the sum runs to a^k: (1 - a^(k+1)) / (1 - a)."),
            (k * a + 1, "Guesses are accepted only while all the ones before them were: the "
                        "i-th counts with probability a^i, not a.")],
                rel=1e-6, name=f"expected_tokens(a={a}, k={k})")
    edge = _edge(function)
    compare(edge, 5, name="expected_tokens(a=1.0, k=4)")
    return "at a = 0.7 and k = 4, about 2.8 tokens per pass of the big model."


def _edge(function) -> float:
    """expected_tokens(1.0, 4), with the hint for a division by zero (or its NaN)."""
    hint = ("expected_tokens(1.0, 4) divided by zero: when every guess is accepted a round "
            "yields k + 1 tokens; handle a = 1 on its own.")
    try:
        value = call(function, 1.0, 4, name="expected_tokens")
    except Wrong as error:
        if "ZeroDivisionError" in str(error):
            raise Wrong(hint) from None
        raise
    try:
        return as_number(value, "expected_tokens(1.0, 4)")
    except Wrong:
        raise Wrong(hint) from None


@task("Task 5 · Replicas for a latency target")
def replicas(answer, fixed_ms: float, per_sequence_ms: float, target_ms: float,
             output_tokens: float, traffic_per_s: float, usable: float) -> str:
    value = as_number(answer, "replicas")
    batch = math.floor((target_ms - fixed_ms) / per_sequence_ms)
    step_s = (fixed_ms + per_sequence_ms * batch) / 1000
    per_replica = batch / (output_tokens * step_s)
    exact = traffic_per_s / (per_replica * usable)
    expected = math.ceil(exact)
    if value == expected:
        return "a latency target costs replicas twice: it caps the batch, and the headroom."
    mistakes = [
        (math.ceil(traffic_per_s / per_replica), "You left out the headroom: a replica may run "
                                                 "only at the usable fraction of its capacity."),
        (exact, "Round up: a fraction of a replica is a whole replica."),
        (expected - 1, "Round up: a fraction of a replica is a whole replica."),
        (math.ceil(traffic_per_s * usable / per_replica), "Divide by the usable fraction: "
                                                          "running below capacity needs more "
                                                          "replicas, not fewer."),
        (math.ceil(exact * 1000), MS_FOR_S), (math.ceil(exact / 1000), MS_FOR_S),
        (math.ceil(traffic_per_s * output_tokens * target_ms / 1000 / (batch * usable)),
         "Use the step time at that batch (fixed + per sequence x batch), not the target.")]
    for mistake, text in mistakes:
        if math.isclose(value, mistake, rel_tol=1e-9):
            raise Wrong(text)
    raise Wrong(f"not yet: {'too many' if value > expected else 'too few'}. One replica "
                "finishes batch / (output tokens x step time) requests per second.")


CHECKS = (time_in_system, p99, largest_batch, expected_tokens, replicas)


def summary() -> None:
    """Print the latest result of every task in this set, and the score."""
    print(_summary(__name__, [check.title for check in CHECKS]))
