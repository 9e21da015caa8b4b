"""Data-parallel training for real, on this machine's CPU cores, and all-reduce timings.

Torch layer. Both run in worker processes started by course_lib.launcher (gloo backend,
TCP on 127.0.0.1):
- `measure_allreduce` times all-reduces of several message sizes; feed the result to
  course_lib.scaleout.fit_allreduce for this machine's latency and bandwidth.
- `train_data_parallel` trains TinyGPT with DistributedDataParallel (DDP) and splits each
  step's time into compute and gradient all-reduce (a DataParallelResult). Its worker,
  `_ddp_worker` (shown in notebook 10), runs the course's one training step,
  course_lib.training.train_step, on a DDP model.

The workers compute on the CPU whatever runtime.device() says: the lesson is processes that
share this machine's cores and talk over gloo, one thread each.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from course_lib import data as data_lib
from course_lib import runtime, training, validate
from course_lib.data import TokenData
from course_lib.launcher import DEFAULT_TIMEOUT_S, check_world_size, launch
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig
from course_lib.training_config import TrainConfig, learning_rate_at

SWEEP_BYTES = (2**12, 2**16, 2**20, 2**22, 2**24)  # 4 KB to 16 MB

Batch = Callable[[], tuple[torch.Tensor, torch.Tensor]]


# --- all-reduce timings -------------------------------------------------------------------


def _timed_allreduce(buffer: torch.Tensor) -> float:
    """Seconds for one all-reduce of `buffer`, started by every rank together (a barrier)."""
    dist.barrier()
    began = time.perf_counter()
    dist.all_reduce(buffer)
    return time.perf_counter() - began


def _allreduce_worker(rank: int, world_size: int, sizes_bytes: Sequence[int],
                      repeats: int) -> list:
    """Times of `repeats` all-reduces of float32 buffers of each size (runs in each worker)."""
    timings = []
    for nbytes in sizes_bytes:
        buffer = torch.ones(max(1, nbytes // 4), dtype=torch.float32)
        dist.all_reduce(buffer)  # warm-up: the first call sets up buffers and connections
        timings.append([_timed_allreduce(buffer) for _ in range(repeats)])
    return timings


def _check_sizes(sizes_bytes: Sequence[int]) -> list[int]:
    sizes = [int(size) for size in sizes_bytes]
    if not sizes or min(sizes) < 4:
        raise ValueError(f"sizes_bytes must be message sizes >= 4 bytes, got {sizes_bytes!r}")
    return sizes


def _summarise_sweep(per_rank: list, sizes: list[int], world_size: int) -> dict:
    slowest = np.max(np.asarray(per_rank), axis=0)  # (sizes, repeats): every rank must finish
    return {"bytes": np.asarray(sizes), "seconds": np.median(slowest, axis=1),
            "world_size": world_size}


def measure_allreduce(sizes_bytes: Sequence[int] = SWEEP_BYTES, world_size: int = 2,
                      repeats: int = 5, *, port: int | None = None,
                      timeout_s: float = DEFAULT_TIMEOUT_S, oversubscribe: bool = False
                      ) -> dict:
    """Measured all-reduce time for messages of `sizes_bytes` bytes among world_size processes.

    Returns bytes, seconds (median over repeats of the slowest rank) and world_size: feed
    them to scaleout.fit_allreduce to get this machine's latency and bandwidth.
    """
    sizes = _check_sizes(sizes_bytes)
    validate.whole("repeats", repeats)
    per_rank = launch(_allreduce_worker, world_size, (sizes, repeats), port=port,
                      timeout_s=timeout_s, oversubscribe=oversubscribe)
    return _summarise_sweep(per_rank, sizes, world_size)


# --- data-parallel training ---------------------------------------------------------------


@dataclass
class DataParallelResult:
    """What a data-parallel run measured. Times in seconds, per training step."""

    world_size: int
    global_batch: int  # sequences per step, summed over the workers
    block_size: int
    losses: list[float]  # mean training loss over the global batch, per step
    step_s: list[float]  # wall time of each training step (slowest worker)
    compute_s: float  # forward + backward without gradient sync (DDP's no_sync), median
    synced_s: float  # forward + backward with DDP's gradient all-reduce, median
    allreduce_s: float  # one explicit all-reduce of a gradient-sized buffer, median
    gradient_bytes: int  # bytes of gradients summed every step
    state: dict = field(repr=False)  # trained weights of rank 0, as NumPy arrays
    replica_max_diff: float = 0.0  # largest weight difference between workers (should be 0)
    sweep: dict | None = field(default=None, repr=False)  # as measure_allreduce returns

    @property
    def exposed_allreduce_s(self) -> float:
        """What the gradient sync added to a step: synced - compute (0 if noise says less)."""
        return max(self.synced_s - self.compute_s, 0.0)

    @property
    def tokens_per_s(self) -> float:
        """Training tokens per second, over the median step."""
        return self.global_batch * self.block_size / statistics.median(self.step_s)

    def summary(self) -> dict:
        """The measured figures without the weights, for printing."""
        out = {k: v for k, v in asdict(self).items()
               if k not in ("state", "losses", "step_s", "sweep")}
        out.update(median_step_s=statistics.median(self.step_s), final_loss=self.losses[-1],
                   exposed_allreduce_s=self.exposed_allreduce_s, tokens_per_s=self.tokens_per_s)
        return out


def _forward_backward(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Seconds for one forward and backward pass (gradients accumulate in .grad)."""
    began = time.perf_counter()
    model(x, y)[1].backward()
    return time.perf_counter() - began


def _probe_step(model: DDP, local_batch: Batch, probe_steps: int) -> dict:
    """Time one step three ways, `probe_steps` times, after training (no optimizer steps,
    so the weights stay as trained): forward+backward without DDP's gradient sync (compute),
    with it (synced), and one explicit all-reduce of a gradient-sized buffer."""
    gradient_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    flat = torch.zeros(gradient_bytes // 4, dtype=torch.float32)
    compute, synced, allreduce = [], [], []
    for _ in range(probe_steps):
        x, y = local_batch()
        with model.no_sync():  # DDP skips its all-reduce: pure compute
            compute.append(_forward_backward(model, x, y))
        model.zero_grad(set_to_none=True)
        dist.barrier()
        synced.append(_forward_backward(model, x, y))
        model.zero_grad(set_to_none=True)
        allreduce.append(_timed_allreduce(flat))
    return {"compute_s": compute, "synced_s": synced, "allreduce_s": allreduce,
            "gradient_bytes": gradient_bytes}


def _ddp_worker(rank: int, world_size: int, train_tokens: np.ndarray,
                model_config: ModelConfig, train_config: TrainConfig,
                probe_steps: int, fail_at_step: int | None, sweep_bytes: list[int]) -> dict:
    """Train TinyGPT with DDP on this worker's share of every global batch (runs in a worker).

    Every worker draws the same global batch (same seed) and keeps its own rows, so the
    union of the shards is exactly the batch a single process would use. The step is
    training.train_step, notebook 02's; on a DDP model its backward pass also averages the
    gradients of every worker. Shown whole in notebook 10.
    """
    tokens = torch.from_numpy(train_tokens)
    runtime.seed_everything(train_config.seed)
    model = DDP(TinyGPT(model_config))  # DDP copies rank 0's weights to every worker
    optimizer = training.make_optimizer(model.module, train_config)
    generator = torch.Generator().manual_seed(train_config.seed)
    shard = slice(rank * train_config.batch_size // world_size,
                  (rank + 1) * train_config.batch_size // world_size)

    def local_batch():
        x, y = data_lib.get_batch(tokens, train_config.batch_size, model_config.block_size,
                                  generator, device="cpu")
        return x[shard], y[shard]

    losses, step_s = [], []
    for step in range(train_config.max_iters):
        if step == fail_at_step and rank == world_size - 1:
            raise RuntimeError(f"simulated failure of worker {rank} at step {step}")
        began = time.perf_counter()
        x, y = local_batch()
        losses.append(training.train_step(model, optimizer, x, y,
                                          learning_rate_at(step, train_config),
                                          train_config.grad_clip))
        step_s.append(time.perf_counter() - began)

    timings = _probe_step(model, local_batch, probe_steps)  # after training: see notebook 10
    state = {name: value.detach().numpy().copy()
             for name, value in model.module.state_dict().items()}
    return {"losses": losses, "step_s": step_s, "state": state, **timings,
            "sweep": _allreduce_worker(rank, world_size, sweep_bytes, probe_steps)}


def _defaults(world_size: int, train_config: TrainConfig | None,
              model_config: ModelConfig | None, data: TokenData | None) -> tuple:
    """(train_config, model_config, data), each the course's default where None, checked."""
    if train_config is None:
        train_config = dataclasses.replace(training.default_train_config(),
                                           max_iters=runtime.pick(20, 5))
    if data is None:
        data = data_lib.load_default_data()
    if model_config is None:
        model_config = training.default_model_config(data.tokenizer.vocab_size)
    if model_config.vocab_size != data.tokenizer.vocab_size:
        raise ValueError(f"model_config.vocab_size={model_config.vocab_size} but the data's "
                         f"tokenizer has {data.tokenizer.vocab_size} tokens")
    if train_config.batch_size % world_size:
        raise ValueError(f"train_config.batch_size (the global batch, {train_config.batch_size})"
                         f" must be divisible by world_size={world_size}, so that every worker "
                         f"gets the same number of sequences")
    return train_config, model_config, data


@validate.checked
def train_data_parallel(world_size: int, train_config: TrainConfig | None = None,
                        model_config: ModelConfig | None = None, data: TokenData | None = None,
                        *, probe_steps: int = 5, fail_at_step: int | None = None,
                        sweep_bytes: Sequence[int] = (), port: int | None = None,
                        timeout_s: float = DEFAULT_TIMEOUT_S, oversubscribe: bool = False
                        ) -> DataParallelResult:
    """Train TinyGPT with DistributedDataParallel in world_size processes.

    train_config.batch_size is the GLOBAL batch: each of the world_size workers computes on
    batch_size / world_size sequences, and DDP averages their gradients, so every step
    updates the weights as one process with the whole batch would (up to rounding).
    Defaults: the default corpus (data.load_default_data), the course's model
    (training.default_model_config) and 20 steps (5 in fast mode) of
    training.default_train_config(), whose batch_size is 12.

    After training, `probe_steps` extra batches time one step three ways: forward+backward
    with DDP's no_sync (compute only), with DDP's gradient sync (compute + the all-reduce
    DDP could not hide), and an explicit all_reduce of a gradient-sized buffer (the
    communication alone, which is what scaleout.ring_allreduce_seconds predicts).
    sweep_bytes: message sizes to time all-reduces of as well (probe_steps times each), as
    measure_allreduce does but without starting processes again; the result's `sweep`.
    fail_at_step: make the last worker raise at that step (to see how a failure is handled).
    oversubscribe: see launcher.check_world_size.
    """
    world_size = check_world_size(world_size, oversubscribe)
    train_config, model_config, data = _defaults(world_size, train_config, model_config, data)
    validate.whole("probe_steps", probe_steps)
    sizes = _check_sizes(sweep_bytes) if len(sweep_bytes) else []
    per_rank = launch(_ddp_worker, world_size,
                      (data.train.numpy(), model_config, train_config, probe_steps,
                       fail_at_step, sizes),
                      port=port, timeout_s=timeout_s, oversubscribe=oversubscribe)
    first = per_rank[0]["state"]
    replica_diff = max((float(np.max(np.abs(other["state"][k] - first[k])))
                        for other in per_rank[1:] for k in first), default=0.0)
    return DataParallelResult(
        world_size=world_size, global_batch=train_config.batch_size,
        block_size=model_config.block_size,
        losses=np.mean([r["losses"] for r in per_rank], axis=0).tolist(),
        step_s=np.max([r["step_s"] for r in per_rank], axis=0).tolist(),
        compute_s=max(statistics.median(r["compute_s"]) for r in per_rank),
        synced_s=max(statistics.median(r["synced_s"]) for r in per_rank),
        allreduce_s=max(statistics.median(r["allreduce_s"]) for r in per_rank),
        gradient_bytes=per_rank[0]["gradient_bytes"],
        state=first, replica_max_diff=replica_diff,
        sweep=_summarise_sweep([r["sweep"] for r in per_rank], sizes, world_size)
        if sizes else None)
