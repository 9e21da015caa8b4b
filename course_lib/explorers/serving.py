"""Notebook 08's serving-cost explorer: the price of a token on a chosen replica.

Explorers layer. Chip, chips per replica, precision, model, prompt and answer length, and a
batch size or a time-per-output-token target in; dollars per million input and output
tokens, tokens/s per chip, latency, the regime, a memory bar and the lifecycle crossover
recomputed out. The numbers come from course_lib.serving, serving_cost and costs, the
figures from course_lib.figures.serving.
"""

from __future__ import annotations

import html

from course_lib import costs, devices, references
from course_lib.explorers.base import Explorer, dropdown, log_slider, table_html
from course_lib.figures.serving import plot_serving
from course_lib.formatting import fmt
from course_lib.serving import (
    SERVING_PRECISIONS,
    Workload,
    datacenter_chips,
    deployment,
    served_model,
)
from course_lib.serving_cost import (
    BelowFloor,
    DoesNotFit,
    ServingCost,
    cheapest_batch,
    decode_curve,
    largest_batch,
    serve,
)
from course_lib.serving_lifecycle import ServingPlan

MODEL_LABELS = (("Llama 3.1 8B", "llama31_8b"), ("Llama 3.1 70B", "llama31_70b"),
                ("Chat MoE (400B total, 100B active)", "chat_moe"))
CHOOSE_LABELS = (("a latency target (cheapest batch)", "target"), ("a batch size", "batch"))
CHIP_COUNTS = (("1", "1"), ("2", "2"), ("4", "4"), ("8", "8"))


def lifecycle_scenario(model: str) -> costs.Scenario:
    """The lifecycle scenario a model's crossover is recomputed for (Epoch's assumption:
    the explorer derives the serving utilisation from its own settings)."""
    if model == "chat_moe":
        return costs.chat_service("epoch")
    base = costs.open_model("epoch")
    if model == "llama31_70b":
        v = references.value
        return base.replace(name="Open 70B model (Llama 3.1 70B)", n_params=v("llama3_70b.params"),
                            training_tokens=v("llama3_70b.training_tokens"))
    return base


class ServingExplorer(Explorer):
    """A replica, a model and a workload -> price per million tokens, latency, memory."""

    figsize = (7.0, 3.6)

    def __init__(self, model: str = "llama31_8b", chip: str = "h100_sxm", chips: int = 1,
                 precision: str = "bf16"):
        v = references.value
        chip_labels = tuple((devices.get(key).name, key) for key in datacenter_chips())
        super().__init__({
            "model": dropdown("model", MODEL_LABELS, model),
            "chip": dropdown("chip", chip_labels, chip),
            "chips": dropdown("chips per replica", CHIP_COUNTS, str(chips)),
            "precision": dropdown("precision (weights, KV)",
                                  tuple((p, p) for p in SERVING_PRECISIONS), precision),
            "prompt_tokens": log_slider("prompt tokens", v("preset_chat.input_tokens"), 0, 5),
            "output_tokens": log_slider("answer tokens", v("epoch2025.output_tokens_per_query"),
                                        0, 4),
            "choose": dropdown("choose the batch by", CHOOSE_LABELS, "target"),
            "tpot_ms": log_slider("target ms per output token",
                                  1e3 * v("mlperf.llama31_8b_interactive_tpot_s"), 0, 3),
            "batch": log_slider("batch size (sequences)", 64, 0, 4),
        })

    def cost(self) -> tuple[ServingCost, str]:
        """The serving model's answer for the current settings, and a note: the batch is
        clamped to the largest that fits; a target below the floor falls back to batch 1,
        with the sentence naming the floor."""
        c = {name: control.value for name, control in self.controls.items()}
        model = served_model(c["model"])
        dep = deployment(c["chip"], int(c["chips"]), c["precision"])
        work = Workload(round(c["prompt_tokens"]), round(c["output_tokens"]))
        note = ""
        if c["choose"] == "target":
            try:
                batch = cheapest_batch(model, dep, work, c["tpot_ms"] / 1e3)
            except BelowFloor as floor:
                batch, note = 1, str(floor).removeprefix("tpot_target_s: ")
        else:
            batch = min(round(c["batch"]), largest_batch(model, dep, work))
        return serve(model, dep, work, batch), note

    def _lifecycle(self, cost: ServingCost) -> tuple[str, str]:
        base = lifecycle_scenario(self.controls["model"].value).replace(
            input_tokens=cost.workload.prompt_tokens, output_tokens=cost.workload.output_tokens)
        plan = ServingPlan(cost.model, cost.deployment, batch=cost.batch)
        served = costs.served(base, plan)
        return (f"{costs.describe_crossover(served)} (serving utilisation "
                f"{served.inference_utilisation:.0%})",
                f"{costs.describe_crossover(base)} (assumed {base.inference_utilisation:.0%})")

    def draw(self, axes) -> str:
        try:
            cost, note = self.cost()
        except DoesNotFit as error:  # an answer, not a failure: say what would fit instead
            axes[0].set_title("The model does not fit on this replica")
            axes[0].set_axis_off()
            return f"<p><b>{html.escape(str(error))}</b></p>"
        curve = decode_curve(cost.model, cost.deployment, cost.workload)
        target = (self.controls["tpot_ms"].value / 1e3
                  if self.controls["choose"].value == "target" else None)
        plot_serving(axes[0], cost, curve, target)
        derived, assumed = self._lifecycle(cost)
        decode = cost.decode
        warning = f"<p><b>{html.escape(note)}</b></p>" if note else ""
        return (warning + f"<p><b>${fmt(cost.usd_per_million_input)} per million input tokens, "
                f"${fmt(cost.usd_per_million_output)} per million output tokens</b> "
                f"(a floor: no overhead, every paid hour serving).</p>" + table_html([
                    ("batch", f"{cost.batch} of at most {cost.largest_batch} sequences that fit"),
                    ("decode", f"{decode.regime}, {decode.utilisation:.0%} of peak FLOP/s, "
                               f"{fmt(decode.tokens_per_s_per_chip)} tokens/s per chip, "
                               f"{fmt(decode.tokens_per_s_per_replica)} per replica"),
                    ("latency", f"{fmt(cost.ttft_s * 1e3)} ms to the first token, "
                                f"{fmt(cost.tpot_s * 1e3)} ms per output token"),
                    ("lifecycle, served like this", derived),
                    ("lifecycle, Epoch's assumption", assumed),
                ]))


def serving_explorer(model: str = "llama31_8b", chip: str = "h100_sxm", chips: int = 1,
                     precision: str = "bf16") -> ServingExplorer:
    """Notebook 08's serving-cost explorer; shows itself when it is the last expression of a
    cell, live or as a static copy. A setting that cannot be served (the model does not
    fit, a target below the floor) is explained in words, with what would work."""
    return ServingExplorer(model, chip, chips, precision)
