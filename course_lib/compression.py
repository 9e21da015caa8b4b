"""Measuring a model before and after compression: bytes, FLOPs, quality, speed.

Torch layer. Notebook 06 makes cheaper versions of the course's TinyGPT with
course_lib.quantize, course_lib.prune and course_lib.distill, and scores every version
with the same yardstick here:

- `model_bytes` (every parameter and buffer, tied weights once) and `linear_weight_bytes`
  (the blocks' linear-layer weights, what quantization shrinks);
- `matmul_weights` and `forward_flops_as_built`: counted from the layers as they stand, so
  structurally pruned neurons no longer count, while zeroed weights still do (a dense
  matmul multiplies them);
- `nonzero_fraction`, `validation_loss` (fixed windows, so two models are compared on the
  same text) and the decode speed of course_lib.inference.time_request;
- `measure` gathers all of these into a `Measurement`; `comparison_table` prints several
  side by side. course_lib.figures.compression draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_lib import flops, inference, runtime, training, validate
from course_lib.data import TokenData
from course_lib.model import TinyGPT
from course_lib.quantize import QuantizedLinear, block_linears, check_model
from course_lib.training_config import MAX_BATCH_SIZE


@validate.checked
def model_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer, each storage counted once (tied weights once)."""
    storages = {}
    for tensor in list(model.parameters()) + list(model.buffers()):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


@validate.checked
def linear_weight_bytes(model: TinyGPT) -> int:
    """Bytes of the blocks' linear-layer weights (what quantization shrinks; biases excluded).

    For a quantized layer: its integer weights plus its per-channel scales.
    """
    check_model(model)
    total = 0
    for parent, name in block_linears(model):
        layer = getattr(parent, name)
        if isinstance(layer, QuantizedLinear):
            total += layer.weight_bytes()
        else:
            total += layer.weight.numel() * layer.weight.element_size()
    return total


@validate.checked
def matmul_weights(model: TinyGPT) -> int:
    """Weights each token is multiplied by in a forward pass, counted from the real layers.

    Equals course_lib.flops.matmul_params(model.config) for an unmodified model; smaller
    after structured pruning. Zeroed weights still count: a dense matmul multiplies them.
    """
    check_model(model)
    total = sum(getattr(parent, name).in_features * getattr(parent, name).out_features
                for parent, name in block_linears(model))
    return total + model.lm_head.weight.numel()


@validate.checked
def forward_flops_as_built(model: TinyGPT, context: int) -> int:
    """Forward FLOPs one token costs in `model` as it stands: 2 x matmul_weights (its real
    layer shapes, structurally pruned neurons removed) + the attention term.

    course_lib.flops.forward_flops_breakdown counts a ModelConfig, the model as designed;
    this counts the layers the model has now. The attention term depends only on layers,
    width and context, which none of the compression techniques change.
    """
    attention = flops.forward_flops_breakdown(model.config, context)["attention"]
    return 2 * matmul_weights(model) + attention


def _float_weight(layer: nn.Module) -> torch.Tensor:
    return layer.dequantized_weight() if isinstance(layer, QuantizedLinear) else layer.weight


@validate.checked
def nonzero_fraction(model: TinyGPT) -> float:
    """Share of the blocks' linear-layer weights that are not zero (1.0 for a dense model)."""
    check_model(model)
    weights = [_float_weight(getattr(parent, name)) for parent, name in block_linears(model)]
    return sum(int((w != 0).sum()) for w in weights) / sum(w.numel() for w in weights)


@validate.checked
def validation_loss(model: TinyGPT, data: TokenData, batches: int | None = None,
                    batch_size: int = 32, seed: int = 0) -> float:
    """Mean cross-entropy (nats per token) on `batches` random validation windows.

    The windows depend only on `seed`, so every model is scored on the same text and the
    difference between two models is not sampling noise.
    """
    check_model(model)
    batches = validate.whole("batches", runtime.pick(40, 6) if batches is None else batches,
                             highest=training.MAX_EVAL_BATCHES)
    validate.whole("batch_size", batch_size, highest=MAX_BATCH_SIZE)
    return training.mean_loss(model, data.val, batches, batch_size,
                              torch.Generator().manual_seed(validate.seed("seed", seed)))


@dataclass(frozen=True)
class Measurement:
    """What one version of the model costs and how good it is. Units are in the names."""

    name: str
    model_bytes: int
    linear_weight_bytes: int
    flops_per_token: int  # forward FLOPs of one token at a full context, as built
    nonzero_fraction: float  # of the blocks' linear-layer weights
    val_loss: float  # nats per token
    ms_per_token: float  # median decode time per output token, batch 1
    tokens_per_s: float  # median output tokens per second of a whole request, batch 1
    ms_low: float | None = None  # fastest and slowest of the repeats behind ms_per_token
    ms_high: float | None = None

    @validate.checked
    def row(self, reference: Measurement) -> dict:
        """This measurement as a table row, with ratios to `reference` (the original)."""
        return {
            "model": self.name,
            "size (MB)": self.model_bytes / 1e6,
            "size vs original": self.model_bytes / reference.model_bytes,
            "linear weights (MB)": self.linear_weight_bytes / 1e6,
            "FLOPs per token (M)": self.flops_per_token / 1e6,
            "nonzero weights": self.nonzero_fraction,
            "val loss (nats)": self.val_loss,
            "loss change (nats)": self.val_loss - reference.val_loss,
            "ms per token": self.ms_per_token,
            "ms range": None if self.ms_low is None else (self.ms_low, self.ms_high),
            "tokens/s": self.tokens_per_s,
        }


@validate.checked
def measure(name: str, model: TinyGPT, data: TokenData, *, new_tokens: int = 48,
            repeats: int | None = None) -> Measurement:
    """Size, FLOPs, validation loss and speed (course_lib.inference.time_request) of a model.

    The speed is the median over `repeats` requests, with the fastest and slowest beside it:
    at batch 1 two runs of the same model differ by several percent.
    """
    repeats = runtime.pick(7, 3) if repeats is None else repeats
    timing = inference.time_request(model, batch_size=1, prompt_tokens=8, new_tokens=new_tokens,
                                    repeats=repeats)
    return Measurement(
        name=name,
        model_bytes=model_bytes(model),
        linear_weight_bytes=linear_weight_bytes(model),
        flops_per_token=forward_flops_as_built(model, model.config.block_size),
        nonzero_fraction=nonzero_fraction(model),
        val_loss=validation_loss(model, data),
        ms_per_token=timing.time_per_output_token_s.median * 1e3,
        tokens_per_s=timing.tokens_per_s.median,
        ms_low=timing.time_per_output_token_s.low * 1e3,
        ms_high=timing.time_per_output_token_s.high * 1e3,
    )


def comparison_table(measurements: list[Measurement]) -> str:
    """A Markdown table of measurements, the first row being the reference (the original)."""
    validate.instance("measurements", measurements, (list, tuple))
    if not measurements or not all(isinstance(m, Measurement) for m in measurements):
        raise ValueError("measurements must be a non-empty list of Measurement (from measure), "
                         f"got {measurements!r:.80}")
    reference = measurements[0]
    rows = [m.row(reference) for m in measurements]
    formats = {"size (MB)": "{:.2f}", "size vs original": "{:.2f}x",
               "linear weights (MB)": "{:.2f}", "FLOPs per token (M)": "{:.2f}",
               "nonzero weights": "{:.0%}", "val loss (nats)": "{:.3f}",
               "loss change (nats)": "{:+.3f}", "ms per token": "{:.2f}", "tokens/s": "{:.0f}"}

    def cell(key: str, value) -> str:
        if key == "ms range":
            return "-" if value is None else f"{value[0]:.2f} to {value[1]:.2f}"
        return formats[key].format(value)

    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["model"]] + [cell(k, row[k]) for k in header[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
