"""course_lib.probes: this machine's sustained matmul FLOP/s and memory bandwidth."""

import math
import statistics

import pytest

from course_lib import probes

# --- Compute ------------------------------------------------------------------------------


def test_matmul_measurement_is_positive_and_reports_the_median():
    result = probes.measure_matmul_flops(sizes=(32, 64, 96), min_seconds=0.01, rounds=1)
    assert result.sizes == (32, 64, 96)
    assert len(result.flops_per_s) == 3 and all(rate > 0 for rate in result.flops_per_s)
    assert result.median_flops_per_s == statistics.median(result.flops_per_s)
    assert result.threads >= 1


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(sizes=()), "sizes"), (dict(sizes=(0,)), "sizes"), (dict(min_seconds=0), "min_seconds")],
)
def test_bad_measurement_settings_are_clear_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        probes.measure_matmul_flops(**kwargs)


# --- Memory -------------------------------------------------------------------------------


def test_bandwidth_is_the_median_of_the_repeats():
    result = probes.measure_memory_bandwidth(megabytes=8, repeats=5, device="cpu")
    assert len(result.samples) == 5
    assert all(math.isfinite(s) and s > 0 for s in result.samples), result.samples
    low, high = result.spread()
    assert low <= result.bytes_per_second <= high
    assert sorted(result.samples)[2] == result.bytes_per_second
    assert result.device == "cpu"


def test_buffer_size_follows_the_request():
    small = probes.measure_memory_bandwidth(megabytes=1, repeats=1, device="cpu")
    large = probes.measure_memory_bandwidth(megabytes=4, repeats=1, device="cpu")
    assert small.buffer_bytes == pytest.approx(1e6, rel=1e-3)
    assert large.buffer_bytes == pytest.approx(4 * small.buffer_bytes, rel=1e-3)


@pytest.mark.parametrize("megabytes", [0, -1, float("nan"), float("inf"), True, "64"])
def test_buffer_size_must_be_a_positive_number(megabytes):
    with pytest.raises((ValueError, TypeError), match="megabytes must be a"):
        probes.measure_memory_bandwidth(megabytes=megabytes, repeats=1)


@pytest.mark.parametrize("repeats", [0, -3, 1.5, True])
def test_repeats_must_be_a_whole_number_of_at_least_one(repeats):
    with pytest.raises(ValueError, match="repeats"):
        probes.measure_memory_bandwidth(megabytes=1, repeats=repeats)
