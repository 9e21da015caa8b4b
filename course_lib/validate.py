"""Input checks shared by the whole library.

Every public function checks its inputs with these, so a learner who passes
0 chips or a NaN utilisation reads "chips must be a whole number >= 1, got 0"
(the parameter and the allowed range), never a traceback from deep inside
numpy or torch, and never a silent NaN.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np


def positive(name: str, value: float, *, allow_zero: bool = False,
             upper: float | None = None, below: float | None = None) -> float:
    """`value` as a float if it is a finite number > 0 (>= 0 with allow_zero), and also
    <= upper and < below where those are given."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    high_ok = (upper is None or value <= upper) and (below is None or value < below)
    if not math.isfinite(value) or not low_ok or not high_ok:
        bound = ">= 0" if allow_zero else "> 0"
        limit = "".join(f" and {sign} {edge:g}" for sign, edge in (("<=", upper), ("<", below))
                        if edge is not None)
        raise ValueError(f"{name} must be a finite number {bound}{limit}, got {value!r}")
    return float(value)


def whole(name: str, value: int, lowest: int = 1, highest: int | None = None) -> int:
    """`value` as an int if it is a whole number from lowest to highest (bools are refused,
    not read as 0/1)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < lowest \
            or (highest is not None and value > highest):
        limit = f" and <= {highest}" if highest is not None else ""
        raise ValueError(f"{name} must be a whole number >= {lowest}{limit}, got {value!r}")
    return int(value)


def positive_array(name: str, values, *, allow_zero: bool = False) -> np.ndarray:
    """`values` (a number or an array of them) as a float array, if all are finite and > 0."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of numbers, got {values!r}") from None
    low = array.min() if array.size else 0.0
    if not np.all(np.isfinite(array)) or low < 0 or (low == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite numbers {bound}, got {values!r}")
    return array
