"""Exercise sets 06 and 07: every mistake a check names has a test, and none passes.

One wrong answer per named mistake (each `raise Wrong(...)` and each entry of a `compare`
mistake list in course_lib/checks/ex06.py and ex07.py): the check must say "try again" and
name that mistake. The last tests read the two modules' source and fail when a named
mistake has no wrong answer here, so a new hint cannot be added untested.
"""

from __future__ import annotations

import ast
import inspect

import pytest
import torch

from course_lib import checks, references, roofline
from course_lib.checks import ex06, ex07

v = references.value
N8 = v("llama3_8b.params")
N1 = v("llama32_1b.params")
D1 = v("llama32_1b.training_tokens")
TOKENS_PER_DAY = 1e11
RIDGE = v("h100_sxm.peak_flops") / v("h100_sxm.bandwidth")
PHONE_BOUND = roofline.decode_tokens_per_second_bound(N8, "int4", v("snapdragon_8_gen3.bandwidth"))


# --- wrong learner code for ex06 -------------------------------------------------------------


def _scale(w: torch.Tensor) -> torch.Tensor:
    return w.abs().amax(dim=1, keepdim=True) / 127


def _codes(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.round(w / scale).to(torch.int8)


def _quantizer(make):
    """A quantize_int8 built from make(w) -> (q, scale), with a correct dequantize."""
    return make, lambda q, s: q.float() * s


def _with_minus_128(w):
    q = _codes(w, _scale(w))
    q[0, 0] = -128
    return q, _scale(w)


def _min_max(w):
    scale = (w.amax(1, keepdim=True) - w.amin(1, keepdim=True)) / 255
    return _codes(w, scale), scale


def _off_by_one_code(w):
    scale = _scale(w)
    return (torch.round(w / scale) // 2).to(torch.int8), scale


def _payback(extra_per_token_flops, saved_per_token_flops, per_day=TOKENS_PER_DAY):
    return extra_per_token_flops * D1 / saved_per_token_flops / per_day


def _zero_where(w, mask):
    out = w.clone()
    out[mask] = 0
    return out


def _k_smallest(values: torch.Tensor, fraction: float) -> torch.Tensor:
    count = round(fraction * values.numel())
    mask = torch.zeros(values.numel(), dtype=torch.bool)
    mask[values.flatten().argsort()[:count]] = True
    return mask.reshape(values.shape)


def _prune_mixed(w, fraction):
    """The right count zeroed, but in index order, whatever the magnitudes."""
    count = round(fraction * w.numel())
    mask = torch.zeros(w.numel(), dtype=torch.bool)
    mask[:count] = True
    return _zero_where(w, mask.reshape(w.shape))


EX06 = [
    ("bits", lambda: ex06.weight_bytes(4 * N8, "llama3_8b", "int4"), "bits"),
    ("int4 stored as one byte", lambda: ex06.weight_bytes(N8, "llama3_8b", "int4"),
     "1 byte per weight"),
    ("16-bit", lambda: ex06.weight_bytes(2 * N8, "llama3_8b", "int4"), "16-bit"),
    ("fp32", lambda: ex06.weight_bytes(4 * N8, "llama3_8b", "int8"), "32-bit"),
    ("not a pair", lambda: ex06.int8_quantizer(lambda w: w, lambda q, s: q), "a pair"),
    ("codes not int8", lambda: ex06.int8_quantizer(
        *_quantizer(lambda w: (torch.round(w / _scale(w)), _scale(w)))), "torch.int8"),
    ("codes flattened", lambda: ex06.int8_quantizer(
        *_quantizer(lambda w: (_codes(w, _scale(w)).flatten(), _scale(w)))), "shape"),
    ("-128", lambda: ex06.int8_quantizer(*_quantizer(_with_minus_128)), "-128"),
    ("per tensor", lambda: ex06.int8_quantizer(*_quantizer(
        lambda w: (_codes(w, w.abs().max() / 127), w.abs().max() / 127))), "per-tensor"),
    ("per column", lambda: ex06.int8_quantizer(*_quantizer(
        lambda w: (_codes(w, _scale(w)), w.abs().amax(0) / 127))), "columns"),
    ("scale count", lambda: ex06.int8_quantizer(*_quantizer(
        lambda w: (_codes(w, _scale(w)), torch.ones(3)))), "one scale per row"),
    ("unsigned 255", lambda: ex06.int8_quantizer(*_quantizer(
        lambda w: (_codes(w, _scale(w)), w.abs().amax(1, keepdim=True) / 255))), "255"),
    ("asymmetric", lambda: ex06.int8_quantizer(*_quantizer(_min_max)), "asymmetric"),
    ("scale not 127", lambda: ex06.int8_quantizer(*_quantizer(
        lambda w: (_codes(w, _scale(w)), w.abs().amax(1, keepdim=True) / 100))),
     "largest absolute weight to 127"),
    ("truncated", lambda: ex06.int8_quantizer(*_quantizer(
        lambda w: (torch.trunc(w / _scale(w)).to(torch.int8), _scale(w)))), "truncated"),
    ("codes wrong", lambda: ex06.int8_quantizer(*_quantizer(_off_by_one_code)),
     "rounded to the nearest integer"),
    ("dequantize returns codes", lambda: ex06.int8_quantizer(
        lambda w: (_codes(w, _scale(w)), _scale(w)), lambda q, s: q), "floating-point"),
    ("dequantize without scales", lambda: ex06.int8_quantizer(
        lambda w: (_codes(w, _scale(w)), _scale(w)), lambda q, s: q.float()),
     "multiply each code"),
    ("no scales", lambda: ex06.int8_layer_bytes(lambda o, i: o * i), "forgot the scales"),
    ("layer bits", lambda: ex06.int8_layer_bytes(lambda o, i: 8 * (o * i + 4 * o)), "bits"),
    ("one-byte scales", lambda: ex06.int8_layer_bytes(lambda o, i: o * i + o), "fp32, 4 bytes"),
    ("scales per column", lambda: ex06.int8_layer_bytes(lambda o, i: o * i + 4 * i),
     "OUTPUT channel"),
    ("pruned nothing", lambda: ex06.prune_smallest(lambda w, f: w.clone()), "must be zero"),
    ("kept values changed", lambda: ex06.prune_smallest(
        lambda w, f: 2 * _zero_where(w, _k_smallest(w.abs(), f))), "keep their values"),
    ("largest pruned", lambda: ex06.prune_smallest(
        lambda w, f: _zero_where(w, _k_smallest(-w.abs(), f))), "LARGEST"),
    ("signed values", lambda: ex06.prune_smallest(
        lambda w, f: _zero_where(w, _k_smallest(w, f))), "most negative"),
    ("mixed magnitudes", lambda: ex06.prune_smallest(_prune_mixed), "smaller in magnitude"),
    ("pruned flattened", lambda: ex06.prune_smallest(lambda w, f: w.flatten()),
     "weight's shape"),
    ("teacher left out", lambda: ex06.payback_days(
        _payback(6 * N1, 2 * (N8 - N1)), "llama3_8b", "llama32_1b", TOKENS_PER_DAY),
     "left out the teacher"),
    ("teacher trained", lambda: ex06.payback_days(
        _payback(6 * N8 + 6 * N1, 2 * (N8 - N1)), "llama3_8b", "llama32_1b", TOKENS_PER_DAY),
     "only runs forward"),
    ("no backward", lambda: ex06.payback_days(
        _payback(2 * N8 + 2 * N1, 2 * (N8 - N1)), "llama3_8b", "llama32_1b", TOKENS_PER_DAY),
     "backward"),
    ("saving is the teacher's whole cost", lambda: ex06.payback_days(
        _payback(2 * N8 + 6 * N1, 2 * N8), "llama3_8b", "llama32_1b", TOKENS_PER_DAY),
     "minus the student's"),
    ("tokens, not days", lambda: ex06.payback_days(
        _payback(2 * N8 + 6 * N1, 2 * (N8 - N1), per_day=1), "llama3_8b", "llama32_1b",
        TOKENS_PER_DAY), "per-day"),
]


# --- wrong learner answers for ex07 ----------------------------------------------------------


def _bound_batch(kv_of):
    """A compute_bound_batch whose KV bytes per sequence are kv_of(kv_per_token, context)."""
    def batch(w, f, kv, ctx, ridge):
        k = kv_of(kv, ctx)
        return None if f <= ridge * k else ridge * w / (f - ridge * k)
    return batch


def _intensity(flops, moved):
    return lambda m, k, n, b: flops(m, k, n) / moved(m, k, n, b)


EX07 = [
    ("upside down", lambda: ex07.ridge_point(1 / RIDGE, "h100_sxm"), "Upside down"),
    ("ridge bits", lambda: ex07.ridge_point(RIDGE / 8, "h100_sxm"), "bits"),
    ("sparse peak", lambda: ex07.ridge_point(2 * RIDGE, "h100_sxm"), "with sparsity"),
    ("MACs", lambda: ex07.matmul_intensity(_intensity(
        lambda m, k, n: m * k * n, lambda m, k, n, b: b * (m * k + k * n + m * n))),
     "multiply-adds"),
    ("output forgotten", lambda: ex07.matmul_intensity(_intensity(
        lambda m, k, n: 2 * m * k * n, lambda m, k, n, b: b * (m * k + k * n))), "output"),
    ("matmul bits", lambda: ex07.matmul_intensity(_intensity(
        lambda m, k, n: 2 * m * k * n, lambda m, k, n, b: 8 * b * (m * k + k * n + m * n))),
     "bits"),
    ("values, not bytes", lambda: ex07.matmul_intensity(_intensity(
        lambda m, k, n: 2 * m * k * n, lambda m, k, n, b: m * k + k * n + m * n)),
     "values, not bytes"),
    ("intensity upside down", lambda: ex07.matmul_intensity(
        lambda m, k, n, b: b * (m * k + k * n + m * n) / (2 * m * k * n)), "Upside down"),
    ("batch forgotten", lambda: ex07.decode_intensity(1.0, "memory-bound", 16, "bf16",
                                                      "h100_sxm"), "one sequence"),
    ("fp32 weights", lambda: ex07.decode_intensity(8.0, "memory-bound", 16, "bf16",
                                                   "h100_sxm"), "fp32"),
    ("decode bits", lambda: ex07.decode_intensity(2.0, "memory-bound", 16, "bf16", "h100_sxm"),
     "bits"),
    ("decode MACs", lambda: ex07.decode_intensity(8.0, "memory-bound", 16, "bf16",
                                                  "h100_sxm"), "multiply-adds"),
    ("regime not a regime", lambda: ex07.decode_intensity(16.0, "slow", 16, "bf16",
                                                          "h100_sxm"), "not 'slow'"),
    ("regime wrong", lambda: ex07.decode_intensity(16.0, "compute-bound", 16, "bf16",
                                                   "h100_sxm"), "ridge point"),
    ("phone bits", lambda: ex07.phone_tokens_per_second(PHONE_BOUND / 8, "llama3_8b",
                                                        "snapdragon_8_gen3", "int4"), "bits"),
    ("phone 16-bit", lambda: ex07.phone_tokens_per_second(PHONE_BOUND / 4, "llama3_8b",
                                                          "snapdragon_8_gen3", "int4"),
     "16-bit"),
    ("phone one byte", lambda: ex07.phone_tokens_per_second(PHONE_BOUND / 2, "llama3_8b",
                                                            "snapdragon_8_gen3", "int4"),
     "one byte per weight"),
    ("KV left out", lambda: ex07.compute_bound_batch(_bound_batch(lambda kv, ctx: 0)),
     "left out the KV cache"),
    ("context forgotten", lambda: ex07.compute_bound_batch(_bound_batch(lambda kv, ctx: kv)),
     "x context"),
    ("a batch where none exists", lambda: ex07.compute_bound_batch(
        lambda w, f, kv, ctx, r: abs(r * w / (f - r * kv * ctx))), "return None"),
    ("None where a batch exists", lambda: ex07.compute_bound_batch(
        lambda w, f, kv, ctx, r: None), "returned None"),
]

MISTAKES = [(f"06 {name}", run, words) for name, run, words in EX06] + \
           [(f"07 {name}", run, words) for name, run, words in EX07]


@pytest.mark.parametrize("run, words", [(run, words) for _, run, words in MISTAKES],
                         ids=[name for name, _, _ in MISTAKES])
def test_a_named_mistake_is_named_and_never_correct(run, words):
    feedback = run()
    assert feedback.status == checks.WRONG, feedback
    assert words in feedback.message, feedback


def _named_mistakes(module) -> list[str]:
    """The start of every message a check module names a mistake with: the first argument
    of each Wrong(...) and the second element of each (value, message) in a compare list."""
    tree = ast.parse(inspect.getsource(module))
    messages = []

    def text(node) -> str:
        if isinstance(node, ast.Name):
            return getattr(module, node.id)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.JoinedStr):  # an f-string: its fields become {}
            return "".join(part.value if isinstance(part, ast.Constant) else "{}"
                           for part in node.values)
        if isinstance(node, ast.BinOp):
            return text(node.left) + text(node.right)
        raise AssertionError(f"unreadable message at line {node.lineno}")

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id == "Wrong":
            messages.append(text(node.args[0]))
        elif node.func.id == "compare" and len(node.args) >= 3:
            messages += [text(pair.elts[1]) for pair in node.args[2].elts]
    return messages


@pytest.mark.parametrize("module, prefix", [(ex06, "06"), (ex07, "07")])
def test_every_named_mistake_has_a_wrong_answer_here(module, prefix):
    said = [run().message for name, run, _ in MISTAKES if name.startswith(prefix)]
    for message in _named_mistakes(module):
        # The longest stretch of a message's fixed text (between {fields}) identifies it.
        words = max(message.split("{}"), key=len).strip()[:40]
        assert any(words in feedback for feedback in said), \
            f"no test in MISTAKES makes {module.__name__} say: {words!r}"


@pytest.mark.parametrize("module", [ex06, ex07])
def test_every_task_of_the_two_sets_has_named_mistakes_tested(module):
    prefix = module.__name__[-2:]
    tested = {run().task for name, run, _ in MISTAKES if name.startswith(prefix)}
    assert tested == {check.title for check in module.CHECKS}
