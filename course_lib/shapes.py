"""Model shapes as plain dataclasses: the numbers the FLOP, memory and cost formulas need.

Arithmetic layer: no torch here, so the cost lessons and exercise checks can describe a
model without loading PyTorch. course_lib.model builds a TinyGPT from a ModelConfig;
ModelShape is what the roofline (course_lib.roofline) needs to know about any model, tiny
or published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from course_lib import validate


@dataclass
class ModelConfig:
    """Shape of a TinyGPT. Defaults are nanoGPT's CPU configuration (about 0.8M parameters)."""

    vocab_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64  # longest context, in tokens
    dropout: float = 0.0
    bias: bool = True
    n_kv_head: int | None = None  # grouped-query attention; None means n_kv_head = n_head

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "block_size"):
            validate.whole(name, getattr(self, name))
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd must be divisible by n_head (each head gets n_embd // n_head "
                f"dimensions), got n_embd={self.n_embd}, n_head={self.n_head}"
            )
        validate.positive("dropout", self.dropout, allow_zero=True, below=1)
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be True or False, got {self.bias!r}")
        if self.n_kv_head is not None:
            validate.whole("n_kv_head (or None)", self.n_kv_head)
            if self.n_head % self.n_kv_head != 0:
                raise ValueError(
                    f"n_kv_head must be None or a whole number >= 1 that divides "
                    f"n_head={self.n_head}, got {self.n_kv_head!r}"
                )

    @property
    def head_dim(self) -> int:
        """Dimensions per attention head."""
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        """Number of key/value heads (n_head unless grouped-query attention is on)."""
        return self.n_kv_head or self.n_head


@dataclass(frozen=True)
class ModelShape:
    """What the roofline needs to know about a model.

    params: the parameters every token multiplies (2 FLOPs each per token);
    forward_flops_per_token: a function of the context length (tokens) giving forward
    FLOPs per token, attention included (from course_lib.flops);
    kv_bytes_per_token: bytes of keys and values one token adds to the KV cache, at the
    precision the model runs in;
    activation_bytes_per_token: bytes a training step saves per token for the backward pass.
    course_lib.roofline builds one for the course's TinyGPT and for published models.
    """

    name: str
    params: float
    forward_flops_per_token: Callable[[int], float]
    kv_bytes_per_token: float
    activation_bytes_per_token: float = 0.0

    def __post_init__(self) -> None:
        validate.instance("name", self.name, str)
        if not callable(self.forward_flops_per_token):
            raise TypeError(f"forward_flops_per_token must be a function of the context, got "
                            f"{self.forward_flops_per_token!r:.60}")
        validate.positive("params", self.params)
        validate.positive("kv_bytes_per_token", self.kv_bytes_per_token, allow_zero=True)
        validate.positive("activation_bytes_per_token", self.activation_bytes_per_token,
                          allow_zero=True)
