"""How loss and compute scale with model size and data: scaling laws and model sizing.

The Chinchilla parametric loss (Hoffmann et al. 2022) models a language model's
loss, in nats per token, from its parameters N and training tokens D:

    L(N, D) = E + A / N**alpha + B / D**beta

Two sets of constants exist (both in course_lib.references): the rounded
2022 published ones, and the 2024 replication's refit (Besiroglu et al.),
which this module uses by default because only the refit reproduces
Chinchilla's "about 20 tokens per parameter".

Training costs about 6 N D FLOPs, so for a compute budget C there is one
best split between N and D (closed form below). Once a model is served,
every generated token costs about 2 N FLOPs more; `inference_aware` finds the
(N, D) that minimise training plus lifetime inference FLOPs for a target loss
(Sardana et al. 2024), which moves to smaller models trained on more tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from course_lib import devices, flops, references, validate
from course_lib.utilisation import accelerator_seconds

FITS = ("besiroglu2024", "chinchilla2022")
DEFAULT_FIT = "besiroglu2024"
SECONDS_PER_DAY = 86_400
# Highest loss a target may be, nats per token: guessing uniformly among 100,000 tokens
# scores ln(1e5) = 11.5, so any trained model is far below it.
MAX_LOSS = 20.0
BF16_BYTES = flops.bytes_per_weight("bf16")  # the usual serving precision
CHIPS = ("h100_sxm", "a100_sxm_80gb")  # datasheet chips with a cited rental price






@dataclass(frozen=True)
class LossFit:
    """The five constants of L(N, D) = E + A / N^alpha + B / D^beta, and where they come from."""

    name: str
    E: float  # irreducible loss, nats per token
    A: float
    B: float
    alpha: float
    beta: float
    source: str

    def __post_init__(self) -> None:
        validate.instance("name", self.name, str)
        validate.positive("E", self.E, allow_zero=True, upper=MAX_LOSS)
        for name in ("A", "B", "alpha", "beta"):
            validate.positive(name, getattr(self, name))

    def loss(self, n_params: float, n_tokens: float) -> float:
        """Predicted loss in nats per token of N parameters trained on D tokens."""
        n = validate.positive("n_params", n_params)
        d = validate.positive("n_tokens", n_tokens)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta


@validate.checked
def get_fit(fit: str | LossFit = DEFAULT_FIT) -> LossFit:
    """The constants of one fit by name ('besiroglu2024' or 'chinchilla2022')."""
    if isinstance(fit, LossFit):
        return fit
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    constants = {k: references.value(f"{fit}.{k}") for k in ("E", "A", "B", "alpha", "beta")}
    return LossFit(fit, source=references.get(f"{fit}.E").source, **constants)


@validate.checked
def loss(n_params: float, n_tokens: float, fit: str | LossFit = DEFAULT_FIT) -> float:
    """Predicted loss (nats per token) of N parameters trained on D tokens."""
    return get_fit(fit).loss(n_params, n_tokens)


@validate.checked
def training_flops(n_params: float, n_tokens: float) -> float:
    """Training compute in FLOPs, 6 N D (2 N D forward + 4 N D backward)."""
    n = validate.positive("n_params", n_params)
    d = validate.positive("n_tokens", n_tokens)
    return flops.six_n_d(n, d)  # an overflow is reported as n_params or n_tokens (@checked)


def inference_flops(n_params: float, n_tokens: float) -> float:
    """Inference compute in FLOPs for n_tokens processed or generated: 2 N per token."""
    n = validate.positive("n_params", n_params)
    d = validate.positive("n_tokens", n_tokens, allow_zero=True)
    return validate.result("inference FLOPs", references.value("flops.forward_per_param_token")
                           * n * d, n_params=n_params, n_tokens=n_tokens)


def parity_tokens(n_training_tokens: float) -> float:
    """Tokens served at which inference FLOPs equal training FLOPs: 3 D, whatever N is."""
    d = validate.positive("n_training_tokens", n_training_tokens)
    return validate.result("parity tokens", d * flops.TRAIN_PER_FORWARD,
                           n_training_tokens=n_training_tokens)


# --- Compute-optimal (Chinchilla) sizing ----------------------------------------------------


@validate.checked
def compute_optimal(c_flops: float, fit: str | LossFit = DEFAULT_FIT) -> tuple[float, float]:
    """(N*, D*) minimising L(N, D) for a budget of C = 6 N D FLOPs (closed form).

    G = (alpha A / (beta B))^(1 / (alpha + beta)),
    N* = G (C / 6)^(beta / (alpha + beta)),  D* = C / (6 N*).
    """
    c = validate.positive("c_flops", c_flops)
    f = get_fit(fit)
    six = references.value("flops.train_per_param_token")
    g = (f.alpha * f.A / (f.beta * f.B)) ** (1 / (f.alpha + f.beta))
    n_opt = g * (c / six) ** (f.beta / (f.alpha + f.beta))
    return n_opt, c / (six * n_opt)


@validate.checked
def tokens_for_loss(n_params: float, target_loss: float,
                    fit: str | LossFit = DEFAULT_FIT) -> float:
    """Training tokens a model of N parameters needs to reach target_loss (inf if it cannot)."""
    n = validate.positive("n_params", n_params)
    validate.positive("target_loss (nats per token)", target_loss, upper=MAX_LOSS)
    f = get_fit(fit)
    gap = target_loss - f.E - f.A / n**f.alpha  # what the data term must still supply
    if gap <= 0:
        return math.inf
    return (f.B / gap) ** (1 / f.beta)


@validate.checked
def smallest_model_for_loss(target_loss: float, fit: str | LossFit = DEFAULT_FIT) -> float:
    """Parameters below which no amount of data reaches target_loss (the size term alone)."""
    f = get_fit(fit)
    validate.positive("target_loss (nats per token)", target_loss, upper=MAX_LOSS)
    if target_loss <= f.E:
        raise ValueError(f"target_loss must be a number > E = {f.E} nats/token for the "
                         f"{f.name} fit (no model gets below E), got {target_loss!r}")
    return (f.A / (target_loss - f.E)) ** (1 / f.alpha)


# --- Inference-aware sizing (Sardana et al. 2024) --------------------------------------------


@dataclass(frozen=True)
class Sizing:
    """A model size and its training tokens for a target loss, with the FLOPs it costs."""

    n_params: float
    n_tokens: float  # training tokens
    inference_tokens: float  # lifetime tokens served
    training_flops: float
    inference_flops: float

    @property
    def total_flops(self) -> float:
        return self.training_flops + self.inference_flops

    @property
    def tokens_per_param(self) -> float:
        return self.n_tokens / self.n_params


@validate.checked
def sizing(n_params: float, target_loss: float, inference_tokens: float,
           fit: str | LossFit = DEFAULT_FIT) -> Sizing:
    """N parameters trained just long enough to reach target_loss, then serving
    inference_tokens: the FLOPs of both (training is inf if N is too small to get there)."""
    validate.positive("inference_tokens", inference_tokens, allow_zero=True)
    d = tokens_for_loss(n_params, target_loss, fit)
    train = math.inf if math.isinf(d) else training_flops(n_params, d)
    return Sizing(n_params, d, inference_tokens, train, inference_flops(n_params,
                                                                        inference_tokens))


@validate.checked
def inference_aware(target_loss: float, inference_tokens: float,
                    fit: str | LossFit = DEFAULT_FIT) -> Sizing:
    """The (N, D) reaching target_loss with the least 6 N D + 2 N D_inference FLOPs.

    No closed form exists. Along the curve L(N, D) = target, total FLOPs fall and
    then rise as N grows (one minimum), so a log-spaced scan brackets the minimum
    and a golden-section search on log N refines it. With inference_tokens = 0
    this is the Chinchilla compute-optimal model for that loss.
    """
    f = get_fit(fit)
    d_inf = validate.positive("inference_tokens", inference_tokens, allow_zero=True)
    n_min = smallest_model_for_loss(target_loss, f)

    def total(log_n: float) -> float:
        return sizing(math.exp(log_n), target_loss, d_inf, f).total_flops

    # The optimum lies within 1e-9 .. 1e9 times the smallest feasible model for any
    # loss and demand the widgets offer; the scan starts just above n_min where D -> inf.
    lo, hi = math.log(n_min) + 1e-9, math.log(n_min) + math.log(1e9)
    grid = [lo + (hi - lo) * i / 400 for i in range(401)]
    values = [total(x) for x in grid]
    best = min(range(len(grid)), key=values.__getitem__)
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):  # golden section: the bracket shrinks to ~1e-17 of its width
        x1, x2 = b - ratio * (b - a), a + ratio * (b - a)
        if total(x1) < total(x2):
            b = x2
        else:
            a = x1
    return sizing(math.exp((a + b) / 2), target_loss, d_inf, f)


# --- What one (N, D, context) costs: the scaling explorer's numbers ---------------------------


@validate.checked
def usd_per_accelerator_hour(chip: str, bound: str = "low") -> float:
    """The cited rental price of one accelerator of the chip's family ('h100_sxm' -> H100),
    at the low or high end of the cited range."""
    validate.choice("bound", bound, ("low", "high"))
    key = f"price.{chip.split('_')[0]}_usd_per_hour_{bound}"
    if key not in references.REFERENCES:  # a KeyError too, for callers that look prices up
        priced = [name for name in devices.names()
                  if f"price.{name.split('_')[0]}_usd_per_hour_low" in references.REFERENCES]
        raise references.UnknownReference(f"chip must be one of {', '.join(priced)} (a chip "
                                          f"with a cited rental price); got {chip!r}")
    return references.value(key)


def model_shape(n_params: float) -> tuple[int, int]:
    """(n_layer, d_model) of a typical decoder with about n_params non-embedding parameters.

    Assumes N = 12 n_layer d_model^2 and Llama 3 8B's width-to-depth ratio
    (d_model = 128 n_layer, as GPT-3 175B also has): an estimate for models whose
    shape is not published, used only for the attention term.
    """
    n = validate.positive("n_params", n_params)
    aspect = references.value("llama3_8b.d_model") / references.value("llama3_8b.n_layers")
    d_model = (n / 12) ** (1 / 3) * aspect ** (1 / 3)  # in this order: no overflow
    return max(1, round(d_model / aspect)), max(1, round(d_model))


@validate.checked
def estimated_forward_flops_per_token(n_params: float, context: float) -> float:
    """Forward FLOPs for one token at a given context: 2 N + 2 n_layer context d_model.

    The second term is attention over the context (Kaplan et al. 2020, table 1),
    with the shape estimated by model_shape().
    """
    n_layer, d_model = model_shape(n_params)
    ctx = validate.positive("context", context)
    return flops.kaplan_forward_flops_per_token(n_params, n_layer, ctx, d_model)


@dataclass(frozen=True)
class RunEstimate:
    """Compute, memory, time and money for training N parameters on D tokens."""

    n_params: float
    n_tokens: float
    context: float
    training_flops: float  # 6 N D plus attention
    forward_flops_per_token: float
    attention_share: float  # fraction of per-token FLOPs spent on attention
    training_memory_bytes: float  # weights, gradients, optimizer state (before activations)
    serving_memory_bytes: float  # bf16 weights plus one sequence's KV cache (KV heads) at `context`
    accelerator_days: float
    usd_low: float
    usd_high: float
    chinchilla_loss: float


@validate.checked
def estimate_run(n_params: float, n_tokens: float, context: float, *,
                 chip: str = "h100_sxm", utilisation: float | None = None) -> RunEstimate:
    """Everything the scaling explorer shows, for a run on `chip` at `utilisation` of peak.

    utilisation defaults to Llama 3 405B's reported model FLOPs utilisation; the
    price range is the cited rental range for the chip (h100_sxm or a100_sxm_80gb).
    """
    n = validate.positive("n_params", n_params)
    d = validate.positive("n_tokens", n_tokens)
    ctx = validate.positive("context", context)
    if chip not in CHIPS:
        raise ValueError(f"chip must be one of {', '.join(CHIPS)}, got {chip!r}")
    util = validate.positive("utilisation", references.value("llama31_405b.mfu")
                            if utilisation is None else utilisation, upper=1)
    per_token = estimated_forward_flops_per_token(n, ctx)
    run_flops = validate.result("training FLOPs", flops.TRAIN_PER_FORWARD * per_token * d,
                                n_params=n_params, n_tokens=n_tokens, context=context)
    n_layer, d_model = model_shape(n)
    # Keys and values for every layer, counted over KV heads, not query heads: modern models
    # share each KV head among several query heads (grouped-query attention). The share is
    # assumed to be Llama 3 8B's, like the shape itself.
    kv_share = references.value("llama3_8b.n_kv_heads") / references.value("llama3_8b.n_heads")
    # flops.kv_cache_bytes per token, with every head's width counted (d_model), then
    # scaled by the KV-head share.
    kv_bytes = kv_share * ctx * flops.kv_cache_bytes(n_layer, 1, d_model, 1,
                                                         bytes_per_value=BF16_BYTES)
    seconds = accelerator_seconds(run_flops, references.value(f"{chip}.peak_flops"), util)
    gpu_hours = seconds / 3600
    return RunEstimate(
        n_params=n, n_tokens=d, context=ctx, training_flops=run_flops,
        forward_flops_per_token=per_token,
        attention_share=1 - references.value("flops.forward_per_param_token") * n / per_token,
        training_memory_bytes=references.value("memory.adamw_bytes_per_param") * n,
        serving_memory_bytes=BF16_BYTES * n + kv_bytes,
        accelerator_days=seconds / SECONDS_PER_DAY,
        usd_low=gpu_hours * usd_per_accelerator_hour(chip, "low"),
        usd_high=gpu_hours * usd_per_accelerator_hour(chip, "high"),
        chinchilla_loss=loss(n, d),
    )
