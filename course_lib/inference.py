"""Running a trained model: text generation, the KV cache, and what one request costs.

Generation is a loop: run the model on the context, pick the next token from
the logits at the last position, append it, repeat. A request has two phases:

- **prefill**: the whole prompt goes through the model in one forward pass;
- **decode**: then one new token per step, each step one more forward pass.

Without a KV cache every decode step recomputes the keys and values of the
whole context. With the cache (`course_lib.model.KVCache`) a step computes
them for the one new token only and reads the others from memory: the same
tokens come out, for far less compute.

**When the context is full.** The model has learned positions 0 to
`block_size - 1` only, so it can never see more than `block_size` tokens.
When the context holds `block_size` tokens and another one is appended,
generation *slides the window*: it keeps the most recent `context_keep`
tokens (default `block_size // 2`), forgets the older ones, and runs a fresh
prefill over the kept tokens (their positions restart at 0, so their cached
keys and values cannot be reused). Decoding then continues one token at a
time until the window is full again. `context_keep = block_size` is
nanoGPT's sliding window (the model always sees the last `block_size`
tokens, but every step past the window is a full re-prefill, so the cache
saves nothing there). The schedule is the same with and without the cache,
so both produce exactly the same tokens; only the cost differs.
A prompt longer than `block_size` is cut to its last `block_size` tokens.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_lib import runtime, validate
from course_lib.data import CharTokenizer
from course_lib.flops import DECODE, MAX_NEW_TOKENS, PREFILL, context_steps, window_keep
from course_lib.stats import MAX_REPEATS, Spread
from course_lib.training_config import MAX_BATCH_SIZE

# --- Checking the request ---------------------------------------------------------------


def check_request(vocab_size: int, block_size: int, max_new_tokens: int, temperature: float,
                  top_k: int | None, context_keep: int | None, seed: int) -> int:
    """Raise a ValueError/TypeError naming the bad parameter; return the context_keep to use."""
    validate.whole("max_new_tokens", max_new_tokens, lowest=0, highest=MAX_NEW_TOKENS)
    validate.whole("vocab_size", vocab_size)
    _check_sampling(temperature, top_k, vocab_size)
    validate.seed("seed", seed)
    return window_keep(block_size, context_keep)


def _check_sampling(temperature: float, top_k: int | None, vocab_size: int) -> None:
    validate.positive("temperature (0 means greedy)", temperature, allow_zero=True)
    if top_k is not None:
        validate.whole("top_k (or None)", top_k, highest=vocab_size)


def _check_prompt_ids(idx, vocab_size: int) -> None:
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
        raise TypeError("idx (the prompt token ids) must be a LongTensor of shape (batch, "
                        "tokens), got "
                        f"{getattr(idx, 'dtype', type(idx).__name__)} "
                        f"{tuple(getattr(idx, 'shape', ()))}")
    if idx.shape[0] < 1 or idx.shape[1] < 1:
        raise ValueError("idx (a prompt) must hold at least one token: the model predicts the next "
                         f"token from the ones before it (got shape {tuple(idx.shape)})")
    if idx.min() < 0 or idx.max() >= vocab_size:
        raise ValueError(f"idx (the prompt token ids) must lie in 0..{vocab_size - 1}, "
                         f"got {idx.min().item()}..{idx.max().item()}")


# --- Picking the next token -------------------------------------------------------------


@validate.checked
def pick_next_token(logits: torch.Tensor, temperature: float, top_k: int | None,
                    generator: torch.Generator | None) -> torch.Tensor:
    """The next token of each sequence, shape (batch,), from last-position logits (batch, vocab).

    temperature 0 is greedy (the most likely token; top_k is then irrelevant). Otherwise the
    logits are divided by the temperature (below 1: sharper, above 1: flatter), all but the
    top_k most likely tokens are removed, and one token is drawn from the softmax.
    """
    if logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError(f"logits must be a float tensor of shape (batch, vocab), got "
                         f"{logits.dtype} {tuple(logits.shape)}")
    _check_sampling(temperature, top_k, logits.shape[-1])
    if temperature == 0:
        return logits.argmax(dim=-1)
    if top_k is not None and top_k < logits.shape[-1]:  # before scaling: the order is the same
        kth_largest = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    # Subtracting the maximum first keeps a tiny temperature from overflowing to inf - inf; a
    # temperature outside the dtype's normal numbers would become 0 or inf (then NaN).
    finfo = torch.finfo(logits.dtype)
    scaled = ((logits - logits.max(dim=-1, keepdim=True).values)
              / min(max(temperature, finfo.tiny), finfo.max))
    probabilities = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator)[:, 0]


# --- The generation loop ----------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One generated token per sequence, and what produced it."""

    token: torch.Tensor  # (batch,) the chosen token ids
    logits: torch.Tensor  # (batch, vocab) the logits they were picked from
    phase: str  # 'prefill', 'decode' or 'slide' (see context_schedule)
    context_tokens: int  # how many tokens the model saw for this prediction


@validate.checked
@torch.no_grad()  # not inference_mode: some PyTorch versions' FLOP counter saw nothing there
#                   (notebook 02 checks yours); course_lib.counting counts through this loop
def stream_tokens(model: nn.Module, idx: torch.Tensor, max_new_tokens: int,
                  temperature: float = 1.0, top_k: int | None = None, use_kv_cache: bool = True,
                  seed: int = 1337, context_keep: int | None = None) -> Iterator[Step]:
    """Yield one Step per new token for a batch of equal-length prompts idx (batch, tokens).

    This is the generation loop itself; `generate_tokens` and `generate` collect its output,
    the timing helpers time it. Sampling draws from a generator seeded with `seed`, so a
    call is reproducible and leaves PyTorch's global random state alone.
    """
    config = model.config
    keep = check_request(config.vocab_size, config.block_size, max_new_tokens, temperature,
                         top_k, context_keep, seed)
    _check_prompt_ids(idx, config.vocab_size)
    device = model.device
    tokens = idx.to(device)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    was_training = model.training
    model.eval()  # dropout off: generation must be deterministic for a given seed
    try:
        cache = None
        schedule = context_steps(tokens.shape[1], max_new_tokens, config.block_size, keep)
        for phase, context in schedule:
            if not use_kv_cache:  # recompute keys and values of the whole context, every step
                logits, _ = model(tokens[:, -context:])
            elif phase == DECODE:  # only the newest token; the others are in the cache
                logits, _ = model(tokens[:, -1:], cache=cache)
            else:  # prefill or slide: an empty cache, filled with the whole (kept) context
                if cache is None:
                    cache = model.new_cache(tokens.shape[0])
                cache.reset()  # after a slide every position has moved: nothing is reusable
                logits, _ = model(tokens[:, -context:], cache=cache)
            last = logits[:, -1, :]
            if phase == PREFILL and not torch.isfinite(last).all():
                raise ValueError("the model produced NaN or infinite logits: its weights are "
                                 "broken (retrain or reload the checkpoint)")
            token = pick_next_token(last, temperature, top_k, generator)
            tokens = torch.cat([tokens, token[:, None]], dim=1)
            yield Step(token, last, phase, context)
    finally:
        model.train(was_training)


@validate.checked
def generate_tokens(model: nn.Module, idx: torch.Tensor, max_new_tokens: int,
                    temperature: float = 1.0, top_k: int | None = None,
                    use_kv_cache: bool = True, seed: int = 1337,
                    context_keep: int | None = None) -> torch.Tensor:
    """The prompts idx (batch, tokens) followed by max_new_tokens generated tokens each.

    Returns a LongTensor (batch, tokens + max_new_tokens); max_new_tokens = 0 returns the
    prompts unchanged. Arguments as in `generate`.
    """
    steps = stream_tokens(model, idx, max_new_tokens, temperature, top_k, use_kv_cache, seed,
                          context_keep)
    new = [step.token[:, None].to(idx.device) for step in steps]
    return torch.cat([idx, *new], dim=1)


@validate.checked
def encode_prompt(tokenizer: CharTokenizer, prompt: str) -> list[int]:
    """Token ids of `prompt`; a ValueError names characters the tokenizer has never seen."""
    if not isinstance(prompt, str):
        raise TypeError(f"a prompt must be a str, got {type(prompt).__name__}")
    if not prompt:
        raise ValueError("prompt must not be empty: the model predicts the next character from "
                         "the ones before it (start with a newline, '\\n', for free text)")
    # Unlike training text, a prompt is refused rather than silently changed.
    return tokenizer.encode(prompt, unknown="error")


@validate.checked
def generate(model: nn.Module, tokenizer: CharTokenizer, prompt: str | Sequence[str],
             max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             use_kv_cache: bool = True, seed: int = 1337,
             context_keep: int | None = None) -> str | list[str]:
    """Continue `prompt` (one str, or a list of str for a batch) by max_new_tokens characters.

    Returns the prompt followed by its continuation: a str for a str, a list for a list.
    temperature 0 picks the most likely character every time (greedy); above 0 it samples,
    from the top_k most likely characters only if top_k is given (1..vocabulary size).
    use_kv_cache switches the KV cache on or off: the text is the same, the cost is not.
    seed makes sampling reproducible. context_keep sets what happens when the context is
    full (see the module docstring). Prompts of equal length run together as one batch;
    prompts of different lengths run as one batch per length.

    Raises ValueError for an empty prompt, characters the tokenizer has never seen,
    max_new_tokens < 0, temperature < 0, or top_k outside 1..vocabulary size.
    """
    if not isinstance(prompt, (str, list, tuple)):
        raise TypeError(f"prompt must be a str or a list of str, got {type(prompt).__name__}")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise ValueError("prompt must be a str or a non-empty list of str, got an empty list")
    encoded = [encode_prompt(tokenizer, text) for text in prompts]
    device = model.device
    results: list[str] = [""] * len(prompts)
    for length in sorted({len(ids) for ids in encoded}):
        rows = [i for i, ids in enumerate(encoded) if len(ids) == length]
        idx = torch.tensor([encoded[i] for i in rows], dtype=torch.long, device=device)
        out = generate_tokens(model, idx, max_new_tokens, temperature, top_k, use_kv_cache,
                              seed, context_keep)
        for i, ids in zip(rows, out.tolist(), strict=True):
            results[i] = tokenizer.decode(ids)
    return results[0] if isinstance(prompt, str) else results


# --- Measuring latency and throughput ---------------------------------------------------


@dataclass(frozen=True)
class RequestTiming:
    """How long one request took: a batch of prompts, each continued by new_tokens tokens."""

    batch_size: int
    prompt_tokens: int
    new_tokens: int
    use_kv_cache: bool
    time_to_first_token_s: Spread  # prefill and the first token: what a user waits for
    time_per_output_token_s: Spread  # each later token, i.e. the decode steps
    request_s: Spread  # the whole request, first token included
    tokens_per_s: Spread  # output tokens per second, all sequences of the batch together


@validate.checked
def time_request(model: nn.Module, batch_size: int = 1, prompt_tokens: int = 8,
                 new_tokens: int = 32, use_kv_cache: bool = True, repeats: int = 5,
                 seed: int = 1337, context_keep: int | None = None) -> RequestTiming:
    """Time greedy generation of new_tokens tokens for batch_size random prompts.

    One untimed warm-up run, then `repeats` timed runs; each figure is the median over the
    runs with the spread. Token values do not change the arithmetic, so random prompts time
    the same as real text.
    """
    validate.whole("batch_size", batch_size, highest=MAX_BATCH_SIZE)
    validate.whole("prompt_tokens", prompt_tokens, highest=model.config.block_size)
    validate.whole("new_tokens", new_tokens, lowest=2, highest=MAX_NEW_TOKENS)
    validate.whole("repeats", repeats, highest=MAX_REPEATS)
    device = model.device
    generator = torch.Generator().manual_seed(validate.seed("seed", seed))
    idx = torch.randint(model.config.vocab_size, (batch_size, prompt_tokens),
                        generator=generator).to(device)
    first, per_token, whole, throughput = [], [], [], []
    for run in range(repeats + 1):
        runtime.synchronize(device)
        start = time.perf_counter()
        stamps = []
        for _ in stream_tokens(model, idx, new_tokens, 0.0, None, use_kv_cache, seed,
                               context_keep):
            runtime.synchronize(device)
            stamps.append(time.perf_counter())
        if run == 0:
            continue  # warm-up: memory allocation and first-call overheads
        first.append(stamps[0] - start)
        per_token.append((stamps[-1] - stamps[0]) / (new_tokens - 1))
        whole.append(stamps[-1] - start)
        throughput.append(batch_size * new_tokens / (stamps[-1] - start))
    return RequestTiming(batch_size, prompt_tokens, new_tokens, use_kv_cache, Spread.of(first),
                         Spread.of(per_token), Spread.of(whole), Spread.of(throughput))


@validate.checked
def sweep_batch_sizes(model: nn.Module, batch_sizes: Sequence[int], prompt_tokens: int = 8,
                      new_tokens: int = 32, use_kv_cache: bool = True, repeats: int = 5,
                      seed: int = 1337) -> list[RequestTiming]:
    """`time_request` for each batch size: latency and throughput as the batch grows."""
    validate.instance("batch_sizes", batch_sizes, (list, tuple, range))
    for batch in batch_sizes:
        validate.whole("batch_sizes (each)", batch, highest=MAX_BATCH_SIZE)
    return [time_request(model, batch, prompt_tokens, new_tokens, use_kv_cache, repeats, seed)
            for batch in batch_sizes]


