"""Making a trained model cheaper to serve: quantization, pruning, distillation.

Each technique takes the course's TinyGPT and returns a new model (the original is
never changed), so notebook 06 can measure each against the original:

- **Quantization** (`quantize`) stores each weight of the transformer blocks' linear
  layers as an 8-bit (or 4-bit) integer plus one float scale per output channel (a row
  of the weight matrix). Symmetric: w ~= scale x q, with q in -127..127 for 8 bits
  and -7..7 for 4 bits. The forward pass turns q back into floats (dequantizes) and
  runs an ordinary float matmul, so the maths, the FLOPs and (on a CPU) the speed stay
  those of float32: what shrinks is the bytes to store and to read.
- **Pruning** removes the weights that matter least. `prune_unstructured` zeroes the
  smallest-magnitude weights wherever they are: the matrices keep their shape, and a
  dense matmul multiplies the zeros just the same, so nothing gets faster.
  `prune_mlp_neurons` removes whole MLP neurons (a row of the first matrix and the
  matching column of the second), which leaves a genuinely smaller dense model.
- **Distillation** (`distill`) trains a smaller student to match a teacher's softened
  next-token probabilities (Hinton et al. 2015), through the same training loop as
  notebook 02 (`course_lib.training.train` with a `loss_fn`).

The token embedding, which the output layer shares (weight tying), is left in float32
and unpruned throughout: it is a table look-up on the way in, and a small share of
this model.

`payback` then asks when distillation's extra training compute is repaid by serving
the cheaper student instead of the teacher, using course_lib.costs; `PaybackExplorer`
is its widget.
"""

from __future__ import annotations

import copy
import html
import math
from dataclasses import dataclass

import ipywidgets as W
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from course_lib import (
    costs,
    flops,
    inference,
    plots,
    references,
    runtime,
    training,
    validate,
    widgets,
)
from course_lib.data import TokenData
from course_lib.model import ModelConfig, TinyGPT

BITS = (8, 4)

# --- Measuring a model: bytes, FLOPs, validation loss -------------------------------------------


def _check_model(model) -> None:
    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")


def _block_linears(model: TinyGPT) -> list[tuple[nn.Module, str]]:
    """(parent module, attribute name) of every linear layer inside the transformer blocks."""
    found = []
    for block in model.blocks:
        for parent in (block.attn, block.mlp):
            for name in ("c_attn", "c_proj", "c_fc"):
                if hasattr(parent, name):
                    found.append((parent, name))
    return found


def model_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer, each storage counted once (tied weights once)."""
    storages = {}
    for tensor in list(model.parameters()) + list(model.buffers()):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def linear_weight_bytes(model: TinyGPT) -> int:
    """Bytes of the blocks' linear-layer weights (what quantization shrinks; biases excluded).

    For a quantized layer: its integer weights plus its per-channel scales.
    """
    _check_model(model)
    total = 0
    for parent, name in _block_linears(model):
        layer = getattr(parent, name)
        if isinstance(layer, QuantizedLinear):
            total += layer.weight_bytes()
        else:
            total += layer.weight.numel() * layer.weight.element_size()
    return total


def matmul_weights(model: TinyGPT) -> int:
    """Weights each token is multiplied by in a forward pass, counted from the real layers.

    Equals course_lib.flops.matmul_params(model.config) for an unmodified model; smaller
    after structured pruning. Zeroed weights still count: a dense matmul multiplies them.
    """
    _check_model(model)
    total = sum(getattr(parent, name).in_features * getattr(parent, name).out_features
                for parent, name in _block_linears(model))
    return total + model.lm_head.weight.numel()


def forward_flops_per_token(model: TinyGPT, context: int) -> int:
    """Forward FLOPs one token costs in this model: 2 x matmul_weights + the attention term.

    The attention term (course_lib.flops) depends only on layers, width and context, which
    none of the techniques here change.
    """
    attention = flops.forward_flops_per_token(model.config, context)["attention"]
    return 2 * matmul_weights(model) + attention


def nonzero_fraction(model: TinyGPT) -> float:
    """Share of the blocks' linear-layer weights that are not zero (1.0 for a dense model)."""
    _check_model(model)
    weights = [_float_weight(getattr(parent, name)) for parent, name in _block_linears(model)]
    return sum(int((w != 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def _float_weight(layer: nn.Module) -> torch.Tensor:
    return layer.dequantized_weight() if isinstance(layer, QuantizedLinear) else layer.weight


def validation_loss(model: TinyGPT, data: TokenData, batches: int | None = None,
                    batch_size: int = 32, seed: int = 0) -> float:
    """Mean cross-entropy (nats per token) on `batches` random validation windows.

    The windows depend only on `seed`, so every model is scored on the same text and the
    difference between two models is not sampling noise.
    """
    _check_model(model)
    batches = validate.whole("batches", runtime.pick(40, 6) if batches is None else batches)
    return training.mean_loss(model, data.val, batches, batch_size,
                              torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class Measurement:
    """What one version of the model costs and how good it is. Units are in the names."""

    name: str
    model_bytes: int
    linear_weight_bytes: int
    flops_per_token: int  # forward FLOPs of one token at a full context, as executed
    nonzero_fraction: float  # of the blocks' linear-layer weights
    val_loss: float  # nats per token
    ms_per_token: float  # median decode time per output token, batch 1
    tokens_per_s: float  # median output tokens per second of a whole request, batch 1

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
            "tokens/s": self.tokens_per_s,
        }


def measure(name: str, model: TinyGPT, data: TokenData, *, new_tokens: int = 48,
            repeats: int | None = None) -> Measurement:
    """Size, FLOPs, validation loss and speed (course_lib.inference.time_request) of a model."""
    repeats = runtime.pick(7, 3) if repeats is None else repeats
    timing = inference.time_request(model, batch_size=1, prompt_tokens=8, new_tokens=new_tokens,
                                    repeats=repeats)
    return Measurement(
        name=name,
        model_bytes=model_bytes(model),
        linear_weight_bytes=linear_weight_bytes(model),
        flops_per_token=forward_flops_per_token(model, model.config.block_size),
        nonzero_fraction=nonzero_fraction(model),
        val_loss=validation_loss(model, data),
        ms_per_token=timing.time_per_output_token_s.median * 1e3,
        tokens_per_s=timing.tokens_per_s.median,
    )


def comparison_table(measurements: list[Measurement]) -> str:
    """A Markdown table of measurements, the first row being the reference (the original)."""
    reference = measurements[0]
    rows = [m.row(reference) for m in measurements]
    formats = {"size (MB)": "{:.2f}", "size vs original": "{:.2f}x",
               "linear weights (MB)": "{:.2f}", "FLOPs per token (M)": "{:.2f}",
               "nonzero weights": "{:.0%}", "val loss (nats)": "{:.3f}",
               "loss change (nats)": "{:+.3f}", "ms per token": "{:.2f}", "tokens/s": "{:.0f}"}
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["model"]] + [formats[k].format(row[k]) for k in header[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_quality_vs_cost(measurements: list[Measurement], tolerance: float = 0.05):
    """Validation loss against size (left) and time per token (right), one point per model.

    The first measurement is the original. Returns a matplotlib Figure whose title names
    the smallest model within `tolerance` nats of the original.
    """
    reference = measurements[0]
    palette = plots.colors()
    figure, (size_axes, time_axes) = plots.new_figure(width=10, height=4.2, ncols=2)
    figure.subplots_adjust(top=0.84, bottom=0.13, left=0.08)
    for i, m in enumerate(measurements):
        color = palette[i % len(palette)]
        marker = "*" if i == 0 else "o"
        for axes, x in ((size_axes, m.model_bytes / 1e6), (time_axes, m.ms_per_token)):
            axes.scatter([x], [m.val_loss], color=color, marker=marker, s=120 if i == 0 else 45,
                         zorder=3, label=m.name)
    for axes in (size_axes, time_axes):
        axes.axhline(reference.val_loss + tolerance, color="0.4", ls=":", lw=1,
                     label=f"original + {tolerance} nats")
        axes.set_ylabel("validation loss (nats per character)")
        axes.grid(alpha=0.3)
    plots.log_axis(size_axes, "x", "model size (MB, log scale)", subs=(1.0, 2.0, 5.0))
    time_axes.set_xlabel("time per generated token (ms, batch 1)")
    size_axes.set_title("Quality against bytes", fontsize=10)
    time_axes.set_title("Quality against speed", fontsize=10)
    time_axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.subplots_adjust(right=0.8)
    close = [m for m in measurements if m.val_loss - reference.val_loss <= tolerance]
    best = min(close, key=lambda m: m.model_bytes)
    figure.suptitle(f"Smallest model within {tolerance} nats of the original: {best.name} "
                    f"({reference.model_bytes / best.model_bytes:.1f}x fewer bytes)")
    return figure


# --- Quantization ---------------------------------------------------------------------------


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


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Two 4-bit values per byte: int8 q in -7..7, (out, in) with `in` even -> uint8 (out, in/2)."""
    nibbles = (q.to(torch.int16) + 8).to(torch.uint8)  # -7..7 -> 1..15, fits in 4 bits
    return nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """The inverse of pack_int4: uint8 (out, in/2) -> int8 (out, in) in -7..7."""
    low = (packed & 0x0F).to(torch.int8) - 8
    high = (packed >> 4).to(torch.int8) - 8
    return torch.stack([low, high], dim=2).flatten(1)


def _check_bits(bits) -> None:
    if bits not in BITS or isinstance(bits, bool):
        raise ValueError(f"bits must be 8 or 4, got {bits!r}")


class QuantizedLinear(nn.Module):
    """A linear layer whose weight is stored as integers plus one scale per output channel.

    8 bits: an int8 tensor (1 byte per weight). 4 bits: two weights packed per byte
    (0.5 bytes per weight). The forward pass dequantizes (q x scale) and calls an
    ordinary float matmul, as weight-only quantization does on hardware without
    integer matmul kernels.
    """

    def __init__(self, linear: nn.Linear, bits: int = 8):
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


def is_quantized(model: TinyGPT) -> bool:
    """True if any of the model's linear layers already holds quantized weights."""
    return any(isinstance(module, QuantizedLinear) for module in model.modules())


def quantize(model: TinyGPT, bits: int = 8) -> TinyGPT:
    """A copy of `model` whose blocks' linear layers store `bits`-bit weights (8 or 4).

    The tied token embedding / output layer stays float32 (see the module docstring).
    Quantizing an already-quantized model is refused: its rounding error would be
    rounded again, and its integers are no longer the original weights.
    """
    _check_model(model)
    _check_bits(bits)
    if is_quantized(model):
        raise ValueError("model is already quantized (its linear layers hold integer weights); "
                         "quantize the original float32 model instead, with bits=8 or bits=4")
    quantized = copy.deepcopy(model)
    for parent, name in _block_linears(quantized):
        setattr(parent, name, QuantizedLinear(getattr(parent, name), bits))
    return quantized.eval()


# --- Pruning --------------------------------------------------------------------------------


def _check_prunable(model, amount) -> None:
    _check_model(model)
    # Below 1: removing every weight would leave no model.
    validate.positive("amount (the fraction of weights to remove)", amount, allow_zero=True,
                      below=1)
    if is_quantized(model):
        raise ValueError("model is quantized: prune the float32 model first, then quantize")


@torch.no_grad()
def prune_unstructured(model: TinyGPT, amount: float) -> TinyGPT:
    """A copy of `model` with the smallest-magnitude `amount` (0 to <1) of each block
    linear layer's weights set to zero.

    The matrices keep their shape and their bytes, and a dense matmul multiplies the
    zeros as it would any number: the model is no faster and no smaller, only sparser.
    Only sparse kernels or hardware that skip zeros (for example 2:4 structured sparsity
    on recent GPUs) turn sparsity into speed.
    """
    _check_prunable(model, amount)
    pruned = copy.deepcopy(model)
    for parent, name in _block_linears(pruned):
        weight = getattr(parent, name).weight
        n_zero = round(amount * weight.numel())
        if n_zero:
            smallest = torch.topk(weight.abs().flatten(), n_zero, largest=False).indices
            weight.view(-1)[smallest] = 0.0
    return pruned.eval()


def neuron_importance(mlp: nn.Module) -> torch.Tensor:
    """How much each MLP hidden neuron can matter: |weights in| x |weights out| (L2 norms).

    A neuron reads the input through its row of c_fc and writes to the output through
    its column of c_proj; if either is small, removing the neuron changes little.
    """
    return mlp.c_fc.weight.norm(dim=1) * mlp.c_proj.weight.norm(dim=0)


@torch.no_grad()
def prune_mlp_neurons(model: TinyGPT, amount: float) -> TinyGPT:
    """A copy of `model` with the least important `amount` (0 to <1) of each layer's MLP
    neurons removed: a smaller dense model, with fewer FLOPs per token.

    Each MLP's c_fc loses the rows and c_proj the columns of the removed neurons, so the
    matrices really shrink (4 n_embd hidden neurons become (1 - amount) x 4 n_embd).
    """
    _check_prunable(model, amount)
    pruned = copy.deepcopy(model)
    for block in pruned.blocks:
        mlp = block.mlp
        hidden = mlp.c_fc.out_features
        keep_count = max(1, round((1 - amount) * hidden))
        keep = torch.topk(neuron_importance(mlp), keep_count).indices.sort().values
        c_fc = nn.Linear(mlp.c_fc.in_features, keep_count, bias=mlp.c_fc.bias is not None)
        c_fc.weight.copy_(mlp.c_fc.weight[keep])
        c_proj = nn.Linear(keep_count, mlp.c_proj.out_features,
                           bias=mlp.c_proj.bias is not None)
        c_proj.weight.copy_(mlp.c_proj.weight[:, keep])
        if c_fc.bias is not None:
            c_fc.bias.copy_(mlp.c_fc.bias[keep])
        if c_proj.bias is not None:
            c_proj.bias.copy_(mlp.c_proj.bias)
        mlp.c_fc, mlp.c_proj = c_fc, c_proj
    return pruned.eval()


# --- Distillation ---------------------------------------------------------------------------


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor, temperature: float = 2.0,
                      alpha: float = 0.5) -> torch.Tensor:
    """alpha x soft loss + (1 - alpha) x hard loss, per token (Hinton et al. 2015).

    soft: KL divergence from the teacher's to the student's next-token distribution, both
    softened by dividing the logits by `temperature` (above 1 the teacher's "second
    choices" carry more weight), multiplied by temperature**2 so that its gradients keep
    the same size whatever the temperature. hard: the usual cross-entropy with the data.
    """
    _check_distillation_settings(temperature, alpha)
    vocab = student_logits.shape[-1]
    student = F.log_softmax(student_logits.reshape(-1, vocab) / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.reshape(-1, vocab) / temperature, dim=-1)
    soft = F.kl_div(student, teacher, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits.reshape(-1, vocab), targets.reshape(-1))
    return alpha * temperature**2 * soft + (1 - alpha) * hard


def _check_distillation_settings(temperature, alpha) -> None:
    validate.positive("temperature", temperature)
    validate.positive("alpha (the weight of the teacher's soft targets)", alpha,
                      allow_zero=True, upper=1)


def check_student_config(teacher: ModelConfig, student: ModelConfig) -> None:
    """Refuse a student that is not smaller than its teacher, or cannot read the same tokens."""
    if not isinstance(student, ModelConfig):
        raise TypeError(f"student_config must be a ModelConfig, got {type(student).__name__}")
    for name in ("vocab_size", "block_size"):
        if getattr(student, name) != getattr(teacher, name):
            raise ValueError(f"student_config.{name} must equal the teacher's "
                             f"({getattr(teacher, name)}), got {getattr(student, name)}")
    n_teacher, n_student = flops.matmul_params(teacher), flops.matmul_params(student)
    if student.n_layer > teacher.n_layer or student.n_embd > teacher.n_embd \
            or n_student >= n_teacher:
        raise ValueError(
            f"student_config must be smaller than the teacher: n_layer <= {teacher.n_layer}, "
            f"n_embd <= {teacher.n_embd}, and fewer than {n_teacher:,} matmul weights; got "
            f"n_layer={student.n_layer}, n_embd={student.n_embd} ({n_student:,} weights)")


def distill(teacher: TinyGPT, student: TinyGPT, data: TokenData, config: training.TrainConfig,
            *, temperature: float = 2.0, alpha: float = 0.5, progress: bool = False
            ) -> training.History:
    """Train `student` (in place) on the teacher's softened outputs and the data; return its
    History. Same loop, batches and schedule as course_lib.training.train without a teacher.
    """
    _check_model(teacher)
    _check_model(student)
    check_student_config(teacher.config, student.config)
    _check_distillation_settings(temperature, alpha)
    teacher.eval()

    def loss_fn(model: TinyGPT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the teacher only answers; it does not learn
            teacher_logits = teacher(x)[0]
        return distillation_loss(model(x)[0], teacher_logits, y, temperature, alpha)

    return training.train(student, data, config, progress=progress, live_plot=False,
                          loss_fn=loss_fn)


@dataclass
class DistillationResult:
    """The same student trained twice with the same budget: with a teacher and without."""

    student_config: ModelConfig
    train_config: training.TrainConfig
    distilled: TinyGPT
    alone: TinyGPT
    distilled_history: training.History
    alone_history: training.History
    distilled_val_loss: float  # nats per token, on validation_loss's fixed windows
    alone_val_loss: float

    @property
    def gain(self) -> float:
        """How much lower (better) the distilled student's validation loss is, in nats."""
        return self.alone_val_loss - self.distilled_val_loss

    @property
    def training_tokens(self) -> int:
        return self.distilled_history.tokens


def compare_distillation(teacher: TinyGPT, student_config: ModelConfig, data: TokenData,
                         config: training.TrainConfig, *, temperature: float = 2.0,
                         alpha: float = 0.5, progress: bool = False) -> DistillationResult:
    """Train two identical students (same initial weights, batches and steps), one with the
    teacher's soft targets and one on the data alone, and score both on the same text."""
    _check_model(teacher)
    check_student_config(teacher.config, student_config)
    runtime.seed_everything(config.seed)
    distilled = TinyGPT(student_config)
    alone = copy.deepcopy(distilled)  # same starting point: only the teacher differs
    distilled_history = distill(teacher, distilled, data, config, temperature=temperature,
                                alpha=alpha, progress=progress)
    alone_history = training.train(alone, data, config, progress=progress, live_plot=False)
    return DistillationResult(student_config, config, distilled.eval(), alone.eval(),
                              distilled_history, alone_history,
                              validation_loss(distilled, data), validation_loss(alone, data))


# --- Payback: when does distillation's extra training pay for itself? -------------------------


@dataclass(frozen=True)
class Payback:
    """Making a student vs serving the teacher, in course_lib.costs' four units."""

    extra_training: costs.Spend  # the student's training, teacher's forward passes included
    teacher_per_request: costs.Spend
    student_per_request: costs.Spend
    requests_per_day: float

    def saving_per_request(self, metric: str = "usd") -> float:
        """What serving one request with the student instead of the teacher saves."""
        return self.teacher_per_request[metric] - self.student_per_request[metric]

    def requests(self, metric: str = "usd") -> float:
        """Requests served by the student after which the extra training is repaid."""
        return self.extra_training[metric] / self.saving_per_request(metric)

    def days(self, metric: str = "usd") -> float:
        """Days of traffic until payback (inf with no traffic)."""
        if self.requests_per_day == 0:
            return math.inf
        return self.requests(metric) / self.requests_per_day


def payback(teacher: costs.Scenario, student_params: float, distillation_tokens: float
            ) -> Payback:
    """The extra training spend of distilling a `student_params` student from the `teacher`
    scenario's model on `distillation_tokens` tokens, against its per-request saving.

    Extra training: the student's own training (6 N_student D FLOPs) plus one teacher
    forward pass per training token to produce the soft targets (2 N_teacher D), both at
    the scenario's training utilisation and prices. Per request: 2 N FLOPs per token for
    each model, at the serving utilisation.
    """
    if not isinstance(teacher, costs.Scenario):
        raise TypeError(f"teacher must be a costs.Scenario, got {type(teacher).__name__}")
    if validate.positive("student_params", student_params) >= teacher.n_params:
        raise ValueError(f"student_params must be > 0 and smaller than the teacher's "
                         f"{plots.fmt(teacher.n_params)} parameters, got {student_params!r}")
    validate.positive("distillation_tokens", distillation_tokens)
    student = teacher.replace(n_params=student_params, training_tokens=distillation_tokens)
    # The teacher's forward passes over the same tokens cost 2/6 of training it on them.
    forward_share = 1 / flops.TRAIN_PER_FORWARD
    teacher_forward = costs.training_cost(teacher.replace(training_tokens=distillation_tokens))
    student_training = costs.training_cost(student)
    extra = costs.Spend(*(student_training[m] + forward_share * teacher_forward[m]
                          for m in costs.METRICS))
    return Payback(extra, costs.cost_per_request(teacher), costs.cost_per_request(student),
                   teacher.requests_per_day)


def draw_payback(ax, result: Payback, metric: str = "usd") -> str:
    """Cumulative spend against requests served: serve the teacher, or distil then serve.

    Returns the title, which states the finding.
    """
    palette = plots.colors()
    break_even = result.requests(metric)
    requests = np.logspace(math.log10(break_even) - 3, math.log10(break_even) + 3, 200)
    teacher = requests * result.teacher_per_request[metric]
    student = result.extra_training[metric] + requests * result.student_per_request[metric]
    ax.plot(requests, teacher, color=palette[0], lw=2, label="serve the teacher")
    ax.plot(requests, student, color=palette[1], lw=2, label="distil a student, serve it")
    level = break_even * result.teacher_per_request[metric]
    ax.scatter([break_even], [level], color="k", zorder=4)
    ax.annotate(f"payback: {plots.fmt(break_even)} requests", (break_even, level),
                xytext=(8, -14), textcoords="offset points", fontsize=8)
    if result.requests_per_day > 0:
        ax.axvline(result.requests_per_day * 30, color="0.4", ls=":", lw=1,
                   label="one month of your traffic")
    plots.log_axis(ax, "x", "requests served")
    plots.log_axis(ax, "y", f"cumulative spend ({costs.METRIC_UNITS[metric]})")
    ax.set_xlim(requests[0], requests[-1])
    ax.legend(fontsize=8, loc="upper left")
    title = (f"Distillation pays for itself after {plots.fmt(break_even)} requests "
             f"({costs.format_days(result.days(metric))} of traffic)")
    ax.set_title(title, fontsize=10)
    return title


class PaybackExplorer(widgets.Explorer):
    """Distil a student from a teacher: the extra training spend, the per-request saving,
    and the traffic at which it pays back (costs as in notebook 05's presets)."""

    figsize = (7.0, 3.6)

    def __init__(self, preset: str = "open_8b", teacher_params: float | None = None,
                 student_params: float | None = None, distillation_tokens: float | None = None):
        self._presets = costs.presets()
        if preset not in self._presets:
            raise ValueError(f"preset must be one of {', '.join(self._presets)}, got {preset!r}")
        s = self._presets[preset]
        v = references.value
        super().__init__({
            "preset": W.Dropdown(options=widgets.PRESET_LABELS, value=preset,
                                 description="costs as in", **widgets.wide()),
            "teacher_params": widgets.log_slider(
                "teacher parameters", v("llama3_70b.params") if teacher_params is None
                else teacher_params, 5, 12.5),
            "student_params": widgets.log_slider(
                "student parameters", v("llama32_1b.params") if student_params is None
                else student_params, 4, 12),
            "tokens": widgets.log_slider(
                "distillation tokens", v("llama32_1b.training_tokens")
                if distillation_tokens is None else distillation_tokens, 6, 14),
            "requests_per_day": widgets.log_slider("requests per day", s.requests_per_day, 0,
                                                   11),
            "output_tokens": widgets.log_slider("answer tokens/request", s.output_tokens, 0, 5),
            "metric": W.Dropdown(options=widgets.METRIC_LABELS, value="usd",
                                 description="measure in", **widgets.wide()),
        })

    def result(self) -> Payback:
        """The Payback the controls describe."""
        c = {name: control.value for name, control in self.controls.items()}
        teacher = self._presets[c["preset"]].replace(
            n_params=c["teacher_params"], requests_per_day=c["requests_per_day"],
            output_tokens=c["output_tokens"])
        return payback(teacher, c["student_params"], c["tokens"])

    def draw(self, axes) -> str:
        metric = self.controls["metric"].value
        result = self.result()
        title = draw_payback(axes[0], result, metric)
        unit = costs.METRIC_UNITS[metric]
        return f"<p><b>{html.escape(title)}</b></p>" + widgets.table_html([
            ("extra training (student + teacher's forward passes)",
             plots.fmt(result.extra_training[metric], unit)),
            ("teacher's cost per request", plots.fmt(result.teacher_per_request[metric], unit)),
            ("student's cost per request", plots.fmt(result.student_per_request[metric], unit)),
            ("pays back after", f"{plots.fmt(result.requests(metric))} requests, "
             f"{costs.format_days(result.days(metric))} at your traffic"),
        ])
