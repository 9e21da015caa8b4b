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


def test_series_returns_floats_and_keeps_missing_values_where_allowed():
    assert validate.series("times_s", [1, 2.5, np.float32(3)]).tolist() == [1.0, 2.5, 3.0]
    assert validate.series("times_s", [], allow_empty=True).size == 0
    kept = validate.series("times_s", [1.0, math.nan], allow_nan=True)
    assert kept[0] == 1.0 and math.isnan(kept[1])


@pytest.mark.parametrize("values, kwargs, error, text", [
    ("123", {}, TypeError, "times_s must be a list of numbers"),
    (5.0, {}, TypeError, "times_s must be a list of numbers"),
    ([[1, 2], [3]], {}, TypeError, "times_s must be a list of numbers"),
    (["a", "b"], {}, TypeError, "times_s must be a number or an array of numbers"),
    ([], {}, ValueError, "times_s must hold at least one number"),
    ([1.0, -1.0], {}, ValueError, "times_s must be finite numbers >= 0"),
    ([1.0, math.inf], {}, ValueError, "times_s must be finite numbers >= 0"),
    ([1.0, math.nan], {}, ValueError, "times_s must be finite numbers >= 0"),
    ([0.0, 1.0], {"allow_zero": False}, ValueError, "times_s must be finite numbers > 0"),
    ([1.0, -1.0], {"allow_nan": True}, ValueError, r"times_s must be finite numbers >= 0 \(or NaN"),
])
def test_series_names_the_parameter_and_what_it_must_hold(values, kwargs, error, text):
    with pytest.raises(error, match=text):
        validate.series("times_s", values, **kwargs)


def test_items_checks_every_item_and_names_the_bad_one():
    assert validate.items("runs", (1, 2), int) == [1, 2]
    assert validate.items("runs", [], allow_empty=True) == []
    with pytest.raises(TypeError, match=r"runs\[1\]"):
        validate.items("runs", [1, "two"], int)
    with pytest.raises(TypeError, match="runs must be a list, got str"):
        validate.items("runs", "12")
    with pytest.raises(ValueError, match="runs must hold at least one item"):
        validate.items("runs", [])
