"""Benchmark: this machine's roofline, and how close the tiny model's steps come to it.

Prints, measured in this one process:
- memory bandwidth from course_lib.probes' probe (torch copies) and from a plain NumPy
  copy of the same size (the reference), and their ratio (target: about 1);
- the roofline's decode bound against measured decode throughput of a model larger than the
  CPU's cache, at batch sizes 1 and 16 (the ratio roof / measured; notebook 07 explains it).

Run: .venv/bin/python benchmarks/bench_roofline.py
"""

import statistics
import time

import numpy as np
import torch

from course_lib import inference, probes, roofline, runtime
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig

MEGABYTES = 256
REPEATS = 7


def numpy_copy_bandwidth(megabytes: float, repeats: int) -> float:
    """Median bytes/s of np.copyto between two float32 buffers (2 x size moved per copy)."""
    source = np.random.default_rng(0).random(int(megabytes * 1e6) // 4, dtype=np.float32)
    destination = np.empty_like(source)
    np.copyto(destination, source)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(destination, source)
        rates.append(2 * source.nbytes / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    print(runtime.setup())
    probe = probes.measure_memory_bandwidth(MEGABYTES, REPEATS, device="cpu")
    reference = numpy_copy_bandwidth(MEGABYTES, REPEATS)
    print(f"bandwidth, course probe (torch copy): {probe.bytes_per_second / 1e9:.2f} GB/s")
    print(f"bandwidth, reference (numpy copyto):  {reference / 1e9:.2f} GB/s")
    print(f"ratio probe / reference: {probe.bytes_per_second / reference:.2f}")

    peak = probes.measure_matmul_flops().median_flops_per_s
    config = ModelConfig(vocab_size=96, n_layer=4, n_head=8, n_embd=512, block_size=128)
    torch.manual_seed(0)
    model = TinyGPT(config)
    shape = roofline.tiny_model_shape(config, model.num_params()["total"], "wider tiny model")
    for timing in inference.sweep_batch_sizes(model, (1, 16), prompt_tokens=8, new_tokens=16,
                                              repeats=3):
        step = roofline.decode_step(shape, timing.batch_size, 16, precision="fp32")
        bound = step.tokens_per_second_bound(peak, probe.bytes_per_second)
        measured = timing.batch_size / timing.time_per_output_token_s.median
        print(f"decode b={timing.batch_size:>2}: measured {measured:8.0f} tokens/s, roofline "
              f"bound {bound:8.0f} tokens/s, roof / measured {bound / measured:.1f}")


if __name__ == "__main__":
    main()
