"""The bad-input contract over the whole public API of course_lib (issue 17).

The contract: a bad argument gets a ValueError or TypeError whose message names the
parameter (and its allowed range or choices); never a deep torch or numpy traceback, a
KeyError, AttributeError, ZeroDivisionError or OverflowError, and never a silent NaN or
inf, or a nonsense result (negative FLOPs, bytes, seconds or dollars).

How it is checked:

- `public_callables()` walks every module of the foundation, arithmetic and torch layers
  (tests/test_layers.py's LAYERS) and lists its public functions and classes, and the public
  methods and properties of the classes a learner builds. EXCLUDED names the few left out,
  each with its reason; a new public function is walked without anyone adding it here.
- Every parameter gets a valid value from SAMPLES (by parameter name; OVERRIDES where one
  function means something else by it); a new parameter name without a sample fails
  `test_every_parameter_has_a_sample`.
- `bad_values(kind)` generates the bad inputs for the parameter's kind (number, whole
  number, array, flag, text, choice, object): NaN, +-inf, negative, zero, 1e300, wrong types
  (str, None, bool, list), unknown names. One parameter is bad at a time; the others keep
  their samples. Values that must be refused (NaN, wrong types, unknown names, ...) must
  be; the others (zero, huge) may be accepted if the result is sane.
- Hypothesis drives the arithmetic layer over its full finite range (every numeric
  parameter drawn at once), and checks monotonicity where the formula demands it.

Both tests print the number of inputs tried and fail listing the violations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import math
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib import (
    checkpoints,
    compression,
    costs,
    data,
    data_parallel,
    devices,
    distill,
    flops,
    inference,
    payback,
    roofline,
    scaleout,
    scaling,
    scheduler,
    serving,
    serving_cost,
    serving_lifecycle,
    serving_sim,
    traffic,
    training_config,
    utilisation,
    validate,
)
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_layers import LAYERS, TORCH  # noqa: E402  (the one map of the library's modules)

SECONDS_PER_CALL = 3  # an accepted input must not start minutes of work
# NumPy warns as it overflows; the contract is about what follows (a clear error, never inf).
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:divide by zero encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

# --- What is walked, and what is not ------------------------------------------------------

EXCLUDED = {
    "validate": "the checks themselves: their first argument is the name they report "
                "(tests/test_validate.py)",
    "claims": "raise ClaimFailed by design when a notebook's claim is false "
              "(tests/test_claims.py)",
    "outline": "reads the course's own notebooks, no learner input "
               "(tests/test_envcheck_outline.py)",
    "references.Reference": "the table's rows, written by the course's authors and checked "
                            "by tests/test_references.py",
    "launcher.launch": "starts worker processes; its checks run before any starts "
                       "(tests/test_distributed.py)",
    "data_parallel.measure_allreduce": "starts worker processes (tests/test_distributed.py)",
    "data_parallel.train_data_parallel": "starts worker processes; its bad inputs are in "
                                         "ISSUE_EXAMPLES below",
    "training.load_or_train_default": "trains the course's default model (minutes)",
    "runtime.synchronize": "takes the torch.device the library itself passes",
    "scheduler.Engine": "an interface (a typing.Protocol): nothing to call",
    **dict.fromkeys(("serving_loop.prefill", "serving_loop.decode_step"),
                    "the engine's own steps (shown whole in notebook 09), called by "
                    "TinyGPTEngine with the slots and prompts scheduler.run has checked"),
    "runtime.as_device": "a check like validate's: its first argument is the name it reports",
    "quantize.QuantizedLinear.forward": "a layer inside TinyGPT, called by TinyGPT.forward "
                                        "with checked tensors",
    **dict.fromkeys(("model.Block", "model.MLP", "model.CausalSelfAttention"),
                    "TinyGPT's building blocks, called by its forward with checked tensors"),
}
# Records the library builds from checked inputs and returns: no learner makes one.
RESULT_RECORDS = {
    "stats.Spread", "scaling.Sizing", "scaling.RunEstimate", "costs.Spend", "costs.Comparison",
    "payback.Payback", "energy.EnergyMeasurement", "training_config.History",
    "inference.Step", "inference.RequestTiming", "compression.Measurement",
    "distill.DistillationResult", "checkpoints.Checkpoint", "probes.MatmulMeasurement",
    "probes.BandwidthMeasurement", "data_parallel.DataParallelResult", "serving.Step",
    "serving_cost.PhaseCost", "serving_cost.ServingCost", "serving_calibration.MarketRow",
    "data.TokenData", "outline.NotebookInfo", "traffic.RequestRecord", "traffic.LittlesLaw",
    "scheduler.RunSummary", "scheduler.ServingRun", "speculative.SpeculativeResult",
    "speculative.SpeculativeTiming", "serving_loop.StepTimes", "serving_loop.SlotCache",
}
# Classes whose methods are the Engine interface: scheduler.run calls them with checked input.
ENGINES = {"serving_sim.SimulatedEngine", "serving_loop.TinyGPTEngine"}
# Functions whose documented answer is inf ("never", "trained once", "cannot reach it").
INF_MEANS_NEVER = {
    "scaling.tokens_for_loss", "scaling.sizing", "costs.retrain_period_days",
    "payback.Payback.days", "scaling.Sizing.total_flops",
}


def _module_callables(name: str) -> list[tuple[str, Callable]]:
    module = importlib.import_module(f"course_lib.{name}")
    found = []
    for attr, obj in vars(module).items():
        if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            continue  # exceptions are raised, not called
        if inspect.isfunction(obj) or inspect.isclass(obj):
            found.append((f"{name}.{attr}", obj))
    return found


def public_callables() -> list[tuple[str, Callable]]:
    """(qualified name, callable) for every public function and class of layers 1-3."""
    found = []
    for name, layer in LAYERS.items():
        if layer > TORCH or name in EXCLUDED:
            continue
        for qualified, obj in _module_callables(name):
            if qualified not in EXCLUDED and qualified not in RESULT_RECORDS:
                found.append((qualified, obj))
    return found


# --- A valid value for every parameter ----------------------------------------------------

TEXT = "the quick brown fox jumps over the lazy dog. " * 12
DATA = data.prepare(data.Corpus("contract", TEXT, "tests/test_contract.py"), 8)
CONFIG = ModelConfig(vocab_size=DATA.tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=8,
                     block_size=8)
TRAIN = training_config.TrainConfig(batch_size=2, max_iters=2, warmup_iters=1,
                                    eval_interval=1, eval_iters=1)


def tiny_model() -> TinyGPT:
    torch.manual_seed(0)
    return TinyGPT(CONFIG)


def ids(rows: int = 1, tokens: int = 4) -> torch.Tensor:
    return torch.arange(rows * tokens).reshape(rows, tokens) % CONFIG.vocab_size


# A valid value by the type a parameter is annotated with (fresh each call: calls may change
# what they are given). The first class name found in the annotation decides.
BY_TYPE: dict[str, Callable[[], object]] = {
    "ModelConfig": lambda: CONFIG,
    "TrainConfig": lambda: TRAIN,
    "TinyGPT": tiny_model,
    "nn.Module": tiny_model,
    "TokenData": lambda: DATA,
    "Corpus": lambda: data.Corpus("contract", TEXT, "tests"),
    "History": training_config.History,
    "ModelShape": lambda: roofline.tiny_model_shape(CONFIG, 2_000),
    "ServedModel": lambda: serving.llama31("8b"),
    "Deployment": serving.deployment,
    "Workload": lambda: serving.Workload(100, 10),
    "ServingPlan": serving_lifecycle.open_plan,
    "Scenario": costs.tiny_model,
    "Hardware": costs.datasheet_hardware,
    "Device": lambda: devices.get("h100_sxm"),
    "LossFit": lambda: scaling.get_fit(),
    "torch.Generator": lambda: torch.Generator().manual_seed(0),
    "torch.optim": lambda: torch.optim.AdamW(tiny_model().parameters()),
    "nn.Linear": lambda: torch.nn.Linear(4, 4),
    "torch.dtype": lambda: torch.float32,
    "np.random.Generator": lambda: np.random.default_rng(0),
    "CostModel": lambda: COST,
    "Policy": lambda: scheduler.continuous_batching(2),
    "Engine": lambda: serving_sim.SimulatedEngine(COST, 2, 64),
    "RunSummary": lambda: simulated_run().summary(),
    "Request": lambda: traffic.Request(0, 0.0, 4, 4),
}
COST = serving_sim.CostModel(1e-3, 1e-5, 1e-3, 1e-4)


def simulated_run():
    return serving_sim.simulate(traffic.workload(6, 50.0), scheduler.continuous_batching(2), COST,
                                context=64)


def draft_model() -> TinyGPT:
    torch.manual_seed(1)
    return TinyGPT(dataclasses.replace(CONFIG, n_embd=4))
NUMBERS = {  # float parameters by name
    "A": 400.0, "B": 400.0, "E": 1.7, "alpha": 0.5, "beta": 0.3,
    "achieved_flops_per_s": 1e9, "activation_bytes_per_token": 10.0, "active_params": 1e9,
    "allreduce_latency_s": 0.0, "amount": 0.5, "assumed_watts": 15.0, "bandwidth": 1e11,
    "beta1": 0.9, "beta2": 0.99, "bytes_moved": 1e6, "bytes_per_value": 2,
    "c_flops": 1e21, "compute_s_one_chip": 1.0, "context": 8, "cost_ratio": 10.0,
    "day": 10.0, "days": 10.0, "distillation_tokens": 1e9, "dropout": 0.1,
    "extra_value_usd_per_day": 100.0, "fleet_utilisation": 0.5, "floor_usd": 1.0,
    "flops": 1e9, "grad_clip": 1.0, "gradient_bytes": 1e9, "horizon_days": 365.0,
    "inference_tokens": 1e12, "inference_utilisation": 0.5, "input_tokens": 100.0,
    "intensity": 10.0, "joules": 10.0, "kv_bytes_per_sequence": 1e3,
    "kv_bytes_per_token": 100.0, "laptop_flops": 1e11, "latency_s": 1e-6,
    "latency_s_one_request": 0.1, "learning_rate": 1e-3, "link_bandwidth": 1e10,
    "lr": 1e-3, "megabytes": 1.0, "memory": 1e10, "memory_bytes": 1e10, "min_lr": 1e-4,
    "min_seconds": 0.01, "n_params": 1e9, "n_params_nonembed": 1e9, "n_tokens": 1e10,
    "n_training_tokens": 1e10, "output_tokens": 10.0, "params": 1e9, "peak_flops": 1e12,
    "peak_flops_per_s": 1e12, "period_days": 30.0, "power_watts": 100.0, "price_usd": 2.0,
    "requests_per_day": 1e3, "retrains_per_year": 4.0, "student_params": 1e3,
    "target_loss": 2.5, "temperature": 1.0, "timeout_s": 5.0, "tokens": 1e3,
    "tokens_per_s_one_replica": 100.0, "tokens_per_second": 10.0, "total_params": 1e9,
    "tpot_target_s": 0.05, "batch_tokens": 1e6, "training_tokens": 1e10, "arrival_s": 0.5,
    "rate_per_s": 10.0, "mean": 4.0, "mean_output": 8.0, "q": 50.0, "duration_s": 10.0,
    "ttft_target_s": 1.0, "end_s": 2.0, "arrival_rate_per_s": 1.0, "wait_s": 0.01,
    "mean_time_in_system_s": 1.0, "mean_in_system": 1.0, "time_bound_s": 10.0,
    "prefill_fixed_s": 1e-3, "prefill_per_token_s": 1e-5, "decode_fixed_s": 1e-3,
    "decode_per_sequence_s": 1e-4, "target": 1.0, "acceptance": 0.5, "requests_per_s": 100.0,
    "per_replica_requests_per_s": 10.0, "max_utilisation": 0.8,
    "training_utilisation": 0.4,
    "usable_fraction": 0.8, "usd_per_chip_hour": 2.0, "usd_per_hour": 2.0,
    "usd_per_kwh": 0.1, "utilisation": 0.4, "val_fraction": 0.1, "value": 3.5,
    "watts": 700.0, "watts_per_chip": 700.0, "weight_decay": 0.1, "chips": 4, "replicas": 4,
}
WHOLES = {  # whole-number parameters by name
    "batch": 2, "batch_size": 2, "batches": 2, "bits": 8, "block_size": 8, "context_keep": 4,
    "d_model": 64, "eval_interval": 1, "eval_iters": 1, "experts_per_token": 1,
    "head_dim": 4, "iter_num": 2, "largest": 100, "lr_decay_iters": 2, "max_chars": 100_000,
    "max_context": 1024, "max_iters": 2, "max_new_tokens": 3, "n_ctx": 64, "n_embd": 8,
    "n_experts": 1, "n_head": 2, "n_kv_head": 1, "n_kv_heads": 2, "n_layer": 1,
    "n_layers": 2, "new_tokens": 3, "points": 10, "port": 29500, "prompt_tokens": 4,
    "repeats": 1, "rounds": 1, "seed": 3, "seq_len": 8, "sequence_length": 8, "step": 1,
    "threads": 1, "top_k": 3, "vocab_size": CONFIG.vocab_size, "warmup_iters": 1,
    "world_size": 2, "tokens": 1000, "n_params": 10**6, "size": 64, "layers": 1,
    "id": 0, "count": 5, "longest": 16, "longest_output": 16, "max_batch": 2, "slots": 2,
    "queued": 0, "queue_limit": 8, "k": 2, "steps": 1,
}
CHOICES = {  # parameters that name one of a fixed set: a valid name each
    "precision": "bf16", "metric": "usd", "chip": "h100_sxm", "fit": "besiroglu2024",
    "bound": "low", "phase": "decode", "size": "8b", "unknown": "replace",
    "kv_precision": "bf16", "weight_precision": "bf16", "serving": "derived",
    "interconnect": "nvlink4_h100_sxm", "key": "h100_sxm",
}
TEXTS = {  # free text: any str is valid
    "name": "sample", "source": "tests", "kind": "laptop", "text": TEXT, "chars": "abc",
    "prompt": "the ", "unit": "FLOP", "prefix": "h100",
}
OTHERS: dict[str, Callable[[], object]] = {  # by name, where the type says too little
    "idx": ids, "targets": ids, "x": ids, "y": ids, "tokens": lambda: DATA.train,
    "logits": lambda: torch.randn(2, CONFIG.vocab_size),
    "student_logits": lambda: torch.randn(1, 4, CONFIG.vocab_size),
    "teacher_logits": lambda: torch.randn(1, 4, CONFIG.vocab_size),
    "weight": lambda: torch.randn(4, 4), "q": lambda: torch.randint(-8, 8, (4, 4)),
    "packed": lambda: torch.randint(0, 255, (4, 2), dtype=torch.uint8),
    "mlp": lambda: tiny_model().blocks[0].mlp, "tokenizer": lambda: DATA.tokenizer,
    "forward_flops_per_token": lambda: (lambda context: 1e3),
    "measurements": list, "models": lambda: {"8B": 8e9}, "payload": lambda: {"a": 1},
    "message_bytes": lambda: [1e6, 1e7, 1e8], "seconds": lambda: [1e-3, 1e-2, 1e-1],
    "batch_sizes": lambda: [1, 2], "sizes": lambda: (64,), "precisions": lambda: ("int8",),
    "sources": tuple, "full": lambda: 1, "fast": lambda: 2, "model": tiny_model,
    "ids": lambda: [1, 2], "ratios": lambda: [0.5, 2.0],
    "fit": lambda: {"latency_s": 1e-5, "bandwidth": 1e9},
    "prompt": ids, "prompts": lambda: [ids()], "requests": lambda: traffic.workload(4, 50.0),
    "records": lambda: simulated_run().records, "runs": lambda: [simulated_run()],
    "samples": lambda: [1.0, 2.0, 3.0], "times": lambda: [0.0, 1.0],
    "counts": lambda: [1.0, 2.0], "gauge_times": lambda: simulated_run().gauge_times,
    "gauge_counts": lambda: simulated_run().gauge_counts, "loads": lambda: [1.0, 2.0],
    "p99s": lambda: [0.1, 0.2], "ks": lambda: [1, 2], "prefills": lambda: [(1, 4)],
    "prefill_tokens": lambda: [4, 8, 16], "prefill_seconds": lambda: [1e-3, 2e-3, 4e-3],
    "decode_batches": lambda: [1, 2, 4], "decode_seconds": lambda: [1e-3, 1.1e-3, 1.3e-3],
    "jitter": lambda: [0.9, 1.1], "draft": draft_model,
}
FLAGS = {"refill": True, "use_kv_cache": True, "backward": False, "progress": False,
         "resume": False, "overlap": False, "fixed_global_batch": True, "oversubscribe": False,
         "bias": True, "fused": True, "slides_window": False, "measured": False}


def folder_samples(folder: Path) -> dict[str, Callable[[], object]]:
    """Samples that need files: a checkpoint, a corpus file and a cache folder."""
    corpus = folder / "corpus.txt"
    corpus.write_text(TEXT)
    saved = folder / "saved.pt"
    if not saved.exists():
        checkpoints.save_checkpoint(saved, tiny_model(), BY_TYPE["torch.optim"](), DATA, TRAIN,
                                    2, training_config.History())
    digest = data._sha256_of(TEXT.encode())
    return {
        "data.read_text_corpus.path": lambda: corpus,
        "checkpoints.load_checkpoint.path": lambda: saved,
        "checkpoints.save_checkpoint.path": lambda: folder / "new.pt",
        "checkpoints.check_path.path": lambda: folder / "other.pt",
        "data.download_corpus.url": corpus.as_uri,
        "data.download_corpus.sha256": lambda: digest,
        "data.download_corpus.cache": lambda: folder / "cache",
        "training.train.checkpoint": lambda: folder / "train.pt",
        "root": lambda: folder,
    }


def teacher_and_student() -> dict[str, Callable[[], object]]:
    small = dataclasses.replace(CONFIG, n_embd=4)
    return {"distill.check_student_config.student": lambda: small,
            "distill.distill.student": lambda: TinyGPT(small),
            "distill.compare_distillation.student_config": lambda: small}


OVERRIDES: dict[str, Callable[[], object]] = {
    **teacher_and_student(),
    "energy.measure_energy.work": lambda: (lambda: None),
    "runtime.as_device.value": lambda: "cpu",
    "runtime.describe_setup.settings": lambda: {"fast_mode": True, "threads": 1,
                                                "device": "cpu", "seed": 0, "cache_dir": "/c"},
    "quantize.QuantizedLinear.forward.x": lambda: torch.randn(2, 4),
    "prune.neuron_importance.mlp": lambda: tiny_model().blocks[0].mlp,
    "compression.comparison_table.measurements": lambda: [
        compression.Measurement("original", 1000, 800, 10**6, 1.0, 2.5, 1.0, 100.0)],
    "serving_cost.phase_cost.step": lambda: serving.decode_step(
        serving.llama31("8b"), serving.deployment(), serving.Workload(100, 10), 2),
    "serving_calibration.market_prices.model": lambda: "llama31_8b",
    "serving_calibration.market_deployment.model": lambda: "llama31_8b",
    "references.get.key": lambda: "a100_sxm_80gb.bandwidth",  # listed first among the keys
    "references.value.key": lambda: "a100_sxm_80gb.bandwidth",
    "serving.served_model.key": lambda: "llama31_8b",
    "scaleout.one_way_bandwidth.key": lambda: "interconnect.nvlink4_h100_sxm",
    "roofline.real_model_shape.key": lambda: "llama3_8b",
    "roofline.fit_table.chips": lambda: ["h100_sxm"],
    "serving.deployment.chips": lambda: 1,
    "serving.Deployment.chips": lambda: 1,
    "serving.ServedModel.n_experts": lambda: 1,
    "serving.ServedModel.active_params": lambda: 1e9,
    "serving_lifecycle.ServingPlan.tpot_target_s": lambda: None,
    "serving_cost.decode_curve.batches": lambda: None,
    "serving_calibration.this_machine_prediction.batches": lambda: [1, 2],
    "training.train_step.lr": lambda: 1e-3,
    "training.mean_loss.batches": lambda: 1,
    "compression.validation_loss.batches": lambda: 1,
    "compression.validation_loss.batch_size": lambda: 2,
    "data.stdlib_source_files.root": lambda: Path(data.__file__).parent,
    "data.stdlib_corpus.root": lambda: None,
    "runtime.cgroup_cpu_limit.root": lambda: Path("/sys/fs/cgroup"),
    "energy.rapl_counters.root": lambda: Path("/nonexistent"),
    "energy.measure_energy.root": lambda: Path("/nonexistent"),
    "costs.training_runs.days": lambda: [0.0, 10.0],
    "costs.Comparison.b_advantage_usd_per_day.requests_per_day": lambda: [1.0, 10.0],
    "costs.cumulative.days": lambda: [0.0, 10.0],
    "flops.context_schedule.context_keep": lambda: 4,
    "scaling.LossFit.name": lambda: "mine",
    "payback.payback.student_params": lambda: 1e2,
    "serving_sim.fit_line.x": lambda: [1.0, 2.0, 3.0],
    "serving_sim.fit_line.y": lambda: [1e-3, 2e-3, 3e-3],
    "traffic.workload.prompt_tokens": lambda: (4, 8),
    "speculative.draft_config.target": lambda: CONFIG,
    "traffic.Request.output_tokens": lambda: 10,  # a whole number of tokens
    "serving_loop.serve.prompts": lambda: {0: ids()},  # prompts by request id
    "serving_loop.serve.requests": lambda: [traffic.Request(0, 0.0, 4, 3),  # 4 tokens: ids()
                                            traffic.Request(1, 1e-3, 2, 2)],
    "serving_loop.TinyGPTEngine.prompts": lambda: {0: ids()},
    "serving_loop.measure_step_times.context": lambda: 4,  # decoding needs room after it
}
# Parameters (beyond CHOICES) that name one of a fixed set.
NAMED = {"serving_calibration.market_prices.model", "serving_calibration.market_deployment.model"}
# Parameters for which any value is valid by design.
ANY_VALUE = {"runtime.pick.full", "runtime.pick.fast", "scaling.LossFit.source",
             "checkpoints.payload_digest.payload"}
# Number parameters that may be negative, or infinite.
SIGNED = {"formatting.fmt.value", "references.format_value.value", "formatting.about.value",
          "formatting.usd.value"}
INFINITE = {"costs.training_runs.period_days"}
# str parameters that take any text (CHOICES names a fixed set by the same name elsewhere).
FREE_TEXT = {"devices.Device.key"}


class Missing(Exception):
    """No sample for a parameter: add one above."""


def annotation(parameter: inspect.Parameter) -> str:
    value = parameter.annotation
    return "" if value is inspect.Parameter.empty else str(value)


def sample_maker(qualified: str, parameter: inspect.Parameter,
                 extra: dict[str, Callable[[], object]]) -> Callable[[], object]:
    """A function making a valid value of one parameter (see the tables above)."""
    name, ann = parameter.name, annotation(parameter)
    for key in (f"{qualified}.{name}",):
        if key in OVERRIDES:
            return OVERRIDES[key]
        if key in extra:
            return extra[key]
    if "Tensor" in ann and name in OTHERS:
        return OTHERS[name]
    if name in CHOICES and ("str" in ann or not ann):
        return lambda: CHOICES[name]
    for type_name, make in BY_TYPE.items() if not re.search("Callable|Sequence", ann) else ():
        if re.search(rf"(^|[^\w.]){re.escape(type_name)}\b", ann) or \
                re.search(rf"\.{re.escape(type_name)}\b", ann):
            return make
    tables = [WHOLES, NUMBERS] if "int" in ann else [NUMBERS, WHOLES]
    for table in [*tables, TEXTS, FLAGS]:
        if name in table:
            return lambda table=table: table[name]
    if name in OTHERS:
        return OTHERS[name]
    if name in extra:
        return extra[name]
    if parameter.default is not inspect.Parameter.empty:
        return lambda: parameter.default
    raise Missing(f"{qualified}: no sample for parameter {name!r} ({ann or 'no annotation'})")


def kind_of(qualified: str, parameter: inspect.Parameter, sample: object) -> str:
    """number, whole, array, flag, choice, text, path or object: what bad values it gets."""
    name, ann = parameter.name, annotation(parameter)
    if f"{qualified}.{name}" in ANY_VALUE:
        return "any"
    if f"{qualified}.{name}" in FREE_TEXT:
        return "text"
    if isinstance(sample, str) and (name in CHOICES or f"{qualified}.{name}" in NAMED):
        return "choice"
    if isinstance(sample, bool):
        return "flag"
    if "ArrayLike" in ann or "np.ndarray" in ann or (not ann and isinstance(sample, list)):
        return "array"
    if isinstance(sample, int) and "int" in ann:
        return "whole"
    if isinstance(sample, (int, float)) and not isinstance(sample, bool):
        return "number"
    if isinstance(sample, Path) or "Path" in ann:
        return "path"
    if isinstance(sample, str):
        return "text"
    return "object"


NAN, INF = math.nan, math.inf
UNKNOWN_NAME = "bogus"


def bad_values(kind: str, optional: bool) -> tuple[list, list]:
    """(values that must be refused, values that may be accepted if the result is sane)."""
    none = [] if optional else [None]
    must, may = {
        "number": ([NAN, INF, -INF, -1.0, "5", True, [1.0]], [0.0, 1e300, 1e-300]),
        "whole": ([NAN, INF, -1, 1.5, "5", True, [1]], [0, 10**18, 2**64]),
        "array": ([NAN, INF, -1.0, "5", True, ["a"]], [0.0, 1e300, [1.0, 2.0]]),
        "flag": (["yes", 1.5], []),
        "choice": ([UNKNOWN_NAME, 5], []),
        "text": ([5], []),
        "path": ([5, True], []),
        "object": (["x", 5], []),
        "any": ([], []),
    }[kind]
    return (must + none if kind != "any" else must), may


# --- Judging one call ---------------------------------------------------------------------


class TookTooLong(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    def stop(signum, frame):
        raise TookTooLong

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


COST_NAMES = re.compile(r"flops|bytes|seconds|_s$|usd|hours|kwh|days|joules|tokens|params|"
                        r"memory|bandwidth|lr|loss|watts|utilisation|share|batch|chips")


def insane(value, where: str = "result", allow_inf: bool = False, depth: int = 0,
           signed: bool = False) -> str | None:
    """What is wrong with a result (NaN, inf, a negative amount), or None."""
    if depth > 3:
        return None
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = float(value)
        if math.isnan(value):
            return f"{where} is NaN"
        if math.isinf(value) and not allow_inf:
            return f"{where} is {value}"
        if value < 0 and not signed and (where == "result"
                                         or COST_NAMES.search(where.rsplit(".", 1)[-1])):
            return f"{where} is negative ({value:g})"
        return None
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        for item in value.reshape(-1)[:1000]:
            problem = insane(item, where, allow_inf, depth, signed)
            if problem:
                return problem
        return None
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and not torch.isfinite(value).all():
            return f"{where} holds NaN or inf"
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = ((f"[{i}]", v) for i, v in enumerate(value[:50]))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    else:
        return None
    for key, item in items:
        problem = insane(item, f"{where}.{key}", allow_inf, depth + 1, signed)
        if problem:
            return problem
    return None


def names(message: str, parameter: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(parameter)}(?![\w])", message) is not None


def judge(qualified: str, call: Callable[[], object], parameter: str | None, value,
          must_refuse: bool, listing: str | None = None) -> str | None:
    """None if the call keeps the contract; otherwise what went wrong, in one line."""
    shown = f"{qualified}({parameter}={value!r:.40})" if parameter else f"{qualified}()"
    try:
        with time_limit(SECONDS_PER_CALL):
            result = call()
            if inspect.isgenerator(result):  # a generator checks its arguments when it starts
                result = next(result, None)
    except TookTooLong:
        return f"{shown}: still running after {SECONDS_PER_CALL} s (no early check)"
    except (ValueError, TypeError) as error:
        if parameter is None or (names(str(error), parameter)
                                 and (listing is None or listing in str(error))):
            return None
        if listing is not None and names(str(error), parameter):
            return f"{shown}: the message does not list the choices: {error!s:.160}"
        return f"{shown}: {type(error).__name__} does not name {parameter!r}: {error!s:.160}"
    except Exception as error:  # noqa: BLE001  (any other exception breaks the contract)
        return f"{shown}: {type(error).__name__}: {error!s:.160}"
    if must_refuse:
        return f"{shown}: accepted (returned {result!r:.60})"
    problem = insane(result, allow_inf=qualified in INF_MEANS_NEVER,
                     signed=qualified in SIGNED_RESULTS)
    return f"{shown}: {problem}" if problem else None


# --- The walk -----------------------------------------------------------------------------


def parameters(target: Callable) -> list[inspect.Parameter]:
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p for p in inspect.signature(target).parameters.values()
            if p.kind not in skip and p.name != "self"]


def own_methods(cls: type) -> list[str]:
    """Public methods and properties a class defines itself (not inherited)."""
    return [name for name, member in vars(cls).items() if not name.startswith("_")
            and (inspect.isfunction(member) or isinstance(member, property))]


class Walk:
    """Every public callable, every parameter bad in turn: counts and violations."""

    def __init__(self, folder: Path):
        self.extra = folder_samples(folder)
        self.tried = 0
        self.violations: list[str] = []
        self.missing: list[str] = []

    def makers(self, qualified: str, target: Callable) -> dict[str, Callable[[], object]]:
        found = {}
        for parameter in parameters(target):
            try:
                found[parameter.name] = sample_maker(qualified, parameter, self.extra)
            except Missing as error:
                self.missing.append(str(error))
        return found

    def check(self, qualified: str, call: Callable[[], object], parameter: str | None = None,
              value=None, must_refuse: bool = False, listing: str | None = None) -> None:
        self.tried += 1
        problem = judge(qualified, call, parameter, value, must_refuse, listing)
        if problem:
            self.violations.append(problem)

    def callable_(self, qualified: str, target: Callable, bound: Callable[[], Callable]
                  ) -> None:
        """`bound()` gives the function to call (fresh: a method of a fresh instance)."""
        makers = self.makers(qualified, target)
        if len(makers) < len(parameters(target)):
            return  # reported by test_every_parameter_has_a_sample
        try:
            with time_limit(SECONDS_PER_CALL):
                result = bound()(**{k: m() for k, m in makers.items()})
                if inspect.isgenerator(result):
                    next(result, None)
        except Exception as error:  # noqa: BLE001  (the samples must make a valid call)
            self.missing.append(f"the samples do not make a valid call of {qualified}: "
                                f"{type(error).__name__}: {error!s:.160}")
            return
        self.tried += 1
        for parameter in parameters(target):
            sample = makers[parameter.name]()
            kind = kind_of(qualified, parameter, sample)
            optional = "None" in annotation(parameter) or parameter.default is None
            must, may = bad_values(kind, optional)
            key = f"{qualified}.{parameter.name}"
            if key in SIGNED or key in INFINITE:  # move what this parameter accepts to `may`
                allowed = [-1.0, -1] if key in SIGNED else [INF]
                may = may + [v for v in must if any(v is a or v == a for a in allowed)]
                must = [v for v in must if not any(v is a or v == a for a in allowed)]
            for value, refuse in [(v, True) for v in must] + [(v, False) for v in may]:
                def call(value=value, name=parameter.name):
                    kwargs = {k: (value if k == name else m()) for k, m in makers.items()}
                    return bound()(**kwargs)
                listing = sample if value == UNKNOWN_NAME else None  # the choices, listed
                self.check(qualified, call, parameter.name, value, refuse, listing)

    def everything(self) -> None:
        for qualified, obj in public_callables():
            self.callable_(qualified, obj, lambda obj=obj: obj)
            if inspect.isclass(obj):
                self.methods(qualified, obj)
        for qualified, make in INSTANCES.items():
            module, name = qualified.split(".")
            self.methods(qualified, getattr(importlib.import_module(f"course_lib.{module}"),
                                            name), make)

    def methods(self, qualified: str, cls: type, make: Callable[[], object] | None = None
                ) -> None:
        if make is None:
            makers = self.makers(qualified, cls)
            if len(makers) < len(parameters(cls)):
                return

            def make():
                return cls(**{k: m() for k, m in makers.items()})
            try:
                make()
            except Exception:  # noqa: BLE001  (reported by the constructor's own walk)
                return
        for attr in own_methods(cls):
            name = f"{qualified}.{attr}"
            if name in EXCLUDED or qualified in ENGINES:
                continue
            member = vars(cls)[attr]
            if isinstance(member, property):
                self.check(name, lambda attr=attr: getattr(make(), attr))
            else:
                self.callable_(name, member, lambda attr=attr: getattr(make(), attr))


# Instances of result records whose methods take arguments.
INSTANCES: dict[str, Callable[[], object]] = {
    "payback.Payback": lambda: payback.payback(costs.open_model(), 1e9, 1e12),
    "costs.Comparison": lambda: costs.compare(costs.open_model()),
    "costs.Spend": lambda: costs.training_cost(costs.tiny_model()),
    "scaling.Sizing": lambda: scaling.sizing(1e9, 2.5, 1e12),
    "serving_cost.ServingCost": lambda: serving_cost.serve(
        serving.llama31("8b"), serving.deployment(), serving.Workload(100, 10), 2),
}
# Results that may be negative: an advantage can be a loss.
SIGNED_RESULTS = {"costs.Comparison.b_advantage_usd_per_day"}


@pytest.fixture(scope="module")
def walk(tmp_path_factory) -> Walk:
    threads = torch.get_num_threads()
    result = Walk(tmp_path_factory.mktemp("contract"))
    try:
        result.everything()
    finally:
        torch.set_num_threads(threads)  # runtime.configure_threads was among the callables
    return result


def test_every_parameter_has_a_sample(walk):
    assert not walk.missing, "\n".join(walk.missing)


def test_every_bad_input_gets_a_clear_error(walk, record_property):
    record_property("contract_inputs", walk.tried)
    record_property("contract_violations", len(walk.violations))
    print(f"\ncontract: {walk.tried} inputs tried over {len(public_callables())} public "
          f"callables, {len(walk.violations)} violations")
    assert walk.tried > 2000
    assert not walk.violations, (f"{len(walk.violations)} of {walk.tried} inputs break the "
                                 "contract:\n" + "\n".join(walk.violations))


# --- The examples issue 17 found, each kept fixed ------------------------------------------


def _generate(**changes):
    arguments = dict(model=tiny_model(), tokenizer=DATA.tokenizer, prompt="the ",
                     max_new_tokens=3) | changes
    return inference.generate(**arguments)


def _tiny_scenario():
    return costs.tiny_model().replace(**dict.fromkeys(
        ("n_params", "training_tokens", "requests_per_day", "input_tokens", "output_tokens",
         "usd_per_kwh", "horizon_days"), 1e-300))


# (what was called, the call, the exception, the parameter its message must name)
ISSUE_EXAMPLES = [
    ("six_n_d(nan, 1)", lambda: flops.six_n_d(NAN, 1), ValueError, "n_params"),
    ("six_n_d(-1, 1e10)", lambda: flops.six_n_d(-1, 1e10), ValueError, "n_params"),
    ("kaplan_forward_flops_per_token(nan, ...)",
     lambda: flops.kaplan_forward_flops_per_token(NAN, 4, 64, 128), ValueError,
     "n_params_nonembed"),
    ("activation_bytes(cfg, 2, seq_len=-1)",
     lambda: flops.activation_bytes(CONFIG, 2, seq_len=-1), ValueError, "seq_len"),
    ("activation_bytes(cfg, 2, bytes_per_value='5')",
     lambda: flops.activation_bytes(CONFIG, 2, bytes_per_value="5"), TypeError,
     "bytes_per_value"),
    ("training_runs([1, 400], 0)", lambda: costs.training_runs([1, 400], 0), ValueError,
     "period_days"),
    ("format_days(nan)", lambda: costs.format_days(NAN), ValueError, "days"),
    ("StepCost('x', 1e9, 0, 1).intensity",
     lambda: roofline.StepCost("x", 1e9, 0, 1).intensity, ValueError, "bytes_moved"),
    ("tokens_for_loss(1e9, nan)", lambda: scaling.tokens_for_loss(1e9, NAN), ValueError,
     "target_loss"),
    ("tokens_for_loss(1e9, inf)", lambda: scaling.tokens_for_loss(1e9, INF), ValueError,
     "target_loss"),
    ("learning_rate_at(-5, ...)",
     lambda: training_config.learning_rate_at(-5, training_config.TrainConfig()), ValueError,
     "step"),
    ("train_flops_per_step(cfg, 2, seq_len=0)",
     lambda: flops.train_flops_per_step(CONFIG, 2, seq_len=0), ValueError, "seq_len"),
    ("training_flops(1e300, 1e10)", lambda: scaling.training_flops(1e300, 1e10), ValueError,
     "n_params"),
    ("estimate_run(1e300, ...): the message names the input",
     lambda: scaling.estimate_run(1e300, 1e10, 8), ValueError, "n_params"),
    ("describe_fit with a tiny model: 'at most inf tokens/s'",
     lambda: roofline.describe_fit("h100_sxm", 1e-300, "bf16"), ValueError, "params"),
    ("a scenario of 1e-300 values: a NaN share",
     lambda: costs.inference_share(_tiny_scenario()), ValueError, "s"),
    ("distillation temperature 1e200",
     lambda: distill.distillation_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3),
                                       torch.zeros(1, 2, dtype=torch.long), 1e200),
     ValueError, "temperature"),
    ("distillation temperature 1e-40",
     lambda: distill.distillation_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3),
                                       torch.zeros(1, 2, dtype=torch.long), 1e-40),
     ValueError, "temperature"),
    ("payback with zero tokens per request",
     lambda: payback.payback(costs.open_model().replace(input_tokens=0, output_tokens=0),
                             1e9, 1e12), ValueError, "teacher"),
    ("fit_allreduce with NaN",
     lambda: scaleout.fit_allreduce([1e6, 1e7], [1e-3, NAN], 2), ValueError, "seconds"),
    ("prepare('some text', 16)", lambda: data.prepare("some text", 16), TypeError, "corpus"),
    ("training_cost('chat')", lambda: costs.training_cost("chat"), TypeError, "s"),
    ("matmul_params(None)", lambda: flops.matmul_params(None), TypeError, "config"),
    ("generate(None, ...)", lambda: _generate(model=None), TypeError, "model"),
    ("train_data_parallel(train_config='x')",
     lambda: data_parallel.train_data_parallel(2, train_config="x"), TypeError,
     "train_config"),
    ("load_checkpoint(model_config='x')",
     lambda: checkpoints.load_checkpoint("missing.pt", model_config="x"), TypeError,
     "model_config"),
    ("describe_crossover(S, 'bogus')",
     lambda: costs.describe_crossover(costs.tiny_model(), "bogus"), ValueError, "usd"),
    ("usd_per_accelerator_hour('bogus')",
     lambda: scaling.usd_per_accelerator_hour("bogus"), ValueError, "h100_sxm"),
    ("real_model_shape('bogus')", lambda: roofline.real_model_shape("bogus"), ValueError,
     "llama3_8b"),
    ("one_way_bandwidth('bogus')", lambda: scaleout.one_way_bandwidth("bogus"), ValueError,
     "interconnect.nvlink4_h100_sxm"),
    *[(f"TrainConfig(seed={seed!r})", lambda seed=seed: training_config.TrainConfig(seed=seed),
       ValueError, "seed") for seed in (-1, "abc", 1.5, None)],
    ("generate(seed=2**64)", lambda: _generate(seed=2**64), ValueError, "seed"),
    ("generate(max_new_tokens=10**9)", lambda: _generate(max_new_tokens=10**9), ValueError,
     "max_new_tokens"),
    ("TrainConfig(batch_size=10**12)",
     lambda: training_config.TrainConfig(batch_size=10**12), ValueError, "batch_size"),
    ("download_corpus(timeout_s=1e300)", lambda: data.download_corpus(timeout_s=1e300),
     ValueError, "timeout_s"),
    ("positive_array refuses '5'", lambda: validate.positive_array("bw", "5"), TypeError, "bw"),
    ("positive_array refuses True", lambda: validate.positive_array("bw", True), TypeError,
     "bw"),
    ("ring_allreduce_seconds('5', 8, 5e10)",
     lambda: scaleout.ring_allreduce_seconds("5", 8, 5e10), TypeError, "gradient_bytes"),
    ("sizing(..., nan) named n_tokens", lambda: scaling.sizing(1e9, 2.5, NAN), ValueError,
     "inference_tokens"),
    ("replica_scaling(0, ...) named chips", lambda: scaleout.replica_scaling(0, 100, 0.1),
     ValueError, "replicas"),
    ("CharTokenizer(None)", lambda: data.CharTokenizer(None), TypeError, "chars"),
    ("decode([1.5])", lambda: DATA.tokenizer.decode([1.5]), ValueError, "ids"),
    ("get_batch(t, 2, 0)", lambda: data.get_batch(DATA.train, 2, 0), ValueError,
     "block_size"),
]


@pytest.mark.parametrize("what, call, error, named", ISSUE_EXAMPLES,
                         ids=[example[0] for example in ISSUE_EXAMPLES])
def test_each_example_from_the_issue_is_a_clear_error(what, call, error, named):
    with time_limit(SECONDS_PER_CALL), pytest.raises(error) as raised:
        call()
    assert named in str(raised.value), f"{what}: {raised.value}"


def test_what_used_to_fail_now_works():
    assert _generate(seed=np.int64(3)) == _generate(seed=3)  # a NumPy integer is a seed
    greedy = _generate(temperature=0)
    assert _generate(temperature=1e-46) == greedy  # no 'probability tensor contains nan'
    assert len(_generate(temperature=1e300, top_k=2)) == len(greedy)  # top_k still applies


# --- Hypothesis: the arithmetic layer over its full finite range ---------------------------


def instance_maker(qualified: str, cls: type) -> Callable[[], object] | None:
    """A function making a valid instance of `cls` from the samples, or None."""
    if qualified in INSTANCES:
        return INSTANCES[qualified]
    try:
        makers = {p.name: sample_maker(qualified, p, {}) for p in parameters(cls)}
        cls(**{k: m() for k, m in makers.items()})
    except Exception:  # noqa: BLE001  (no instance: its methods are left to the walk)
        return None
    return lambda: cls(**{k: m() for k, m in makers.items()})


def arithmetic_targets() -> list[tuple[str, Callable, Callable[[], Callable]]]:
    """(name, function for its signature, maker of the thing to call) for every public
    function of the arithmetic layer and every method of its classes that takes arguments."""
    targets = []
    records = {name: name for name in INSTANCES}
    for qualified, obj in public_callables() + [(n, None) for n in records]:
        module = qualified.split(".")[0]
        if LAYERS[module] != LAYERS["flops"]:
            continue
        if obj is None:
            obj = getattr(importlib.import_module(f"course_lib.{module}"), qualified.split(".")[1])
        if not inspect.isclass(obj):
            targets.append((qualified, obj, lambda obj=obj: obj))
            continue
        make = instance_maker(qualified, obj)
        for attr in own_methods(obj) if make and qualified not in ENGINES else ():
            member = vars(obj)[attr]
            if inspect.isfunction(member) and parameters(member):
                targets.append((f"{qualified}.{attr}", member,
                                lambda make=make, attr=attr: getattr(make(), attr)))
    return targets


ARITHMETIC = arithmetic_targets()
HYPOTHESIS_EXAMPLES = 25
counted = {"hypothesis inputs": 0, "monotone pairs": 0}


def number_strategy(kind: str):
    """Every finite float (tiny, huge, negative, subnormal) or a wide range of integers."""
    if kind == "whole":
        return st.integers(min_value=-(2**70), max_value=2**70)
    values = st.floats(allow_nan=False, allow_infinity=False)
    return st.lists(values, min_size=1, max_size=3) if kind == "array" else values


def drawn_call(qualified: str, target: Callable, bound: Callable[[], Callable], data
               ) -> tuple[Callable[[], object], list]:
    """A call with every number parameter drawn at once, the others from the samples."""
    kwargs, drawn = {}, []
    for parameter in parameters(target):
        sample = sample_maker(qualified, parameter, {})()
        kind = kind_of(qualified, parameter, sample)
        if kind in ("number", "whole", "array"):
            kwargs[parameter.name] = data.draw(number_strategy(kind), label=parameter.name)
            drawn.append(parameter.name)
        else:
            kwargs[parameter.name] = sample
    return (lambda: bound()(**kwargs)), drawn


@pytest.mark.parametrize("qualified, target, bound", ARITHMETIC, ids=[t[0] for t in ARITHMETIC])
@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_arithmetic_keeps_the_contract_over_every_finite_number(qualified, target, bound,
                                                                     data):
    try:
        call, drawn = drawn_call(qualified, target, bound, data)
    except Missing:
        return  # test_every_parameter_has_a_sample reports it
    if not drawn:
        return
    counted["hypothesis inputs"] += 1
    try:
        with time_limit(SECONDS_PER_CALL):
            result = call()
    except (ValueError, TypeError) as error:
        assert any(names(str(error), name) for name in drawn), (
            f"{qualified}: the message names none of {drawn}: {error}")
        return
    problem = insane(result, allow_inf=qualified in INF_MEANS_NEVER,
                     signed=qualified in SIGNED_RESULTS)
    assert problem is None, f"{qualified}: {problem}"


# Results that must grow (+1) or shrink (-1) with one input, the others fixed.
MONOTONE = [
    (flops.six_n_d, "n_params", +1), (flops.six_n_d, "tokens", +1),
    (scaling.training_flops, "n_tokens", +1), (scaling.inference_flops, "n_params", +1),
    (scaling.loss, "n_params", -1), (scaling.loss, "n_tokens", -1),
    (scaling.tokens_for_loss, "target_loss", -1),
    (utilisation.accelerator_seconds, "flops", +1),
    (utilisation.accelerator_seconds, "peak_flops_per_s", -1),
    (utilisation.accelerator_seconds, "utilisation", -1),
    (roofline.weight_bytes, "params", +1),
    (roofline.decode_tokens_per_second_bound, "params", -1),
    (roofline.decode_tokens_per_second_bound, "bandwidth", +1),
    (scaleout.ring_allreduce_seconds, "gradient_bytes", +1),
    (scaleout.ring_allreduce_seconds, "link_bandwidth", -1),
    (flops.kv_cache_bytes, "tokens", +1), (costs.format_days, "days", 0),
]
POSITIVE = st.floats(min_value=5e-324, max_value=1.7e308)


@pytest.mark.parametrize("function, name, direction", MONOTONE,
                         ids=[f"{f.__name__}-{n}" for f, n, _ in MONOTONE])
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_results_move_the_way_the_formula_says(function, name, direction, data):
    qualified = f"{function.__module__.removeprefix('course_lib.')}.{function.__name__}"
    kwargs = {p.name: sample_maker(qualified, p, {})() for p in parameters(function)}
    whole = isinstance(kwargs[name], int)
    low, high = sorted(data.draw(st.lists(st.integers(0, 2**60) if whole else POSITIVE,
                                          min_size=2, max_size=2)))
    results = []
    for value in (low, high):
        try:
            results.append(function(**{**kwargs, name: value}))
        except ValueError:  # out of range or overflowed: refused, as the contract says
            return
    counted["monotone pairs"] += 1
    first, second = results
    if direction > 0:
        assert second >= first * (1 - 1e-12), f"{qualified} fell as {name} grew: {results}"
    elif direction < 0:
        assert second <= first * (1 + 1e-12), f"{qualified} grew as {name} grew: {results}"
    else:
        assert first and second  # a readable text for every value


def test_the_counts_are_recorded(record_property):
    """Run last in this file: the number of inputs the hypothesis tests tried."""
    for key, value in counted.items():
        record_property(key.replace(" ", "_"), value)
    print(f"\ncontract (hypothesis): {counted}")
