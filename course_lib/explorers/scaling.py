"""Explorers of notebooks 04 and 05 about scale: the scaling explorer (parameters, tokens and
context to FLOPs, memory, days and dollars) and inference-aware model sizing.
"""

from __future__ import annotations

import ipywidgets as W

from course_lib import references, scaling
from course_lib.explorers.base import Explorer, dropdown, log_slider, table_html, wide
from course_lib.figures.scaling import plot_inference_aware, plot_training_compute
from course_lib.formatting import fmt, usd

CHIP_LABELS = (("NVIDIA H100 SXM", "h100_sxm"), ("NVIDIA A100 SXM 80GB", "a100_sxm_80gb"))
CONTEXTS = tuple(2**k for k in range(7, 18))  # 128 to 131,072 tokens


class ScalingExplorer(Explorer):
    """Parameters, training tokens and context -> FLOPs, memory, accelerator-days, dollars."""

    def __init__(self, n_params: float | None = None, n_tokens: float | None = None):
        n = references.value("llama3_8b.params") if n_params is None else n_params
        d = references.value("llama3_8b.training_tokens") if n_tokens is None else n_tokens
        super().__init__({
            "params": log_slider("parameters N", n, 6, 12.5),
            "tokens": log_slider("training tokens D", d, 6, 14),
            "context": W.SelectionSlider(options=CONTEXTS, value=CONTEXTS[5],
                                         description="context (tokens)",
                                         continuous_update=False,
                                         **wide()),
            "chip": dropdown("accelerator", CHIP_LABELS, "h100_sxm"),
        })

    def draw(self, axes) -> str:
        c = {name: control.value for name, control in self.controls.items()}
        run = scaling.estimate_run(c["params"], c["tokens"], c["context"], chip=c["chip"])
        chip_memory = references.value(f"{c['chip']}.memory")
        plot_training_compute(axes[0], run.n_params, run.n_tokens, run.training_flops)
        mfu = references.value("llama31_405b.mfu")
        return table_html([
            ("training compute (6ND + attention)", fmt(run.training_flops, "FLOP")),
            ("forward FLOPs per token at this context",
             f"{fmt(run.forward_flops_per_token, 'FLOP')} "
             f"({run.attention_share:.0%} of it attention)"),
            ("tokens per parameter", fmt(run.n_tokens / run.n_params)),
            ("training memory before activations (16 bytes/param)",
             f"{fmt(run.training_memory_bytes / 1e9, 'GB')} "
             f"(at least {max(1, -(-run.training_memory_bytes // chip_memory)):.0f} "
             f"accelerators' memory)"),
            ("serving memory: bf16 weights + one sequence's KV cache",
             fmt(run.serving_memory_bytes / 1e9, "GB")),
            (f"accelerator-days at {mfu:.0%} utilisation (the MFU Meta reported for Llama 3.1 "
             "405B)", fmt(run.accelerator_days)),
            ("rental price (cited range)", f"{usd(run.usd_low)} to {usd(run.usd_high)}"),
            ("predicted loss (2024 refit)", f"{run.chinchilla_loss:.3f} nats/token"),
        ])


FIT_LABELS = (("2024 replication refit (default)", "besiroglu2024"),
              ("2022 published (rounded)", "chinchilla2022"))


class SizingExplorer(Explorer):
    """Inference-aware sizing: the model that reaches a target loss with the fewest total FLOPs."""

    figsize = (7.0, 3.6)

    def __init__(self):
        slider = {**wide(), "continuous_update": False}
        super().__init__({
            "fit": dropdown("fit", FIT_LABELS, "besiroglu2024"),
            # Both fits' irreducible loss E is below 1.9, so every position is reachable.
            "target_loss": W.FloatSlider(value=2.1, min=1.9, max=3.5, step=0.01,
                                         description="target loss (nats/token)", **slider),
            "inference_tokens": log_slider("lifetime tokens served", 1e13, 9, 17),
        })

    def draw(self, axes) -> str:
        c = {name: control.value for name, control in self.controls.items()}
        plot_inference_aware(axes[0], c["target_loss"], c["inference_tokens"], c["fit"])
        chinchilla = scaling.inference_aware(c["target_loss"], 0, c["fit"])
        aware = scaling.inference_aware(c["target_loss"], c["inference_tokens"], c["fit"])
        served = scaling.sizing(chinchilla.n_params, c["target_loss"], c["inference_tokens"],
                                c["fit"])
        saving = 1 - aware.total_flops / served.total_flops

        return table_html([
            ("compute-optimal (Chinchilla) model", _describe(chinchilla)),
            ("inference-aware model", _describe(aware)),
            ("lifetime FLOPs, Chinchilla model serving the same tokens",
             fmt(served.total_flops, "FLOP")),
            ("lifetime FLOPs, inference-aware model",
             f"{fmt(aware.total_flops, 'FLOP')} ({saving:.0%} less)"),
        ])


def _describe(s: scaling.Sizing) -> str:
    return (f"N = {fmt(s.n_params)}, D = {fmt(s.n_tokens)} "
            f"({fmt(s.tokens_per_param)} tokens/param)")


def scaling_explorer(**kwargs) -> ScalingExplorer:
    """Notebook 04's explorer; the last expression of a cell shows it (live or static)."""
    return ScalingExplorer(**kwargs)


def sizing_explorer() -> SizingExplorer:
    """Notebook 05's inference-aware sizing explorer."""
    return SizingExplorer()
