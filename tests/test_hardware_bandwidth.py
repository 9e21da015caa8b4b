"""course_lib.hardware.measure_memory_bandwidth: the memory-bandwidth probe (issue 7)."""

import math

import pytest

from course_lib import hardware


def test_bandwidth_is_the_median_of_the_repeats():
    result = hardware.measure_memory_bandwidth(megabytes=8, repeats=5, device="cpu")
    assert len(result.samples) == 5
    assert all(math.isfinite(s) and s > 0 for s in result.samples), result.samples
    low, high = result.spread()
    assert low <= result.bytes_per_second <= high
    assert sorted(result.samples)[2] == result.bytes_per_second
    assert result.device == "cpu"


def test_buffer_size_follows_the_request():
    small = hardware.measure_memory_bandwidth(megabytes=1, repeats=1, device="cpu")
    large = hardware.measure_memory_bandwidth(megabytes=4, repeats=1, device="cpu")
    assert small.buffer_bytes == pytest.approx(1e6, rel=1e-3)
    assert large.buffer_bytes == pytest.approx(4 * small.buffer_bytes, rel=1e-3)


@pytest.mark.parametrize("megabytes", [0, -1, float("nan"), float("inf"), True, "64"])
def test_buffer_size_must_be_a_positive_number(megabytes):
    with pytest.raises((ValueError, TypeError), match="megabytes must be a"):
        hardware.measure_memory_bandwidth(megabytes=megabytes, repeats=1)


@pytest.mark.parametrize("repeats", [0, -3, 1.5, True])
def test_repeats_must_be_a_whole_number_of_at_least_one(repeats):
    with pytest.raises(ValueError, match="repeats"):
        hardware.measure_memory_bandwidth(megabytes=1, repeats=repeats)
