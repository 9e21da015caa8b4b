"""Specification of course_lib.hardware (compute part): matmul FLOP/s and utilisation."""

import math
import statistics

import pytest

from course_lib import hardware


def test_matmul_measurement_is_positive_and_reports_the_median():
    result = hardware.measure_matmul_flops(sizes=(32, 64, 96), min_seconds=0.01, rounds=1)
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
        hardware.measure_matmul_flops(**kwargs)


def test_model_flop_utilisation():
    assert hardware.model_flop_utilisation(25e9, 100e9) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="peak_flops_per_s"):
        hardware.model_flop_utilisation(1.0, 0.0)
    with pytest.raises(ValueError, match="achieved_flops_per_s"):
        hardware.model_flop_utilisation(-1.0, 1.0)


@pytest.mark.parametrize("achieved, peak", [(math.nan, 1e12), (1e9, 0), (-1.0, 1e12)])
def test_utilisation_refuses_nan_and_impossible_rates(achieved, peak):
    with pytest.raises(ValueError, match="flops_per_s must be a finite number"):
        hardware.model_flop_utilisation(achieved, peak)


def test_accelerator_seconds_inverts_utilisation():
    seconds = hardware.accelerator_seconds(6e18, 1e15, 0.4)
    assert seconds == pytest.approx(15_000)
    assert hardware.model_flop_utilisation(6e18 / seconds, 1e15) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="utilisation must be a finite number > 0 and <= 1"):
        hardware.accelerator_seconds(6e18, 1e15, 1.5)
