"""Checks for exercises/03_running_inference.ipynb: decode FLOPs, the KV cache, its size.

The generation check hands the learner's function a model that records every forward call,
and compares the tokens with greedy decoding done the slow way (no cache, the whole context
every step); the cache-size check measures the bytes a real KVCache fills.
"""

from __future__ import annotations

import torch

from course_lib import flops, references, roofline
from course_lib.checks import (
    BITS,
    MACS,
    NO_KV_PAIR,
    QUERY_HEADS,
    QUERY_HEADS_IN_A_DIVISOR,
    TRAINING_FACTOR,
    Wrong,
    call,
    compare,
    task,
)
from course_lib.checks import summary as _summary
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig

_GQA = ModelConfig(vocab_size=41, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, block_size=24)


@task("Task 1 · FLOPs of one answer")
def answer_flops(answer, model: str, output_tokens: int) -> str:
    n = references.value(f"{model}.params")
    expected = 2 * n * output_tokens
    compare(answer, expected, [
        (3 * expected, TRAINING_FACTOR), (expected / 2, MACS),
        (2 * n, "That is one token: the answer has output_tokens tokens, one forward pass "
                "each.")])
    return "each generated token is one forward pass through every weight."


class _RecordingGPT(TinyGPT):
    """A TinyGPT that notes (tokens fed, cache given?) for every forward call."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.calls: list[tuple[int, bool]] = []

    def forward(self, idx, targets=None, cache=None):
        self.calls.append((int(idx.shape[1]), cache is not None))
        return super().forward(idx, targets, cache)


@torch.no_grad()
def _greedy_without_cache(model: TinyGPT, prompt: torch.Tensor, new_tokens: int) -> list[int]:
    sequence = prompt
    for _ in range(new_tokens):
        logits, _ = TinyGPT.forward(model, sequence)
        sequence = torch.cat([sequence, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return sequence[0, prompt.shape[1]:].tolist()


def _as_ids(result) -> list[int]:
    try:
        return [int(t) for t in torch.as_tensor(result).flatten().tolist()]
    except (TypeError, ValueError, RuntimeError):
        raise Wrong(f"generate_greedy must return token ids (a tensor or a list of ints), got "
                    f"{type(result).__name__}") from None


REFED_WITH_CACHE = ("After the prefill you fed the whole sequence again, into a cache that already "
                    "holds it: the cache keeps the earlier tokens' keys and values, so each "
                    "decode step feeds only the newest token, shape (batch, 1).")


def _refed_the_sequence(calls: list[tuple[int, bool]]) -> bool:
    """Whether a decode step (any call after the first) fed several tokens into a cache."""
    return any(fed > 1 and with_cache for fed, with_cache in calls[1:])


@task("Task 2 · Generation with the KV cache")
def generate_greedy(function) -> str:
    torch.manual_seed(7)
    model = _RecordingGPT(_GQA).eval()
    with torch.no_grad():  # larger random matrices: varied tokens, so that slips show
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(0.0, 0.3)
    prompt = torch.randint(0, _GQA.vocab_size, (1, 5), generator=torch.Generator().manual_seed(3))
    new_tokens = 8
    expected = _greedy_without_cache(model, prompt, new_tokens)
    try:
        got = _as_ids(call(function, model, prompt.clone(), new_tokens, name="generate_greedy"))
    except Wrong:
        if _refed_the_sequence(model.calls):  # e.g. "the context is full" from the model
            raise Wrong(REFED_WITH_CACHE) from None
        raise
    if len(got) == prompt.shape[1] + new_tokens and got[prompt.shape[1]:] == expected:
        raise Wrong("return only the new tokens, not the prompt in front of them.")
    if len(got) != new_tokens:
        raise Wrong(f"asked for {new_tokens} new tokens, got {len(got)}.")
    if got != expected and _refed_the_sequence(model.calls):
        raise Wrong(REFED_WITH_CACHE)
    if got != expected:
        first = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)
        raise Wrong(f"your tokens differ from greedy decoding from new token {first + 1} on: "
                    "take the logits of the LAST position and pick the most likely token; "
                    "feed each new token at its own position.")
    if not any(with_cache for _, with_cache in model.calls):
        raise Wrong("the tokens are right, but the model never got a cache: make one with "
                    "model.new_cache(batch_size) and pass cache=... to every call.")
    if any(fed > 1 for fed, _ in model.calls[1:]):
        raise Wrong("the tokens are right, but after the prefill you fed more than one token "
                    "per step: with the cache, each decode step needs only the newest token.")
    return "one prefill, then one token per step: what every LLM server does."


def _kv_mistakes(expected: float, n_head: int, n_kv_head: int, batch: int) -> list:
    mistakes = [(expected / 2, NO_KV_PAIR), (expected * 8, BITS),
                (expected / batch, "You left out the batch: every sequence has its own cache.")]
    if n_head != n_kv_head:
        mistakes.append((expected * n_head / n_kv_head, QUERY_HEADS))
    return mistakes


def _heads(model: str) -> tuple[float, float]:
    """(query heads, key/value heads) of a published model."""
    return references.value(f"{model}.n_heads"), references.value(f"{model}.n_kv_heads")


def _kv_bytes(model: str, context: int, batch_size: int, bytes_per_value: float) -> float:
    """KV-cache bytes of a published model, by course_lib.inference's formula."""
    heads, kv_heads = _heads(model)
    head_dim = int(references.value(f"{model}.d_model")) // int(heads)
    return flops.kv_cache_bytes(int(references.value(f"{model}.n_layers")), int(kv_heads),
                                    head_dim, context, batch_size, bytes_per_value)


@task("Task 3 · KV cache of a real model")
def kv_cache_bytes_real(answer, model: str, context: int, batch_size: int,
                        bytes_per_value: float) -> str:
    heads, kv_heads = _heads(model)
    expected = _kv_bytes(model, context, batch_size, bytes_per_value)
    mistakes = _kv_mistakes(expected, heads, kv_heads, batch_size)
    mistakes.append((expected * 4 / bytes_per_value, "fp32 is 4 bytes per value; the task "
                                                          "asks for bf16."))
    compare(answer, expected, mistakes)
    return "compare it with the weights' own size: at long contexts the cache rivals them."


def _filled_cache_bytes(config: ModelConfig, tokens: int, batch: int, dtype) -> int:
    """Bytes of keys and values a real KVCache holds after a prefill of `tokens` tokens."""
    torch.manual_seed(0)
    model = TinyGPT(config).to(dtype).eval()
    cache = model.new_cache(batch)
    with torch.no_grad():
        model(torch.zeros((batch, tokens), dtype=torch.long), cache=cache)
    return sum(t[:, :, : cache.length].numel() * t.element_size() for t in cache.k + cache.v)


@task("Task 4 · KV cache size, checked against real tensors")
def kv_cache_bytes(function) -> str:
    cases = ((_GQA, 7, 3, torch.float32, 4),
             (ModelConfig(vocab_size=17, n_layer=3, n_head=4, n_kv_head=1, n_embd=16,
                          block_size=12), 5, 2, torch.bfloat16, 2),
             (ModelConfig(vocab_size=17, n_layer=1, n_head=2, n_embd=8, block_size=12),
              9, 4, torch.float32, 4))
    for config, tokens, batch, dtype, width in cases:
        measured = _filled_cache_bytes(config, tokens, batch, dtype)
        got = call(function, config, tokens, batch, width, name="kv_cache_bytes")
        compare(got, measured, _kv_mistakes(measured, config.n_head, config.kv_heads, batch),
                name=f"kv_cache_bytes for {config.n_layer} layers, {config.n_head} heads, "
                     f"{config.kv_heads} KV heads, {tokens} tokens, batch {batch}")
    return "your formula matches the bytes real caches hold, with and without grouped-query " \
           "attention."


@task("Task 5 · How many conversations fit on one GPU?")
def conversations_per_gpu(answer, model: str, chip: str, context: int,
                          bytes_per_value: float) -> str:
    n = references.value(f"{model}.params")
    heads, kv_heads = _heads(model)
    per_conversation = _kv_bytes(model, context, 1, bytes_per_value)
    memory, weights = references.value(f"{chip}.memory"), roofline.weight_bytes(n, "bf16")
    if weights >= memory:  # the parameters, not the learner, are wrong: say so plainly
        raise ValueError(f"MODEL {model!r} needs {weights / 1e9:.0f} GB for its bf16 weights, "
                         f"more than CHIP {chip!r} has ({memory / 1e9:.0f} GB): choose a "
                         f"smaller MODEL or a larger CHIP")
    expected = (memory - weights) / per_conversation
    compare(answer, expected, [
        (memory / per_conversation,
         "You forgot the weights: they take memory before any conversation does."),
        (expected * kv_heads / heads, QUERY_HEADS_IN_A_DIVISOR),
        ((memory - 4 * n) / per_conversation,
         "The weights are served in bf16: 2 bytes each, not 4."),
        (expected / 8, BITS)], rel=0.05)
    return "the KV cache, not compute, caps how many users one GPU serves at once."


CHECKS = (answer_flops, generate_greedy, kv_cache_bytes_real, kv_cache_bytes,
          conversations_per_gpu)


def summary() -> None:
    """Print the latest result of every task in this set, and the score."""
    print(_summary(__name__, [check.title for check in CHECKS]))
