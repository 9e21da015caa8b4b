"""Every external number the course uses, with its unit, source and date.

This table is the only place in the project where a published number is
typed. Notebooks, widgets and formulas look numbers up here by key, so a
learner or instructor can audit any figure the course shows, and update a
price or a traffic figure in one place.

Prices and traffic figures move: they are dated defaults, not facts.
Accelerator peak FLOP/s are dense figures (vendors often quote 2x with
structured sparsity; the course never uses those).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """One cited number."""

    key: str
    value: float
    unit: str
    what: str
    source: str
    date: str  # when the source published it (YYYY or YYYY-MM)
    note: str = ""

    def cite(self) -> str:
        """Short human-readable citation, e.g. for a figure caption."""
        return f"{self.what}: {format_value(self.value)} {self.unit} ({self.source}, {self.date})"


def format_value(value: float) -> str:
    """Four significant digits, with a short exponent: 3.14e23, 6.4e6, 0.3478."""
    mantissa, _, exponent = f"{value:.4g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


_KAPLAN = "Kaplan et al. 2020, Scaling Laws for Neural Language Models, arXiv:2001.08361"
_GPT3 = "Brown et al. 2020, Language Models are Few-Shot Learners, arXiv:2005.14165, table D.1"
_CHINCHILLA = "Hoffmann et al. 2022, Training Compute-Optimal LLMs, arXiv:2203.15556"
_REFIT = "Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt, arXiv:2404.10102"
_LLAMA2 = "Touvron et al. 2023, Llama 2, arXiv:2307.09288, table 2"
_LLAMA3_CARD = "Meta Llama 3 model card (github.com/meta-llama/llama3, MODEL_CARD.md)"
_LLAMA31 = "Llama Team 2024, The Llama 3 Herd of Models, arXiv:2407.21783; Llama 3.1 model card"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB)"
_H100 = "NVIDIA H100 Tensor Core GPU datasheet"
_PATTERSON = ("Patterson et al. 2022, The Carbon Footprint of ML Training Will Plateau, "
              "Then Shrink, arXiv:2204.05149")
_WU = ("Wu et al. 2022, Sustainable AI: Environmental Implications, Challenges and "
       "Opportunities, MLSys")

_TABLE: tuple[Reference, ...] = (
    # --- Compute accounting -------------------------------------------------
    Reference("flops.train_per_param_token", 6, "FLOP per parameter per token",
              "Training compute per parameter per training token (2 forward + 4 backward)",
              _KAPLAN + ", section 2.1", "2020"),
    Reference("flops.forward_per_param_token", 2, "FLOP per parameter per token",
              "Forward-pass (inference) compute per parameter per token", _KAPLAN + ", table 1",
              "2020"),
    Reference("memory.adamw_bytes_per_param", 16, "bytes per parameter",
              "Training memory before activations with AdamW (weights, grads, two moments)",
              "EleutherAI, Transformer Math 101", "2023"),
    # --- Real training runs -------------------------------------------------
    Reference("gpt3.params", 175e9, "parameters", "GPT-3 parameters", _GPT3, "2020"),
    Reference("gpt3.training_tokens", 300e9, "tokens", "GPT-3 training tokens", _GPT3, "2020"),
    Reference("gpt3.training_flops", 3.14e23, "FLOP", "GPT-3 training compute", _GPT3, "2020"),
    Reference("chinchilla.params", 70e9, "parameters", "Chinchilla parameters", _CHINCHILLA,
              "2022"),
    Reference("chinchilla.training_tokens", 1.4e12, "tokens", "Chinchilla training tokens",
              _CHINCHILLA, "2022"),
    Reference("chinchilla.training_flops", 5.76e23, "FLOP",
              "Chinchilla (and Gopher) training compute budget", _CHINCHILLA + ", section 3",
              "2022"),
    Reference("llama2_70b.params", 70e9, "parameters", "Llama 2 70B parameters", _LLAMA2, "2023"),
    Reference("llama2_70b.training_tokens", 2e12, "tokens", "Llama 2 70B training tokens",
              _LLAMA2, "2023"),
    Reference("llama2_70b.gpu_hours", 1_720_320, "A100-80GB GPU-hours",
              "Llama 2 70B pretraining time", _LLAMA2, "2023"),
    Reference("llama3_8b.params", 8e9, "parameters", "Llama 3 8B parameters", _LLAMA3_CARD,
              "2024-04"),
    Reference("llama3_8b.training_tokens", 15e12, "tokens",
              "Llama 3 8B training tokens (stated as 15T+)", _LLAMA3_CARD, "2024-04"),
    Reference("llama3_8b.gpu_hours", 1.3e6, "H100-80GB GPU-hours", "Llama 3 8B pretraining time",
              _LLAMA3_CARD, "2024-04"),
    Reference("llama3_70b.params", 70e9, "parameters", "Llama 3 70B parameters", _LLAMA3_CARD,
              "2024-04"),
    Reference("llama3_70b.training_tokens", 15e12, "tokens",
              "Llama 3 70B training tokens (stated as 15T+)", _LLAMA3_CARD, "2024-04"),
    Reference("llama3_70b.gpu_hours", 6.4e6, "H100-80GB GPU-hours",
              "Llama 3 70B pretraining time", _LLAMA3_CARD, "2024-04"),
    Reference("llama31_405b.params", 405e9, "parameters", "Llama 3.1 405B parameters", _LLAMA31,
              "2024-07"),
    Reference("llama31_405b.training_tokens", 15.6e12, "tokens",
              "Llama 3.1 405B training tokens", _LLAMA31, "2024-07"),
    Reference("llama31_405b.training_flops", 3.8e25, "FLOP", "Llama 3.1 405B training compute",
              _LLAMA31, "2024-07"),
    Reference("llama31_405b.gpu_hours", 30.84e6, "H100-80GB GPU-hours",
              "Llama 3.1 405B training time", _LLAMA31, "2024-07"),
    # --- Accelerators (dense, no sparsity) -----------------------------------
    Reference("a100_sxm_80gb.peak_flops", 312e12, "FLOP/s", "A100 SXM 80GB BF16 dense peak",
              _A100, "2021"),
    Reference("a100_sxm_80gb.bandwidth", 2.039e12, "bytes/s", "A100 SXM 80GB memory bandwidth",
              _A100, "2021"),
    Reference("a100_sxm_80gb.memory", 80e9, "bytes", "A100 SXM 80GB memory", _A100, "2021"),
    Reference("a100_sxm_80gb.power", 400, "W", "A100 SXM 80GB max thermal design power", _A100,
              "2021"),
    Reference("h100_sxm.peak_flops", 989e12, "FLOP/s",
              "H100 SXM BF16 dense peak (datasheet's 1,979 is with sparsity)", _H100, "2023"),
    Reference("h100_sxm.bandwidth", 3.35e12, "bytes/s", "H100 SXM memory bandwidth", _H100,
              "2023"),
    Reference("h100_sxm.memory", 80e9, "bytes", "H100 SXM memory", _H100, "2023"),
    Reference("h100_sxm.power", 700, "W", "H100 SXM max thermal design power", _H100, "2023"),
    Reference("h100_pcie.peak_flops", 756e12, "FLOP/s",
              "H100 PCIe BF16 dense peak (datasheet's 1,513 is with sparsity)", _H100, "2023"),
    Reference("h100_pcie.bandwidth", 2.0e12, "bytes/s", "H100 PCIe memory bandwidth", _H100,
              "2023"),
    Reference("h100_pcie.memory", 80e9, "bytes", "H100 PCIe memory", _H100, "2023"),
    Reference("h100_pcie.power", 350, "W", "H100 PCIe max thermal design power", _H100, "2023"),
    # --- Where the spend goes ----------------------------------------------
    Reference("google.inference_energy_share", 0.6, "fraction",
              "Share of Google's ML energy used for inference, 2019-2021 (about 3/5)",
              _PATTERSON, "2022"),
    Reference("meta.inference_power_share", 0.7, "fraction",
              "Share of Meta's AI power capacity for inference (experimentation:training:"
              "inference about 10:20:70)", _WU, "2022"),
    Reference("chatgpt.prompts_per_day_2024", 1e9, "prompts/day",
              "ChatGPT prompts per day, December 2024 (OpenAI CEO)",
              "Sam Altman, public statement, December 2024", "2024-12"),
    Reference("chatgpt.prompts_per_day_2025", 2.5e9, "prompts/day",
              "ChatGPT prompts per day, July 2025", "OpenAI to Axios, July 2025", "2025-07"),
    Reference("chatgpt.wh_per_query", 0.3, "Wh",
              "Energy per typical ChatGPT query (estimate)",
              "Epoch AI 2025, How much energy does ChatGPT use?", "2025-02"),
    Reference("gemini.wh_per_prompt", 0.24, "Wh", "Gemini Apps median text prompt energy",
              "Elsworth et al. 2025, arXiv:2508.15734", "2025-08"),
    # --- Prices (volatile defaults) -----------------------------------------
    Reference("price.h100_usd_per_hour_low", 1.5, "USD per GPU-hour",
              "H100 rental, low end at specialist clouds", "Public cloud price lists, early 2026",
              "2026-01", "volatile: edit for your own quote"),
    Reference("price.h100_usd_per_hour_high", 4.0, "USD per GPU-hour",
              "H100 rental, high end at specialist clouds", "Public cloud price lists, early 2026",
              "2026-01", "volatile: edit for your own quote"),
    Reference("price.a100_usd_per_hour_low", 0.9, "USD per GPU-hour",
              "A100 80GB rental, low end", "Public cloud price lists, early 2026", "2026-01",
              "volatile: edit for your own quote"),
    Reference("price.a100_usd_per_hour_high", 2.5, "USD per GPU-hour",
              "A100 80GB rental, high end", "Public cloud price lists, early 2026", "2026-01",
              "volatile: edit for your own quote"),
    # --- Scaling laws: L(N, D) = E + A / N^alpha + B / D^beta -----------------
    Reference("chinchilla2022.E", 1.69, "nats/token", "Chinchilla fit: irreducible loss E",
              _CHINCHILLA + ", equation 10", "2022", "rounded as published"),
    Reference("chinchilla2022.A", 406.4, "nats/token", "Chinchilla fit: A", _CHINCHILLA, "2022"),
    Reference("chinchilla2022.B", 410.7, "nats/token", "Chinchilla fit: B", _CHINCHILLA, "2022"),
    Reference("chinchilla2022.alpha", 0.34, "dimensionless", "Chinchilla fit: alpha", _CHINCHILLA,
              "2022"),
    Reference("chinchilla2022.beta", 0.28, "dimensionless", "Chinchilla fit: beta", _CHINCHILLA,
              "2022"),
    Reference("besiroglu2024.E", 1.8172, "nats/token", "Replication refit: E", _REFIT, "2024"),
    Reference("besiroglu2024.A", 482.01, "nats/token", "Replication refit: A", _REFIT, "2024"),
    Reference("besiroglu2024.B", 2085.43, "nats/token", "Replication refit: B", _REFIT, "2024"),
    Reference("besiroglu2024.alpha", 0.3478, "dimensionless", "Replication refit: alpha", _REFIT,
              "2024"),
    Reference("besiroglu2024.beta", 0.3658, "dimensionless", "Replication refit: beta", _REFIT,
              "2024"),
    # --- Anchor: nanoGPT's CPU run ------------------------------------------
    Reference("nanogpt.shakespeare_char_cpu_val_loss", 1.88, "nats/char",
              "nanoGPT shakespeare_char CPU config (4 layers, 4 heads, 128 wide, 2000 iters) "
              "validation loss", "Karpathy, nanoGPT README", "2023"),
)

REFERENCES: dict[str, Reference] = {entry.key: entry for entry in _TABLE}
if len(REFERENCES) != len(_TABLE):
    raise RuntimeError("course_lib.references has a duplicated key")


def get(key: str) -> Reference:
    """The entry for `key`; a KeyError lists close matches when the key is unknown."""
    try:
        return REFERENCES[key]
    except KeyError:
        prefix = key.split(".")[0]
        close = sorted(k for k in REFERENCES if k.startswith(prefix)) or sorted(REFERENCES)[:10]
        raise KeyError(f"No reference {key!r}. Keys that exist: {', '.join(close)}") from None


def value(key: str) -> float:
    """The number stored under `key` (see `get(key).unit` for its unit)."""
    return get(key).value


def entries(prefix: str = "") -> list[Reference]:
    """All entries whose key starts with `prefix`, in table order."""
    return [entry for entry in _TABLE if entry.key.startswith(prefix)]


def as_markdown(prefix: str = "") -> str:
    """A Markdown table of the entries under `prefix`, for display in a notebook."""
    rows = ["| key | value | unit | what | source | date |", "|---|---|---|---|---|---|"]
    for entry in entries(prefix):
        rows.append(
            f"| `{entry.key}` | {format_value(entry.value)} | {entry.unit} | {entry.what} "
            f"| {entry.source} | {entry.date} |"
        )
    return "\n".join(rows)
