"""Probes of this machine: what it can really do, measured rather than read off a datasheet.

Sections:
- Compute: sustained matrix-multiply FLOP/s, the "peak" that model FLOP
  utilisation (MFU, course_lib.utilisation) is measured against.
- Memory: sustained bandwidth, the other roof of the roofline.

Torch layer.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from course_lib import runtime, validate
from course_lib.stats import MAX_REPEATS

# --- Compute: sustained matmul FLOP/s ----------------------------------------------------------

DEFAULT_MATMUL_SIZES = (256, 512, 1024)
# Limits that keep a typo from starting hours of work or asking for terabytes.
MAX_MATRIX_SIZE = 16_384  # three float32 matrices of this size take 3 GB
MAX_ROUND_SECONDS = 60.0
MAX_BUFFER_MEGABYTES = 16_384


@dataclass(frozen=True)
class MatmulMeasurement:
    """Sustained float32 matmul throughput at several square sizes, and their median."""

    sizes: tuple[int, ...]
    flops_per_s: tuple[float, ...]  # one per size: best of the timed rounds
    threads: int

    @property
    def median_flops_per_s(self) -> float:
        """The figure the course calls this machine's measured peak."""
        return statistics.median(self.flops_per_s)


@validate.checked
def measure_matmul_flops(
    sizes: tuple[int, ...] | None = None, min_seconds: float | None = None,
    rounds: int | None = None, dtype: torch.dtype = torch.float32,
) -> MatmulMeasurement:
    """Time n x n @ n x n matmuls (2 n^3 FLOPs each) for each n in `sizes`.

    Defaults: DEFAULT_MATMUL_SIZES, 0.2 s rounds, 3 rounds; fast mode (runtime.fast_mode)
    drops the largest size and shortens the rounds, for notebooks run as tests.

    For each size: one warm-up, then `rounds` rounds of back-to-back matmuls, each
    lasting at least `min_seconds`; the best round counts (the least disturbed by
    other programs). The median over sizes is a sustained peak: small sizes are
    held back by overheads, large ones by memory traffic, so the median is a fair
    "what this CPU does on a good matmul" figure. Uses torch's current thread count.
    """
    if sizes is None:
        sizes = runtime.pick(DEFAULT_MATMUL_SIZES, DEFAULT_MATMUL_SIZES[:-1])
    min_seconds = runtime.pick(0.2, 0.05) if min_seconds is None else min_seconds
    rounds = runtime.pick(3, 2) if rounds is None else rounds
    validate.instance("sizes", sizes, (tuple, list))
    if not sizes:
        raise ValueError("sizes must name at least one matrix size")
    for n in sizes:
        validate.whole("each of sizes", n, highest=MAX_MATRIX_SIZE)
    validate.positive("min_seconds", min_seconds, upper=MAX_ROUND_SECONDS)
    validate.whole("rounds", rounds, highest=MAX_REPEATS)
    generator = torch.Generator().manual_seed(0)
    results = tuple(_best_matmul_rate(n, dtype, generator, rounds, min_seconds) for n in sizes)
    return MatmulMeasurement(tuple(sizes), results, torch.get_num_threads())


def _best_matmul_rate(n: int, dtype: torch.dtype, generator: torch.Generator, rounds: int,
                      min_seconds: float) -> float:
    """FLOP/s of the best of `rounds` rounds of n x n matmuls, each at least min_seconds."""
    a = torch.randn(n, n, generator=generator, dtype=dtype)
    b = torch.randn(n, n, generator=generator, dtype=dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.matmul(a, b, out=out)  # warm-up: first call pays for allocation and dispatch
    best = 0.0
    for _ in range(rounds):
        count, began = 0, time.perf_counter()
        while True:
            torch.matmul(a, b, out=out)
            count += 1
            elapsed = time.perf_counter() - began
            if elapsed >= min_seconds:
                break
        best = max(best, 2 * n**3 * count / elapsed)
    return best


# --- Memory: sustained bandwidth ---------------------------------------------------------------

@dataclass(frozen=True)
class BandwidthMeasurement:
    """Sustained memory bandwidth from large copies: the median and every repeat."""

    bytes_per_second: float  # median over repeats
    samples: tuple[float, ...]  # bytes/s of each repeat
    buffer_bytes: int  # size of the source buffer (the destination is the same size)
    device: str

    def spread(self) -> tuple[float, float]:
        """(lowest, highest) repeat, bytes/s."""
        return min(self.samples), max(self.samples)


@validate.checked
def measure_memory_bandwidth(megabytes: float = 256, repeats: int = 7,
                             device: str | torch.device = "cpu") -> BandwidthMeasurement:
    """Time `repeats` copies of a `megabytes` buffer into another and report the median rate.

    A copy reads the source once and writes the destination once, so each repeat moves
    2 x buffer bytes (the STREAM benchmark's convention; a CPU that reads a cache line
    before writing it moves a little more, so this slightly understates the hardware).
    The buffer must be much larger than the last-level cache (tens of MB on current CPUs)
    or the copy measures the cache instead of main memory. device="cuda" measures a GPU's
    memory (the clock waits for the GPU to finish each copy).
    """
    validate.positive("megabytes", megabytes, upper=MAX_BUFFER_MEGABYTES)
    validate.whole("repeats", repeats, highest=MAX_REPEATS)
    where = runtime.as_device("device", device)
    count = max(1, int(megabytes * 1e6) // 4)  # float32 values
    source = torch.ones(count, device=where)  # not torch.rand: leave the random state alone
    destination = torch.empty_like(source)
    destination.copy_(source)  # warm-up: touches every page once
    moved = 2 * source.numel() * source.element_size()
    samples = []
    for _ in range(repeats):
        runtime.synchronize(where)
        start = time.perf_counter()
        destination.copy_(source)
        runtime.synchronize(where)
        samples.append(moved / (time.perf_counter() - start))
    return BandwidthMeasurement(statistics.median(samples), tuple(samples),
                                source.numel() * source.element_size(), str(where))
