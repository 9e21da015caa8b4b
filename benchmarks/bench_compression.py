"""What quantization and pruning buy in bytes and in time, measured in one process.

    .venv/bin/python benchmarks/bench_compression.py [--repeats 7] [--threads N]

Each variant of the course's model (4 layers, 4 heads, 128 wide, context 64) is timed
against the float32 original in the same process, alternating original and variant in
every repeat so that a change in machine load hits both. Two workloads:

- decode: greedy generation of 48 tokens after an 8-token prompt, batch 1, KV cache on
  (course_lib.inference.time_request's median time per output token): what one user
  waits for, dominated by per-layer overheads at this size;
- prefill: one forward pass over 32 sequences of 64 tokens, the matmul-heavy case.

Rows: linear-layer weight bytes of int8 and 4-bit against float32; int8 against
float32 time; 50% unstructured-pruned against dense time (expect about 1: the zeros
are multiplied like any other number); 50% structured-pruned (half the MLP neurons
removed) against dense time (expect below 1 for prefill).

Weights are random: neither the bytes nor the arithmetic depends on their values.
"""

from __future__ import annotations

import argparse
import time

import torch

from course_lib import compression, inference, prune, quantize, runtime
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig
from course_lib.stats import Spread

VOCAB = 96  # about the default corpus's character count; the ratios barely depend on it


@torch.no_grad()
def prefill_seconds(model: TinyGPT, idx: torch.Tensor) -> float:
    start = time.perf_counter()
    model(idx)
    return time.perf_counter() - start


def decode_seconds(model: TinyGPT) -> float:
    timing = inference.time_request(model, batch_size=1, prompt_tokens=8, new_tokens=48,
                                    repeats=1)
    return timing.time_per_output_token_s.median


def ratio(reference: TinyGPT, variant: TinyGPT, measure, repeats: int) -> Spread:
    """Median of variant/reference time over interleaved repeats, with the smallest and largest."""
    measure(reference), measure(variant)  # warm-up
    ratios = []
    for _ in range(repeats):
        base = measure(reference)
        ratios.append(measure(variant) / base)
    return Spread.of(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    threads = runtime.configure_threads(args.threads)
    torch.manual_seed(0)
    model = TinyGPT(ModelConfig(vocab_size=VOCAB)).eval()
    idx = torch.randint(VOCAB, (32, 64), generator=torch.Generator().manual_seed(1))
    print(f"PyTorch {torch.__version__}, {threads} threads, {args.repeats} repeats\n")

    quantized = {bits: quantize.quantize(model, bits) for bits in (8, 4)}
    fp32 = compression.linear_weight_bytes(model)
    print(f"{'linear-layer weight bytes':<44} {'bytes':>10} {'vs float32':>11}")
    print(f"{'float32':<44} {fp32:>10,} {1:>10.3f}x")
    for bits, variant in quantized.items():
        size = compression.linear_weight_bytes(variant)
        print(f"{f'int{bits} + per-channel scales':<44} {size:>10,} {size / fp32:>10.3f}x")

    variants = {
        "int8 (dequantized in forward) vs float32": quantized[8],
        "4-bit (dequantized in forward) vs float32": quantized[4],
        "50% unstructured-pruned vs dense": prune.prune_unstructured(model, 0.5),
        "50% MLP neurons removed vs dense": prune.prune_mlp_neurons(model, 0.5),
    }
    print(f"\n{'time ratio (median, range)':<44} {'decode, batch 1':>22} {'prefill, 32 x 64':>22}")
    for label, variant in variants.items():
        cells = []
        for measure in (decode_seconds, lambda m: prefill_seconds(m, idx)):
            spread = ratio(model, variant, measure, args.repeats)
            cells.append(f"{spread.median:5.2f}x ({spread.low:.2f}-{spread.high:.2f})")
        print(f"{label:<44} {cells[0]:>22} {cells[1]:>22}")
    flops_ratio = (compression.forward_flops_as_built(variants["50% MLP neurons removed vs dense"],
                                                      64)
                   / compression.forward_flops_as_built(model, 64))
    print(f"\nFLOPs per token, 50% MLP neurons removed vs dense: {flops_ratio:.3f}x "
          f"(the unstructured-pruned model executes 1.000x: the zeros are multiplied too)")


if __name__ == "__main__":
    main()
