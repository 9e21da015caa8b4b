"""Summaries of repeated measurements: a median with its spread.

Arithmetic layer (standard library only). Timings on a shared machine are noisy: the
course reports the median of several runs with the lowest and highest beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MAX_REPEATS = 1000  # timed runs of one measurement: more would take hours, not add precision


@dataclass(frozen=True)
class Spread:
    """The median of repeated measurements, with the smallest and largest as the spread."""

    median: float
    low: float
    high: float
    repeats: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        if not samples:
            raise ValueError("need at least one measurement")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    def __str__(self) -> str:
        return f"{self.median:.3g} (range {self.low:.3g} to {self.high:.3g}, n={self.repeats})"
