"""A GPT-style decoder small enough to train on a laptop CPU, readable top to bottom.

The names follow nanoGPT (n_layer, n_head, n_embd, block_size, ...), so a
learner can move between this file and nanoGPT's model.py.

Design choices, and why:

- Attention is written out as matmul + mask + softmax + matmul, not with
  torch's scaled_dot_product_attention. It is the same maths, it is easier
  to read, and PyTorch's FLOP counter sees every matmul (it has reported 0
  FLOPs for CPU scaled_dot_product_attention), so course_lib.flops can
  check the formula against what really runs.
- The token embedding and the output layer (lm_head) share one weight
  matrix ("weight tying", as nanoGPT and GPT-2 do). Parameter counts count
  it once, as part of the embedding; the FLOP formulas in course_lib.flops
  still count the lm_head matmul, because it runs on every token.
- A KV cache (keys and values of earlier positions) can be passed to
  forward() so that generation computes each new token's keys and values
  once instead of recomputing the whole context.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from course_lib import runtime, validate
from course_lib.shapes import ModelConfig
from course_lib.training_config import MAX_BATCH_SIZE


class KVCache:
    """Keys and values of every layer for the tokens seen so far.

    k[layer] and v[layer] are preallocated tensors of shape
    (batch, kv_heads, block_size, head_dim); positions 0 .. length-1 are filled.
    TinyGPT.forward writes new positions into them and advances `length`.
    """

    def __init__(self, config: ModelConfig, batch_size: int, *, device=None, dtype=None):
        validate.instance("config", config, ModelConfig)
        validate.whole("batch_size", batch_size, highest=MAX_BATCH_SIZE)
        device = None if device is None else runtime.as_device("device", device)
        shape = (batch_size, config.kv_heads, config.block_size, config.head_dim)
        self.config = config
        self.batch_size = batch_size
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0

    def nbytes(self) -> int:
        """Bytes of K and V that hold the `length` filled positions (what the cache really uses).

        Equals 2 x n_layer x batch x kv_heads x length x head_dim x bytes per value.
        """
        per_position = self.k[0][:, :, :1].numel() * self.k[0].element_size()
        return 2 * len(self.k) * per_position * self.length

    def allocated_nbytes(self) -> int:
        """Bytes of K and V allocated for all block_size positions (filled or not)."""
        return sum(t.numel() * t.element_size() for t in self.k + self.v)

    def reset(self) -> None:
        """Forget every position, keeping the allocated memory."""
        self.length = 0


class CausalSelfAttention(nn.Module):
    """Multi-head attention where each position sees only itself and earlier positions."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_head = config.n_head
        self.kv_heads = config.kv_heads
        self.head_dim = config.head_dim
        kv_dim = config.kv_heads * config.head_dim
        # One matmul makes queries (n_embd wide), keys and values (kv_dim wide each).
        self.c_attn = nn.Linear(config.n_embd, config.n_embd + 2 * kv_dim, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.shape
        kv_dim = self.kv_heads * self.head_dim
        q, k, v = self.c_attn(x).split([C, kv_dim, kv_dim], dim=2)
        # (B, T, heads * head_dim) -> (B, heads, T, head_dim)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)

        start = 0
        if cache is not None:
            # The new tokens sit at positions start .. start+T-1; store their keys and
            # values, then attend over everything cached so far.
            start = cache.length
            cache.k[layer][:, :, start : start + T] = k
            cache.v[layer][:, :, start : start + T] = v
            k = cache.k[layer][:, :, : start + T]
            v = cache.v[layer][:, :, : start + T]
        if self.kv_heads != self.n_head:
            # Grouped-query attention: each key/value head serves n_head // kv_heads queries.
            k = k.repeat_interleave(self.n_head // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.n_head // self.kv_heads, dim=1)

        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, T, start+T)
        query_pos = torch.arange(start, start + T, device=x.device)[:, None]
        key_pos = torch.arange(start + T, device=x.device)[None, :]
        scores = scores.masked_fill(key_pos > query_pos, float("-inf"))  # no peeking ahead
        weights = self.attn_dropout(F.softmax(scores, dim=-1))
        y = weights @ v  # (B, H, T, head_dim)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Per-position feed-forward network: widen 4x, GELU, project back."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One transformer layer: attention then MLP, each with a pre-LayerNorm and a residual."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0):
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class TinyGPT(nn.Module):
    """GPT-style decoder: embeddings, n_layer Blocks, final LayerNorm, tied output layer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embedding
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one matrix, used twice
        self.apply(self._init_weights)
        # GPT-2's scaled init: residual projections shrink with depth so the sum stays ~1.
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (inputs must be moved there)."""
        return self.wte.weight.device

    def new_cache(self, batch_size: int) -> KVCache:
        """An empty KV cache for `batch_size` sequences, on this model's device and dtype."""
        return KVCache(self.config, batch_size, device=self.device, dtype=self.wte.weight.dtype)

    def num_params(self) -> dict[str, int]:
        """Parameter counts: total, embedding (token + position), non_embedding (the rest).

        The tied lm_head adds no parameters of its own, so total counts the shared
        matrix once. non_embedding is Kaplan et al.'s N (about 12 n_layer n_embd^2,
        plus LayerNorms and biases).
        """
        total = sum(p.numel() for p in self.parameters())
        embedding = self.wte.weight.numel() + self.wpe.weight.numel()
        return {"total": total, "embedding": embedding, "non_embedding": total - embedding}

    def _check_tokens(self, name: str, tensor: torch.Tensor, shape=None) -> None:
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.long:
            raise TypeError(f"{name} must be a torch.long tensor of token ids, got {tensor!r:.80}")
        if tensor.dim() != 2 or (shape is not None and tensor.shape != shape):
            want = f"shape {tuple(shape)}" if shape is not None else "shape (batch, time)"
            raise ValueError(f"{name} must have {want}, got {tuple(tensor.shape)}")
        if tensor.numel() and (tensor.min() < 0 or tensor.max() >= self.config.vocab_size):
            raise ValueError(
                f"{name} must hold token ids in [0, {self.config.vocab_size - 1}] "
                f"(vocab_size={self.config.vocab_size}), got values in "
                f"[{int(tensor.min())}, {int(tensor.max())}]"
            )

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for every position (B, T, vocab_size) and, if targets are given, the loss.

        Without a cache, idx holds positions 0 .. T-1. With a cache, idx holds only the
        new tokens, at positions cache.length .. cache.length + T - 1; their keys and
        values are appended (T > 1 is a prefill, T == 1 a decode step).
        The loss is the mean cross-entropy in nats per token.
        """
        self._check_tokens("idx", idx)
        B, T = idx.shape
        start = 0
        if cache is not None:
            if not isinstance(cache, KVCache) or cache.config != self.config:
                raise ValueError("cache must be a KVCache made by this model's new_cache()")
            if cache.batch_size != B:
                raise ValueError(f"idx has batch {B} but the cache was made for {cache.batch_size}")
            start = cache.length
        if T < 1 or start + T > self.config.block_size:
            raise ValueError(
                f"the context is full: positions {start}..{start + T - 1} do not fit in "
                f"block_size={self.config.block_size} (cache holds {start} tokens, idx has "
                f"{T}); idx must have 1 to {self.config.block_size - start} tokens"
            )
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        if cache is not None:
            cache.length += T
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            self._check_tokens("targets", targets, idx.shape)
            loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
        return logits, loss
