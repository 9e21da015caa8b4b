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

import copy
import sys

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from course_lib import references, validate
from course_lib.model import ModelConfig, TinyGPT

# A training step costs this many forward passes: 6 FLOPs per parameter per token against
# 2 (the backward pass costs about twice the forward).
TRAIN_PER_FORWARD = (references.value("flops.train_per_param_token")
                     / references.value("flops.forward_per_param_token"))

# Bytes one weight takes in each storage format (int4 packs two weights in a byte).
BYTES_PER_WEIGHT: dict[str, float] = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0,
                                      "int4": 0.5}


def bytes_per_weight(precision: str) -> float:
    """Bytes per stored weight for 'fp32', 'fp16', 'bf16', 'int8' or 'int4'."""
    try:
        return BYTES_PER_WEIGHT[precision]
    except (KeyError, TypeError):
        raise ValueError(f"unknown precision {precision!r}; valid choices: "
                         f"{', '.join(BYTES_PER_WEIGHT)}") from None

# --- Analytic counts ------------------------------------------------------------------------


def matmul_params(config: ModelConfig) -> int:
    """Weights each token is multiplied by in one forward pass (see the module docstring)."""
    d, kv_dim = config.n_embd, config.kv_heads * config.head_dim
    per_layer = d * (d + 2 * kv_dim) + d * d + 2 * (4 * d * d)  # qkv, attn out, MLP in + out
    return config.n_layer * per_layer + d * config.vocab_size  # + lm_head


def forward_flops_per_token(config: ModelConfig, context: int) -> dict[str, int]:
    """Forward FLOPs for one token whose query attends over `context` positions.

    Returns {"weights": 2 P, "attention": 4 n_layer context n_embd, "total": both}.
    """
    validate.whole("context", context)
    weights = 2 * matmul_params(config)
    attention = 4 * config.n_layer * context * config.n_embd
    return {"weights": weights, "attention": attention, "total": weights + attention}


def forward_flops(config: ModelConfig, seq_len: int, batch_size: int = 1) -> int:
    """Forward FLOPs for `batch_size` sequences of `seq_len` tokens, as TinyGPT computes them.

    Every position's query is scored against all seq_len keys (then masked), so each
    token costs forward_flops_per_token(config, context=seq_len).
    """
    validate.whole("seq_len", seq_len)
    validate.whole("batch_size", batch_size)
    return batch_size * seq_len * forward_flops_per_token(config, seq_len)["total"]


def train_flops_per_step(config: ModelConfig, batch_size: int, seq_len: int | None = None) -> int:
    """FLOPs of one training step (forward + backward = 3 x forward) on full-length blocks."""
    return round(TRAIN_PER_FORWARD * forward_flops(config, seq_len or config.block_size,
                                                   batch_size))


def kaplan_forward_flops_per_token(n_params_nonembed: int, n_layer: int, n_ctx: int,
                                   d_model: int) -> float:
    """Kaplan et al. 2020's approximation: 2 N + 2 n_layer n_ctx d_model FLOPs per token."""
    per_param = references.value("flops.forward_per_param_token")
    return per_param * n_params_nonembed + 2 * n_layer * n_ctx * d_model


def six_n_d(n_params: float, tokens: float) -> float:
    """The training-compute rule of thumb C = 6 N D, in FLOPs."""
    return references.value("flops.train_per_param_token") * n_params * tokens




# --- Measured counts ------------------------------------------------------------------------


def measure_flops(
    model: TinyGPT, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
    backward: bool = False,
) -> dict:
    """FLOPs PyTorch's FlopCounterMode records for a forward (and optionally backward) pass.

    Returns {"total": FLOPs, "by_op": {operator name: FLOPs}}. The forward-only count
    runs under torch.no_grad(): under torch.inference_mode() the counter has reported
    0, so this function refuses to run there.
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "measure_flops cannot count under torch.inference_mode() (the counter sees "
            "no operators there and reports 0); call it outside, it uses torch.no_grad()"
        )
    if backward and targets is None:
        raise ValueError("targets must be given when backward=True (the loss needs them)")
    counter = FlopCounterMode(display=False)
    with counter:
        if backward:
            _, loss = model(idx, targets)
            loss.backward()
        else:
            with torch.no_grad():
                model(idx, targets)
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}
    return {"total": int(counter.get_total_flops()), "by_op": by_op}


def attention_counter_check(batch_size: int = 2, n_head: int = 4, seq_len: int = 64,
                            head_dim: int = 32) -> dict[str, int]:
    """How FlopCounterMode counts one causal attention, written two ways, on this PyTorch.

    Returns the analytic count (4 batch heads seq_len^2 head_dim: scores and value
    mixing), the count for explicit matmuls (what TinyGPT uses), and the count for
    F.scaled_dot_product_attention on the CPU (reported as 0 by some PyTorch versions:
    the fused CPU kernel had no FLOP formula registered). TinyGPT writes attention out
    as matmuls so that its measured count needs no correction.
    """
    generator = torch.Generator().manual_seed(0)
    shape = (batch_size, n_head, seq_len, head_dim)
    q, k, v = (torch.randn(shape, generator=generator) for _ in range(3))
    mask = torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    counts = {"analytic": 4 * batch_size * n_head * seq_len * seq_len * head_dim}
    with torch.no_grad():
        explicit = FlopCounterMode(display=False)
        with explicit:
            scores = (q @ k.transpose(-2, -1)) / head_dim**0.5
            (scores.masked_fill(~mask, float("-inf")).softmax(-1)) @ v
        fused = FlopCounterMode(display=False)
        with fused:
            F.scaled_dot_product_attention(q, k, v, is_causal=True)
    counts["explicit_matmuls"] = int(explicit.get_total_flops())
    counts["scaled_dot_product_attention"] = int(fused.get_total_flops())
    return counts


def inference_mode_counter_check(model: TinyGPT, idx: torch.Tensor) -> dict[str, int]:
    """Forward FLOPs counted under torch.no_grad() and under torch.inference_mode().

    Some PyTorch versions count 0 under inference_mode; the course always counts
    under no_grad.
    """
    counts = {}
    for name, context in (("no_grad", torch.no_grad), ("inference_mode", torch.inference_mode)):
        counter = FlopCounterMode(display=False)
        with context(), counter:
            model(idx)
        counts[name] = int(counter.get_total_flops())
    return counts


# --- Training memory --------------------------------------------------------------------------


def activation_bytes(config: ModelConfig, batch_size: int, seq_len: int | None = None,
                     bytes_per_value: int = 4) -> int:
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
    s = seq_len or config.block_size
    validate.whole("batch_size", batch_size)
    b, h, a = batch_size, config.n_embd, config.n_head
    per_layer = 16 * s * b * h + a * s * s * b
    values = config.n_layer * per_layer + 2 * s * b * h + s * b * config.vocab_size
    return values * bytes_per_value


def training_memory_budget(config: ModelConfig, n_params: int, batch_size: int,
                           seq_len: int | None = None, bytes_per_value: int = 4) -> dict:
    """Bytes needed to train with AdamW in 32-bit floats: weights, gradients, moments, activations.

    n_params: the model's total parameter count (TinyGPT.num_params()["total"]).
    Weights and gradients take one value per parameter, AdamW's two moments two more:
    4 values, 16 bytes per parameter in float32.
    """
    validate.whole("n_params", n_params)
    weights = n_params * bytes_per_value
    budget = {
        "weights": weights,
        "gradients": weights,
        "optimizer": 2 * weights,
        "activations": activation_bytes(config, batch_size, seq_len, bytes_per_value),
    }
    budget["total"] = sum(budget.values())
    return budget


def measure_training_memory(model: TinyGPT, idx: torch.Tensor, targets: torch.Tensor) -> dict:
    """Bytes of each kind of tensor one AdamW training step holds, measured on a copy of model.

    Weights, gradients and optimizer state are summed from the tensors themselves;
    activations are every tensor autograd saves for the backward pass (caught with
    torch.autograd.graph.saved_tensors_hooks, counting each storage once and leaving
    out the weights). Their sum is the peak tensor memory of the step (just before the
    backward pass frees activations, with last step's gradients still allocated if
    zero_grad does not free them).

    Why not the process's memory? On the CPU, PyTorch has no peak-memory counter, and
    the process's resident memory (also returned, as process_peak_rss_bytes, from
    resource.getrusage; None where unavailable) is dominated by the Python interpreter
    and the PyTorch library itself (hundreds of MB against a few MB of tensors) and
    by allocator caching, so it cannot isolate the training step.
    """
    model = copy.deepcopy(model)
    model.train()
    params = list(model.parameters())
    weight_storages = {p.untyped_storage().data_ptr() for p in params}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weight_storages:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        _, loss = model(idx, targets)
    loss.backward()
    optimizer = torch.optim.AdamW(params)
    optimizer.step()
    measured = {
        "weights": sum(p.numel() * p.element_size() for p in params),
        "gradients": sum(p.grad.numel() * p.grad.element_size() for p in params),
        "optimizer": sum(
            t.numel() * t.element_size()
            for state in optimizer.state.values()
            for name, t in state.items()
            if name != "step"  # one scalar per tensor
        ),
        "activations": sum(saved.values()),
    }
    measured["total"] = sum(measured.values())
    measured["process_peak_rss_bytes"] = _peak_rss_bytes()
    return measured


def _peak_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports kilobytes


def plot_memory_budget(budget: dict, measured: dict, axes=None):
    """Grouped bars: the formula's bytes next to the measured bytes for each kind of tensor."""
    # Imported here: plots imports scaling, which imports this module.
    from course_lib import plots

    if axes is None:
        axes = plots.new_figure(7, 3.2)[1][0]
    colors = plots.colors()
    parts = ["weights", "gradients", "optimizer", "activations"]
    positions = range(len(parts))
    width = 0.38
    axes.bar([p - width / 2 for p in positions], [budget[k] / 1e6 for k in parts], width,
             color=colors[0], label="formula")
    axes.bar([p + width / 2 for p in positions], [measured[k] / 1e6 for k in parts], width,
             color=colors[1], label="measured tensors")
    axes.set_xticks(list(positions), parts)
    axes.set_ylabel("memory (MB)")
    largest = max(parts, key=lambda k: measured[k])
    axes.set_title(f"Training memory: the largest part is the {largest}")
    axes.legend()
    return axes
