"""course_lib.utilisation: model FLOP utilisation and accelerator seconds, its inverse."""

import math

import pytest

from course_lib import utilisation


def test_model_flop_utilisation():
    assert utilisation.model_flop_utilisation(25e9, 100e9) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="peak_flops_per_s"):
        utilisation.model_flop_utilisation(1.0, 0.0)
    with pytest.raises(ValueError, match="achieved_flops_per_s"):
        utilisation.model_flop_utilisation(-1.0, 1.0)


@pytest.mark.parametrize("achieved, peak", [(math.nan, 1e12), (1e9, 0), (-1.0, 1e12)])
def test_utilisation_refuses_nan_and_impossible_rates(achieved, peak):
    with pytest.raises(ValueError, match="flops_per_s must be a finite number"):
        utilisation.model_flop_utilisation(achieved, peak)


def test_accelerator_seconds_inverts_utilisation():
    seconds = utilisation.accelerator_seconds(6e18, 1e15, 0.4)
    assert seconds == pytest.approx(15_000)
    assert utilisation.model_flop_utilisation(6e18 / seconds, 1e15) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="utilisation must be a finite number > 0 and <= 1"):
        utilisation.accelerator_seconds(6e18, 1e15, 1.5)
