"""What PyTorch actually executes: FLOPs from its counter, and the bytes a training step holds.

Torch layer. The analytic counts in course_lib.flops are the reference; these functions
measure the same quantities on a real TinyGPT so that a notebook can set the two side
by side and explain where they differ.
"""

from __future__ import annotations

import copy
import sys

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from course_lib import validate
from course_lib.model import TinyGPT

try:
    import resource  # Unix only: the process's peak resident memory
except ImportError:  # Windows
    resource = None


@validate.checked
def measure_flops(
    model: TinyGPT, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
    backward: bool = False,
) -> dict:
    """FLOPs PyTorch's FlopCounterMode records for a forward (and optionally backward) pass.

    Returns {"total": FLOPs, "by_op": {operator name: FLOPs}}. The forward-only count
    runs under torch.no_grad(): under torch.inference_mode() some PyTorch versions' counter
    has reported 0 (inference_mode_counter_check tells for this one), so this function
    refuses to run there.
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "measure_flops does not count under torch.inference_mode() (some PyTorch "
            "versions' counter reports 0 there); call it outside, it uses torch.no_grad()"
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
    shape = tuple(validate.whole(name, value, highest=2**12) for name, value in (
        ("batch_size", batch_size), ("n_head", n_head), ("seq_len", seq_len),
        ("head_dim", head_dim)))
    if batch_size * n_head * seq_len * max(seq_len, head_dim) > 10**8:  # 400 MB per tensor
        raise ValueError("batch_size x n_head x seq_len x max(seq_len, head_dim) must be at "
                         f"most 1e8 (the tensors this check allocates), got {shape}")
    generator = torch.Generator().manual_seed(0)
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


@validate.checked
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


@validate.checked
@torch.no_grad()
def measure_flops_per_generated_token(model: TinyGPT, context: int,
                                      use_kv_cache: bool) -> int:
    """FLOPs PyTorch's FlopCounterMode records for generating one token at `context`.

    Without the cache that is a forward pass over `context` tokens (course_lib.flops
    measures it). With the cache, the first context - 1 tokens are prefilled uncounted,
    and only the decode step of the last one is counted.
    """
    validate.whole("context", context, highest=model.config.block_size)
    device = model.device
    idx = torch.zeros((1, context), dtype=torch.long, device=device)
    if not use_kv_cache:
        return measure_flops(model, idx)["total"]
    cache = model.new_cache(1)
    if context > 1:
        model(idx[:, :-1], cache=cache)
    counter = FlopCounterMode(display=False)
    with counter:
        model(idx[:, -1:], cache=cache)
    return int(counter.get_total_flops())


@validate.checked
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
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports kilobytes
