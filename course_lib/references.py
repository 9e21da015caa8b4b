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

import math
from dataclasses import dataclass
from numbers import Real


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
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"value must be a finite number, got {value!r:.60}")
    mantissa, _, exponent = f"{value:.4g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


_KAPLAN = "Kaplan et al. 2020, Scaling Laws for Neural Language Models, arXiv:2001.08361"
_GPT3 = "Brown et al. 2020, Language Models are Few-Shot Learners, arXiv:2005.14165, table D.1"
_CHINCHILLA = "Hoffmann et al. 2022, Training Compute-Optimal LLMs, arXiv:2203.15556"
_REFIT = "Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt, arXiv:2404.10102"
_LLAMA2 = "Touvron et al. 2023, Llama 2, arXiv:2307.09288, table 2"
_LLAMA3_CARD = "Meta Llama 3 model card (github.com/meta-llama/llama3, MODEL_CARD.md)"
_LLAMA31 = "Llama Team 2024, The Llama 3 Herd of Models, arXiv:2407.21783; Llama 3.1 model card"
_LLAMA32_CARD = ("Meta Llama 3.2 model card (huggingface.co/meta-llama/Llama-3.2-1B; "
                 "github.com/meta-llama/llama-models, models/llama3_2/MODEL_CARD.md)")
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB)"
_H100 = "NVIDIA H100 Tensor Core GPU datasheet"
_PATTERSON = ("Patterson et al. 2022, The Carbon Footprint of ML Training Will Plateau, "
              "Then Shrink, arXiv:2204.05149")
_WU = ("Wu et al. 2022, Sustainable AI: Environmental Implications, Challenges and "
       "Opportunities, MLSys")
_SCALING_BOOK = ("Austin et al. 2025, How to Scale Your Model, part 8: Serving LLaMA 3-70B on "
                 "TPUs (jax-ml.github.io/scaling-book/applied-inference; "
                 "github.com/jax-ml/scaling-book, applied-inference.md)")
_MLPERF = ("MLCommons, MLPerf Inference, loadgen/mlperf.conf (github.com/mlcommons/inference, "
           "commit 001712e9): P99 limits of the server scenarios")
_EPOCH = ("Josh You (Epoch AI) 2025, How much energy does ChatGPT use? (Erben and Erdil "
          "credited for help)")
# Dated pages quoting providers' list prices (the providers' own pages change without a date).
_PRICES_JAN = ("AI API Playbook, GPU Cloud Pricing 2026: A100 vs H100 vs Serverless Compared "
               "(aiapiplaybook.com, 2026-01-15)")
_PRICES_MAY = ("Serverless GPU Pricing Matrix, prices verified from the vendors' pricing pages "
               "on 2026-05-07 (techbytes.app)")
_LEVIATHAN = ("Leviathan, Kalman and Matias 2023, Fast Inference from Transformers via "
              "Speculative Decoding, ICML 2023, arXiv:2211.17192")

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
    Reference("gpt3.training_mwh", 1287, "MWh",
              "GPT-3 training energy (an estimate: V100 GPUs in a Microsoft datacenter)",
              "Patterson et al. 2021, Carbon Emissions and Large Neural Network Training, "
              "arXiv:2104.10350, table 4", "2021-04",
              "estimated by Google and Berkeley authors from the compute and the hardware, "
              "not measured by OpenAI"),
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
              _EPOCH, "2025-02"),
    Reference("gemini.wh_per_prompt", 0.24, "Wh", "Gemini Apps median text prompt energy",
              "Elsworth et al. 2025, arXiv:2508.15734", "2025-08"),
    # --- Prices (volatile defaults) -----------------------------------------
    Reference("price.h100_usd_per_hour_low", 1.5, "USD per GPU-hour",
              "H100 SXM rental, low end at specialist clouds ($1.49-2.10/h by provider)",
              _PRICES_JAN, "2026-01", "volatile: edit for your own quote"),
    Reference("price.h100_usd_per_hour_high", 4.0, "USD per GPU-hour",
              "H100 rental, high end of on-demand list prices (Lambda 1x H100 SXM $3.78/h, "
              "Modal H100 $3.95/h)", _PRICES_MAY, "2026-05", "volatile: edit for your own quote"),
    Reference("price.a100_usd_per_hour_low", 0.86, "USD per GPU-hour",
              "A100 80GB rental, low end (spot)", _PRICES_JAN, "2026-01",
              "volatile: edit for your own quote"),
    Reference("price.a100_usd_per_hour_high", 2.5, "USD per GPU-hour",
              "A100 80GB rental, high end of on-demand list prices (Modal A100 80GB $2.50/h)",
              _PRICES_MAY, "2026-05", "volatile: edit for your own quote"),
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
    # --- Issue 7 (hardware, notebook 07): laptop and phone chips, real model shapes ----
    Reference("apple_m4.bandwidth", 120e9, "bytes/s", "Apple M4 unified memory bandwidth",
              "Apple Newsroom, Apple introduces M4 chip (apple.com/newsroom/2024/05/"
              "apple-introduces-m4-chip); also MacBook Pro (14-inch, M4, 2024) Tech Specs",
              "2024-05"),
    Reference("apple_m4.neural_engine_ops", 38e12, "operations/s",
              "Apple M4 Neural Engine, operations per second as Apple states it",
              "Apple Newsroom, Apple introduces M4 chip (apple.com/newsroom/2024/05/"
              "apple-introduces-m4-chip)", "2024-05",
              "precision not stated by Apple: not a dense BF16 FLOP/s figure; local LLM "
              "runtimes (llama.cpp, MLX) compute on the M4's GPU, whose FLOP/s Apple does not "
              "publish, so a ridge point from this figure is the Neural Engine's"),
    Reference("apple_m4.memory", 16e9, "bytes",
              "MacBook Pro 14-inch with M4: base unified memory (configurable to 32GB)",
              "Apple, MacBook Pro (14-inch, M4, 2024) Tech Specs (support.apple.com)", "2024-10"),
    Reference("snapdragon_8_gen3.bandwidth", 76.8e9, "bytes/s",
              "Snapdragon 8 Gen 3 peak memory bandwidth (LPDDR5x at 4800 MHz, 4 x 16-bit "
              "channels)",
              "Qualcomm, Snapdragon 8 Gen 3 Mobile Platform product brief (memory speed); "
              "AnandTech, Snapdragon 8 Gen 3 launch coverage (bus width)", "2023-10",
              "derived: 4800 MHz x 2 transfers per clock x 8 bytes; Qualcomm states the memory "
              "speed, not the bandwidth"),
    Reference("snapdragon_8_gen3.memory", 24e9, "bytes",
              "Snapdragon 8 Gen 3: most memory the platform supports (phones ship 8-16GB)",
              "Qualcomm, Snapdragon 8 Gen 3 Mobile Platform product brief", "2023-10"),
    Reference("snapdragon_8_gen3.max_genai_params", 10e9, "parameters",
              "Largest generative AI model Qualcomm says Snapdragon 8 Gen 3 runs on-device",
              "Qualcomm, Snapdragon 8 Gen 3 launch press release, Snapdragon Summit", "2023-10"),
    Reference("snapdragon_8_gen3.llm_tokens_per_s", 20, "tokens/s",
              "Snapdragon 8 Gen 3 LLM generation speed, as Qualcomm states it (up to)",
              "Qualcomm, Snapdragon 8 Gen 3 launch press release, Snapdragon Summit", "2023-10",
              "a vendor claim: model and precision in Qualcomm's footnote, not here"),
    Reference("llama3_8b.n_layers", 32, "layers", "Llama 3 8B transformer layers",
              _LLAMA31 + ", table 3", "2024-07"),
    Reference("llama3_8b.n_kv_heads", 8, "heads", "Llama 3 8B key/value heads (grouped-query)",
              _LLAMA31 + ", table 3", "2024-07"),
    Reference("llama3_8b.n_heads", 32, "heads", "Llama 3 8B attention (query) heads",
              _LLAMA31 + ", table 3", "2024-07"),
    Reference("llama3_8b.d_model", 4096, "values", "Llama 3 8B model dimension",
              _LLAMA31 + ", table 3", "2024-07"),
    Reference("llama3_70b.n_layers", 80, "layers", "Llama 3 70B transformer layers",
              _LLAMA31 + ", table 3", "2024-07"),
    Reference("llama3_70b.n_kv_heads", 8, "heads",
              "Llama 3 70B key/value heads (grouped-query)", _LLAMA31 + ", table 3", "2024-07"),
    Reference("llama3_70b.n_heads", 64, "heads", "Llama 3 70B attention (query) heads",
              _LLAMA31 + ", table 3", "2024-07"),
    Reference("llama3_70b.d_model", 8192, "values", "Llama 3 70B model dimension",
              _LLAMA31 + ", table 3", "2024-07"),
    Reference("h100_sxm.measured_bandwidth", 2.972e12, "bytes/s",
              "H100 80GB HBM3 (SXM) memory bandwidth measured with the course's copy probe "
              "(1 GB buffer, median of 20)",
              "Course authors' measurement: course_lib.probes.measure_memory_bandwidth on "
              "one H100 80GB HBM3, PyTorch 2.11", "2026-11", "89% of the datasheet figure"),
    Reference("h100_sxm.measured_bf16_matmul_flops", 793e12, "FLOP/s",
              "H100 80GB HBM3 (SXM) bf16 8192 x 8192 matmul throughput, measured",
              "Course authors' measurement: torch.matmul, 30 repeats, one H100 80GB HBM3, "
              "PyTorch 2.11", "2026-11", "80% of the dense datasheet peak"),
    # --- Issue 10 (notebook 10, course_lib.scaleout): interconnects and training at scale ---
    # Link figures as the vendor quotes them. NVLink and PCIe are quoted for both directions
    # together; InfiniBand per direction. course_lib.scaleout converts to one direction.
    Reference("interconnect.nvlink4_h100_sxm", 900e9, "bytes/s (both directions together)",
              "H100 SXM NVLink 4 GPU-to-GPU bandwidth per GPU (18 links; 450 GB/s each way)",
              _H100 + " (interconnect row)", "2023"),
    Reference("interconnect.nvlink3_a100_sxm", 600e9, "bytes/s (both directions together)",
              "A100 SXM NVLink 3 GPU-to-GPU bandwidth per GPU (12 links; 300 GB/s each way)",
              _A100 + " (interconnect row)", "2021"),
    Reference("interconnect.pcie5_x16", 128e9, "bytes/s (both directions together)",
              "PCIe Gen5 x16 link of an H100 (64 GB/s each way)", _H100 + " (interconnect row)",
              "2023"),
    Reference("interconnect.infiniband_ndr_port", 50e9, "bytes/s (each direction)",
              "InfiniBand NDR, one 400 Gb/s port (400e9 bits/s / 8 = 50e9 bytes/s)",
              "NVIDIA ConnectX-7 adapter cards user manual, Introduction "
              "(docs.nvidia.com/networking/display/ConnectX7VPI)", "2022",
              "a DGX H100 has eight single-port 400 Gb/s ConnectX-7 adapters, one per GPU "
              "(NVIDIA DGX H100 datasheet)"),
    Reference("gpt3.batch_tokens", 3.2e6, "tokens per step",
              "GPT-3 175B training batch size", _GPT3.replace("table D.1", "table 2.1"), "2020"),
    Reference("llama31_405b.batch_tokens", 16e6, "tokens per step",
              "Llama 3 405B training batch size, from 2.87T tokens on (4M at the start, 8M "
              "after 252M tokens)", _LLAMA31 + ", section 3.4.1", "2024-07"),
    # Two utilisation figures, never mixed: the MFU Meta *reported* (measured by Meta over
    # its training steps, table 4), and the utilisation the GPU-hours *imply* (6ND / (GPU-hours
    # x peak), computed by the notebooks: lower, as GPU-hours also pay for restarts,
    # checkpoints, evaluations and the long-context stage).
    Reference("llama31_405b.mfu", 0.41, "fraction",
              "Llama 3 405B BF16 model FLOPs utilisation Meta reported for its main pre-training "
              "stage (8K-token sequences, 16,384 H100s)", _LLAMA31 + ", table 4", "2024-07",
              "43% on 8,192 H100s; the long-context stage ran at 38% "
              "(llama31_405b.mfu_long_context)"),
    Reference("llama31_405b.mfu_long_context", 0.38, "fraction",
              "Llama 3 405B BF16 model FLOPs utilisation Meta reported for its long-context "
              "stage (131K-token sequences, context parallelism, 16,384 H100s)",
              _LLAMA31 + ", table 4", "2024-07"),
    Reference("llama31_405b.unexpected_interruptions", 419, "interruptions",
              "Unexpected job interruptions during a 54-day snapshot of Llama 3 405B "
              "pre-training (16,384 H100s)", _LLAMA31 + ", section 3.3.4, table 5", "2024-07"),
    Reference("llama31_405b.interruption_window_days", 54, "days",
              "Length of the pre-training snapshot in which the interruptions were counted",
              _LLAMA31 + ", section 3.3.4", "2024-07"),
    # --- Issue 5 (notebooks 04-05, course_lib.scaling and costs): serving and presets ---
    # Entries whose source is "Course assumption" are not published facts but editable
    # defaults, kept here so that a learner can see (and change) every number a preset uses.
    Reference("epoch2025.active_params", 100e9, "parameters",
              "GPT-4o active parameters assumed for the 0.3 Wh per query estimate",
              _EPOCH, "2025-02",
              "an estimate (about 400B total, mixture of experts): OpenAI does not publish it"),
    Reference("epoch2025.output_tokens_per_query", 500, "tokens",
              "Output tokens of a typical ChatGPT query assumed for the 0.3 Wh estimate",
              _EPOCH, "2025-02",
              "Chatbot Arena responses average about 270 tokens (Chiang et al. 2024)"),
    Reference("epoch2025.inference_utilisation", 0.1, "fraction",
              "GPU FLOP utilisation assumed for ChatGPT inference on H100s (Epoch's baseline)",
              _EPOCH, "2025-02",
              "Epoch's baseline; its pessimistic case uses 5%"),
    Reference("epoch2025.watts_per_gpu", 1275, "W",
              "Server power per H100 (a DGX H100 with 8 GPUs is rated 10.2 kW)",
              "Epoch AI 2025, How much energy does ChatGPT use?; NVIDIA DGX H100 datasheet",
              "2025-02", "whole-server power: includes CPUs, memory and networking"),
    Reference("price.electricity_usd_per_kwh", 0.08, "USD per kWh",
              "US average electricity price for industrial customers (about 8 cents)",
              "U.S. Energy Information Administration, Electric Power Monthly, table 5.3",
              "2025", "volatile and regional: edit for your own tariff"),
    Reference("preset_chat.input_tokens", 100, "tokens per request",
              "Prompt tokens per chat request (a short question)", "Course assumption", "2026",
              "Epoch AI's 0.3 Wh baseline also assumes short inputs"),
    Reference("preset_chat.retrains_per_year", 1, "training runs per year",
              "New model versions trained per year", "Course assumption", "2026"),
    Reference("preset_open.requests_per_day", 10e6, "requests/day",
              "Requests per day served by a popular open 8B model, all hosts together",
              "Course assumption", "2026", "illustrative: no public total exists"),
    Reference("preset_open.inference_utilisation", 0.2, "fraction",
              "FLOP utilisation when serving an 8B model with batching", "Course assumption",
              "2026", "decoding is limited by memory bandwidth; batching raises utilisation"),
    Reference("review.int8_dynamic_ms", 3.1, "ms",
              "Eight 2048 x 2048 linear layers at batch 1 on one thread, PyTorch's dynamic "
              "int8 quantization (quantize_dynamic, since deprecated)",
              "Course review (issue 16), timed on the reviewers' machine", "2026-11",
              "not the learner's machine: notebook 06 times its own int8 kernel beside it"),
    Reference("review.fp32_ms", 14.6, "ms",
              "The same eight layers in float32, same machine and settings",
              "Course review (issue 16), timed on the reviewers' machine", "2026-11"),
    Reference("preset_tiny.params", 0.8e6, "parameters",
              "nanoGPT shakespeare_char CPU configuration (4 layers, 4 heads, 128 wide)",
              "Karpathy, nanoGPT (model.py prints 'number of parameters: 0.80M' at start-up)",
              "2023", "nanoGPT prints it when the model is built (position embeddings left "
              "out); the README does not state it"),
    Reference("preset_tiny.training_tokens", 2000 * 12 * 64, "tokens",
              "nanoGPT CPU run: 2000 iterations x batch 12 x context 64",
              "Karpathy, nanoGPT README (train_shakespeare_char.py with CPU overrides)", "2023"),
    Reference("preset_tiny.laptop_flops", 50e9, "FLOP/s",
              "FLOP/s a laptop CPU sustains training a tiny model", "Course assumption",
              "2026", "notebook 04 measures your machine's figure"),
    Reference("preset_tiny.laptop_watts", 30, "W", "Laptop power draw under load",
              "Course assumption", "2026"),
    Reference("assumption.cpu_package_watts", 15, "W",
              "Power of a laptop-class CPU package busy with the course's work (what the CPU's "
              "energy counters would measure; the whole laptop draws more)", "Course assumption",
              "2026", "used for energy per token when the energy counters are not readable"),
    Reference("assumption.allreduce_step_latency_s", 5e-6, "s",
              "Latency of one ring all-reduce step between datacenter chips (a network hop "
              "plus library overhead)", "Course assumption", "2026",
              "matters only at thousands of chips, where the ring's 2(p-1) steps add up"),
    Reference("preset_tiny.laptop_usd_per_hour", 0.05, "USD per hour",
              "A laptop's price spread over its working life (about $1,300 over 3 years)",
              "Course assumption", "2026", "owning hardware still costs money per hour"),
    Reference("preset_tiny.requests_per_day", 100, "requests/day",
              "Requests a learner sends to their own tiny model per day", "Course assumption",
              "2026"),
    Reference("preset_tiny.tokens_per_request", 200, "tokens per request",
              "Tokens generated per request to the tiny model", "Course assumption", "2026"),
    # --- Issue 6 (notebook 06, course_lib.compression): a real distillation -----------------
    Reference("llama32_1b.params", 1.23e9, "parameters", "Llama 3.2 1B parameters",
              _LLAMA32_CARD, "2024-09"),
    Reference("llama32_1b.training_tokens", 9e12, "tokens",
              "Llama 3.2 pretraining tokens (stated as up to 9T), with logits of Llama 3.1 8B "
              "and 70B as token-level targets for the 1B and 3B models", _LLAMA32_CARD,
              "2024-09", "distilled from two teachers; the course's payback assumes one"),
    Reference("llama32_1b.gpu_hours", 370e3, "H100-80GB GPU-hours",
              "Llama 3.2 1B training time", _LLAMA32_CARD + ", training energy table", "2024-09"),
    Reference("llama32.logit_generation_gpu_hours", 86e3, "H100-80GB GPU-hours",
              "Time to generate the teachers' logits for distilling Llama 3.2 1B and 3B "
              "together", _LLAMA32_CARD + ", training energy table", "2024-09"),
    # --- Issue 19 (notebook 09, serving under load): speculative decoding, latency limits ---
    Reference("leviathan2023.speed_up_low", 2, "x",
              "Speed-up of T5-XXL decoding by speculative decoding, low end of the reported "
              "range (2X-3X, with outputs identical to the model's own)", _LEVIATHAN, "2022-11",
              "the expected tokens per step, (1 - a^(k+1)) / (1 - a), is their equation 1"),
    Reference("leviathan2023.speed_up_high", 3, "x",
              "Speed-up of T5-XXL decoding by speculative decoding, high end of the reported "
              "range (2X-3X)", _LEVIATHAN, "2022-11"),
    Reference("mlperf.llama2_70b_interactive_ttft_s", 0.45, "s to the first token (P99)",
              "MLPerf Inference latency limit, Llama 2 70B, interactive server scenario: time "
              "to first token", _MLPERF, "2025-04", "with 40 ms per output token"),
    # --- Issue 18 (notebook "The price of a token", course_lib.serving): serving cost ------
    Reference("llama31.context_tokens", 131072, "tokens",
              "Longest context of the Llama 3.1 models (128K tokens)", _LLAMA31, "2024-07",
              "Llama 3.1 8B and 70B have Llama 3 8B's and 70B's shapes (herd paper, table 3)"),
    Reference("epoch2025.total_params", 400e9, "parameters",
              "GPT-4o total parameters assumed for the 0.3 Wh estimate (a mixture of experts "
              "with 100B active)",
              "Epoch AI 2025, How much energy does ChatGPT use? (epoch.ai/gradient-updates/"
              "how-much-energy-does-chatgpt-use) and its spreadsheet: 'Using 400 billion total, "
              "100B active'", "2025-02", "an estimate: OpenAI does not publish it"),
    Reference("mixtral.n_experts", 8, "experts per layer",
              "Mixtral 8x7B: experts in each mixture-of-experts layer",
              "Jiang et al. 2024, Mixtral of Experts, arXiv:2401.04088, section 2", "2024-01",
              "the course's chat preset assumes this routing: the chat model's is not public"),
    Reference("mixtral.experts_per_token", 2, "experts per token",
              "Mixtral 8x7B: experts each token is routed to, in each layer",
              "Jiang et al. 2024, Mixtral of Experts, arXiv:2401.04088, section 2", "2024-01"),
    Reference("fireworks.llama31_8b_usd_per_m_input", 0.2, "USD per million input tokens",
              "Fireworks AI serverless price, base models up to 16B parameters (Llama 3.1 8B)",
              "Fireworks AI pricing page (fireworks.ai/pricing), serverless text models",
              "2026-12", "date of access to a stored copy that shows no date; the same price "
              "applies to input and output tokens; prices move: edit"),
    Reference("fireworks.llama31_8b_usd_per_m_output", 0.2, "USD per million output tokens",
              "Fireworks AI serverless price, base models up to 16B parameters (Llama 3.1 8B)",
              "Fireworks AI pricing page (fireworks.ai/pricing), serverless text models",
              "2026-12", "date of access to a stored copy that shows no date"),
    Reference("fireworks.llama31_70b_usd_per_m_input", 0.9, "USD per million input tokens",
              "Fireworks AI serverless price, base models of 16.1B to 80B parameters "
              "(Llama 3.1 70B)",
              "Fireworks AI pricing page (fireworks.ai/pricing), serverless text models",
              "2026-12", "date of access to a stored copy that shows no date"),
    Reference("fireworks.llama31_70b_usd_per_m_output", 0.9, "USD per million output tokens",
              "Fireworks AI serverless price, base models of 16.1B to 80B parameters "
              "(Llama 3.1 70B)",
              "Fireworks AI pricing page (fireworks.ai/pricing), serverless text models",
              "2026-12", "date of access to a stored copy that shows no date"),
    Reference("deepinfra.llama31_8b_usd_per_m_input", 0.055, "USD per million input tokens",
              "DeepInfra price for meta-llama/Meta-Llama-3.1-8B-Instruct, served in bfloat16",
              "DeepInfra model page (deepinfra.com/meta-llama/Meta-Llama-3.1-8B-Instruct/api): "
              "'$0.055 / Mtoken'", "2026-12",
              "date of access to a stored copy that shows no date; one price for input and "
              "output tokens"),
    Reference("deepinfra.llama31_8b_usd_per_m_output", 0.055, "USD per million output tokens",
              "DeepInfra price for meta-llama/Meta-Llama-3.1-8B-Instruct, served in bfloat16",
              "DeepInfra model page (deepinfra.com/meta-llama/Meta-Llama-3.1-8B-Instruct/api)",
              "2026-12", "date of access to a stored copy that shows no date"),
    Reference("deepinfra.llama31_70b_usd_per_m_input", 0.13, "USD per million input tokens",
              "DeepInfra price for meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo, served in fp8",
              "DeepInfra model page (deepinfra.com/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo/"
              "api): '$0.13/$0.40 in/out Mtoken'", "2026-12",
              "date of access to a stored copy that shows no date; fp8 weights"),
    Reference("deepinfra.llama31_70b_usd_per_m_output", 0.4, "USD per million output tokens",
              "DeepInfra price for meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo, served in fp8",
              "DeepInfra model page (deepinfra.com/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo/"
              "api)", "2026-12", "date of access to a stored copy that shows no date"),
    Reference("mlperf.llama31_8b_interactive_tpot_s", 0.03, "s per output token (P99)",
              "MLPerf Inference latency limit, Llama 3.1 8B, interactive server scenario: time "
              "per output token", _MLPERF, "2025-09", "time to first token at most 500 ms"),
    Reference("mlperf.llama31_8b_server_tpot_s", 0.1, "s per output token (P99)",
              "MLPerf Inference latency limit, Llama 3.1 8B, server scenario: time per output "
              "token", _MLPERF, "2025-09", "time to first token at most 2 s"),
    Reference("mlperf.llama2_70b_interactive_tpot_s", 0.04, "s per output token (P99)",
              "MLPerf Inference latency limit, Llama 2 70B, interactive server scenario: time "
              "per output token", _MLPERF, "2025-04", "time to first token at most 450 ms"),
    Reference("tpu_v5e.peak_flops", 1.97e14, "FLOP/s",
              "Google TPU v5e bfloat16 peak, as the scaling book's serving example uses it",
              _SCALING_BOOK, "2025-02"),
    Reference("tpu_v5e.bandwidth", 8.2e11, "bytes/s",
              "Google TPU v5e HBM bandwidth, as the scaling book's serving example uses it",
              _SCALING_BOOK, "2025-02"),
    Reference("tpu_v5e.memory", 16e9, "bytes", "Google TPU v5e HBM per chip", _SCALING_BOOK,
              "2025-02"),
    Reference("tpu_v5e.usd_per_hour", 1.2, "USD per chip-hour",
              "Google Cloud TPU v5e price the scaling book's serving example uses",
              _SCALING_BOOK + " (from Google Cloud TPU pricing)", "2025-02"),
    Reference("scalingbook.context_tokens", 8192, "tokens",
              "Context of every sequence in the scaling book's LLaMA 3-70B serving example",
              _SCALING_BOOK, "2025-02"),
    Reference("scalingbook.bf16_chips", 16, "TPU v5e chips",
              "Smallest TPU v5e slice (4x4) serving LLaMA 3-70B in bfloat16", _SCALING_BOOK,
              "2025-02"),
    Reference("scalingbook.bf16_batch", 43, "sequences",
              "KV caches of 8k tokens that fit beside LLaMA 3-70B's bfloat16 weights on 16 "
              "TPU v5e (the largest batch)", _SCALING_BOOK, "2025-02",
              "the table's int8 and int4 rows do not follow from their own inputs (8 x 16 GB - "
              "70 GB is 58 GB, not 68): the course reproduces the bfloat16 row"),
    Reference("scalingbook.bf16_step_s", 0.019, "s per decode step",
              "Decode step time with HBM full (16 GB / 8.2e11 bytes/s)", _SCALING_BOOK,
              "2025-02"),
    Reference("scalingbook.int4_min_step_s", 0.01, "s per decode step",
              "Smallest decode step time for LLaMA 3-70B with int4 weights on 4 TPU v5e "
              "('about 10ms / step')", _SCALING_BOOK, "2025-02"),
    Reference("scalingbook.int8_kv_bytes_per_token", 163840, "bytes per token",
              "LLaMA 3-70B KV cache per token in int8: 2 x 8 KV heads x 128 x 80 layers "
              "(160 kiB)", _SCALING_BOOK, "2025-02"),
    Reference("assumption.serving_fleet_utilisation", 0.5, "fraction",
              "Share of a serving fleet's paid accelerator-hours spent serving requests (a "
              "fleet sized for peak traffic idles part of the day)", "Course assumption",
              "2026", "the serving model's cost floor divided by this gives the lifecycle "
              "presets' serving cost; edit it"),
)

REFERENCES: dict[str, Reference] = {entry.key: entry for entry in _TABLE}
if len(REFERENCES) != len(_TABLE):
    raise RuntimeError("course_lib.references has a duplicated key")


class UnknownReference(KeyError, ValueError):
    """No entry under this key. A ValueError like every bad argument in the library, and a
    KeyError as a lookup in a table."""

    def __str__(self) -> str:
        return str(self.args[0])


def get(key: str) -> Reference:
    """The entry for `key`; an UnknownReference (a KeyError and a ValueError) lists close
    matches when the key is unknown."""
    if not isinstance(key, str):
        raise TypeError(f"key must be a str such as 'gpt3.params', got {key!r:.60}")
    try:
        return REFERENCES[key]
    except KeyError:
        prefix = key.split(".")[0]
        close = sorted(k for k in REFERENCES if k.startswith(prefix)) or sorted(REFERENCES)[:10]
        raise UnknownReference(f"No reference key {key!r}. Keys that exist: "
                               f"{', '.join(close)}") from None


def value(key: str) -> float:
    """The number stored under `key` (see `get(key).unit` for its unit)."""
    return get(key).value


def entries(prefix: str = "") -> list[Reference]:
    """All entries whose key starts with `prefix`, in table order."""
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str such as 'h100_sxm.', got {prefix!r:.60}")
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
