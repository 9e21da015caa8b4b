"""The shared input checks: every bad value is refused with the parameter's name and range."""

import math

import numpy as np
import pytest

from course_lib import validate


@pytest.mark.parametrize("value", [1, 2.5, np.float32(3), np.int64(4)])
def test_positive_accepts_finite_numbers_above_zero(value):
    assert validate.positive("x", value) == float(value)


@pytest.mark.parametrize("value, kwargs, range_text", [
    (0, {}, "> 0"), (-1.0, {}, "> 0"), (math.nan, {}, "> 0"), (math.inf, {}, "> 0"),
    (-0.5, {"allow_zero": True}, ">= 0"), (1.5, {"upper": 1}, "<= 1"),
    (1.0, {"allow_zero": True, "below": 1}, ">= 0 and < 1"),
])
def test_positive_names_the_parameter_and_the_range(value, kwargs, range_text):
    with pytest.raises(ValueError, match=f"utilisation must be .*{range_text}"):
        validate.positive("utilisation", value, **kwargs)


@pytest.mark.parametrize("value", ["3", None, True])
def test_positive_refuses_non_numbers(value):
    with pytest.raises(TypeError, match="chips must be a number"):
        validate.positive("chips", value)


def test_zero_is_allowed_only_when_asked():
    assert validate.positive("tokens", 0, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="tokens"):
        validate.positive("tokens", 0)


@pytest.mark.parametrize("value", [0, -3, 2.0, True, "4"])
def test_whole_refuses_anything_but_whole_numbers_in_range(value):
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        validate.whole("batch_size", value)


def test_whole_accepts_numpy_integers_and_a_lower_bound():
    assert validate.whole("n", np.int32(7)) == 7
    assert validate.whole("tokens", 0, lowest=0) == 0


def test_whole_can_have_an_upper_bound():
    assert validate.whole("port", 65535, lowest=1024, highest=65535) == 65535
    with pytest.raises(ValueError, match="port must be a whole number >= 1024 and <= 65535"):
        validate.whole("port", 80, lowest=1024, highest=65535)


def test_positive_array_checks_every_element():
    assert validate.positive_array("bw", [1, 2, 3]).tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="bw must be finite numbers > 0"):
        validate.positive_array("bw", [1, 0, 3])
    with pytest.raises(ValueError, match="bw"):
        validate.positive_array("bw", [1, np.nan])
    with pytest.raises(TypeError, match="bw"):
        validate.positive_array("bw", ["fast"])
