"""Benchmark: data-parallel training of TinyGPT with 1 and 2 gloo processes, and loopback
all-reduce bandwidth.

    .venv/bin/python benchmarks/bench_distributed.py

Prints the median training step with 1 process (the reference run) and with 2, their ratio
(the speedup), the split of a step into compute and gradient all-reduce, and the bandwidth
and latency of a gloo all-reduce between two processes on this machine, fitted to the ring
formula. Needs 2 usable CPU cores.
"""

import statistics
import time

from course_lib import data, data_parallel, runtime, scaleout


def main() -> None:
    print(runtime.setup())
    corpus = data.load_default_data()
    began = time.perf_counter()
    one = data_parallel.train_data_parallel(1, data=corpus)
    two = data_parallel.train_data_parallel(2, data=corpus, sweep_bytes=data_parallel.SWEEP_BYTES)
    print(f"(both runs, process start-up included: {time.perf_counter() - began:.1f} s)")
    for run in (one, two):
        print(f"{run.world_size} process(es): median step "
              f"{statistics.median(run.step_s) * 1e3:.1f} ms, compute (no_sync) "
              f"{run.compute_s * 1e3:.1f} ms, DDP synced {run.synced_s * 1e3:.1f} ms, "
              f"all-reduce of {run.gradient_bytes / 1e6:.2f} MB {run.allreduce_s * 1e3:.2f} ms")
    speedup = statistics.median(one.step_s) / statistics.median(two.step_s)
    print(f"speedup of 2 processes over 1 (reference): {speedup:.2f}x")
    fit = scaleout.fit_allreduce(two.sweep["bytes"], two.sweep["seconds"], 2)
    print(f"loopback gloo all-reduce: {fit['bandwidth'] / 1e9:.2f} GB/s one way, "
          f"{fit['latency_s'] * 1e6:.0f} us per ring step")
    predicted = scaleout.ring_allreduce_seconds(two.gradient_bytes, 2, fit["bandwidth"],
                                                fit["latency_s"])
    print(f"gradient all-reduce: measured {two.allreduce_s * 1e3:.2f} ms, ring formula "
          f"{predicted * 1e3:.2f} ms (ratio {two.allreduce_s / predicted:.2f})")


if __name__ == "__main__":  # workers may re-import this script (spawn start method)
    main()
