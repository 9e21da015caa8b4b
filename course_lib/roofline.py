"""The roofline model: is a step limited by arithmetic or by memory traffic?

A chip does at most `peak` FLOP/s and moves at most `bandwidth` bytes/s
between memory and its cores. A step that does F FLOPs and moves B bytes has
**arithmetic intensity** I = F / B (FLOP per byte) and can run no faster than

    attainable FLOP/s = min(peak, I x bandwidth).

The **ridge point** peak / bandwidth is the intensity where the two limits
meet: below it a step is *memory-bound* (more FLOP/s would not help), above
it *compute-bound*. Training steps sit far to the right; decoding one token
for one sequence reads every weight to do 2 FLOPs with it, so it sits far to
the left. Batching decode shares each weight read among b sequences and
moves it right, until the keys and values each sequence must read (its KV
cache) take over.

Arithmetic layer: pure functions with units in their names or docstrings (FLOPs, bytes,
seconds, FLOP/s, bytes/s). Sections: the roofline itself; what a step costs; the
roofline's view of the course's tiny model and of published ones (course_lib.shapes'
ModelShape); on-device fit and speed. FLOPs per token and KV-cache bytes come from
course_lib.flops, chips from course_lib.devices, this machine's measured peak and bandwidth
from course_lib.probes. Energy is in course_lib.energy, the figures in
course_lib.figures.hardware, notebook 07's on-device explorer in
course_lib.explorers.hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course_lib import devices, flops, references, validate
from course_lib.flops import bytes_per_weight
from course_lib.shapes import ModelConfig, ModelShape

# Memory traffic of one AdamW step in fp32, per parameter: forward reads the weight (4),
# backward reads it again (4) and writes its gradient (4); the optimizer reads weight,
# gradient and two moments (16) and writes weight and moments back (12). 40 in all.
TRAINING_BYTES_PER_PARAM_FP32_ADAMW = 40.0

MEMORY_BOUND, COMPUTE_BOUND = "memory-bound", "compute-bound"


# --- The roofline itself ----------------------------------------------------------------


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """Arithmetic intensity (FLOP/byte) where a chip stops being memory-bound: peak / bandwidth."""
    ridge = validate.positive("peak_flops", peak_flops) / validate.positive("bandwidth", bandwidth)
    return validate.result("ridge point", ridge, peak_flops=peak_flops, bandwidth=bandwidth)


@validate.checked
def chip_ridge_point(chip: str | devices.Device) -> float:
    """Ridge point (FLOP/byte) of a catalogued chip, e.g. chip_ridge_point('h100_sxm')."""
    device = devices.get(chip)
    if device.peak_flops is None:
        raise ValueError(f"{device.name} has no published peak FLOP/s, so it has no ridge point; "
                         "use ridge_point(peak_flops, bandwidth) with a figure you assume")
    return ridge_point(device.peak_flops, device.bandwidth)


def attainable_flops(intensity: float | np.ndarray, peak_flops: float,
                     bandwidth: float) -> float | np.ndarray:
    """Roofline: min(peak, intensity x bandwidth) in FLOP/s; intensity may be an array."""
    peak = validate.positive("peak_flops", peak_flops)
    rate = validate.positive("bandwidth", bandwidth)
    values = validate.positive_array("intensity (FLOP/byte)", intensity, allow_zero=True)
    result = np.minimum(peak, values * rate)
    return float(result) if result.ndim == 0 else result


def regime(intensity: float, peak_flops: float, bandwidth: float) -> str:
    """'memory-bound' below the ridge point, 'compute-bound' at or above it."""
    validate.positive("intensity", intensity, allow_zero=True)
    return COMPUTE_BOUND if intensity >= ridge_point(peak_flops, bandwidth) else MEMORY_BOUND


# --- What a step costs ------------------------------------------------------------------


@dataclass(frozen=True)
class StepCost:
    """FLOPs done and bytes moved by one step of work, and the tokens it produces."""

    name: str
    flops: float
    bytes_moved: float
    tokens: float  # tokens processed (training, prefill) or generated (decode) by the step

    def __post_init__(self) -> None:
        validate.instance("name", self.name, str)
        validate.positive("flops", self.flops, allow_zero=True)
        validate.positive("bytes_moved", self.bytes_moved)  # every step reads something
        validate.positive("tokens", self.tokens)

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte moved."""
        return self.flops / self.bytes_moved

    @property
    def kind(self) -> str:
        """What sort of step: the first word of its name ('decode', 'prefill', 'training')."""
        return self.name.split()[0]

    def seconds_bound(self, peak_flops: float, bandwidth: float) -> float:
        """Shortest time the step can take on a chip: the slower of compute and memory."""
        seconds = max(self.flops / validate.positive("peak_flops", peak_flops),
                      self.bytes_moved / validate.positive("bandwidth", bandwidth))
        return validate.result("seconds", seconds, peak_flops=peak_flops, bandwidth=bandwidth)

    def tokens_per_second_bound(self, peak_flops: float, bandwidth: float) -> float:
        """Most tokens per second the chip allows for this step."""
        return self.tokens / self.seconds_bound(peak_flops, bandwidth)


@validate.checked
def decode_step(model: ModelShape, batch_size: int, context: int,
                precision: str = "bf16") -> StepCost:
    """One decode step: every sequence of the batch generates one token.

    FLOPs: batch x forward FLOPs per token at this context. Bytes: every weight read once
    (shared by the whole batch) plus each sequence's KV cache of `context` tokens
    (read, not shared). Activations of one token are tiny and left out.
    """
    batch = validate.whole("batch_size", batch_size)
    context = validate.whole("context", context)
    weights = model.params * bytes_per_weight(precision)
    kv = batch * context * model.kv_bytes_per_token
    step_flops, moved = batch * model.forward_flops_per_token(context), weights + kv
    validate.result("FLOPs and bytes of the step", [step_flops, moved], batch_size=batch_size,
                    context=context)
    return StepCost(f"decode b={batch}", step_flops, moved, batch)


@validate.checked
def prefill_step(model: ModelShape, batch_size: int, prompt_tokens: int,
                 precision: str = "bf16") -> StepCost:
    """One prefill: the whole prompt of every sequence in one forward pass.

    FLOPs: batch x prompt x forward FLOPs per token at context `prompt` (the model's
    forward_flops_per_token decides how it counts causal attention). Bytes: weights read
    once plus the KV cache written for every prompt token.
    """
    batch = validate.whole("batch_size", batch_size)
    prompt = validate.whole("prompt_tokens", prompt_tokens)
    tokens = batch * prompt
    step_flops = tokens * model.forward_flops_per_token(prompt)
    moved = model.params * bytes_per_weight(precision) + tokens * model.kv_bytes_per_token
    validate.result("FLOPs and bytes of the step", [step_flops, moved], batch_size=batch_size,
                    prompt_tokens=prompt_tokens)
    return StepCost(f"prefill b={batch} x {prompt}", step_flops, moved, tokens)


@validate.checked
def training_step(model: ModelShape, batch_size: int, sequence_length: int) -> StepCost:
    """One fp32 AdamW training step over batch_size x sequence_length tokens.

    FLOPs: 3 x forward (forward 1x, backward 2x: the 6N vs 2N rule) at context
    sequence_length.
    Bytes: TRAINING_BYTES_PER_PARAM_FP32_ADAMW per parameter, plus activations written in
    the forward pass and read back in the backward pass (2 x activation bytes).
    """
    batch = validate.whole("batch_size", batch_size)
    length = validate.whole("sequence_length", sequence_length)
    tokens = batch * length
    step_flops = flops.TRAIN_PER_FORWARD * tokens * model.forward_flops_per_token(length)
    moved = (TRAINING_BYTES_PER_PARAM_FP32_ADAMW * model.params
             + 2 * tokens * model.activation_bytes_per_token)
    validate.result("FLOPs and bytes of the step", [step_flops, moved], batch_size=batch_size,
                    sequence_length=sequence_length)
    return StepCost(f"training step {batch} x {length}", step_flops, moved, tokens)


@validate.checked
def decode_compute_bound_batch(model: ModelShape, context: int, peak_flops: float,
                               bandwidth: float, precision: str = "bf16") -> float | None:
    """Smallest batch size at which decode reaches the ridge point, or None if it never does.

    Decode intensity at batch b is b F / (W + b K) for F FLOPs per token, W weight bytes and
    K KV bytes per sequence. It rises with b but levels off at F / K: when that plateau is
    below the ridge point R, no batch size makes decode compute-bound (None). Otherwise
    b = R W / (F - R K), returned unrounded (round up for a whole batch).
    """
    ridge = ridge_point(peak_flops, bandwidth)
    context = validate.whole("context", context)
    per_token = model.forward_flops_per_token(context)
    weights = model.params * bytes_per_weight(precision)
    kv = context * model.kv_bytes_per_token
    if per_token <= ridge * kv:
        return None
    return ridge * weights / (per_token - ridge * kv)


def longest_compute_bound_context(model: ModelShape, peak_flops: float, bandwidth: float,
                                  precision: str = "bf16", longest: int = 10**7) -> int | None:
    """Longest context (tokens) at which some batch size still makes decode compute-bound.

    Decode's intensity levels off at F / K (FLOPs per token over KV bytes per sequence),
    which falls as the context grows: past this context no batch reaches the ridge point.
    None if even a one-token context never does; `longest` if it still does there.
    """
    validate.whole("longest", longest)

    def reaches(context: int) -> bool:
        return decode_compute_bound_batch(model, context, peak_flops, bandwidth,
                                          precision) is not None

    if not reaches(1):
        return None
    if reaches(longest):
        return longest
    low, high = 1, longest  # reaches(low) and not reaches(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if reaches(middle) else (low, middle)
    return low


@validate.checked
def largest_batch_in_memory(model: ModelShape, context: int, memory_bytes: float,
                            precision: str = "bf16") -> int:
    """Most sequences of `context` tokens whose KV caches fit next to the weights (0 if the
    weights alone do not fit): floor((memory - weight bytes) / (context x KV bytes per token)).

    Activations and the serving engine's own memory are left out: a real server fits fewer.
    """
    context = validate.whole("context", context)
    room = validate.positive("memory_bytes", memory_bytes) \
        - model.params * bytes_per_weight(precision)
    if room <= 0:
        return 0
    return int(room // (context * model.kv_bytes_per_token))


# --- Models: the course's tiny model and real ones -----------------------------------------
# Built here rather than in course_lib.shapes: they count with course_lib.flops, which
# itself imports course_lib.shapes.


@validate.checked
def tiny_model_shape(config: ModelConfig, n_params: int, name: str = "tiny model") -> ModelShape:
    """The course's TinyGPT as the roofline sees it, in fp32.

    n_params: TinyGPT.num_params()["total"] (the bytes every step reads). FLOPs per token,
    activation bytes and KV-cache bytes come from course_lib.flops.
    """
    validate.whole("n_params", n_params)

    def forward(context: int) -> float:
        return flops.forward_flops_breakdown(config, context)["total"]

    kv = flops.kv_cache_bytes(config.n_layer, config.kv_heads, config.head_dim, 1,
                              bytes_per_value=bytes_per_weight("fp32"))
    per_token = flops.activation_bytes(config, 1, config.block_size) / config.block_size
    return ModelShape(name, n_params, forward, kv, per_token)


@validate.checked
def real_model_shape(key: str) -> ModelShape:
    """A published model (e.g. 'llama3_8b') from course_lib.references, served in bf16.

    FLOPs per token use Kaplan et al.'s 2 N + 2 n_layer n_ctx d_model with the cited
    parameter count as N (it includes the embeddings, a few percent of an 8B model).
    KV-cache bytes use the model's key/value heads (grouped-query attention), 2 bytes each.
    """
    validate.choice("key", key, published_models())
    params = references.value(f"{key}.params")
    n_layer = int(references.value(f"{key}.n_layers"))
    d_model = int(references.value(f"{key}.d_model"))
    head_dim = d_model // int(references.value(f"{key}.n_heads"))
    kv = flops.kv_cache_bytes(n_layer, int(references.value(f"{key}.n_kv_heads")),
                              head_dim, 1, bytes_per_value=bytes_per_weight("bf16"))

    def forward(context: int) -> float:
        return flops.kaplan_forward_flops_per_token(params, n_layer, context, d_model)

    return ModelShape(key, params, forward, kv)


def published_models() -> list[str]:
    """Keys of the published models whose shape course_lib.references cites."""
    return [entry.key.removesuffix(".n_kv_heads") for entry in references.entries()
            if entry.key.endswith(".n_kv_heads")]


# --- On-device inference ------------------------------------------------------------------

# The precisions an on-device model is stored in, largest first (bytes per weight 2, 1, 0.5).
ON_DEVICE_PRECISIONS = ("fp16", "int8", "int4")


@validate.checked
def weight_bytes(params: float, precision: str) -> float:
    """Bytes to store `params` weights at `precision` ('fp16', 'int8', 'int4', ...)."""
    return validate.result("weight bytes",
                           validate.positive("params", params) * bytes_per_weight(precision),
                           params=params)


@validate.checked
def fits_in_memory(params: float, precision: str, memory_bytes: float,
                   usable_fraction: float = 1.0) -> bool:
    """Whether the weights fit in `usable_fraction` of a device's memory (bytes).

    On a phone or laptop the operating system and other apps keep part of the memory:
    usable_fraction below 1 is an assumption you choose.
    """
    memory = validate.positive("memory_bytes", memory_bytes)
    usable = validate.positive("usable_fraction", usable_fraction, upper=1)
    return weight_bytes(params, precision) <= usable * memory


@validate.checked
def decode_tokens_per_second_bound(params: float, precision: str, bandwidth: float,
                                   kv_bytes_per_sequence: float = 0.0,
                                   batch_size: int = 1) -> float:
    """Upper bound on decode tokens/s per sequence from memory bandwidth alone.

    Each step reads all weights once and each sequence's KV cache:
    tokens/s per sequence <= bandwidth / (weight bytes + batch x KV bytes per sequence).
    Multiply by batch_size for the whole batch.
    """
    batch = validate.whole("batch_size", batch_size)
    kv = validate.positive("kv_bytes_per_sequence", kv_bytes_per_sequence, allow_zero=True)
    rate = validate.positive("bandwidth", bandwidth)
    return validate.result("tokens per second", rate / (weight_bytes(params, precision)
                                                        + batch * kv),
                           params=params, bandwidth=bandwidth)


@validate.checked
def largest_model_for_speed(bandwidth: float, tokens_per_second: float,
                            precision: str) -> float:
    """Most parameters a chip can decode at `tokens_per_second` (one sequence, no KV cache)."""
    bandwidth = validate.positive("bandwidth", bandwidth)
    rate = validate.positive("tokens_per_second", tokens_per_second)
    return validate.result("parameters", bandwidth / rate / bytes_per_weight(precision),
                           bandwidth=bandwidth, tokens_per_second=tokens_per_second)


def fit_table(models: dict[str, float], chips: list[str] | None = None,
              precisions: tuple[str, ...] = ON_DEVICE_PRECISIONS,
              usable_fraction: float = 1.0) -> list[dict]:
    """One row per (chip, model, precision): weight GB, whether it fits, decode tokens/s bound.

    models maps a name to a parameter count; chips are keys of course_lib.devices (all by
    default). The tokens/s bound is for one sequence at short context (weights only).
    """
    validate.instance("models", models, dict, " of name -> parameters")
    for name, params in models.items():
        validate.positive(f"models[{name!r}]", params)
    validate.instance("chips", chips, (list, tuple, type(None)))
    for key in chips or ():
        validate.choice("chips (each)", key, devices.names())
    validate.instance("precisions", precisions, (list, tuple))
    for precision in precisions:
        validate.choice("precisions (each)", precision, flops.BYTES_PER_WEIGHT)
    rows = []
    for key in chips or devices.names():
        chip = devices.get(key)
        for name, params in models.items():
            for precision in precisions:
                fits = fits_in_memory(params, precision, chip.memory, usable_fraction)
                rows.append({
                    "chip": chip.name, "model": name, "precision": precision,
                    "weights_gb": weight_bytes(params, precision) / 1e9, "fits": fits,
                    "tokens_per_s": (decode_tokens_per_second_bound(params, precision,
                                                                    chip.bandwidth)
                                     if fits else None),
                })
    return rows


@validate.checked
def describe_fit(chip: str | devices.Device, params: float, precision: str,
                 usable_fraction: float = 1.0) -> str:
    """One sentence for the on-device explorer: size, fit, and the decode tokens/s bound."""
    device = devices.get(chip)
    size = weight_bytes(params, precision)
    room = validate.positive("usable_fraction", usable_fraction, upper=1) * device.memory
    if not fits_in_memory(params, precision, device.memory, usable_fraction):
        return (f"{params / 1e9:.3g}B parameters at {precision} need {size / 1e9:.3g} GB: "
                f"too big for {device.name} ({room / 1e9:.3g} GB usable of "
                f"{device.memory / 1e9:.3g} GB).")
    rate = decode_tokens_per_second_bound(params, precision, device.bandwidth)
    return (f"{params / 1e9:.3g}B parameters at {precision} need {size / 1e9:.3g} GB: fits "
            f"{device.name} ({room / 1e9:.3g} GB usable). Decode is at most {rate:.3g} "
            f"tokens/s per sequence (bandwidth {device.bandwidth / 1e9:.3g} GB/s / weight "
            "bytes; an upper bound).")
