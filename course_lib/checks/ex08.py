"""Checks for exercises/08_the_price_of_a_token.ipynb: serving cost from the roofline.

A setup is a plain dict (the notebook's SETUP), so that an instructor can change it in one
cell: model (a references prefix with params, n_layers, n_kv_heads, n_heads, d_model), chip,
price_key, long_context, context, batches, prefill_batch, and for the mixture of experts
moe_attention (a references prefix for its attention shape), moe_chips, moe_context,
moe_batch, experts_batch. Expected values are worked out here, independently of
course_lib.serving, from course_lib.references and the setup.
"""

from __future__ import annotations

import math

from course_lib import references
from course_lib.checks import (
    BITS,
    QUERY_HEADS,
    Wrong,
    as_number,
    call,
    compare,
    task,
)
from course_lib.checks import summary as _summary

BF16, FP8 = 2, 1  # bytes per value
FORGOT_KV = ("did you forget the KV cache? Every sequence also reads its own keys and values "
             "each step: 2 x layers x KV heads x head size x bytes, per token of context.")
ACTIVE_FOR_MEMORY = ("did you store only the active parameters? Memory must hold every expert "
                     "(the total parameters); only the arithmetic uses the active ones.")
TOTAL_FOR_COMPUTE = ("did you count the FLOPs with the total parameters? A token is multiplied "
                     "by its active parameters only (2 FLOPs each).")
PER_REPLICA = ("that is per replica: divide by the chips in the replica. The price follows each "
               "chip you pay for.")
ONE_CHIP = ("that is one chip's memory: the replica's memory is every chip's together (tensor "
            "parallelism splits the weights and the KV caches across them).")
PER_STEP = ("that is per decode step: each step makes one token for every sequence of the "
            "batch, so divide by the batch.")
INPUT_OUTPUT = ("that is the output (decode) price: input tokens are prefilled, a whole prompt "
                "in one step, so they are priced from the prefill step.")


def _model(prefix: str) -> dict:
    v = references.value
    d = v(f"{prefix}.d_model")
    return {"layers": v(f"{prefix}.n_layers"), "kv_heads": v(f"{prefix}.n_kv_heads"),
            "head_dim": d / v(f"{prefix}.n_heads"), "d_model": d}


def _kv_per_token(shape: dict, width: float, heads: str = "kv_heads") -> float:
    return 2 * shape["layers"] * shape[heads] * shape["head_dim"] * width


def _chip(s: dict) -> tuple[float, float, float]:
    v = references.value
    return tuple(v(f"{s['chip']}.{key}") for key in ("peak_flops", "bandwidth", "memory"))


def _decode_s(s: dict, batch: float, context: float, kv_width: float = BF16,
              weights: float | None = None) -> float:
    """Dense model: one decode step of `batch` sequences at `context` tokens (roofline)."""
    n, shape = references.value(f"{s['model']}.params"), _model(s["model"])
    peak, bandwidth, _ = _chip(s)
    per_token = 2 * n + 4 * shape["layers"] * context * shape["d_model"]
    moved = (BF16 * n if weights is None else weights) \
        + batch * context * _kv_per_token(shape, kv_width)
    return max(batch * per_token / peak, moved / bandwidth)


def _usd_per_second(s: dict) -> float:
    return references.value(s["price_key"]) / 3600


@task("Task 1 · One user's time per output token")
def tpot_ms(answer, s: dict) -> str:
    expected = 1e3 * _decode_s(s, 1, s["long_context"])
    n, shape = references.value(f"{s['model']}.params"), _model(s["model"])
    weights_only = 1e3 * BF16 * n / _chip(s)[1]
    query = 1e3 * (BF16 * n + s["long_context"] * _kv_per_token(shape, BF16)
                   * references.value(f"{s['model']}.n_heads") / shape["kv_heads"]) / _chip(s)[1]
    compare(answer, expected, [(weights_only, "Too fast: " + FORGOT_KV),
                               (query, QUERY_HEADS), (expected * 8, BITS)], name="tpot_ms")
    return "one user reads every weight, and their own long KV cache, for each token."


@task("Task 2 · The price of an output token")
def usd_per_million_output(function, s: dict) -> str:
    for batch in s["batches"]:
        expected = _usd_per_second(s) * _decode_s(s, batch, s["context"]) / batch * 1e6
        got = call(function, batch, name="usd_per_million_output")
        no_kv = (_usd_per_second(s) * max(_decode_s(s, batch, s["context"], kv_width=0),
                                          1e-30) / batch * 1e6)
        compare(got, expected, [(expected * batch, "Too large: " + PER_STEP),
                                (expected * 3600, "Hours and seconds: the price is per hour."),
                                (no_kv, "Too cheap: " + FORGOT_KV)],
                name=f"usd_per_million_output({batch})")
    return "batching shares the weight reads: the price falls until memory or compute stops it."


def _moe(s: dict) -> dict:
    v = references.value
    shape = _model(s["moe_attention"])
    peak, bandwidth, memory = _chip(s)
    return {**shape, "total": v("epoch2025.total_params"), "active": v("epoch2025.active_params"),
            "experts": v("mixtral.n_experts"), "k": v("mixtral.experts_per_token"),
            "chips": s["moe_chips"], "peak": s["moe_chips"] * peak,
            "bandwidth": s["moe_chips"] * bandwidth, "memory": s["moe_chips"] * memory,
            "kv_sequence": s["moe_context"] * _kv_per_token(shape, FP8)}


@task("Task 3 · How many sequences fit beside a mixture of experts")
def moe_largest_batch(answer, s: dict) -> str:
    m = _moe(s)
    expected = math.floor((m["memory"] - FP8 * m["total"]) / m["kv_sequence"])
    x = as_number(answer, "moe_largest_batch")
    if x == expected:
        return "the weights take most of the memory: every expert must be there."
    mistakes = [((m["memory"] - FP8 * m["active"]) / m["kv_sequence"],
                 "Too many: " + ACTIVE_FOR_MEMORY),
                ((m["memory"] / m["chips"] - FP8 * m["total"]) / m["kv_sequence"],
                 "Too few: " + ONE_CHIP),
                ((m["memory"] - FP8 * m["total"]) / (BF16 * m["kv_sequence"]),
                 "Half as many: the KV cache is fp8 too, one byte per value.")]
    # A mistake can leave no memory (one chip's memory is below the weights): the learner may
    # answer its negative count as computed, or 0 sequences.
    hints = [hint for value, hint in mistakes
             if min(abs(x - value), abs(x - max(0.0, value))) <= 1]
    if hints:
        raise Wrong("moe_largest_batch: " + " Or: ".join(hints))
    if abs(x - expected) <= 1:
        raise Wrong("moe_largest_batch: almost: a batch is a whole number of sequences that "
                    "fit, so round down.")
    raise Wrong(f"moe_largest_batch: not yet: {'too many' if x > expected else 'too few'}. "
                "Memory left beside the weights, divided by one sequence's KV cache.")


@task("Task 4 · A mixture of experts: experts read and tokens/s per chip")
def moe_decode(experts, tokens_per_s_per_chip, s: dict) -> str:
    m = _moe(s)
    b = s["experts_batch"]
    expected = m["experts"] * (1 - (1 - m["k"] / m["experts"]) ** b)
    compare(experts, expected, [
        (min(m["k"] * b, 1e30), "More than can exist? Experts picked by several tokens are "
                                "read once: count the distinct ones, E (1 - (1 - k/E)^b)."),
        (m["k"], "That is one token's experts: the batch's tokens pick different ones.")],
        name="experts_per_layer")
    batch, context = s["moe_batch"], s["moe_context"]
    attention = 4 * m["layers"] * context * m["d_model"]
    per_expert = (m["total"] - m["active"]) / (m["experts"] - m["k"])
    touched = m["experts"] * (1 - (1 - m["k"] / m["experts"]) ** batch)
    read = m["total"] - per_expert * m["experts"] + per_expert * touched
    memory_s = (FP8 * read + batch * m["kv_sequence"]) / m["bandwidth"]

    def step(params: float) -> float:
        return max(batch * (2 * params + attention) / m["peak"], memory_s)

    expected = batch / step(m["active"]) / m["chips"]
    compare(tokens_per_s_per_chip, expected, [
        (batch / step(m["total"]) / m["chips"], "Too slow: " + TOTAL_FOR_COMPUTE),
        (expected * m["chips"], "Too large: " + PER_REPLICA)], name="tokens_per_s_per_chip")
    return "it reads nearly every expert, yet computes with the active ones: compute-bound."


@task("Task 5 · Input tokens against output tokens")
def input_price(usd_per_million_input, output_over_input, s: dict) -> str:
    n, shape = references.value(f"{s['model']}.params"), _model(s["model"])
    peak, bandwidth, _ = _chip(s)
    batch, prompt = s["prefill_batch"], s["context"] - 1
    tokens = batch * prompt
    per_token = 2 * n + 4 * shape["layers"] * (prompt + 1) / 2 * shape["d_model"]
    step = max(tokens * per_token / peak,
               (BF16 * n + tokens * _kv_per_token(shape, BF16)) / bandwidth)
    expected = _usd_per_second(s) * step / tokens * 1e6
    output = _usd_per_second(s) * _decode_s(s, batch, s["context"]) / batch * 1e6
    compare(usd_per_million_input, expected, [
        (output, "Too large: " + INPUT_OUTPUT),
        (expected * tokens, "Far too large: that is the whole prefill step: divide by the "
                            "tokens it processes (batch x prompt)."),
        # Divided by the batch alone, the step's price is too large by the prompt length.
        (expected * prompt, "Too large: divide by every prompt token of the batch, not by "
                            "the batch only.")], name="usd_per_million_input")
    compare(output_over_input, output / expected, [
        (expected / output, "Upside down: divide the output price by the input price.")],
        name="output_over_input")
    return "that is why providers quote two prices, and why output tokens cost more."


CHECKS = (tpot_ms, usd_per_million_output, moe_largest_batch, moe_decode, input_price)


def summary() -> None:
    """Print the latest result of every task in this set, and the score."""
    print(_summary(__name__, [check.title for check in CHECKS]))
