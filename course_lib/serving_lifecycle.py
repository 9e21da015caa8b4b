"""How the lifecycle presets are served, and the serving utilisation that follows from it.

Notebook 05's lifecycle model charges each served token 2 N FLOPs at a serving utilisation.
Epoch AI assumed 10% for ChatGPT; here the utilisation is derived instead: a `ServingPlan`
says how a model is served (which model, which replica, a batch size or a time-per-output-
token target) and `implied_utilisation` turns the serving model's chip-seconds per request
into the utilisation that charges exactly that (course_lib.costs' presets use it by
default, Epoch's assumption stays as the named alternative).

The presets, each figure cited in course_lib.references:
- chat: Epoch AI's 400B total / 100B active mixture of experts on one 8-GPU H100 server in
  fp8 (400 GB of weights: the smallest H100 server that holds them), at MLPerf's
  interactive time-per-output-token limit;
- open 8B: Llama 3.1 8B on one H100 in bf16, at MLPerf's interactive limit for it;
- tiny: your TinyGPT on your laptop, one request at a time, in fp32.
Both data-centre presets pay for an assumed idle share of the fleet.

Arithmetic layer (numpy and the standard library).
"""

from __future__ import annotations

from dataclasses import dataclass

from course_lib import devices, references, validate
from course_lib.serving import (
    FLOPS_PER_PARAM,
    MOST,
    Deployment,
    ServedModel,
    Workload,
    chat_moe,
    deployment,
    llama31,
    tiny_served_model,
)
from course_lib.serving_cost import ServingCost, cheapest_batch, serve
from course_lib.shapes import ModelConfig

CHAT_SERVER_CHIPS = 8  # one DGX H100-class server (Epoch AI's power figure is per such server)


@dataclass(frozen=True)
class ServingPlan:
    """How a model is served: the model, the replica, and a batch size or a target time per
    output token (seconds) from which the cheapest batch follows. Exactly one of the two."""

    model: ServedModel
    deployment: Deployment
    batch: int | None = None
    tpot_target_s: float | None = None
    sources: tuple[str, ...] = ()  # reference keys behind the plan

    def __post_init__(self) -> None:
        validate.instance("model", self.model, ServedModel)
        validate.instance("deployment", self.deployment, Deployment)
        if not isinstance(self.sources, tuple) or not all(isinstance(k, str)
                                                          for k in self.sources):
            raise TypeError(f"sources must be a tuple of reference keys, got {self.sources!r:.60}")
        if (self.batch is None) == (self.tpot_target_s is None):
            raise ValueError("give exactly one of batch and tpot_target_s, got "
                             f"batch={self.batch!r}, tpot_target_s={self.tpot_target_s!r}")
        if self.batch is not None:
            validate.whole("batch", self.batch)
        else:
            validate.positive("tpot_target_s", self.tpot_target_s)

    def workload(self, input_tokens: float, output_tokens: float) -> Workload:
        """A request of this many prompt and answer tokens (rounded to whole tokens)."""
        validate.positive("input_tokens", input_tokens, allow_zero=True, upper=MOST)
        validate.positive("output_tokens", output_tokens, upper=MOST)
        return Workload(round(input_tokens), max(1, round(output_tokens)))

    def cost(self, input_tokens: float, output_tokens: float) -> ServingCost:
        """The serving model's answer for this plan and request shape."""
        work = self.workload(input_tokens, output_tokens)
        batch = (self.batch if self.batch is not None
                 else cheapest_batch(self.model, self.deployment, work, self.tpot_target_s))
        return serve(self.model, self.deployment, work, batch)

    def describe(self) -> str:
        """'Chat MoE ... on 8 x NVIDIA H100 SXM, fp8 weights, ..., at <= 40 ms per token'."""
        how = (f"batch {self.batch}" if self.batch is not None
               else f"the cheapest batch within {self.tpot_target_s * 1e3:g} ms per output token")
        fleet = self.deployment.fleet_utilisation
        return (f"{self.model.name} on {self.deployment.describe()}, {how}, "
                f"{fleet:.0%} of paid hours serving")


def implied_utilisation(plan: ServingPlan, input_tokens: float, output_tokens: float) -> float:
    """The serving utilisation the serving model implies for one request shape.

    The lifecycle model charges 2 x active parameters FLOPs per prompt or answer token at
    peak x utilisation; this is the utilisation at which that charge equals the serving
    model's chip-seconds per request (prefill and decode, idle fleet share included).
    """
    cost = validate.instance("plan", plan, ServingPlan).cost(input_tokens, output_tokens)
    work = cost.workload
    model_flops = FLOPS_PER_PARAM * plan.model.active_params * (work.prompt_tokens
                                                                + work.output_tokens)
    return min(1.0, model_flops / (plan.deployment.device.peak_flops
                                   * cost.chip_seconds_per_request()))


# --- The presets' plans ------------------------------------------------------------------


def chat_plan() -> ServingPlan:
    """The chat preset: the 400B/100B mixture of experts on one 8-H100 server in fp8."""
    fleet = references.value("assumption.serving_fleet_utilisation")
    return ServingPlan(
        chat_moe(), deployment("h100_sxm", CHAT_SERVER_CHIPS, "fp8", fleet_utilisation=fleet),
        tpot_target_s=references.value("mlperf.llama2_70b_interactive_tpot_s"),
        sources=("epoch2025.total_params", "epoch2025.active_params", "mixtral.n_experts",
                 "mixtral.experts_per_token", "llama3_70b.n_layers", "llama3_70b.n_kv_heads",
                 "h100_sxm.bandwidth", "h100_sxm.memory", "h100_sxm.peak_flops",
                 "mlperf.llama2_70b_interactive_tpot_s", "assumption.serving_fleet_utilisation"))


def open_plan() -> ServingPlan:
    """The open 8B preset: Llama 3.1 8B on one H100 in bf16."""
    fleet = references.value("assumption.serving_fleet_utilisation")
    return ServingPlan(
        llama31("8b"), deployment("h100_sxm", fleet_utilisation=fleet),
        tpot_target_s=references.value("mlperf.llama31_8b_interactive_tpot_s"),
        sources=("llama3_8b.n_layers", "llama3_8b.n_kv_heads", "h100_sxm.bandwidth",
                 "h100_sxm.memory", "h100_sxm.peak_flops",
                 "mlperf.llama31_8b_interactive_tpot_s", "assumption.serving_fleet_utilisation"))


def laptop(peak_flops: float | None = None) -> devices.Device:
    """The tiny preset's laptop: an assumed sustained FLOP/s (or yours, measured), and a
    cited laptop's memory bandwidth and size (Apple M4)."""
    v = references.value
    peak = (v("preset_tiny.laptop_flops") if peak_flops is None
            else validate.positive("peak_flops", peak_flops))
    return devices.Device("laptop", "laptop CPU", "laptop", peak, v("apple_m4.bandwidth"),
                          v("apple_m4.memory"), v("preset_tiny.laptop_watts"),
                          "course assumption (FLOP/s); Apple M4 (bandwidth, memory)")


def tiny_plan(n_params: float | None = None, laptop_flops: float | None = None) -> ServingPlan:
    """Your TinyGPT (nanoGPT's CPU shape) on your laptop, one request at a time, in fp32."""
    v = references.value
    params = (v("preset_tiny.params") if n_params is None  # fp32 weights must fit the laptop
              else validate.positive("n_params", n_params, upper=v("apple_m4.memory") / 4))
    if laptop_flops is not None:
        validate.positive("laptop_flops", laptop_flops)
    # The vocabulary does not enter serving: the parameter count is given.
    model = tiny_served_model(ModelConfig(vocab_size=1), params)
    dep = Deployment(laptop(laptop_flops), 1, "fp32", "fp32",
                     v("preset_tiny.laptop_usd_per_hour"), v("preset_tiny.laptop_watts"))
    return ServingPlan(model, dep, batch=1,
                       sources=("preset_tiny.params", "preset_tiny.laptop_flops",
                                "apple_m4.bandwidth", "apple_m4.memory",
                                "preset_tiny.laptop_usd_per_hour"))


def preset_plans() -> dict[str, ServingPlan]:
    """The plans behind course_lib.costs' presets, by the same short names."""
    return {"chat": chat_plan(), "open_8b": open_plan(), "tiny": tiny_plan()}
