"""The price of a token: the inputs of the serving model, and the roofline of one step.

A decode step makes one token for each of the `batch` sequences served: it reads every
weight the batch touches once (shared) and each sequence's KV cache (its own), and does 2
FLOPs per active parameter per token plus attention; on `chips` chips in tensor parallel it
takes the longer of FLOPs / (chips x peak) and bytes / (chips x bandwidth) (notebook 07's
roofline), plus an optional all-reduce term. A prefill step does the same for every prompt
token of the batch at once. A mixture of experts computes with its active parameters but
reads the experts its batch touches: E (1 - (1 - k/E)^b) per layer on average for b tokens
routed uniformly to k of E experts (one token misses an expert with probability 1 - k/E).
No overhead term: every cost that follows is a floor.

Here: the model (ServedModel and presets), the replica (Deployment), the request
(Workload), the shared input checks, and the steps. Prices and latency are in
course_lib.serving_cost, the lifecycle plans in serving_lifecycle, the calibrations in
serving_calibration, the figures in course_lib.figures.serving. Arithmetic layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from course_lib import devices, flops, references, scaleout, scaling, validate
from course_lib.shapes import ModelConfig

SERVING_PRECISIONS = ("bf16", "fp8", "int8", "int4")  # how large models are served
ACTIVATION_BYTES = flops.bytes_per_weight("bf16")  # activations all-reduced between chips
FLOPS_PER_PARAM = references.value("flops.forward_per_param_token")  # 2 per token
PREFILL, DECODE = flops.PREFILL, flops.DECODE
SECONDS_PER_HOUR = 3600
MOST = 10**9  # most tokens or sequences any argument may ask for: far beyond real ones


def _precision(name: str, value: str) -> float:
    return flops.bytes_per_weight(validate.choice(name, value, flops.BYTES_PER_WEIGHT))


def _whole(name: str, value, lowest: int = 1, highest: int = MOST) -> int:
    """validate.whole that also takes a float holding a whole number (10.0 tokens)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return validate.whole(name, value, lowest, highest)


def _amounts(name: str, value, lowest: float = 0.0, highest: float = MOST,
            integral: bool = False):
    """A number or an array of them, each finite and from lowest to highest (and a whole
    number if integral), as a float or a float array; a clear error naming `name` otherwise."""
    array = np.asarray(value) if not isinstance(value, (str, bytes, bool, np.bool_)) else None
    if value is None or array is None or array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r:.60}")
    array = array.astype(float)
    ok = np.isfinite(array) & (array >= lowest) & (array <= highest)
    if integral:
        ok &= array == np.round(array)
    if array.size == 0 or not ok.all():
        kind = "whole numbers" if integral else "finite numbers"
        raise ValueError(f"{name} must be {kind} from {lowest:g} to {highest:g}, "
                         f"got {value!r:.60}")
    return float(array) if array.ndim == 0 else array


# --- The model --------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedModel:
    """What serving needs to know about a model; a dense model has n_experts = 1.

    total_params: every stored weight (all experts); active_params: the weights one token
    multiplies (2 FLOPs each); n_kv_heads x head_dim: the keys and values each layer caches
    per token; d_model: the attention width (query heads x head size), for attention FLOPs;
    max_context: the longest sequence (prompt and answer) the model takes, in tokens.
    """

    name: str
    total_params: float
    active_params: float
    n_layers: int
    n_kv_heads: int
    head_dim: int
    d_model: int
    max_context: int
    n_experts: int = 1
    experts_per_token: int = 1
    slides_window: bool = False  # keeps the last max_context tokens, so any length runs

    def __post_init__(self) -> None:
        validate.instance("name", self.name, str)
        validate.flag("slides_window", self.slides_window)
        validate.positive("total_params", self.total_params, upper=1e16)
        validate.positive("active_params", self.active_params)
        if self.active_params > self.total_params:
            raise ValueError(f"active_params must be at most total_params "
                             f"({self.total_params:g}), got {self.active_params!r}")
        for field in ("n_layers", "n_kv_heads", "head_dim", "d_model", "max_context",
                      "n_experts"):
            _whole(field, getattr(self, field))
        _whole("experts_per_token", self.experts_per_token, highest=self.n_experts)
        if self.n_experts == 1 and self.active_params != self.total_params:
            raise ValueError(f"a dense model (n_experts=1) has active_params = total_params, "
                             f"got {self.active_params:g} and {self.total_params:g}")
        if self.is_moe and self.n_experts * self.expert_params > self.total_params * 1.000001:
            raise ValueError(f"active_params/total_params must be at least experts_per_token/"
                             f"n_experts = {self.experts_per_token}/{self.n_experts}")

    @property
    def is_moe(self) -> bool:
        """Whether tokens are routed to some of several experts."""
        return self.n_experts > 1 and self.experts_per_token < self.n_experts

    @property
    def expert_params(self) -> float:
        """Parameters of one expert, all layers together (0 for a dense model)."""
        if not self.is_moe:
            return 0.0
        return ((self.total_params - self.active_params)
                / (self.n_experts - self.experts_per_token))

    @property
    def shared_params(self) -> float:
        """Parameters every token uses (attention, embeddings, shared layers)."""
        return max(0.0, self.total_params - self.n_experts * self.expert_params)

    def experts_touched(self, tokens: ArrayLike):
        """Expected distinct experts per layer that `tokens` tokens are routed to (uniform
        routing): E (1 - (1 - k/E)^tokens); k for one token, nearly E for many."""
        t = np.asarray(_amounts("tokens", tokens))
        e, k = self.n_experts, self.experts_per_token
        touched = e * (1 - (1 - k / e) ** t) if self.is_moe else np.full_like(t, e)
        return float(touched) if touched.ndim == 0 else touched

    def params_read(self, tokens: ArrayLike):
        """Parameters a step over `tokens` tokens reads: all of a dense model's; a
        mixture of experts' shared weights plus the experts its tokens touch."""
        if not self.is_moe:
            return self.total_params + 0 * np.asarray(_amounts("tokens", tokens))
        return self.shared_params + self.expert_params * np.asarray(self.experts_touched(tokens))

    def held(self, tokens: ArrayLike):
        """Tokens of context the model holds: all of them, or at most max_context for a
        model that slides its window (TinyGPT)."""
        tokens = _amounts("tokens", tokens)
        return np.minimum(tokens, self.max_context) if self.slides_window else tokens

    def kv_bytes_per_token(self, precision: str) -> float:
        """Bytes of keys and values one token adds to the cache (KV heads, not query heads)."""
        return flops.kv_cache_bytes(self.n_layers, self.n_kv_heads, self.head_dim, 1,
                                    bytes_per_value=_precision("precision", precision))

    def flops_per_token(self, context: ArrayLike):
        """Forward FLOPs of one token attending over `context` positions: 2 x active
        parameters, plus 4 n_layers context d_model for attention (scores and mixing)."""
        return (FLOPS_PER_PARAM * self.active_params
                + 4 * self.n_layers * np.asarray(_amounts("context", context)) * self.d_model)


def llama31(size: str = "8b") -> ServedModel:
    """Llama 3.1 8B or 70B ('8b', '70b'): Llama 3's shapes (cited), a 128K-token context."""
    if size not in ("8b", "70b"):
        raise ValueError(f"size must be '8b' or '70b', got {size!r}")
    v = references.value
    key = f"llama3_{size}"
    heads = int(v(f"{key}.n_heads"))
    params = v(f"{key}.params")
    return ServedModel(f"Llama 3.1 {size.upper()}", params, params, int(v(f"{key}.n_layers")),
                       int(v(f"{key}.n_kv_heads")), int(v(f"{key}.d_model")) // heads,
                       int(v(f"{key}.d_model")), int(v("llama31.context_tokens")))


def chat_moe() -> ServedModel:
    """The chat preset's model: Epoch AI's 400B total / 100B active mixture of experts.

    Assumed, as no one publishes it: Mixtral's routing (2 of 8 experts per token), Llama 3
    70B's attention (80 layers, 8 KV heads of 128) and Llama 3.1's 128K-token context.
    """
    v = references.value
    shape = llama31("70b")
    return ServedModel("Chat MoE (400B total, 100B active)", v("epoch2025.total_params"),
                       v("epoch2025.active_params"), shape.n_layers, shape.n_kv_heads,
                       shape.head_dim, shape.d_model, shape.max_context,
                       int(v("mixtral.n_experts")), int(v("mixtral.experts_per_token")))


def tiny_served_model(config: ModelConfig, n_params: float, name: str = "tiny model"
                      ) -> ServedModel:
    """The course's TinyGPT as a served model (n_params: TinyGPT.num_params()['total'])."""
    validate.instance("config", config, ModelConfig)
    n_params = validate.positive("n_params", n_params, upper=1e16)
    return ServedModel(name, n_params, n_params, config.n_layer, config.kv_heads,
                       config.head_dim, config.n_embd, config.block_size, slides_window=True)


MODELS = {"llama31_8b": lambda: llama31("8b"), "llama31_70b": lambda: llama31("70b"),
          "chat_moe": chat_moe}


def served_model(key: str | ServedModel) -> ServedModel:
    """A model by key ('llama31_8b', 'llama31_70b', 'chat_moe'); unknown keys list the choices."""
    if isinstance(key, ServedModel):
        return key
    if not isinstance(key, str) or key not in MODELS:
        raise ValueError(f"key must be one of {', '.join(MODELS)} (the models), got {key!r}")
    return MODELS[key]()


# --- The hardware -----------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """One replica: `chips` chips in tensor parallel, the precisions, prices and power.

    link_bandwidth (bytes/s one way) turns on the all-reduce term: tensor parallelism sums
    every layer's partial activations twice per step (after attention and after the MLP).
    fleet_utilisation: share of paid chip-hours spent serving (1: the floor).
    """

    device: devices.Device
    chips: int = 1
    weight_precision: str = "bf16"
    kv_precision: str = "bf16"
    usd_per_chip_hour: float = 1.0
    watts_per_chip: float | None = None
    link_bandwidth: float | None = None
    allreduce_latency_s: float = 0.0
    fleet_utilisation: float = 1.0

    def __post_init__(self) -> None:
        validate.instance("device", self.device, devices.Device)
        if self.device.peak_flops is None:
            raise ValueError(f"chip {self.device.name} has no published peak FLOP/s; choose "
                             f"one of {', '.join(datacenter_chips())}")
        validate.whole("chips", self.chips)
        _precision("weight_precision", self.weight_precision)
        _precision("kv_precision", self.kv_precision)
        validate.positive("usd_per_chip_hour", self.usd_per_chip_hour)
        for name in ("watts_per_chip", "link_bandwidth"):
            if getattr(self, name) is not None:
                validate.positive(name, getattr(self, name))
        validate.positive("allreduce_latency_s", self.allreduce_latency_s, allow_zero=True)
        validate.positive("fleet_utilisation", self.fleet_utilisation, upper=1)

    @property
    def peak_flops(self) -> float:
        """The replica's dense peak, FLOP/s (every chip's together)."""
        return self.chips * self.device.peak_flops

    @property
    def bandwidth(self) -> float:
        """The replica's memory bandwidth, bytes/s (every chip's together)."""
        return self.chips * self.device.bandwidth

    @property
    def memory(self) -> float:
        """The replica's memory, bytes (every chip's together)."""
        return self.chips * self.device.memory

    @property
    def usd_per_second(self) -> float:
        """What the replica costs per second it serves, idle share of the fleet included."""
        return self.chips * self.usd_per_chip_hour / SECONDS_PER_HOUR / self.fleet_utilisation

    def describe(self) -> str:
        """'2 x NVIDIA H100 SXM, bf16 weights, bf16 KV cache'."""
        return (f"{self.chips} x {self.device.name}, {self.weight_precision} weights, "
                f"{self.kv_precision} KV cache")


def datacenter_chips() -> list[str]:
    """Catalogued chips with a published peak FLOP/s (what a replica can be made of)."""
    return [key for key in devices.names() if devices.get(key).peak_flops is not None
            and devices.get(key).kind == "datacenter"]


def deployment(chip: str | devices.Device = "h100_sxm", chips: int = 1,
               precision: str = "bf16", kv_precision: str | None = None, *,
               usd_per_hour: float | None = None, watts: float | None = None,
               interconnect: str | None = None, fleet_utilisation: float = 1.0) -> Deployment:
    """A replica of a catalogued chip with cited defaults.

    usd_per_hour: the cited low rental price (H100, A100) unless given; watts: the chip's
    maximum power; kv_precision: the weights' unless given; interconnect: a key of
    course_lib.references' 'interconnect.*' entries (e.g. 'nvlink4_h100_sxm') to count the
    all-reduce, with the course's assumed per-step latency; None leaves it out.
    """
    device = devices.get(validate.instance("chip", chip, (str, devices.Device)))
    _precision("precision", precision)
    for name, value in (("usd_per_hour", usd_per_hour), ("watts", watts)):
        if value is not None:
            validate.positive(name, value)
    links = [e.key.removeprefix("interconnect.") for e in references.entries("interconnect.")]
    if interconnect is not None:
        validate.choice("interconnect", interconnect, links)
    if usd_per_hour is None:
        try:
            usd_per_hour = scaling.usd_per_accelerator_hour(device.key)
        except KeyError:
            raise ValueError(f"no cited price for {device.name}: pass usd_per_hour") from None
    link = (None if interconnect is None
            else scaleout.one_way_bandwidth(f"interconnect.{interconnect}"))
    return Deployment(device, chips, precision, precision if kv_precision is None
                      else kv_precision, usd_per_hour,
                      device.power_watts if watts is None else watts, link,
                      0.0 if link is None else scaleout.ASSUMED_LATENCY_S, fleet_utilisation)


# --- The workload and the steps ---------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """Tokens of one request: its prompt (processed by prefill) and its answer (decoded)."""

    prompt_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt_tokens", _whole("prompt_tokens", self.prompt_tokens, 0))
        object.__setattr__(self, "output_tokens", _whole("output_tokens", self.output_tokens))

    @property
    def context(self) -> int:
        """The longest a sequence gets: prompt and answer (what its KV cache must hold)."""
        return self.prompt_tokens + self.output_tokens

    @property
    def decode_context(self) -> float:
        """The average context over the answer's decode steps."""
        return self.prompt_tokens + (self.output_tokens + 1) / 2


def checked(model: ServedModel, dep: Deployment, work: Workload
            ) -> tuple[ServedModel, Deployment, Workload]:
    """The three inputs, each of its type (a TypeError naming the one that is not)."""
    return (validate.instance("model", model, ServedModel),
            validate.instance("dep", dep, Deployment), validate.instance("work", work, Workload))


@dataclass(frozen=True)
class Step:
    """One step of a replica (numbers, or arrays over batch sizes): work and time."""

    phase: str
    flops: np.ndarray
    bytes_moved: np.ndarray
    tokens: np.ndarray  # tokens the step processes (prefill) or generates (decode)
    compute_s: np.ndarray  # FLOPs / replica peak
    memory_s: np.ndarray  # bytes / replica bandwidth
    allreduce_s: np.ndarray  # 0 unless the deployment counts it

    @property
    def seconds(self) -> np.ndarray:
        """The roofline: the slower of compute and memory, then the all-reduce."""
        return np.maximum(self.compute_s, self.memory_s) + self.allreduce_s

    @property
    def compute_bound(self) -> np.ndarray:
        """True where arithmetic, not memory traffic, sets the step time."""
        return self.compute_s >= self.memory_s


def _step(phase: str, model: ServedModel, dep: Deployment, step_flops, moved, tokens) -> Step:
    link = dep.link_bandwidth
    message = np.asarray(tokens, dtype=float) * model.d_model * ACTIVATION_BYTES
    allreduce = (2 * model.n_layers
                 * np.asarray(scaleout.ring_allreduce_seconds(message, dep.chips, link,
                                                              dep.allreduce_latency_s))
                 if link is not None and dep.chips > 1 else np.zeros_like(message))
    return Step(phase, np.asarray(step_flops, float), np.asarray(moved, float),
                np.asarray(tokens, float), np.asarray(step_flops, float) / dep.peak_flops,
                np.asarray(moved, float) / dep.bandwidth, allreduce)


def decode_step(model: ServedModel, dep: Deployment, work: Workload, batch: ArrayLike) -> Step:
    """One decode step at the answer's average context, for a batch size or an array of
    them: the weights the batch touches read once, each sequence's KV cache read."""
    model, dep, work = checked(model, dep, work)
    b = np.asarray(_amounts("batch", batch, lowest=1, integral=True))
    context = model.held(work.decode_context)
    weights = model.params_read(b) * flops.bytes_per_weight(dep.weight_precision)
    kv = b * context * model.kv_bytes_per_token(dep.kv_precision)
    return _step(DECODE, model, dep, b * model.flops_per_token(context), weights + kv, b)


def prefill_step(model: ServedModel, dep: Deployment, work: Workload, batch: ArrayLike
                 ) -> Step:
    """Every prompt of the batch in one forward pass: weights read once, the KV cache of
    every prompt token written; a prompt token attends over (prompt + 1) / 2 positions on
    average (causal attention)."""
    model, dep, work = checked(model, dep, work)
    prompt = model.held(work.prompt_tokens)
    tokens = np.asarray(_amounts("batch", batch, lowest=1, integral=True)) * prompt
    weights = model.params_read(tokens) * flops.bytes_per_weight(dep.weight_precision)
    kv = tokens * model.kv_bytes_per_token(dep.kv_precision)
    step_flops = tokens * model.flops_per_token((prompt + 1) / 2)
    return _step(PREFILL, model, dep, step_flops, weights + kv, tokens)
