"""Checks for exercises/07_hardware.ipynb: the roofline, arithmetic intensity, on-device speed."""

from __future__ import annotations

from course_lib import flops, references, roofline
from course_lib.checks import (
    BITS,
    MACS,
    Wrong,
    call,
    compare,
    require,
    task,
)
from course_lib.checks import summary as _summary

# Datasheets print a second, doubled peak "with sparsity" (NVIDIA's H100 SXM: 1,979 dense-
# equivalent TFLOP/s against 989 dense): the course uses dense peaks only.
SPARSE_PEAK = ("Twice the expected value: did you use the datasheet's peak \"with sparsity\" "
               "(for the H100 SXM, 1,979 TFLOP/s)? It counts work on 2:4-sparse matrices, half "
               "of whose weights are zero; ordinary dense work gets the dense peak, half of it "
               "(the one course_lib.references holds).")


@task("Task 1 · The ridge point of a chip")
def ridge_point(answer, chip: str) -> str:
    expected = roofline.chip_ridge_point(chip)
    compare(answer, expected, [
        (1 / expected, "Upside down: the ridge point is FLOP/s divided by bytes/s, in FLOP "
                       "per byte."),
        (expected / 8, BITS),
        (2 * expected, SPARSE_PEAK)])
    return "a step needs this many FLOPs per byte moved to keep the chip's arithmetic busy."


@task("Task 2 · Arithmetic intensity of a matmul")
def matmul_intensity(function) -> str:
    for m, k, n, width in ((64, 32, 16, 4), (1, 512, 256, 2), (128, 128, 128, 1)):
        flops = 2 * m * k * n
        values = m * k + k * n + m * n
        expected = flops / (width * values)
        got = call(function, m, k, n, width, name="matmul_intensity")
        compare(got, expected, [
            (expected / 2, MACS),
            (flops / (width * (m * k + k * n)), "You left out the output: the m x n result "
                                                "is written to memory too."),
            (expected / 8, BITS),
            (flops / values, "You counted values, not bytes: multiply by bytes_per_value."),
            (1 / expected, "Upside down: intensity is FLOPs per byte.")],
            name=f"matmul_intensity({m}, {k}, {n}, {width})")
    return "a matrix-vector product (m = 1) has the lowest intensity: that is decoding."


@task("Task 3 · Decoding on the roofline")
def decode_intensity(intensity, regime, batch_size: int, precision: str, chip: str) -> str:
    width = flops.bytes_per_weight(precision)
    expected = 2 * batch_size / width
    compare(intensity, expected, [
        (2 / width, "That is one sequence: the batch shares each weight read, "
                                "so FLOPs grow with the batch and bytes do not."),
        (expected * width / 4, "That is fp32: use the bytes of the precision "
                                           "asked for."),
        (expected / 8, BITS), (expected / 2, MACS)], name="decode_intensity")
    require(regime, "decode_regime")
    want = roofline.regime(expected, references.value(f"{chip}.peak_flops"),
                           references.value(f"{chip}.bandwidth"))
    answer = str(regime).strip().lower().replace(" ", "-").replace("_", "-")
    if answer not in (roofline.MEMORY_BOUND, roofline.COMPUTE_BOUND):
        raise Wrong(f"decode_regime: answer 'memory-bound' or 'compute-bound', not {regime!r}.")
    if answer != want:
        raise Wrong("decode_regime: compare your intensity with the chip's ridge point "
                    "(task 1): below it a step waits for memory, at or above it for "
                    "arithmetic.")
    return "the weights are read once per step whatever the batch: batching is the lever."


@task("Task 4 · Tokens per second on a phone")
def phone_tokens_per_second(answer, model: str, device: str, precision: str) -> str:
    width = flops.bytes_per_weight(precision)
    expected = roofline.decode_tokens_per_second_bound(
        references.value(f"{model}.params"), precision, references.value(f"{device}.bandwidth"))
    compare(answer, expected, [
        (expected / 8, BITS),
        (expected * width / 2, "That is for 16-bit weights: use the precision "
                                           "asked for."),
        (expected * width, "You counted one byte per weight: use the precision "
                                       "asked for.")])
    return "an upper bound: every token must read every weight once."


@task("Task 5 · When does batched decoding become compute-bound?")
def compute_bound_batch(function) -> str:
    # Made-up round inputs (weight bytes, FLOPs per token, KV bytes per token, context,
    # ridge point): two reach the ridge point at some batch size, one never does.
    # The first case tells a forgotten context apart from a forgotten KV cache.
    cases = ((1e9, 1e9, 1_000_000, 2, 200.0), (14e9, 14e9, 100_000, 100, 250.0),
             (2e9, 2.2e9, 65_536, 4000, 150.0), (1e9, 1e9, 16_384, 100, 300.0))
    for weights, per_token, kv_per_token, context, ridge in cases:
        kv = kv_per_token * context
        expected = None if per_token <= ridge * kv else ridge * weights / (per_token - ridge * kv)
        got = call(function, weights, per_token, kv_per_token, context, ridge,
                   name="compute_bound_batch")
        where = f"compute_bound_batch(context={context})"
        if expected is None:
            if got is not None:
                raise Wrong(f"{where}: here the KV reads alone keep decoding below the ridge "
                            "point at any batch size: return None.")
            continue
        if got is None:
            raise Wrong(f"{where}: returned None, but a large enough batch does reach the "
                        "ridge point here.")
        compare(got, expected, [
            (ridge * weights / per_token, "You left out the KV cache: each sequence also "
                                          "reads its own keys and values every step."),
            (ridge * weights / (per_token - ridge * kv_per_token), "Each sequence's cache "
             "holds every token of its context: K is kv_bytes_per_token x context.")],
                name=where)
    return "at long contexts the KV cache, not the weights, decides: no batch size helps."


CHECKS = (ridge_point, matmul_intensity, decode_intensity, phone_tokens_per_second,
          compute_bound_batch)


def summary() -> None:
    """Print the latest result of every task in this set, and the score."""
    print(_summary(__name__, [check.title for check in CHECKS]))
