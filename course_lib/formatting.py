"""Numbers as a reader takes them in: one formatter for prose, readouts and tick labels.

Foundation layer (standard library only).
"""

from __future__ import annotations

import math
from numbers import Real

DAYS_PER_YEAR = 365
# A duration's unit: the largest it reaches (two years for years), and its size in days.
_DURATION_UNITS = (("second", 1 / 86_400), ("minute", 1 / 1_440), ("hour", 1 / 24),
                   ("day", 1), ("year", DAYS_PER_YEAR))


def fmt(value: float, unit: str = "") -> str:
    """A number as a reader takes it in: '0.38', '4096', '1.5e4' (not 1.5e+04), '3e23 FLOP'.

    A NaN or an infinity is refused: a reader should never see one."""
    _check_number(value)
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a str, got {unit!r:.60}")
    if value == 0:
        text = "0"
    elif abs(value) < 1e4 and float(value).is_integer():
        text = str(int(value))
    elif 1e-3 <= abs(value) < 100:
        text = f"{value:.3g}"
    elif 100 <= abs(value) < 1e4:  # .3g would write 9510.3 as 9.51e+03
        text = f"{value:.0f}"
    else:
        mantissa, _, exponent = f"{value:.2e}".partition("e")
        text = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{text} {unit}".strip()


def _check_number(value: float, digits: int = 3) -> None:
    """Refuse what no reader should see: a non-number, a NaN or an infinity (and digits
    outside 1 to 17, the most a float holds)."""
    if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        raise TypeError(f"value must be a number, got {value!r:.60}")
    if not math.isfinite(float(value)):
        raise ValueError(f"value must be a finite number, got {value!r:.60}")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 17:
        raise ValueError(f"digits must be a whole number from 1 to 17, got {digits!r:.60}")


def about(value: float, digits: int = 2) -> str:
    """A number rounded to `digits` significant figures, as prose writes it: 114,489 ->
    '110,000', 1,014 -> '1,000', 8.64 -> '8.6', 0.3456 -> '0.35', 3.8e25 -> '3.8e25'."""
    _check_number(value, digits)
    if value == 0:
        return "0"
    rounded = float(f"{value:.{digits}g}")
    if abs(rounded) >= 1e7:
        return fmt(rounded)
    if abs(rounded) >= 1000:
        return f"{rounded:,.0f}"
    return f"{rounded:g}"


def usd(value: float, digits: int = 2) -> str:
    """US dollars to `digits` significant figures: '$860,000', '$46 million', '$1.2 billion'."""
    _check_number(value, digits)
    sign = "-" if value < 0 else ""
    for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if abs(value) >= size:
            return f"{sign}${about(abs(value) / size, digits)} {word}"
    return f"{sign}${about(abs(value), digits)}"


def format_days(days: float) -> str:
    """'40 seconds', '3.2 hours', '12 days', '4.1 years', '8220 years': a duration in the
    unit a reader grasps (days up to two years)."""
    if isinstance(days, bool) or not isinstance(days, Real) or not 0 <= days < math.inf:
        raise ValueError(f"days must be a finite number >= 0, got {days!r:.60}")
    unit, size = next(((name, size) for name, size in reversed(_DURATION_UNITS)
                       if days >= (2 * size if name == "year" else size)), _DURATION_UNITS[0])
    number = fmt(days / size)
    return f"{number} {unit}" if number == "1" else f"{number} {unit}s"
