"""The serving model checked three ways: market prices, a published example, this machine.

1. Market: published prices per million input and output tokens for Llama 3.1 8B and 70B
   (two providers, dated in course_lib.references) against the serving model's cost floor,
   at MLPerf's interactive time-per-output-token limit and a stated fleet utilisation.
   `implied_fleet_utilisation` says what share of paid hours the floor would need to equal
   a price (margins, idle capacity and real kernels all hide in it).
2. A published worked example: the scaling book's LLaMA 3-70B on TPU v5e (Austin et al.
   2025), reproduced with its own inputs.
3. This machine: the serving model fed with this machine's measured matmul rate and memory
   bandwidth, for the course's TinyGPT; notebook 08 sets it against measured tokens/s.

Arithmetic layer (numpy and the standard library).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from course_lib import devices, references, validate
from course_lib.serving import (
    MOST,
    Deployment,
    ServedModel,
    Workload,
    deployment,
    llama31,
    tiny_served_model,
)
from course_lib.serving_cost import ServingCost, cheapest_batch, decode_curve, largest_batch, serve
from course_lib.shapes import ModelConfig

PROVIDERS = {"fireworks": "Fireworks AI", "deepinfra": "DeepInfra"}
# What a learner reads for each priced model (never the key).
MODEL_NAMES = {"llama31_8b": "Llama 3.1 8B", "llama31_70b": "Llama 3.1 70B"}


# --- 1. Market prices ---------------------------------------------------------------------


@dataclass(frozen=True)
class MarketRow:
    """One model: the serving model's floor against the providers' prices (USD per million)."""

    model: str  # 'llama31_8b' or 'llama31_70b'
    cost: ServingCost  # the floor (at the deployment's fleet utilisation)
    prices: dict[str, tuple[float, float]]  # provider -> (input, output) USD per million

    def ratios(self) -> dict[str, tuple[float, float]]:
        """Provider price / floor, for input and output tokens."""
        return {p: (i / self.cost.usd_per_million_input, o / self.cost.usd_per_million_output)
                for p, (i, o) in self.prices.items()}

    @property
    def name(self) -> str:
        """The model's name as a learner reads it, e.g. 'Llama 3.1 8B'."""
        return MODEL_NAMES[self.model]


def market_prices(model: str) -> dict[str, tuple[float, float]]:
    """Cited (input, output) USD per million tokens of each provider for 'llama31_8b' or
    'llama31_70b'."""
    if model not in ("llama31_8b", "llama31_70b"):
        raise ValueError(f"model must be 'llama31_8b' or 'llama31_70b', got {model!r}")
    return {p: tuple(references.value(f"{p}.{model}_usd_per_m_{kind}")
                     for kind in ("input", "output")) for p in PROVIDERS}


def market_deployment(model: str, fleet_utilisation: float = 1.0) -> Deployment:
    """How the floor is computed: 8B in bf16 on one H100; 70B in fp8 on two (as DeepInfra
    serves it, and the fewest H100s that hold its weights and a batch)."""
    validate.choice("model", model, ("llama31_8b", "llama31_70b"))
    if model == "llama31_8b":
        return deployment("h100_sxm", 1, "bf16", fleet_utilisation=fleet_utilisation)
    return deployment("h100_sxm", 2, "fp8", fleet_utilisation=fleet_utilisation)


def market_rows(fleet_utilisation: float = 1.0) -> list[MarketRow]:
    """Floor and prices for Llama 3.1 8B and 70B, for the chat preset's request shape at
    MLPerf's interactive limits (8B: its own; 70B: Llama 2 70B's)."""
    v = references.value
    work = Workload(int(v("preset_chat.input_tokens")),
                    int(v("epoch2025.output_tokens_per_query")))
    rows = []
    for key, target in (("llama31_8b", "mlperf.llama31_8b_interactive_tpot_s"),
                        ("llama31_70b", "mlperf.llama2_70b_interactive_tpot_s")):
        model = llama31(key.removeprefix("llama31_"))
        dep = market_deployment(key, fleet_utilisation)
        batch = cheapest_batch(model, dep, work, v(target))
        rows.append(MarketRow(key, serve(model, dep, work, batch), market_prices(key)))
    return rows


def implied_fleet_utilisation(floor_usd: float, price_usd: float) -> float:
    """The share of paid hours at which the floor (at 100%) would equal the price."""
    return min(1.0, validate.positive("floor_usd", floor_usd)
               / validate.positive("price_usd", price_usd))


# --- 2. The scaling book's worked example ---------------------------------------------------


def tpu_v5e() -> devices.Device:
    """TPU v5e as the scaling book's example uses it (power not given)."""
    v = references.value
    return devices.Device("tpu_v5e", "Google TPU v5e", "datacenter", v("tpu_v5e.peak_flops"),
                          v("tpu_v5e.bandwidth"), v("tpu_v5e.memory"), None,
                          references.get("tpu_v5e.peak_flops").source)


def scaling_book_example() -> dict[str, tuple[float, float]]:
    """The book's numbers for LLaMA 3-70B on TPU v5e, each as (this model, published).

    Inputs are the book's: 70B parameters, 8k tokens of context per sequence, 16 chips in
    bfloat16 (4 in int4), v5e's FLOP/s, bandwidth and memory. Decode is modelled at 8k
    context (prompt 8k - 1, one answer token), as the book's KV caches are.
    """
    v = references.value
    model = llama31("70b")
    context = int(v("scalingbook.context_tokens"))
    work = Workload(context - 1, 1)
    price = v("tpu_v5e.usd_per_hour")
    bf16 = Deployment(tpu_v5e(), int(v("scalingbook.bf16_chips")), "bf16", "bf16", price)
    int4 = Deployment(tpu_v5e(), int(v("scalingbook.bf16_chips")) // 4, "int4", "int4", price)
    batch = largest_batch(model, bf16, work)
    return {
        "KV cache per token in int8 (bytes)": (model.kv_bytes_per_token("int8"),
                                               v("scalingbook.int8_kv_bytes_per_token")),
        "largest bf16 batch on 16 chips at 8k context (sequences)":
            (batch, v("scalingbook.bf16_batch")),
        "decode step at that batch (s)": (serve(model, bf16, work, batch).tpot_s,
                                          v("scalingbook.bf16_step_s")),
        "int4 decode step at batch 1 on 4 chips (s)": (serve(model, int4, work, 1).tpot_s,
                                                       v("scalingbook.int4_min_step_s")),
    }


# --- 3. This machine ----------------------------------------------------------------------


def this_machine_prediction(config: ModelConfig, n_params: float, peak_flops: float,
                            bandwidth: float, memory: float, batches: ArrayLike,
                            prompt_tokens: int, new_tokens: int) -> dict[str, np.ndarray]:
    """The serving model's decode for TinyGPT on this machine (fp32, measured peak FLOP/s
    and bandwidth): arrays 'batch', 'tpot_s', 'tokens_per_s' (all sequences together) and
    'compute_bound', for the batch sizes a notebook measured."""
    for name, value in (("peak_flops", peak_flops), ("bandwidth", bandwidth),
                        ("memory", memory)):
        if validate.positive(name, value) < 1:
            raise ValueError(f"{name} must be at least 1 (FLOP/s, bytes/s or bytes), "
                             f"got {value!r}")
    model: ServedModel = tiny_served_model(config, n_params)
    work = Workload(validate.whole("prompt_tokens", prompt_tokens, lowest=0, highest=MOST),
                    validate.whole("new_tokens", new_tokens, highest=MOST))
    here = devices.this_machine(peak_flops, bandwidth, memory)
    dep = Deployment(here, 1, "fp32", "fp32", references.value("preset_tiny.laptop_usd_per_hour"))
    if batches is None:
        raise TypeError("batches must be a list or array of batch sizes, got None")
    curve = decode_curve(model, dep, work, batches)
    return {"batch": curve["batch"], "tpot_s": curve["tpot_s"],
            "tokens_per_s": curve["batch"] / curve["tpot_s"],
            "compute_bound": curve["compute_bound"]}
