"""Checks for exercises/06_making_inference_cheaper.ipynb: bytes, int8, pruning, distillation.

Self-contained: the checks quantize and prune with plain torch of their own, not with
course_lib.quantize or course_lib.prune, and test the learner's functions on fresh random
tensors.
"""

from __future__ import annotations

import torch

from course_lib import references, roofline
from course_lib.checks import (
    BITS,
    NO_BACKWARD,
    PER_DAY,
    Wrong,
    call,
    compare,
    task,
)
from course_lib.checks import summary as _summary


@task("Task 1 · Bits and bytes")
def weight_bytes(answer, model: str, precision: str) -> str:
    n = references.value(f"{model}.params")
    expected = roofline.weight_bytes(n, precision)
    compare(answer, expected, [
        (expected * 8, BITS), (n, "That is 1 byte per weight (int8): use the precision asked "
                                  "for."),
        (2 * n, "That is 16-bit weights: use the precision asked for."),
        (4 * n, "That is 32-bit (fp32) weights, 4 bytes each: use the precision asked for.")])
    return "fewer bytes per weight: less memory, and less to read for every token."


def _weights(seed: int, rows: int = 6, columns: int = 10) -> torch.Tensor:
    """Random weights whose rows differ in scale, so per-tensor and per-row scales differ."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, columns, generator=generator)
    return w * torch.logspace(-2, 1, rows)[:, None]


def _as_column(scale, rows: int, columns: int) -> torch.Tensor:
    scale = torch.as_tensor(scale, dtype=torch.float32)
    if scale.numel() == 1:
        raise Wrong("one scale for the whole tensor (per-tensor): use one scale per output "
                    "channel, i.e. per row of the (out, in) weight.")
    if scale.numel() == columns and columns != rows:
        raise Wrong("your scales follow the columns (input channels): the output channels "
                    "are the rows of the (out, in) weight.")
    if scale.numel() != rows:
        raise Wrong(f"expected one scale per row ({rows}), got {scale.numel()} values.")
    return scale.reshape(rows, 1)


@task("Task 2 · A symmetric per-channel int8 quantizer")
def int8_quantizer(quantize, dequantize) -> str:
    for seed in (11, 12):
        w = _weights(seed)
        result = call(quantize, w.clone(), name="quantize_int8")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise Wrong("quantize_int8 must return a pair (q, scale).")
        q, scale = result
        if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
            raise Wrong("q must be a torch.int8 tensor: that is what makes it 1 byte per weight "
                        f"(got {getattr(q, 'dtype', type(q).__name__)}).")
        if q.shape != w.shape:
            raise Wrong(f"q must have the weight's shape {tuple(w.shape)}, got {tuple(q.shape)}.")
        if int(q.min()) < -127:
            raise Wrong("q uses -128: a symmetric quantizer uses -127..127, so that +x and -x "
                        "round to opposite codes.")
        scale = _as_column(scale, *w.shape)
        want = w.abs().amax(dim=1, keepdim=True) / 127
        if torch.allclose(scale, w.abs().amax(dim=1, keepdim=True) / 255, rtol=1e-3):
            raise Wrong("dividing by 255 is for unsigned codes 0..255: a symmetric int8 code "
                        "runs from -127 to 127.")
        if torch.allclose(scale, (w.amax(1, keepdim=True) - w.amin(1, keepdim=True)) / 255,
                          rtol=1e-3):
            raise Wrong("that is an asymmetric (min-max) scale: the task asks for a symmetric "
                        "one, set by the largest absolute value of each row.")
        if not torch.allclose(scale, want, rtol=1e-3):
            raise Wrong("scale: each row's scale must map its largest absolute weight to 127.")
        if torch.equal(q, torch.trunc(w / want).to(torch.int8)) and not torch.equal(
                q, torch.round(w / want).to(torch.int8)):
            raise Wrong("q is truncated toward zero (what .to(torch.int8) does alone): round "
                        "to the nearest code first, with torch.round.")
        if ((q.float() - w / want).abs() > 0.5 + 1e-4).any():
            raise Wrong("q: each code must be the weight divided by its row's scale, rounded "
                        "to the nearest integer.")
        restored = call(dequantize, q.clone(), scale.clone(), name="dequantize")
        if not isinstance(restored, torch.Tensor) or not restored.is_floating_point():
            raise Wrong("dequantize must return a floating-point tensor.")
        if restored.shape != w.shape or not torch.allclose(restored, q.float() * scale,
                                                          rtol=1e-5, atol=1e-7):
            raise Wrong("dequantize: multiply each code by its row's scale.")
    return "every weight is now within half a step (scale / 2) of its original value."


@task("Task 3 · Bytes of an int8 layer, scales included")
def int8_layer_bytes(function) -> str:
    for rows, columns in ((6, 10), (256, 64), (1, 3)):
        expected = rows * columns + 4 * rows
        got = call(function, rows, columns, name="int8_layer_bytes")
        compare(got, expected, [
            (rows * columns, "You forgot the scales: one fp32 number (4 bytes) per output "
                             "channel."),
            (expected * 8, BITS),
            (rows * columns + rows, "Each scale is fp32, 4 bytes."),
            (rows * columns + 4 * columns, "One scale per OUTPUT channel (row), not per "
                                           "column.")],
                name=f"int8_layer_bytes({rows}, {columns})")
    return "for large layers the scales are a rounding error: close to 4x smaller than fp32."


@task("Task 4 · Magnitude pruning")
def prune_smallest(function) -> str:
    for seed, fraction in ((21, 0.5), (22, 0.3), (23, 0.9)):
        w = torch.randn(8, 12, generator=torch.Generator().manual_seed(seed))
        pruned = call(function, w.clone(), fraction, name="prune_smallest")
        if not isinstance(pruned, torch.Tensor) or pruned.shape != w.shape:
            raise Wrong("prune_smallest must return a tensor of the weight's shape.")
        zeroed = pruned == 0
        count = round(fraction * w.numel())
        if abs(int(zeroed.sum()) - count) > 1:
            raise Wrong(f"with fraction={fraction} about {fraction:.0%} of the weights must be "
                        f"zero; {int(zeroed.sum())} of {w.numel()} are.")
        if not torch.equal(pruned[~zeroed], w[~zeroed]):
            raise Wrong("the weights you keep must keep their values.")
        if zeroed.any() and (~zeroed).any():
            if w[zeroed].abs().min() >= w[~zeroed].abs().max():
                raise Wrong("you removed the LARGEST weights: prune the smallest magnitudes.")
            if w[zeroed].max() <= w[~zeroed].min():
                raise Wrong("you removed the most negative weights: rank by magnitude "
                            "(absolute value), not by signed value.")
            if w[zeroed].abs().max() > w[~zeroed].abs().min():
                raise Wrong("some weights you kept are smaller in magnitude than some you "
                            "removed.")
    return "the smallest weights go first: they change the outputs least."


@task("Task 5 · When does distillation pay for itself?")
def payback_days(answer, teacher: str, student: str, tokens_per_day: float) -> str:
    n_t, n_s = references.value(f"{teacher}.params"), references.value(f"{student}.params")
    d = references.value(f"{student}.training_tokens")
    saved = 2 * (n_t - n_s)
    expected = (2 * n_t * d + 6 * n_s * d) / saved / tokens_per_day
    compare(answer, expected, [
        (6 * n_s * d / saved / tokens_per_day, "You left out the teacher: every distillation "
         "token also runs the teacher's forward pass (2 N_teacher FLOPs)."),
        ((6 * n_t * d + 6 * n_s * d) / saved / tokens_per_day, "The teacher only runs "
         "forward during distillation: 2 N_teacher per token, not 6."),
        ((2 * n_t * d + 2 * n_s * d) / saved / tokens_per_day, NO_BACKWARD),
        ((2 * n_t * d + 6 * n_s * d) / (2 * n_t) / tokens_per_day, "The saving per token is "
         "the teacher's cost minus the student's: the student still costs 2 N_student."),
        (expected * tokens_per_day, "That is tokens: divide by the tokens served per day. "
         + PER_DAY)])
    return "after that, every token served by the student is pure saving."


CHECKS = (weight_bytes, int8_quantizer, int8_layer_bytes, prune_smallest, payback_days)


def summary() -> None:
    """Print the latest result of every task in this set, and the score."""
    print(_summary(__name__, [check.title for check in CHECKS]))
