"""Model FLOP utilisation (MFU) and its inverse: how long a job takes on an accelerator.

Arithmetic layer (no torch): the same two functions serve a measurement on this machine
(course_lib.probes gives the peak) and an estimate for a datasheet chip.
"""

from __future__ import annotations

import math

from course_lib import validate


def model_flop_utilisation(achieved_flops_per_s: float, peak_flops_per_s: float) -> float:
    """Model FLOP utilisation: useful model FLOPs per second / the machine's peak (0 to ~1)."""
    share = (validate.positive("achieved_flops_per_s", achieved_flops_per_s, allow_zero=True)
             / validate.positive("peak_flops_per_s", peak_flops_per_s))
    return validate.result("utilisation", share, achieved_flops_per_s=achieved_flops_per_s,
                           peak_flops_per_s=peak_flops_per_s)


def accelerator_seconds(flops: float, peak_flops_per_s: float, utilisation: float) -> float:
    """Seconds one accelerator needs for `flops` FLOPs at `utilisation` of its peak (the
    inverse of model_flop_utilisation): flops / (peak x utilisation)."""
    rate = (validate.positive("peak_flops_per_s", peak_flops_per_s)
            * validate.positive("utilisation", utilisation, upper=1))
    seconds = validate.positive("flops", flops, allow_zero=True) / rate if rate else math.inf
    return validate.result("seconds", seconds, flops=flops, peak_flops_per_s=peak_flops_per_s,
                           utilisation=utilisation)
