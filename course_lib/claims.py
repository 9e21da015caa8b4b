"""Claims a notebook states, checked where it states them.

Where the prose says "the two agree", "within 2%", "exactly 3x", "the weights match", a
check cell under it calls one of these with what is claimed and the numbers:

    claims.close("the counter agrees with 6·N·D", counted, 6 * n * d, rel=0.02)

When the claim holds, one line says so, with the numbers:

    Checked: the counter agrees with 6·N·D (1.21e9 vs expected 1.2e9, 0.833% apart, allowed 2%)

When it does not, ClaimFailed (an AssertionError, so Run All, nbval and `make course` stop
there) says what was claimed, the numbers, and what to do. NaN never confirms a claim.

Values may be numbers, numpy arrays, lists, CPU tensors (read through numpy, torch is never
imported here) or, for close and equal, dicts of them with the same keys (state dicts).

Foundation layer: standard library and numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from course_lib import validate
from course_lib.formatting import fmt

DEFAULT_HINT = ("If you changed a cell above, run the notebook again from the top (Kernel > "
                "Restart Kernel and Run All Cells). If it still fails, the numbers above are "
                "what this machine measured: note them and tell your instructor.")


class ClaimFailed(AssertionError):
    """A claim the notebook makes did not hold; the message says what, by how much, what next."""

    def __init__(self, what: str, numbers: str, hint: str | None = None) -> None:
        self.what, self.numbers = what, numbers
        self.hint = hint or DEFAULT_HINT
        super().__init__(f"Claim not confirmed: {what}.\n  {numbers}\n"
                         f"What to do: {self.hint}")


def _confirmed(what: str, numbers: str) -> None:
    print(f"Checked: {what} ({numbers})")


def _claim_text(what: str) -> str:
    if not isinstance(what, str) or not what.strip():
        raise TypeError(f"a claim needs a description (what is claimed), got {what!r}")
    return what.strip().rstrip(".")


def _array(name: str, value: Any) -> np.ndarray:
    """`value` as a numpy array; a tensor is detached and moved to the CPU first."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without torch
        value = value.detach().cpu()
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} cannot be read as numbers or an array ({error}); pass numbers, "
                        f"numpy arrays or CPU tensors (.float() a bfloat16 tensor)") from None


def _numbers(name: str, value: Any) -> np.ndarray:
    """`value` as an array of real numbers (bools count as 0 and 1; a Python int too large
    for numpy's integers, such as a FLOP count of 3e23, becomes a float)."""
    array = _array(name, value)
    if array.dtype.kind in "biuf":
        return array.astype(float)
    if array.dtype.kind == "O":
        try:
            return array.astype(float)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{name} must be real numbers, got {_show(value)}")


def _show(value: Any, exact: bool = False) -> str:
    """One value for a message: short with fmt, or every digit where exactness is claimed."""
    if isinstance(value, np.generic):
        value = value.item()  # numpy's scalars as Python's: 3, not np.int64(3)
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        return repr(value) if exact or not np.isfinite(value) else fmt(value)
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _text_difference(a: str, b: str) -> str:
    """Where two texts part: the first differing character, with a little context."""
    pairs = enumerate(zip(a, b, strict=False))
    at = next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))
    start = max(0, at - 20)
    return (f"they differ from character {at} on (of {len(a)} and {len(b)}): "
            f"{a[start:at + 20]!r} vs {b[start:at + 20]!r}")


def _where(label: str, array: np.ndarray, flat_index: int) -> str:
    """' at index (2, 3)' or " in ['wte.weight'] at index 7": empty for a single number."""
    place = f" in {label}" if label else ""
    if array.ndim:
        index = np.unravel_index(flat_index, array.shape)
        place += f" at index {index[0] if len(index) == 1 else tuple(int(i) for i in index)}"
    return place


def _pairs(what: str, first: Any, second: Any, hint: str | None
           ) -> list[tuple[str, Any, Any]]:
    """(label, one, other) to compare: one pair, or one per key of two dicts."""
    if not (isinstance(first, Mapping) and isinstance(second, Mapping)):
        return [("", first, second)]
    if first.keys() != second.keys():
        only = ", ".join(sorted(map(repr, first.keys() - second.keys()))) or "none"
        other = ", ".join(sorted(map(repr, second.keys() - first.keys()))) or "none"
        raise ClaimFailed(what, f"the keys differ: only in the first {only}; only in the "
                                f"second {other}", hint)
    return [(f"[{key!r}]", first[key], second[key]) for key in first]


def _aligned(what: str, label: str, one: np.ndarray, other: np.ndarray, hint: str | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """The two arrays broadcast to one shape: they must have the same shape, or one of them
    be a single number (which then stands beside every element of the other)."""
    if one.shape != other.shape and one.ndim and other.ndim:
        raise ClaimFailed(what, f"shapes differ{' in ' + label if label else ''}: "
                                f"{one.shape} and {other.shape}", hint)
    one, other = np.broadcast_arrays(one, other)
    return one, other


def _not_a_number(what: str, label: str, name: str, array: np.ndarray, hint: str | None,
                  allow_infinity: bool = False) -> None:
    """Raise if `array` holds NaN (or infinity, unless allowed): it never confirms a claim."""
    if array.dtype.kind not in "fc":
        return
    bad = np.isnan(array) if allow_infinity else ~np.isfinite(array)
    if bad.any():
        flat = int(np.flatnonzero(bad)[0])
        count = f" ({int(bad.sum())} of {array.size} values)" if array.size > 1 else ""
        raise ClaimFailed(
            what, f"{name} is {_show(array.flat[flat])}{_where(label, array, flat)}{count}, "
                  f"which never confirms a claim; NaN (not a number) or infinity usually comes "
                  f"from a division by zero or an overflow above", hint)


def _tolerance(rel: float, tol: float) -> str:
    parts = ([f"{fmt(100 * rel)}%"] if rel else []) + ([f"±{fmt(tol)}"] if tol else [])
    return f"allowed {' or '.join(parts)}" if parts else "exact"


def _apart(value: float, expected: float) -> str:
    gap = abs(value - expected)
    if gap == 0:
        return "equal"
    return f"{fmt(100 * gap / abs(expected))}% apart" if expected else f"{fmt(gap)} apart"


def close(what: str, value: Any, expected: Any, *, rel: float = 1e-9, abs: float = 0.0,
          hint: str | None = None) -> None:
    """Claim that `value` is within rel (a fraction of `expected`) or abs of `expected`.

    Holds where |value - expected| <= max(rel * |expected|, abs) for every element; arrays
    must have the same shape (or one be a single number). NaN or infinity never holds.
    """
    what = _claim_text(what)
    rel = validate.positive("rel", rel, allow_zero=True)
    tol = validate.positive("abs", abs, allow_zero=True)
    worst, count, outside = None, 0, 0
    for label, one, other in _pairs(what, value, expected, hint):
        got, want = _aligned(what, label, _numbers("value", one), _numbers("expected", other),
                             hint)
        _not_a_number(what, label, "the value", got, hint)
        _not_a_number(what, label, "the expected value", want, hint)
        gap = np.abs(got - want)
        allowed = np.maximum(tol, rel * np.abs(want))
        excess = np.divide(gap, allowed, out=np.where(gap > 0, np.inf, 0.0), where=allowed > 0)
        count, outside = count + got.size, outside + int((gap > allowed).sum())
        if got.size and (worst is None or excess.max() > worst[0]):
            flat = int(excess.argmax())
            worst = (float(excess.max()), label, got, flat, got.flat[flat], want.flat[flat])
    if worst is None:
        raise ClaimFailed(what, "there are no values to compare", hint)
    _, label, array, flat, got_one, want_one = worst
    got_text, want_text = _show(got_one), _show(want_one)
    if got_text == want_text and got_one != want_one:  # rounded alike: show more digits
        got_text, want_text = f"{got_one:.6g}", f"{want_one:.6g}"
    pair = (f"{got_text} vs expected {want_text}, {_apart(got_one, want_one)}, "
            f"{_tolerance(rel, tol)}")
    where = _where(label, array, flat)
    if outside:
        raise ClaimFailed(what, pair if count == 1 else
                          f"{outside} of {count} values outside the tolerance; the furthest"
                          f"{where}: {pair}", hint)
    _confirmed(what, pair if count == 1 else f"{count} values; the furthest apart{where}: {pair}")


def equal(what: str, a: Any, b: Any, *, hint: str | None = None) -> None:
    """Claim that `a` and `b` are exactly equal: numbers, arrays (same shape, every element),
    strings, or dicts of them with the same keys. NaN equals nothing, not even NaN."""
    what = _claim_text(what)
    if isinstance(a, str) and isinstance(b, str):
        if a != b:
            raise ClaimFailed(what, _text_difference(a, b), hint)
        _confirmed(what, f"both the same {len(a)} characters")
        return
    count, differ, first = 0, 0, None
    for label, one, other in _pairs(what, a, b, hint):
        left, right = _aligned(what, label, _array("the first", one), _array("the second", other),
                               hint)
        _not_a_number(what, label, "the first", left, hint, allow_infinity=True)
        _not_a_number(what, label, "the second", right, hint, allow_infinity=True)
        same = np.asarray(left == right, dtype=bool)
        if same.shape != left.shape:
            raise TypeError(f"{what}: these values cannot be compared element by element: "
                            f"{_show(one)} and {_show(other)}")
        count, differ = count + left.size, differ + int((~same).sum())
        if first is None and not same.all():
            flat = int(np.flatnonzero(~same)[0])
            first = (f"{_where(label, left, flat)}: {_show(left.flat[flat], exact=True)} vs "
                     f"{_show(right.flat[flat], exact=True)}")
    if not count:
        raise ClaimFailed(what, "there are no values to compare", hint)
    if first is not None:
        if count == 1:
            raise ClaimFailed(what, f"they differ{first}", hint)
        raise ClaimFailed(what, f"{differ} of {count} values differ; the first{first}", hint)
    if count == 1:
        value = a
        while isinstance(value, Mapping):
            value = next(iter(value.values()))
        _confirmed(what, f"both {_show(_array('the first', value).reshape(()).item())}")
    else:
        _confirmed(what, f"all {count} values equal")


def _bound(what: str, value: Any, bound: Any, above: bool, hint: str | None) -> None:
    """at_most (above=False: no value above its bound) and at_least (above=True)."""
    what = _claim_text(what)
    got, limit = _aligned(what, "", _numbers("value", value), _numbers("bound", bound), hint)
    _not_a_number(what, "", "the value", got, hint)
    _not_a_number(what, "", "the bound", limit, hint, allow_infinity=True)
    if not got.size:
        raise ClaimFailed(what, "there are no values to compare", hint)
    sign, word = (-1, "at least") if above else (1, "at most")
    # the value nearest its bound (or furthest past it): by ratio where every bound is
    # positive, so that a family of measurements spanning decades is compared fairly
    closeness = (got / limit if (limit > 0).all() and np.isfinite(limit).all()
                 else got - limit) * sign
    flat = int(closeness.argmax())
    breaks = int((sign * (got - limit) > 0).sum())
    value_text, bound_text = _show(got.flat[flat]), _show(limit.flat[flat])
    if breaks:
        side = "below" if above else "above"
        raise ClaimFailed(what, f"{value_text} is {side} the bound {bound_text}" if got.size == 1
                          else f"{breaks} of {got.size} values are {side} their bound; the "
                               f"furthest{_where('', got, flat)}: {value_text} vs the bound "
                               f"{bound_text}", hint)
    one = f"{value_text} {'>=' if above else '<='} {bound_text}"
    _confirmed(what, one if got.size == 1 else
               f"{got.size} values, each {word} its bound; the nearest{_where('', got, flat)}: "
               f"{one}")


def at_most(what: str, value: Any, bound: Any, *, hint: str | None = None) -> None:
    """Claim that `value` (every element) is <= `bound` (a number, or one per element)."""
    _bound(what, value, bound, above=False, hint=hint)


def at_least(what: str, value: Any, bound: Any, *, hint: str | None = None) -> None:
    """Claim that `value` (every element) is >= `bound` (a number, or one per element)."""
    _bound(what, value, bound, above=True, hint=hint)


def holds(what: str, condition: bool, detail: str, *, hint: str | None = None) -> None:
    """Claim anything a comparison of numbers does not express; `detail` gives the numbers
    (shown whether the claim holds or not), e.g. "crossover on day 120, then day 60"."""
    what = _claim_text(what)
    if not isinstance(condition, (bool, np.bool_)):
        raise TypeError(f"{what}: the condition must be True or False, got {condition!r} "
                        f"(for an array, say which: .all() or .any())")
    if not isinstance(detail, str) or not detail.strip():
        raise TypeError(f"{what}: give the numbers behind the claim as detail, got {detail!r}")
    if not condition:
        raise ClaimFailed(what, detail, hint)
    _confirmed(what, detail)
