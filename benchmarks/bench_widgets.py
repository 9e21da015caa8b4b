"""Median time of one widget update (compute + redraw to PNG) for each course explorer.

    .venv/bin/python benchmarks/bench_py

Target: <= 100 ms per update, what a slider drag must feel like. Each update
moves one slider between two values, so the timing includes the pure
functions, the Matplotlib redraw and the PNG encoding. The reference is the
same machine redrawing a one-line figure of the same size, in this process:
the ratio says how much of the time is the explorer's own work.
"""

from __future__ import annotations

import statistics
import time

from course_lib import references, runtime
from course_lib.explorers.costs import ComparisonExplorer, LifecycleExplorer
from course_lib.explorers.scaling import ScalingExplorer, SizingExplorer
from course_lib.explorers.serving import ServingExplorer
from course_lib.figures.base import new_figure, to_png

REPEATS = 15


def median_seconds(step, repeats: int = REPEATS) -> float:
    step()  # warm-up: fonts, caches
    times = []
    for i in range(repeats):
        began = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def reference_seconds() -> float:
    fig, axes = new_figure()
    axes[0].plot([1, 2, 3], [1, 4, 9])
    return median_seconds(lambda i=0: to_png(fig))


def cases():
    """(name, explorer, control, two values to alternate between)."""
    yield ("scaling explorer (parameters)", ScalingExplorer(), "params",
           (1e9, references.value("llama3_70b.params")))
    yield ("lifecycle explorer (requests/day)", LifecycleExplorer(), "requests_per_day",
           (1e8, 3e9))
    yield "10x comparison (value of B)", ComparisonExplorer(), "extra_value", (1e4, 1e6)
    yield ("inference-aware sizing (demand)", SizingExplorer(), "inference_tokens",
           (1e11, 1e15))
    yield "serving cost (prompt tokens)", ServingExplorer(), "prompt_tokens", (100, 2000)


def main() -> None:
    runtime.setup()
    reference = reference_seconds()
    print(f"reference (one-line figure to PNG): {reference * 1000:.1f} ms")
    print(f"{'widget update':<40} {'median':>9} {'x reference':>12}  target <= 100 ms")
    for name, explorer, control, values in cases():
        def step(i=0, explorer=explorer, control=control, values=values):
            explorer.controls[control].value = values[i % 2]

        seconds = median_seconds(step)
        verdict = "ok" if seconds <= 0.1 else "SLOW"
        print(f"{name:<40} {seconds * 1000:>7.1f} ms {seconds / reference:>11.1f}x  {verdict}")


if __name__ == "__main__":
    main()
