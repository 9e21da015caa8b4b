"""Counting the compute and memory of a TinyGPT: formulas, and what PyTorch actually runs.

Conventions:

- A FLOP is one floating-point multiply or add, so an (m x k) @ (k x n) matmul costs
  2 m k n FLOPs (a multiply-add, "MAC", is 2 FLOPs). Only matmuls are counted:
  LayerNorm, GELU, softmax and the AdamW update are elementwise, a few FLOPs per
  number, well under 1% of the total here, and PyTorch's counter skips them too.
- "matmul parameters" P are the weight matrices every token is multiplied by: in each
  layer the attention projections (queries, keys, values, output) and the MLP's two
  matrices, plus the output layer lm_head (tied to the token embedding, but the matmul
  still runs). Biases, LayerNorm gains and the position embedding are not multiplied,
  and the token embedding is a table look-up (0 FLOPs) on the way in.
- Forward FLOPs per token = 2 P + 4 n_layer n_ctx n_embd: the 2 P from the weight
  matmuls, and 4 n_layer n_ctx n_embd for attention, which scores a query against
  n_ctx keys (2 n_ctx n_embd) and mixes n_ctx values (2 n_ctx n_embd). This is Kaplan
  et al.'s 2 N + 2 n_layer n_ctx d_attn, with two differences: Kaplan's N leaves out
  the output layer (fine for large models, not for tiny ones whose vocabulary matrix
  is a big share), and Kaplan's attention term is half ours because a causal mask
  means a token sees n_ctx / 2 earlier positions on average, whereas TinyGPT (like
  most simple implementations) computes the full n_ctx x n_ctx score matrix and then
  masks half of it away.
- Training FLOPs per step = 3 x forward: the backward pass computes two matmuls for
  each forward matmul (gradient with respect to the input and to the weight).
"""

from __future__ import annotations

from collections.abc import Iterator

from course_lib import references, validate
from course_lib.shapes import ModelConfig

# A training step costs this many forward passes: 6 FLOPs per parameter per token against
# 2 (the backward pass costs about twice the forward).
TRAIN_PER_FORWARD = (references.value("flops.train_per_param_token")
                     / references.value("flops.forward_per_param_token"))

# Bytes one weight takes in each storage format (int4 packs two weights in a byte).
BYTES_PER_WEIGHT: dict[str, float] = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0,
                                      "int8": 1.0, "int4": 0.5}


@validate.checked
def bytes_per_weight(precision: str) -> float:
    """Bytes per stored weight for 'fp32', 'fp16', 'bf16', 'fp8', 'int8' or 'int4'."""
    try:
        return BYTES_PER_WEIGHT[precision]
    except (KeyError, TypeError):
        raise ValueError(f"unknown precision {precision!r}; valid choices: "
                         f"{', '.join(BYTES_PER_WEIGHT)}") from None

# --- Analytic counts ------------------------------------------------------------------------


@validate.checked
def matmul_params(config: ModelConfig) -> int:
    """Weights each token is multiplied by in one forward pass (see the module docstring)."""
    d, kv_dim = config.n_embd, config.kv_heads * config.head_dim
    per_layer = d * (d + 2 * kv_dim) + d * d + 2 * (4 * d * d)  # qkv, attn out, MLP in + out
    return config.n_layer * per_layer + d * config.vocab_size  # + lm_head


@validate.checked
def forward_flops_breakdown(config: ModelConfig, context: int) -> dict[str, int]:
    """Forward FLOPs for one token whose query attends over `context` positions.

    Returns {"weights": 2 P, "attention": 4 n_layer context n_embd, "total": both}.
    """
    validate.whole("context", context)
    weights = 2 * matmul_params(config)
    attention = 4 * config.n_layer * context * config.n_embd
    return {"weights": weights, "attention": attention, "total": weights + attention}


@validate.checked
def forward_flops(config: ModelConfig, seq_len: int, batch_size: int = 1) -> int:
    """Forward FLOPs for `batch_size` sequences of `seq_len` tokens, as TinyGPT computes them.

    Every position's query is scored against all seq_len keys (then masked), so each
    token costs forward_flops_breakdown(config, context=seq_len).
    """
    validate.whole("seq_len", seq_len)
    validate.whole("batch_size", batch_size)
    return batch_size * seq_len * forward_flops_breakdown(config, seq_len)["total"]


def train_flops_per_step(config: ModelConfig, batch_size: int, seq_len: int | None = None) -> int:
    """FLOPs of one training step (forward + backward = 3 x forward) on full-length blocks."""
    seq_len = sequence_length(config, seq_len)
    return round(TRAIN_PER_FORWARD * forward_flops(config, seq_len, batch_size))


def sequence_length(config: ModelConfig, seq_len: int | None) -> int:
    """`seq_len` checked against the model (1 to block_size), or block_size when None."""
    validate.instance("config", config, ModelConfig)
    if seq_len is None:
        return config.block_size
    return validate.whole("seq_len (or None)", seq_len, highest=config.block_size)


def kaplan_forward_flops_per_token(n_params_nonembed: float, n_layer: int, n_ctx: float,
                                   d_model: int) -> float:
    """Kaplan et al. 2020's approximation: 2 N + 2 n_layer n_ctx d_model FLOPs per token."""
    n = validate.positive("n_params_nonembed", n_params_nonembed, allow_zero=True)
    ctx = validate.positive("n_ctx", n_ctx, allow_zero=True)
    validate.whole("n_layer", n_layer)
    validate.whole("d_model", d_model)
    per_param = references.value("flops.forward_per_param_token")
    return validate.result("forward FLOPs per token", per_param * n + 2 * n_layer * ctx * d_model,
                           n_params_nonembed=n_params_nonembed, n_layer=n_layer, n_ctx=n_ctx,
                           d_model=d_model)


def six_n_d(n_params: float, tokens: float) -> float:
    """The training-compute rule of thumb C = 6 N D, in FLOPs."""
    n = validate.positive("n_params", n_params)
    d = validate.positive("tokens", tokens, allow_zero=True)
    return validate.result("training FLOPs", references.value("flops.train_per_param_token")
                           * n * d, n_params=n_params, tokens=tokens)


# --- Training memory --------------------------------------------------------------------------


@validate.checked
def activation_bytes(config: ModelConfig, batch_size: int, seq_len: int | None = None,
                     bytes_per_value: float = 4) -> int:
    """Bytes of activations TinyGPT keeps from the forward pass for the backward pass.

    Per layer, for b sequences of s tokens, width h and a heads: the block input,
    LayerNorm output, q/k/v, attention output, residual sum, second LayerNorm output
    (1 + 1 + 3 + 1 + 1 + 1 = 8 s b h values), the MLP's hidden layer before and after
    GELU (2 x 4 s b h), and the softmaxed attention weights (a s^2 b). After the last
    layer: final LayerNorm input and output (2 s b h) and the log-probabilities of
    the loss (s b V). Small tensors (LayerNorm statistics, token ids, the mask) are
    left out. Same structure as Korthikanti et al. 2022's s b h (34 + 5 a s / h) bytes,
    which assumes 16-bit values and dropout masks.
    """
    s = sequence_length(config, seq_len)
    validate.whole("batch_size", batch_size)
    validate.positive("bytes_per_value", bytes_per_value)
    b, h, a = batch_size, config.n_embd, config.n_head
    per_layer = 16 * s * b * h + a * s * s * b
    values = config.n_layer * per_layer + 2 * s * b * h + s * b * config.vocab_size
    return values * bytes_per_value


@validate.checked
def training_memory_budget(config: ModelConfig, n_params: int, batch_size: int,
                           seq_len: int | None = None, bytes_per_value: float = 4) -> dict:
    """Bytes needed to train with AdamW in 32-bit floats: weights, gradients, moments, activations.

    n_params: the model's total parameter count (TinyGPT.num_params()["total"]).
    Weights and gradients take one value per parameter, AdamW's two moments two more:
    4 values, 16 bytes per parameter in float32.
    """
    validate.whole("n_params", n_params)
    validate.positive("bytes_per_value", bytes_per_value)
    weights = n_params * bytes_per_value
    budget = {
        "weights": weights,
        "gradients": weights,
        "optimizer": 2 * weights,
        "activations": activation_bytes(config, batch_size, seq_len, bytes_per_value),
    }
    budget["total"] = sum(budget.values())
    return budget


# --- Generation: the passes of a request, and what each costs -----------------------------

PREFILL, DECODE, SLIDE = "prefill", "decode", "slide"
# The most tokens one request may ask for: a TinyGPT on a CPU makes a few hundred per second,
# so more would run for hours (and a typo such as 10**9 would fill the memory instead).
MAX_NEW_TOKENS = 1_000_000


def window_keep(block_size: int, context_keep: int | None) -> int:
    """Tokens kept when the context window is full: context_keep, or half the window."""
    validate.whole("block_size", block_size)
    if context_keep is None:
        return max(1, block_size // 2)
    return validate.whole("context_keep (or None)", context_keep, highest=block_size)


def context_schedule(prompt_tokens: int, new_tokens: int, block_size: int,
                     context_keep: int) -> list[tuple[str, int]]:
    """(phase, context tokens) for each forward pass of a request, one pass per new token.

    The context is what the model sees when it predicts that token. Phases: 'prefill' (the
    prompt, cut to block_size), 'decode' (the context grew by the token just generated) and
    'slide' (the window was full: keep the last context_keep tokens and prefill them again).
    """
    return list(context_steps(prompt_tokens, new_tokens, block_size, context_keep))


def context_steps(prompt_tokens: int, new_tokens: int, block_size: int,
                  context_keep: int) -> Iterator[tuple[str, int]]:
    """context_schedule one step at a time (generation streams it: nothing is built ahead)."""
    validate.whole("prompt_tokens", prompt_tokens)
    validate.whole("new_tokens", new_tokens, lowest=0, highest=MAX_NEW_TOKENS)
    validate.whole("block_size", block_size)
    validate.whole("context_keep", context_keep, highest=block_size)
    return _steps(min(prompt_tokens, block_size), new_tokens, block_size, context_keep)


def _steps(context: int, new_tokens: int, block_size: int,
           context_keep: int) -> Iterator[tuple[str, int]]:
    for step in range(new_tokens):
        if step == 0:
            yield PREFILL, context
        elif context == block_size:
            context = context_keep
            yield SLIDE, context
        else:
            context += 1
            yield DECODE, context


@validate.checked
def step_flops(config: ModelConfig, phase: str, context: int, use_kv_cache: bool,
               batch_size: int = 1) -> int:
    """Analytic forward FLOPs of one generation step (formulas from course_lib.flops).

    A cached decode step pushes one token through the model, attending over `context`
    positions. Everything else (no cache, a prefill, a slide) pushes the whole context
    through, as TinyGPT computes it: each of the `context` tokens scores all `context` keys.
    """
    validate.choice("phase", phase, (PREFILL, DECODE, SLIDE))
    validate.whole("context", context)
    validate.whole("batch_size", batch_size)
    if use_kv_cache and phase == DECODE:
        return batch_size * forward_flops_breakdown(config, context)["total"]
    return forward_flops(config, context, batch_size)


@validate.checked
def flops_per_generated_token(config: ModelConfig, context: int, use_kv_cache: bool) -> int:
    """Analytic FLOPs to generate one token of one sequence whose context is `context` tokens."""
    return step_flops(config, DECODE, context, use_kv_cache)


@validate.checked
def request_flops(config: ModelConfig, prompt_tokens: int, new_tokens: int, use_kv_cache: bool,
                  batch_size: int = 1, context_keep: int | None = None) -> int:
    """Analytic FLOPs of a whole request: every step of its context_schedule, summed."""
    validate.whole("batch_size", batch_size)
    schedule = context_steps(prompt_tokens, new_tokens, config.block_size,
                             window_keep(config.block_size, context_keep))
    return sum(step_flops(config, phase, context, use_kv_cache, batch_size)
               for phase, context in schedule)


def kv_cache_bytes(n_layer: int, n_kv_heads: int, head_dim: int, tokens: int,
                   batch_size: int = 1, bytes_per_value: float = 4) -> float:
    """Bytes of the KV cache: 2 x n_layer x n_kv_heads x head_dim x bytes x tokens x batch.

    2 because each layer keeps a key and a value vector per KV head for every position.
    The heads are the KEY/VALUE heads: with grouped-query attention several query heads
    share one KV head, and the cache shrinks by n_head / n_kv_heads (Llama 3 70B: 64 query
    heads, 8 KV heads, 8x smaller than counting query heads). bytes_per_value: 4 for
    float32 (this course's CPU model), 2 for bf16/fp16 (how large models are served).
    """
    for name, value in (("n_layer", n_layer), ("n_kv_heads", n_kv_heads),
                        ("head_dim", head_dim), ("batch_size", batch_size)):
        validate.whole(name, value)
    validate.whole("tokens", tokens, lowest=0)
    validate.positive("bytes_per_value", bytes_per_value)
    return 2 * n_layer * n_kv_heads * head_dim * bytes_per_value * tokens * batch_size
