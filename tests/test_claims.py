"""course_lib.claims: a claim that holds prints one "Checked:" line with its numbers; one that
does not raises ClaimFailed, saying what was claimed, the numbers, and what to do."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib import claims
from course_lib.claims import ClaimFailed


def checked_line(capsys) -> str:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"one line expected, got {out!r}"
    return out.strip()


def failure(call, *args, **kwargs) -> str:
    with pytest.raises(ClaimFailed) as raised:
        call(*args, **kwargs)
    return str(raised.value)


# --- close ------------------------------------------------------------------------------------

def test_close_prints_the_numbers_and_the_tolerance(capsys):
    claims.close("the counter agrees with 6·N·D", 1.21e9, 1.2e9, rel=0.02)
    assert checked_line(capsys) == ("Checked: the counter agrees with 6·N·D "
                                    "(1.21e9 vs expected 1.2e9, 0.833% apart, allowed 2%)")


def test_close_fails_outside_the_tolerance_with_a_learner_readable_message(capsys):
    message = failure(claims.close, "the counter agrees with 6·N·D.", 1.31e9, 1.2e9, rel=0.02)
    assert message.startswith("Claim not confirmed: the counter agrees with 6·N·D.\n")
    assert "1.31e9 vs expected 1.2e9, 9.17% apart, allowed 2%" in message
    assert "What to do:" in message and "Restart Kernel and Run All" in message
    assert capsys.readouterr().out == "", "a failed claim prints no Checked line"


def test_close_is_an_assertion_error_so_run_all_stops():
    with pytest.raises(AssertionError):
        claims.close("x", 2.0, 1.0, rel=0.1)


def test_close_bounds_are_inclusive_and_abs_or_rel_is_enough(capsys):
    claims.close("exactly on the edge", 1.02, 1.0, rel=0.02 + 1e-12)
    claims.close("absolute tolerance near zero", 1e-9, 0.0, abs=1e-6)
    claims.close("either tolerance will do", 1.5, 1.0, rel=0.01, abs=0.5)
    assert capsys.readouterr().out.count("Checked:") == 3
    failure(claims.close, "rel of zero expected is zero", 1e-9, 0.0, rel=0.5)


def test_close_with_arrays_names_the_worst_element(capsys):
    measured = np.array([[1.0, 2.0], [3.0, 4.5]])
    message = failure(claims.close, "each layer matches", measured, np.array([[1, 2], [3, 4]]),
                      rel=0.01)
    assert "1 of 4 values outside the tolerance" in message
    assert "at index (1, 1): 4.5 vs expected 4, 12.5% apart, allowed 1%" in message
    claims.close("each layer matches", [1.0, 2.0001], np.array([1.0, 2.0]), rel=1e-3)
    assert checked_line(capsys) == ("Checked: each layer matches (2 values; the furthest apart "
                                    "at index 1: 2.0001 vs expected 2, 0.005% apart, "
                                    "allowed 0.1%)")


def test_close_compares_every_value_with_a_single_expected_number(capsys):
    claims.close("all ones", np.ones(5), 1.0)
    assert "5 values" in checked_line(capsys)
    assert "1 of 3 values" in failure(claims.close, "all ones", [1.0, 1.0, 0.0], 1.0)


@pytest.mark.parametrize("value, expected", [
    (math.nan, 1.0), (1.0, math.nan), (math.nan, math.nan), (math.inf, math.inf),
    (np.array([1.0, np.nan]), np.array([1.0, np.nan]))])
def test_nan_never_passes_close(value, expected):
    message = failure(claims.close, "a NaN slipped in", value, expected, rel=1.0, abs=1e9)
    assert "never confirms a claim" in message and "division by zero" in message


def test_close_refuses_mismatched_shapes_and_empty_input():
    assert "shapes differ: (3,) and (4,)" in failure(claims.close, "s", np.ones(3), np.ones(4))
    assert "no values" in failure(claims.close, "e", np.array([]), np.array([]))


def test_close_reads_huge_python_ints_and_tensors(capsys):
    training_flops = 6 * 175 * 10**9 * 300 * 10**9  # beyond numpy's int64
    claims.close("6·N·D for GPT-3", training_flops, 3.15e23, rel=1e-9)
    weights = torch.ones(3, requires_grad=True)
    claims.close("a tensor that needs grad", weights * 2, [2.0, 2.0, 2.0])
    assert capsys.readouterr().out.count("Checked:") == 2


def test_close_shows_more_digits_where_rounding_would_hide_the_gap():
    message = failure(claims.close, "agree to 1e-6", 4.0001, 4.0, rel=1e-6)
    assert "4.0001 vs expected 4," in message


def test_close_rejects_what_is_not_a_claim():
    with pytest.raises(TypeError, match="description"):
        claims.close("", 1.0, 1.0)
    with pytest.raises(TypeError, match="real numbers"):
        claims.close("text is not a number", "1.0", 1.0)
    with pytest.raises(ValueError, match="rel must be a finite number >= 0"):
        claims.close("negative tolerance", 1.0, 1.0, rel=-0.1)


def test_close_compares_dicts_key_by_key(capsys):
    one = {"wte": np.ones((2, 2)), "head": np.zeros(3)}
    claims.close("weights match one process", one, {"wte": np.ones((2, 2)), "head": np.zeros(3)},
                 abs=1e-6)
    assert "7 values" in checked_line(capsys)
    other = {"wte": np.ones((2, 2)), "head": np.array([0.0, 0.1, 0.0])}
    message = failure(claims.close, "weights match one process", one, other, abs=1e-6)
    assert "in ['head'] at index 1" in message
    assert "only in the first 'head'" in failure(claims.close, "k", one, {"wte": one["wte"]})


# --- equal ------------------------------------------------------------------------------------

def test_equal_prints_what_matched(capsys):
    claims.equal("cache on and off give the same tokens", np.arange(40), torch.arange(40))
    assert checked_line(capsys) == ("Checked: cache on and off give the same tokens "
                                    "(all 40 values equal)")
    claims.equal("three times the tokens", 3, 3)
    assert checked_line(capsys) == "Checked: three times the tokens (both 3)"
    claims.equal("same text", "the quick brown fox", "the quick brown fox")
    assert checked_line(capsys) == "Checked: same text (both the same 19 characters)"


def test_equal_names_the_first_difference_with_every_digit():
    message = failure(claims.equal, "weights match", np.array([1.0, 2.0, 3.0]),
                      np.array([1.0, 2.0000001, 3.5]))
    assert "2 of 3 values differ; the first at index 1: 2.0 vs 2.0000001" in message
    assert "they differ: 3 vs 4" in failure(claims.equal, "n", 3, 4)


def test_equal_shows_where_two_texts_part():
    message = failure(claims.equal, "cache on and off give the same text",
                      "the quick brown fox jumps over the lazy dog",
                      "the quick brown fox jumps over the lazy cat")
    assert "from character 40 on (of 43 and 43)" in message
    assert "'jumps over the lazy dog' vs 'jumps over the lazy cat'" in message


@pytest.mark.parametrize("a, b", [(math.nan, math.nan), (np.array([1.0, np.nan]),) * 2])
def test_nan_never_passes_equal(a, b):
    assert "never confirms a claim" in failure(claims.equal, "n", a, b)


def test_equal_refuses_mismatched_shapes_and_keys():
    assert "shapes differ" in failure(claims.equal, "s", np.ones((2, 3)), np.ones((3, 2)))
    assert "the keys differ" in failure(claims.equal, "k", {"a": 1}, {"b": 1})


# --- at_most / at_least -----------------------------------------------------------------------

def test_at_most_prints_the_value_nearest_its_bound(capsys):
    claims.at_most("int8 changes the loss by at most 0.05", 0.012, 0.05)
    assert checked_line(capsys) == ("Checked: int8 changes the loss by at most 0.05 "
                                    "(0.012 <= 0.05)")
    # measured points under their roofs, spanning decades: nearest by ratio (index 1, 83%)
    claims.at_most("every point under the roof", [1e9, 5e11, 2e10], [2e9, 6e11, 1e12])
    assert checked_line(capsys) == ("Checked: every point under the roof (3 values, each at "
                                    "most its bound; the nearest at index 1: 5e11 <= 6e11)")


def test_at_most_fails_above_the_bound():
    assert "0.07 is above the bound 0.05" in failure(claims.at_most, "loss", 0.07, 0.05)
    message = failure(claims.at_most, "roof", [1e9, 7e11, 2e10], [2e9, 6e11, 1e12])
    assert "1 of 3 values are above their bound; the furthest at index 1: 7e11 vs " \
           "the bound 6e11" in message


def test_at_least(capsys):
    claims.at_least("a speed-up of at least 2x", 2.5, 2)
    assert checked_line(capsys) == "Checked: a speed-up of at least 2x (2.5 >= 2)"
    assert "1.5 is below the bound 2" in failure(claims.at_least, "speed-up", 1.5, 2)


@pytest.mark.parametrize("call", [claims.at_most, claims.at_least])
def test_nan_never_passes_a_bound(call):
    assert "never confirms a claim" in failure(call, "n", math.nan, 1.0)
    assert "never confirms a claim" in failure(call, "n", 1.0, math.nan)
    assert "never confirms a claim" in failure(call, "n", [0.5, math.nan], 1.0)


# --- holds ------------------------------------------------------------------------------------

def test_holds_shows_the_detail_either_way(capsys):
    claims.holds("doubling traffic halves the crossover", 60 * 2 == 120,
                 "crossover on day 120, then day 60")
    assert checked_line(capsys) == ("Checked: doubling traffic halves the crossover "
                                    "(crossover on day 120, then day 60)")
    message = failure(claims.holds, "doubling traffic halves the crossover", False,
                      "crossover on day 120, then day 90", hint="Set the slider back to 1e9.")
    assert message == ("Claim not confirmed: doubling traffic halves the crossover.\n"
                       "  crossover on day 120, then day 90\n"
                       "What to do: Set the slider back to 1e9.")


def test_holds_wants_a_plain_verdict_and_the_numbers():
    with pytest.raises(TypeError, match=r"\.all\(\) or \.any\(\)"):
        claims.holds("all positive", np.array([True, False]), "two values")
    with pytest.raises(TypeError, match="detail"):
        claims.holds("no numbers given", True, "")
    claims.holds("numpy's bool is fine", np.bool_(True), "1 > 0")


def test_a_failed_claim_keeps_its_parts_for_tools():
    with pytest.raises(ClaimFailed) as raised:
        claims.at_most("loss", 0.07, 0.05, hint="Use per-channel scales.")
    assert raised.value.what == "loss"
    assert raised.value.numbers == "0.07 is above the bound 0.05"
    assert raised.value.hint == "Use per-channel scales."
