"""A model of scaling out: what many chips cost training, and what they cost inference.

Arithmetic layer (numpy and the standard library; no torch). Training needs chips that talk
to each other, inference does not:

- `ring_allreduce_seconds`: time to sum the gradients of every chip with a ring all-reduce,
  2(p-1)/p x gradient bytes / link bandwidth + 2(p-1) x latency.
- `data_parallel_scaling`: step time, speedup and scaling efficiency of data-parallel
  training on p chips, from the compute time of one chip and the all-reduce time.
- `replica_scaling`: inference replicas are independent workers: throughput grows linearly
  with replicas and the latency of one request does not change.
- `fit_allreduce`: the ring model's latency and bandwidth, fitted to measured all-reduces
  (course_lib.data_parallel measures them on this machine); `fit_misses` and `worst_miss`
  say how well the line fits them.
- `training_state_bytes`: the weights, gradients and optimiser state one chip holds, whole
  (plain data parallelism) or sharded over the workers (ZeRO stages 1-3, FSDP).
- `real_model_scaling`: data_parallel_scaling for a real model size on H100s, with every
  assumption cited in course_lib.references.

Units are in the names: seconds (_s), bytes, bytes/s one way (bandwidth), chips.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from course_lib import flops, references, utilisation, validate

# Per-step latency of a ring all-reduce between datacenter chips: an assumption of the right
# order, not a datasheet figure (cited as such in course_lib.references).
ASSUMED_LATENCY_S = references.value("assumption.allreduce_step_latency_s")
BYTES_PER_GRADIENT = flops.bytes_per_weight("bf16")  # as in mixed-precision training
CHIP_COUNTS = tuple(2**k for k in range(15))  # 1 to 16,384 chips


def _check_chips(chips: ArrayLike, name: str = "chips") -> np.ndarray:
    """`chips` as a float array, checked to hold whole numbers >= 1."""
    array = validate.positive_array(name, chips)
    if np.any(array < 1) or np.any(array != np.round(array)):
        raise ValueError(f"{name} must be whole numbers >= 1, got {chips!r:.80}")
    return array


def _scalar_or_array(value: np.ndarray) -> float | np.ndarray:
    return float(value) if np.ndim(value) == 0 else value


@validate.checked
def one_way_bandwidth(key: str) -> float:
    """Bytes/s one way of a cited interconnect (references key 'interconnect.<name>').

    Vendors quote NVLink and PCIe for both directions together; a ring all-reduce sends
    one way and receives the other way at the same time, so the ring uses half of it.
    InfiniBand ports are quoted per direction already.
    """
    entry = references.get(validate.choice(
        "key", key, [entry.key for entry in references.entries("interconnect.")]))
    return entry.value / 2 if "both directions" in entry.unit else entry.value


def interconnects() -> dict[str, float]:
    """Every cited interconnect: description -> one-way bandwidth in bytes/s."""
    return {entry.what: one_way_bandwidth(entry.key)
            for entry in references.entries("interconnect.")}


def ring_allreduce_seconds(gradient_bytes: ArrayLike, chips: ArrayLike,
                           link_bandwidth: float, latency_s: float = 0.0
                           ) -> float | np.ndarray:
    """Seconds for a ring all-reduce of `gradient_bytes` over `chips` chips.

    Each chip sends (and receives) 2(p-1)/p x gradient_bytes over its link of
    `link_bandwidth` bytes/s one way (a reduce-scatter then an all-gather, p-1 steps each),
    and pays `latency_s` seconds per step: 2(p-1)/p x bytes / bandwidth + 2(p-1) x latency.
    Zero for one chip. Works elementwise on NumPy arrays of chips.
    The bandwidth term hardly grows with p (it tends to 2 x bytes / bandwidth); the latency
    term grows linearly, which is why large clusters use tree or hierarchical algorithms.
    """
    size = validate.positive_array("gradient_bytes", gradient_bytes, allow_zero=True)
    bandwidth = validate.positive("link_bandwidth", link_bandwidth)
    latency = validate.positive("latency_s", latency_s, allow_zero=True)
    p = _check_chips(chips)
    if size.ndim and p.ndim and size.shape != p.shape:
        raise ValueError(f"gradient_bytes and chips must be one number and an array, or arrays "
                         f"of the same shape; got shapes {size.shape} and {p.shape}")
    seconds = 2 * (p - 1) / p * size / bandwidth + 2 * (p - 1) * latency
    return _scalar_or_array(validate.result("all-reduce seconds", seconds, link_bandwidth=
                                            link_bandwidth, gradient_bytes=gradient_bytes))


@validate.checked
def data_parallel_scaling(compute_s_one_chip: float, gradient_bytes: float, chips: ArrayLike,
                          link_bandwidth: float, latency_s: float = 0.0, *,
                          fixed_global_batch: bool = True, overlap: bool = False) -> dict:
    """Step time, speedup and scaling efficiency of data-parallel training on `chips` chips.

    compute_s_one_chip: seconds one chip needs for the forward and backward pass of the
    whole global batch. fixed_global_batch=True (the usual constraint: a batch much bigger
    than the one that trains well wastes tokens) splits that batch over the chips, so each
    chip computes for compute_s / p; False keeps each chip's batch fixed (the global batch
    grows with p). The gradient all-reduce costs `ring_allreduce_seconds` per step.
    overlap=False adds compute and all-reduce (nothing hidden); overlap=True takes the larger
    of the two (DDP's ideal: gradients of late layers are sent while early layers still
    compute their backward). The truth lies in between.

    Returns arrays (or floats): compute_s and allreduce_s per step, step_s, speedup (work
    per second relative to one chip) and efficiency = speedup / chips (1 = perfect).
    """
    validate.positive("compute_s_one_chip", compute_s_one_chip)
    validate.positive("gradient_bytes", gradient_bytes, allow_zero=True)
    p = _check_chips(chips)
    compute = compute_s_one_chip / p if fixed_global_batch else compute_s_one_chip * np.ones_like(p)
    allreduce = np.asarray(ring_allreduce_seconds(gradient_bytes, p, link_bandwidth, latency_s))
    step = np.maximum(compute, allreduce) if overlap else compute + allreduce
    work_per_step = 1.0 if fixed_global_batch else p  # in global batches of one chip
    speedup = work_per_step * compute_s_one_chip / step
    result = {"chips": p, "compute_s": compute, "allreduce_s": allreduce, "step_s": step,
              "speedup": speedup, "efficiency": speedup / p}
    if np.ndim(chips) == 0:
        return {key: float(value) for key, value in result.items()}
    return result


def replica_scaling(replicas: ArrayLike, tokens_per_s_one_replica: float,
                    latency_s_one_request: float) -> dict:
    """Inference replicas as independent workers: no gradients, nothing to synchronise.

    Each replica holds a full copy of the model and serves its own requests, so throughput
    (tokens/s) is linear in replicas and the latency of one request (seconds) is unchanged:
    efficiency 1 at any scale (a load balancer in front is all the coordination there is).
    """
    r = _check_chips(replicas, "replicas")
    validate.positive("tokens_per_s_one_replica", tokens_per_s_one_replica)
    validate.positive("latency_s_one_request", latency_s_one_request)
    throughput = validate.result("tokens per second", r * tokens_per_s_one_replica,
                                 replicas=replicas,
                                 tokens_per_s_one_replica=tokens_per_s_one_replica)
    result = {"replicas": r, "tokens_per_s": throughput,
              "latency_s": latency_s_one_request * np.ones_like(r),
              "efficiency": np.ones_like(r)}
    if np.ndim(replicas) == 0:
        return {key: float(value) for key, value in result.items()}
    return result


def fit_allreduce(message_bytes: ArrayLike, seconds: ArrayLike, world_size: int) -> dict:
    """Fit the ring model to measured all-reduce times: latency per step and bandwidth.

    The ring model is seconds = 2(p-1) x latency + 2(p-1)/p x bytes / bandwidth. The fit
    makes the factors by which it misses the measurements as small as it can (least squares
    on the logarithms), so microsecond and millisecond messages count alike; a plain least
    squares would follow the largest messages and miss the small ones by several times.
    Returns latency_s (per ring step) and bandwidth (bytes/s one way); `fit_misses` says
    how far the measurements lie from the fitted line.
    """
    x = validate.positive_array("message_bytes", message_bytes)
    y = validate.positive_array("seconds", seconds)
    if x.shape != y.shape or x.size < 2 or len(np.unique(x)) < 2:
        raise ValueError("message_bytes and seconds must be equally long, with at least two "
                         f"different sizes; got {x.size} sizes and {y.size} times")
    p = validate.whole("world_size", world_size, lowest=2)
    if np.any(y <= 0):
        raise ValueError(f"seconds must all be positive, got {y!r}")
    sent = 2 * (p - 1) / p * x  # bytes each worker sends
    if np.polyfit(sent, y, 1)[0] <= 0:
        raise ValueError("the measured times do not grow with message size: measure larger "
                         "messages (megabytes) so that bandwidth, not noise, dominates")
    # seconds = (r + sent) / bandwidth, with r = 2(p-1) x latency x bandwidth (bytes): for a
    # given r the best log(bandwidth) is a mean, so only r is searched (golden section on
    # log r; r = 0 is the pure-bandwidth line).
    def misfit(log_r: float) -> tuple[float, float]:
        log_line = np.log(np.exp(log_r) + sent)
        log_bandwidth = float(np.mean(log_line - np.log(y)))
        return float(np.sum((log_line - log_bandwidth - np.log(y)) ** 2)), log_bandwidth

    grid = np.linspace(np.log(sent.min()) - 12, np.log(sent.max()) + 12, 241)
    best = int(np.argmin([misfit(g)[0] for g in grid]))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    golden = (np.sqrt(5) - 1) / 2
    while high - low > 1e-10:
        a, b = high - golden * (high - low), low + golden * (high - low)
        low, high = (low, b) if misfit(a)[0] <= misfit(b)[0] else (a, high)
    log_r = (low + high) / 2
    r = float(np.exp(log_r)) if misfit(log_r)[0] < misfit(-np.inf)[0] else 0.0
    bandwidth = float(np.exp(misfit(np.log(r) if r else -np.inf)[1]))
    return {"latency_s": r / bandwidth / (2 * (p - 1)), "bandwidth": bandwidth}


@validate.checked
def fit_misses(message_bytes: ArrayLike, seconds: ArrayLike, world_size: int,
               fit: dict) -> np.ndarray:
    """Measured / fitted seconds for every measured all-reduce (1 = on the line)."""
    x = validate.positive_array("message_bytes", message_bytes)
    y = validate.positive_array("seconds", seconds)
    if x.shape != y.shape:
        raise ValueError(f"message_bytes and seconds must be equally long, got {x.size} and "
                         f"{y.size}")
    p = validate.whole("world_size", world_size, lowest=2, highest=max(CHIP_COUNTS))
    predicted = ring_allreduce_seconds(x, p, fit["bandwidth"], fit["latency_s"])
    return y / np.asarray(predicted, float)


def worst_miss(ratios: ArrayLike) -> float:
    """The largest factor (>= 1) by which a measurement lies off the line, either way."""
    ratios = validate.positive_array("ratios", ratios)
    return float(validate.result("worst miss", np.max(np.maximum(ratios, 1 / ratios)),
                                 ratios=ratios))


# Training state per parameter with mixed precision and Adam (the ZeRO paper's accounting,
# Rajbhandari et al. 2020): bf16 weights and gradients, fp32 master weights and two moments.
TRAINING_STATE_BYTES = {"weights (bf16)": 2, "gradients (bf16)": 2,
                        "optimiser: fp32 weights and Adam's two moments": 12}
# What each ZeRO stage splits over the data-parallel workers (FSDP's full sharding is stage 3).
SHARDED = {"none (plain data parallelism)": (),
           "ZeRO stage 1: optimiser state": ("optimiser: fp32 weights and Adam's two moments",),
           "ZeRO stage 2: + gradients": ("optimiser: fp32 weights and Adam's two moments",
                                         "gradients (bf16)"),
           "ZeRO stage 3 / FSDP: + weights": tuple(TRAINING_STATE_BYTES)}


def training_state_bytes(params: float, chips: int = 1,
                         sharding: str = "none (plain data parallelism)") -> float:
    """Bytes of weights, gradients and optimiser state each chip holds (activations apart).

    sharding: a key of SHARDED. What it names is split evenly over `chips` workers; the
    rest is held whole by every one of them.
    """
    validate.positive("params", params)
    p = validate.whole("chips", chips)
    if sharding not in SHARDED:
        raise ValueError(f"sharding must be one of {list(SHARDED)}, got {sharding!r}")
    split = SHARDED[sharding]
    return validate.result("training state bytes", params * sum(
        size / p if part in split else size for part, size in TRAINING_STATE_BYTES.items()),
        params=params)


@validate.checked
def real_model_scaling(params: float, chips: ArrayLike, link_bandwidth: float, *,
                       latency_s: float = ASSUMED_LATENCY_S, overlap: bool = False,
                       batch_tokens: float | None = None) -> dict:
    """data_parallel_scaling for a model of `params` parameters trained on H100 SXMs.

    Assumptions, all cited or stated: global batch = `batch_tokens` (default GPT-3's
    batch), the H100 SXM's dense BF16 peak at the utilisation Meta reported for Llama 3
    405B's main pre-training stage, bf16 gradients, pure data parallelism (every chip
    holds the whole model, which a big model would not fit: real runs also split the
    model, so each chip all-reduces only its share of the gradients). The compute of one
    chip is 6 N D FLOPs of the global batch at that utilisation; a larger batch gives every
    chip more compute to set against the same all-reduce.
    """
    validate.positive("params", params)
    batch = references.value("gpt3.batch_tokens") if batch_tokens is None \
        else validate.positive("batch_tokens", batch_tokens)
    compute_s = utilisation.accelerator_seconds(
        flops.six_n_d(params, batch),
        references.value("h100_sxm.peak_flops"), references.value("llama31_405b.mfu"))
    return data_parallel_scaling(compute_s, BYTES_PER_GRADIENT * params, chips, link_bandwidth,
                                 latency_s, overlap=overlap)
