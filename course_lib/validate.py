"""Input checks shared by the whole library.

Every public function checks its inputs with these, so a learner who passes
0 chips or a NaN utilisation reads "chips must be a whole number >= 1, got 0"
(the parameter and the allowed range), never a traceback from deep inside
numpy or torch, and never a silent NaN.

- positive, whole, positive_array, seed: numbers and their ranges;
- series, items: lists, of numbers (a run's step times) or of objects (its requests);
- choice, flag, instance: names from a fixed set, True/False, arguments of the wrong type;
- result: a result that overflowed although every input was finite names those inputs;
- @checked, on public functions: every argument of its annotated class (a str where a
  ModelConfig belongs is a TypeError naming the parameter), and an overflow deep inside is
  reported in terms of the function's own arguments.

tests/test_contract.py holds the whole public API to this, with generated bad inputs.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from numbers import Integral, Real
from pathlib import PurePath

import numpy as np


def positive(name: str, value: float, *, allow_zero: bool = False,
             upper: float | None = None, below: float | None = None,
             lowest: float | None = None, allow_inf: bool = False) -> float:
    """`value` as a float if it is a finite number > 0 (>= 0 with allow_zero), and also
    >= lowest, <= upper and < below where those are given (+inf too with allow_inf)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {value!r:.80}")
    low_ok = (value >= 0 if allow_zero else value > 0) and (lowest is None or value >= lowest)
    high_ok = (upper is None or value <= upper) and (below is None or value < below)
    if not (math.isfinite(value) or allow_inf and value == math.inf) or not low_ok or not high_ok:
        bound = f">= {lowest:g}" if lowest is not None else ">= 0" if allow_zero else "> 0"
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


def positive_array(name: str, values, *, allow_zero: bool = False,
                   allow_nan: bool = False) -> np.ndarray:
    """`values` (a number or an array of them) as a float array, if all are finite and > 0
    (>= 0 with allow_zero; NaN too with allow_nan, where NaN marks a missing value).
    Strings and True/False are refused, not read as numbers."""
    try:
        raw = np.asarray(values)
        if raw.dtype.kind not in "iuf" or raw.dtype == object:
            raise TypeError
        array = raw.astype(float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of numbers, got "
                        f"{values!r:.80}") from None
    known = array[~np.isnan(array)] if allow_nan else array
    low = known.min() if known.size else math.inf  # nothing to check in an empty array
    if not np.all(np.isfinite(known)) or low < 0 or (low == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0 (positive)"
        missing = " (or NaN where missing)" if allow_nan else ""
        raise ValueError(f"{name} must be finite numbers {bound}{missing}, got {values!r:.80}")
    return array


def series(name: str, values, *, allow_zero: bool = True, allow_empty: bool = False,
           allow_nan: bool = False) -> np.ndarray:
    """positive_array for a list of measurements: one number is not a series, and it must
    hold at least one value unless allow_empty."""
    try:
        flat = not isinstance(values, (str, bytes)) and np.ndim(values) == 1
    except ValueError:  # a ragged list
        flat = False
    if not flat:
        raise TypeError(f"{name} must be a list of numbers, got {values!r:.80}")
    array = positive_array(name, values, allow_zero=allow_zero, allow_nan=allow_nan)
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{name} must hold at least one number, got {values!r:.80}")
    return array


def items(name: str, values, kind: type | tuple[type, ...] | None = None, *,
          allow_empty: bool = False) -> list:
    """`values` as a list if it is a list, tuple, range or other sequence (not a str) of
    instances of `kind` (any objects if None), and not empty unless allow_empty."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a list, got {type(values).__name__} {values!r:.60}")
    if len(values) == 0 and not allow_empty:
        raise ValueError(f"{name} must hold at least one item, got {values!r:.60}")
    if kind is not None:
        for index, value in enumerate(values):
            instance(f"{name}[{index}]", value, kind)
    return list(values)


SEED_LIMIT = 2**32 - 1  # NumPy's legacy seeding, which runtime.seed_everything uses, stops here


def seed(name: str, value: int) -> int:
    """A random seed as an int: a whole number from 0 to 2**32 - 1 (NumPy integers welcome)."""
    return whole(name, value, lowest=0, highest=SEED_LIMIT)


def choice(name: str, value, choices: Iterable[str]) -> str:
    """`value` if it is one of `choices`; otherwise a ValueError listing them."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r:.80}")
    return value


def flag(name: str, value) -> bool:
    """`value` if it is True or False (a str such as 'no' would silently count as True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r:.80}")
    return bool(value)


def instance(name: str, value, expected: type | tuple[type, ...], hint: str = ""):
    """`value` if it is an instance of `expected`; otherwise a TypeError naming the parameter,
    the type it needs (and `hint`: how to make one) and what it got."""
    if not isinstance(value, expected):
        kinds = expected if isinstance(expected, tuple) else (expected,)
        wanted = " or ".join(dict.fromkeys("None" if kind is type(None) else kind.__name__
                                           for kind in kinds))
        raise TypeError(f"{name} must be a {wanted}{hint}, got {type(value).__name__} "
                        f"{value!r:.60}")
    return value


class Overflow(ValueError):
    """A result too large for a float, from finite inputs; the message names the inputs."""

    def __init__(self, what: str, inputs: dict):
        self.what, self.inputs = what, inputs
        given = ", ".join(f"{key}={number!r:.30}" for key, number in inputs.items())
        super().__init__(f"the {what} overflow (exceed {np.finfo(float).max:.3g}) for {given}: "
                         f"{' or '.join(inputs)} must be smaller (or larger, if it divides)")


def result(what: str, value, **inputs):
    """`value` if every number in it is finite; otherwise an Overflow (a ValueError) naming
    the `inputs` (name=value) that made it, e.g. result("training FLOPs", f, n_params=n)."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.all(np.isfinite(np.asarray(value, dtype=float)))
    if not finite:
        raise Overflow(what, inputs)
    return value


# --- @checked: the arguments of a public function ---------------------------------------

_NUMBERS = (int, float, complex)


def _expected(annotation: str, namespace: dict) -> tuple[type, ...] | None:
    """The classes an annotation allows, or None where @checked leaves the check to others:
    numbers (positive/whole check them with their range), generics such as list[int]."""
    try:
        hint = eval(annotation, namespace) if isinstance(annotation, str) else annotation  # noqa: S307
    except Exception:  # noqa: BLE001  (a name only imported for type checkers)
        return None
    options = (typing.get_args(hint) if isinstance(hint, types.UnionType)
               or typing.get_origin(hint) is typing.Union else (hint,))
    options = tuple(Callable if typing.get_origin(option) is Callable else option
                    for option in options)  # a function: callable is all one can check
    if not all(isinstance(option, type) and not typing.get_args(option) for option in options) \
            or any(option in _NUMBERS or option is object for option in options):
        return None
    kinds: list[type] = []
    for option in options:  # True/False may come from NumPy; a path may be given as a str
        kinds.extend((bool, np.bool_) if option is bool else (str, os.PathLike)
                     if issubclass(option, PurePath) else (option,))
    return tuple(dict.fromkeys(kinds))


def checked(function: Callable) -> Callable:
    """Decorator for a public function. Every argument annotated with a class (ModelConfig,
    Scenario, torch.Tensor, str, bool, or a union of them) must be an instance of it, or a
    TypeError names the parameter (numbers are left to positive and whole, which check their
    range too). An Overflow raised inside, about values the caller never passed, is raised
    again naming this call's number arguments instead."""
    signature = inspect.signature(function)
    checks: dict[str, tuple[type, ...]] | None = None

    @functools.wraps(function)
    def call(*args, **kwargs):
        nonlocal checks
        if checks is None:  # on first call: the annotations may name classes defined later
            checks = {}
            for name, parameter in signature.parameters.items():
                expected = _expected(parameter.annotation, inspect.unwrap(function).__globals__)
                if parameter.annotation is not inspect.Parameter.empty and expected:
                    checks[name] = expected
        arguments = signature.bind(*args, **kwargs).arguments
        for name, value in arguments.items():
            if name in checks:
                instance(name, value, checks[name])
        try:
            return function(*args, **kwargs)
        except Overflow as error:
            numbers = {name: value for name, value in arguments.items()
                       if isinstance(value, Real) and not isinstance(value, bool)}
            if set(error.inputs) <= set(signature.parameters) or not numbers:
                raise
            raise Overflow(error.what, numbers) from None

    return call
