"""Numbers as a reader takes them in: one formatter for prose, readouts and tick labels.

Foundation layer (standard library only).
"""

from __future__ import annotations


def fmt(value: float, unit: str = "") -> str:
    """A number as a reader takes it in: '0.38', '4096', '1.5e4' (not 1.5e+04), '3e23 FLOP'."""
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
