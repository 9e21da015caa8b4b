"""A model's lifecycle cost: training once (and again at each retrain), inference every day.

A `Scenario` holds everything the cost depends on: the model (parameters,
training tokens, retrains per year), its traffic (requests per day, input and
output tokens per request), the hardware (peak FLOP/s, power, price per
accelerator-hour), the utilisation reached in training and in serving
(separately: serving usually reaches far less), the energy price and a
horizon. Pure functions turn it into spend in four units: FLOPs,
accelerator-hours, kWh and US dollars.

The model is deliberately simple, so that every result can be checked by hand:
a training run costs 6 N D FLOPs, each token served (prompt or answer) 2 N
FLOPs; time = FLOPs / (peak x utilisation); energy = time x power; dollars =
accelerator-hours x price + kWh x energy price.

The serving utilisation of the presets is derived, by default, from how they are served
(course_lib.serving_lifecycle: the serving model's chip-seconds per request, from the
roofline); `epoch_assumption` is the named alternative that states it instead (Epoch AI's
10% for the chat service).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from course_lib import references, serving_lifecycle, validate
from course_lib.formatting import DAYS_PER_YEAR, format_days
from course_lib.scaling import inference_flops, training_flops, usd_per_accelerator_hour
from course_lib.utilisation import accelerator_seconds

METRICS = ("flops", "gpu_hours", "kwh", "usd")
METRIC_UNITS = {"flops": "FLOP", "gpu_hours": "accelerator-hours", "kwh": "kWh", "usd": "USD"}
SERVING_BASES = ("derived", "epoch")  # serving model (default), or Epoch's assumption


@dataclass(frozen=True)
class Hardware:
    """One accelerator: dense peak FLOP/s, power draw in watts, rental price per hour."""

    name: str
    peak_flops: float
    watts: float
    usd_per_hour: float

    def __post_init__(self) -> None:
        validate.instance("name", self.name, str)
        for field in ("peak_flops", "watts", "usd_per_hour"):
            validate.positive(field, getattr(self, field))


def datasheet_hardware(chip: str = "h100_sxm", *, usd_per_hour: float | None = None,
                       watts: float | None = None) -> Hardware:
    """A datasheet chip ('h100_sxm', 'h100_pcie' or 'a100_sxm_80gb') at the cited low price.

    watts defaults to the chip's maximum power (TDP); pass a server-level figure to
    include the CPUs, memory and networking around it.
    """
    try:
        peak = references.value(f"{chip}.peak_flops")
    except KeyError:
        raise ValueError(f"chip must be one of h100_sxm, h100_pcie, a100_sxm_80gb; "
                         f"got {chip!r}") from None
    return Hardware(
        name=chip,
        peak_flops=peak,
        watts=references.value(f"{chip}.power") if watts is None else watts,
        usd_per_hour=usd_per_accelerator_hour(chip) if usd_per_hour is None else usd_per_hour,
    )


@dataclass(frozen=True)
class Scenario:
    """Everything a model's lifecycle cost depends on. Units are in the field names."""

    name: str
    n_params: float
    training_tokens: float
    retrains_per_year: float  # 0: trained once
    requests_per_day: float
    input_tokens: float  # per request (the prompt: processed, not generated)
    output_tokens: float  # per request (generated)
    hardware: Hardware
    training_utilisation: float  # fraction of peak FLOP/s reached while training
    inference_utilisation: float  # fraction of peak FLOP/s reached while serving
    usd_per_kwh: float  # 0 if the hourly price already includes power
    horizon_days: float
    sources: tuple[str, ...] = ()  # reference keys behind the figures
    # How it is served, when inference_utilisation was derived from it (`served`); None when
    # the utilisation is assumed (Epoch's assumption).
    serving: serving_lifecycle.ServingPlan | None = None

    def __post_init__(self) -> None:
        for field in ("n_params", "training_tokens", "horizon_days"):
            validate.positive(field, getattr(self, field))
        for field in ("retrains_per_year", "requests_per_day", "input_tokens", "output_tokens",
                      "usd_per_kwh"):
            validate.positive(field, getattr(self, field), allow_zero=True)
        for field in ("training_utilisation", "inference_utilisation"):
            validate.positive(field, getattr(self, field), upper=1)
        for field, kinds in (("name", str), ("hardware", Hardware), ("sources", tuple),
                             ("serving", (serving_lifecycle.ServingPlan, type(None)))):
            validate.instance(field, getattr(self, field), kinds)

    def replace(self, **changes) -> Scenario:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def tokens_per_day(self) -> float:
        """Tokens the model processes per day: every prompt and every answer token."""
        return self.requests_per_day * (self.input_tokens + self.output_tokens)

    def citations(self) -> list[str]:
        """The cited figures this scenario rests on."""
        return [references.get(key).cite() for key in self.sources]


@dataclass(frozen=True)
class Spend:
    """An amount of work in the four units the course compares."""

    flops: float
    gpu_hours: float
    kwh: float
    usd: float

    def __getitem__(self, metric: str) -> float:
        return getattr(self, validate.choice("metric", metric, METRICS))


def _spend(flops: float, utilisation: float, s: Scenario) -> Spend:
    hours = accelerator_seconds(flops, s.hardware.peak_flops, utilisation) / 3600
    kwh = hours * s.hardware.watts / 1000
    return Spend(flops, hours, kwh, validate.result(
        "spend", hours * s.hardware.usd_per_hour + kwh * s.usd_per_kwh, watts=s.hardware.watts))


@validate.checked
def training_cost(s: Scenario) -> Spend:
    """One training run: 6 N D FLOPs at the training utilisation."""
    return _spend(training_flops(s.n_params, s.training_tokens), s.training_utilisation, s)


@validate.checked
def inference_cost_per_day(s: Scenario) -> Spend:
    """One day of serving: 2 N FLOPs per prompt or answer token, at the serving utilisation."""
    return _spend(inference_flops(s.n_params, s.tokens_per_day), s.inference_utilisation, s)


@validate.checked
def cost_per_request(s: Scenario) -> Spend:
    """Serving one request (its prompt and its answer)."""
    tokens = s.input_tokens + s.output_tokens
    return _spend(inference_flops(s.n_params, tokens), s.inference_utilisation, s)


@validate.checked
def retrain_period_days(s: Scenario) -> float:
    """Days between training runs (inf if the model is trained once)."""
    return math.inf if s.retrains_per_year == 0 else DAYS_PER_YEAR / s.retrains_per_year


def training_runs(days, period_days: float) -> np.ndarray:
    """Training runs paid by each of `days`: the first at day 0, then one just after each
    `period_days` (so day P still has one run, day P + 1 two; math.inf: trained once)."""
    t = validate.positive_array("days", days, allow_zero=True)
    period = validate.positive("period_days (or math.inf)", period_days, allow_inf=True)
    return np.maximum(1, np.ceil(t / period))


@validate.checked
def cumulative(s: Scenario, days, metric: str = "usd") -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (training, inference) spend at each day in `days`.

    Training is paid at day 0 and again at each retrain (days P, 2P, ... after
    deployment, P the retraining period, paid just after that day); inference accrues
    every day.
    """
    t = validate.positive_array("days", days, allow_zero=True)
    runs = training_runs(t, retrain_period_days(s))
    spends = runs * training_cost(s)[metric], t * inference_cost_per_day(s)[metric]
    return validate.result("cumulative spend", spends, days=days)


@validate.checked
def crossover_day(s: Scenario, metric: str = "usd") -> float | None:
    """The day cumulative inference spend first equals cumulative training spend, or None.

    Inference accrues at i per day against a training run of cost C, so the lines
    meet at C / i, unless a retrain (which adds another C) comes first: then
    inference never catches up, because it cannot close the gap faster than
    retraining reopens it. Zero traffic gives None ("never").
    """
    per_day = inference_cost_per_day(s)[metric]
    if per_day == 0:
        return None
    day = training_cost(s)[metric] / per_day
    return day if day <= retrain_period_days(s) and math.isfinite(day) else None


@validate.checked
def inference_share(s: Scenario, metric: str = "usd", day: float | None = None) -> float:
    """Inference's share (0 to 1) of the total spend up to `day` (default: the horizon)."""
    end = s.horizon_days if day is None else validate.positive("day", day, allow_zero=True)
    train, serve = cumulative(s, [end], metric)
    if train[0] + serve[0] == 0:  # both underflowed: no share to speak of
        raise ValueError(f"s: its spend in {metric} rounds to 0 (amounts too small for a float)")
    return float(serve[0] / (train[0] + serve[0]))


@validate.checked
def describe_crossover(s: Scenario, metric: str = "usd") -> str:
    """The crossover in one plain sentence, which agrees with inference_share at the horizon:
    after each retrain, inference must catch up with one more training run."""
    unit = METRIC_UNITS[validate.choice("metric", metric, METRICS)]
    day, period = crossover_day(s, metric), retrain_period_days(s)
    if s.requests_per_day == 0 or s.tokens_per_day == 0:
        return f"Never: with no traffic, inference spends nothing ({unit})."
    if day is None:
        return (f"Never: inference spend ({unit}) does not catch up with training" + (
            "." if period == math.inf else f" before the model is retrained, every "
            f"{format_days(period)}."))
    first = f"Inference spend ({unit}) overtakes training after {format_days(day)}"
    horizon = format_days(s.horizon_days)
    runs = int(training_runs([s.horizon_days], period)[0])
    if day > s.horizon_days or runs == 1:
        return f"{first}, {'after' if day > s.horizon_days else 'within'} the {horizon} horizon."
    lead = ("inference leads (its spend covers all the runs from" if runs * day <= s.horizon_days
            else "training leads (inference covers all the runs only after")
    return (f"{first}; each retrain (every {format_days(period)}) adds a training run, and at "
            f"the {horizon} horizon, after {runs} runs, {lead} {format_days(runs * day)}).")


# --- Two models: one k times more expensive per request, but better ----------------------------


@dataclass(frozen=True)
class Comparison:
    """Model B costs cost_ratio times model A per request; its better answers are worth
    extra_value_usd_per_day. Above break_even_requests_per_day, B loses."""

    cost_ratio: float
    extra_value_usd_per_day: float
    usd_per_request_a: float
    break_even_requests_per_day: float | None  # None: B never loses

    def b_advantage_usd_per_day(self, requests_per_day) -> np.ndarray:
        """B's value minus its extra serving spend, per day, at each traffic level."""
        v = validate.positive_array("requests_per_day", requests_per_day, allow_zero=True)
        extra_cost = (self.cost_ratio - 1) * self.usd_per_request_a * v
        return self.extra_value_usd_per_day - extra_cost


@validate.checked
def compare(a: Scenario, cost_ratio: float = 10, extra_value_usd_per_day: float = 1000
            ) -> Comparison:
    """When does a better model that costs cost_ratio times more per request lose?

    B is assumed to cost the same to train as A (for example a bigger model trained
    on fewer tokens), so only serving differs: B's extra spend grows with traffic,
    its extra value (what its better answers are worth to you per day) does not.
    """
    k = validate.positive("cost_ratio", cost_ratio)
    value = validate.positive("extra_value_usd_per_day", extra_value_usd_per_day,
                              allow_zero=True)
    per_request = cost_per_request(a).usd
    extra = (k - 1) * per_request  # B's extra cost per request; B never loses without one
    break_even = value / extra if extra > 0 else math.inf
    return Comparison(k, value, per_request, break_even if math.isfinite(break_even) else None)


# --- How serving is charged: derived from the serving model, or assumed -----------------------


@validate.checked
def served(s: Scenario, plan: serving_lifecycle.ServingPlan) -> Scenario:
    """`s` served as `plan` says: its serving utilisation derived from the serving model
    (for its prompt and answer lengths) instead of assumed."""
    utilisation = serving_lifecycle.implied_utilisation(plan, s.input_tokens, s.output_tokens)
    return s.replace(serving=plan, inference_utilisation=utilisation,
                     sources=tuple(dict.fromkeys(s.sources + plan.sources)))


@validate.checked
def epoch_assumption(s: Scenario, utilisation: float | None = None) -> Scenario:
    """The named alternative: serving at a stated utilisation, Epoch AI's 10% unless given."""
    value = (references.value("epoch2025.inference_utilisation") if utilisation is None
             else validate.positive("utilisation", utilisation, upper=1))
    return s.replace(serving=None, inference_utilisation=value)


def _basis(s: Scenario, serving: str, plan: serving_lifecycle.ServingPlan) -> Scenario:
    validate.choice("serving", serving, SERVING_BASES)
    return served(s, plan) if serving == "derived" else s


# --- Presets: real scenarios, each figure cited ----------------------------------------------


def chat_service(serving: str = "derived") -> Scenario:
    """A chat service with ChatGPT's published traffic and Epoch AI's per-query assumptions.

    serving='derived' (default): served as serving_lifecycle.chat_plan() says (Epoch AI's
    400B total / 100B active mixture of experts); 'epoch': at Epoch AI's assumed 10%.
    """
    keys = ("epoch2025.active_params", "llama3_70b.training_tokens",
            "preset_chat.retrains_per_year", "chatgpt.prompts_per_day_2025",
            "preset_chat.input_tokens", "epoch2025.output_tokens_per_query",
            "h100_sxm.peak_flops", "epoch2025.watts_per_gpu", "price.h100_usd_per_hour_low",
            "llama31_405b.mfu", "epoch2025.inference_utilisation",
            "price.electricity_usd_per_kwh")
    v = references.value
    s = Scenario(
        name="Chat service (ChatGPT-scale traffic)",
        n_params=v("epoch2025.active_params"),
        # GPT-4o's training tokens are not public: we assume Llama 3's 15T.
        training_tokens=v("llama3_70b.training_tokens"),
        retrains_per_year=v("preset_chat.retrains_per_year"),
        requests_per_day=v("chatgpt.prompts_per_day_2025"),
        input_tokens=v("preset_chat.input_tokens"),
        output_tokens=v("epoch2025.output_tokens_per_query"),
        hardware=datasheet_hardware("h100_sxm", watts=v("epoch2025.watts_per_gpu")),
        training_utilisation=v("llama31_405b.mfu"),
        inference_utilisation=v("epoch2025.inference_utilisation"),
        usd_per_kwh=v("price.electricity_usd_per_kwh"),
        horizon_days=DAYS_PER_YEAR,
        sources=keys,
    )
    return _basis(s, serving, serving_lifecycle.chat_plan())


def open_model(serving: str = "derived") -> Scenario:
    """A Llama-3-8B-like open model served at a (stated, assumed) popular-API volume.

    serving='derived' (default): Llama 3.1 8B as serving_lifecycle.open_plan() serves it;
    'epoch': at the course's assumed 20% (Epoch AI's approach, a stated utilisation).
    """
    v = references.value
    s = chat_service("epoch").replace(
        name="Open 8B model (Llama 3 8B-like)",
        n_params=v("llama3_8b.params"),
        training_tokens=v("llama3_8b.training_tokens"),
        requests_per_day=v("preset_open.requests_per_day"),
        inference_utilisation=v("preset_open.inference_utilisation"),
        sources=("llama3_8b.params", "llama3_8b.training_tokens",
                 "preset_chat.retrains_per_year", "preset_open.requests_per_day",
                 "preset_chat.input_tokens", "epoch2025.output_tokens_per_query",
                 "h100_sxm.peak_flops", "epoch2025.watts_per_gpu",
                 "price.h100_usd_per_hour_low", "llama31_405b.mfu",
                 "preset_open.inference_utilisation", "price.electricity_usd_per_kwh"),
    )
    return _basis(s, serving, serving_lifecycle.open_plan())


def tiny_model(n_params: float | None = None, laptop_flops: float | None = None,
               serving: str = "derived") -> Scenario:
    """Your own tiny model on your laptop: trained once, asked a few questions a day.

    Pass your model's parameter count and the FLOP/s notebook 04 measured to replace
    the defaults (nanoGPT's CPU model, an assumed laptop). serving='derived' (default):
    one request at a time, as serving_lifecycle.tiny_plan() says; 'epoch': utilisation 1.
    """
    v = references.value
    laptop = Hardware(
        name="laptop CPU",
        peak_flops=(v("preset_tiny.laptop_flops") if laptop_flops is None
                    else validate.positive("laptop_flops (or None)", laptop_flops, lowest=1)),
        watts=v("preset_tiny.laptop_watts"),
        usd_per_hour=v("preset_tiny.laptop_usd_per_hour"),
    )
    s = Scenario(
        name="Your tiny model on your laptop",
        n_params=v("preset_tiny.params") if n_params is None else n_params,
        training_tokens=v("preset_tiny.training_tokens"),
        retrains_per_year=0,
        requests_per_day=v("preset_tiny.requests_per_day"),
        input_tokens=0,
        output_tokens=v("preset_tiny.tokens_per_request"),
        hardware=laptop,
        # The laptop figure is already what the CPU sustains, so utilisation is 1.
        training_utilisation=1,
        inference_utilisation=1,
        usd_per_kwh=v("price.electricity_usd_per_kwh"),
        horizon_days=DAYS_PER_YEAR,
        sources=("preset_tiny.params", "preset_tiny.training_tokens",
                 "preset_tiny.requests_per_day", "preset_tiny.tokens_per_request",
                 "preset_tiny.laptop_flops", "preset_tiny.laptop_watts",
                 "preset_tiny.laptop_usd_per_hour", "price.electricity_usd_per_kwh"),
    )
    return _basis(s, serving, serving_lifecycle.tiny_plan(n_params, laptop_flops))


def presets(serving: str = "derived") -> dict[str, Scenario]:
    """The course's scenarios by short name; serving='epoch' for Epoch's assumption."""
    return {"chat": chat_service(serving), "open_8b": open_model(serving),
            "tiny": tiny_model(serving=serving)}
