"""Quantization: storing a trained model's weights as 8-bit or 4-bit integers.

Torch layer. `quantize` returns a copy of the course's TinyGPT (the original is never
changed) whose transformer blocks' linear layers store each weight as an integer plus one
float scale per output channel (a row of the weight matrix). Symmetric: w ~= scale x q,
with q in -127..127 for 8 bits and -7..7 for 4 bits (two 4-bit values packed per byte).
The forward pass turns q back into floats (dequantizes) and runs an ordinary float
matmul, so the maths and the FLOPs stay those of float32 and the speed is no better: what
shrinks is the bytes to store. `time_memory_bound_layers` times what a kernel that reads
the int8 weights directly does instead, on layers too large for a CPU cache.

The token embedding, which the output layer shares (weight tying), is left in float32:
it is a table look-up on the way in, and a small share of this model.

Notebook 06 shows `quantize_weight` and `QuantizedLinear` whole. `block_linears` and
`check_model` are shared with course_lib.prune and course_lib.compression, which build
on this module.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from course_lib import runtime, validate
from course_lib.model import TinyGPT
from course_lib.stats import Spread

BITS = (8, 4)


def check_model(model) -> None:
    """Refuse anything but the course's TinyGPT, with a message naming what was passed."""
    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")


@validate.checked
def block_linears(model: TinyGPT) -> list[tuple[nn.Module, str]]:
    """(parent module, attribute name) of every linear layer inside the transformer blocks."""
    found = []
    for block in model.blocks:
        for parent in (block.attn, block.mlp):
            for name in ("c_attn", "c_proj", "c_fc"):
                if hasattr(parent, name):
                    found.append((parent, name))
    return found


def _check_bits(bits) -> None:
    if bits not in BITS or isinstance(bits, bool):
        raise ValueError(f"bits must be 8 or 4, got {bits!r}")


@validate.checked
def quantize_weight(weight: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel quantization of a (out, in) weight matrix.

    Returns (q, scale): integers q (int8 tensor, values within +-(2**(bits-1) - 1)) and one
    float scale per row, so that weight ~= q * scale[:, None], off by at most scale / 2.
    Each row gets its own scale because rows differ in size: one scale for the whole
    matrix would waste most of the integer range on the rows with small weights.
    """
    _check_bits(bits)
    q_max = 2 ** (bits - 1) - 1  # 127 for 8 bits, 7 for 4 bits
    largest = weight.detach().abs().amax(dim=1)
    # A row of zeros would give scale 0 and 0/0 below; any positive scale stores it exactly.
    scale = torch.where(largest > 0, largest / q_max, torch.ones_like(largest))
    q = torch.clamp(torch.round(weight.detach() / scale[:, None]), -q_max, q_max)
    return q.to(torch.int8), scale.to(torch.float32)


@validate.checked
def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Two 4-bit values per byte: int8 q in -7..7, (out, in) with `in` even -> uint8 (out, in/2)."""
    nibbles = (q.to(torch.int16) + 8).to(torch.uint8)  # -7..7 -> 1..15, fits in 4 bits
    return nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)


@validate.checked
def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """The inverse of pack_int4: uint8 (out, in/2) -> int8 (out, in) in -7..7."""
    low = (packed & 0x0F).to(torch.int8) - 8
    high = (packed >> 4).to(torch.int8) - 8
    return torch.stack([low, high], dim=2).flatten(1)


class QuantizedLinear(nn.Module):
    """A linear layer whose weight is stored as integers plus one scale per output channel.

    8 bits: an int8 tensor (1 byte per weight). 4 bits: two weights packed per byte
    (0.5 bytes per weight). The forward pass dequantizes (q x scale) and calls an
    ordinary float matmul, as weight-only quantization does on hardware without
    integer matmul kernels.
    """

    def __init__(self, linear: nn.Linear, bits: int = 8):
        validate.instance("linear", linear, nn.Linear)
        super().__init__()
        _check_bits(bits)
        if bits == 4 and linear.in_features % 2:
            raise ValueError(f"4-bit packing needs an even in_features, got {linear.in_features}")
        self.bits = bits
        self.in_features, self.out_features = linear.in_features, linear.out_features
        q, scale = quantize_weight(linear.weight, bits)
        self.register_buffer("q", pack_int4(q) if bits == 4 else q)
        self.register_buffer("scale", scale)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())

    def dequantized_weight(self) -> torch.Tensor:
        """The float weight the integers stand for: q x scale, row by row."""
        q = unpack_int4(self.q) if self.bits == 4 else self.q
        return q.to(self.scale.dtype) * self.scale[:, None]

    def weight_bytes(self) -> int:
        """Bytes of the stored weight: the integers and the scales."""
        return self.q.numel() * self.q.element_size() + self.scale.numel() * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}"


@validate.checked
def is_quantized(model: TinyGPT) -> bool:
    """True if any of the model's linear layers already holds quantized weights."""
    return any(isinstance(module, QuantizedLinear) for module in model.modules())


@validate.checked
def quantize(model: TinyGPT, bits: int = 8) -> TinyGPT:
    """A copy of `model` whose blocks' linear layers store `bits`-bit weights (8 or 4).

    The tied token embedding / output layer stays float32 (see the module docstring).
    Quantizing an already-quantized model is refused: its rounding error would be
    rounded again, and its integers are no longer the original weights.
    """
    check_model(model)
    _check_bits(bits)
    if is_quantized(model):
        raise ValueError("model is already quantized (its linear layers hold integer weights); "
                         "quantize the original float32 model instead, with bits=8 or bits=4")
    quantized = copy.deepcopy(model)
    for parent, name in block_linears(quantized):
        setattr(parent, name, QuantizedLinear(getattr(parent, name), bits))
    return quantized.eval()


# --- What a real int8 kernel does on a memory-bound layer ------------------------------------

# PyTorch's weight-only int8 matmul (activations in bf16, int8 weights, one scale per output
# channel): an internal operator, not a documented API, so it is looked up and may be absent.
_INT8_KERNEL = getattr(torch, "_weight_int8pack_mm", None)


def _layer_pass(weights: list, step: Callable) -> Callable:
    """A function running one token through every layer with `step(x, weight)`."""
    def run(x: torch.Tensor) -> torch.Tensor:
        for weight in weights:
            x = step(x, weight)
        return x
    return run


@validate.checked
def time_memory_bound_layers(size: int = 2048, layers: int = 8, repeats: int | None = None,
                             seed: int = 0) -> dict[str, Spread]:
    """Milliseconds to run one token (batch 1, one thread) through `layers` layers of
    `size` x `size` weights, stored four ways, as Spreads over `repeats` runs.

    The weights (tens of MB) do not fit in a CPU cache, so every run reads them all from
    memory: a memory-bound layer, as decoding a large model is. The ways: float32 (4 bytes
    a weight); bfloat16 (2); int8 dequantized to float32 before the matmul (what this
    module's QuantizedLinear does: 1 byte stored, more moved); int8 read directly by
    PyTorch's int8 kernel (1 byte), left out where this PyTorch has none.
    """
    validate.whole("size", size, highest=16_384)  # 16,384 x 16,384 float32: 1 GB a layer
    validate.whole("layers", layers, highest=64)
    repeats = validate.whole("repeats", runtime.pick(21, 5) if repeats is None else repeats,
                             highest=1000)
    generator = torch.Generator().manual_seed(validate.seed("seed", seed))
    weights = [torch.randn(size, size, generator=generator) / size**0.5 for _ in range(layers)]
    packed = [quantize_weight(w) for w in weights]
    ways = {
        "float32 weights (4 bytes each)": (_layer_pass(weights, F.linear), torch.float32),
        "bfloat16 weights (2 bytes each)": (
            _layer_pass([w.bfloat16() for w in weights], F.linear), torch.bfloat16),
        "int8 weights, dequantized to float32 first (QuantizedLinear)": (_layer_pass(
            packed, lambda x, qs: F.linear(x, qs[0].float() * qs[1][:, None])), torch.float32),
    }
    if _INT8_KERNEL is not None:
        ways["int8 weights read by an int8 kernel (1 byte each)"] = (_layer_pass(
            [(q, s.bfloat16()) for q, s in packed], lambda x, qs: _INT8_KERNEL(x, *qs)),
            torch.bfloat16)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {name: _time_ms(run, torch.randn(1, size, generator=generator).to(dtype), repeats)
                for name, (run, dtype) in ways.items()}
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def _time_ms(run: Callable, x: torch.Tensor, repeats: int) -> Spread:
    run(x)  # warm-up: first-call set-up and page faults are not the layer's cost
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - start) * 1e3)
    return Spread.of(times)
