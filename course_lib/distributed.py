"""Beyond one machine: data-parallel training with torch.distributed, and a model of scaling out.

Two halves, one idea: training needs chips that talk to each other, inference does not.

1. A model of scaling out (pure functions, units in the names):
   - `ring_allreduce_seconds`: time to sum the gradients of every chip with a ring
     all-reduce, 2(p-1)/p x gradient bytes / link bandwidth + 2(p-1) x latency.
   - `data_parallel_scaling`: step time, speedup and scaling efficiency of data-parallel
     training on p chips, from the compute time of one chip and the all-reduce time.
   - `replica_scaling`: inference replicas are independent workers: throughput grows
     linearly with replicas and the latency of one request does not change.
2. The real thing, on this machine's CPU cores: `launch` starts worker processes that join
   a torch.distributed process group (gloo backend, TCP on 127.0.0.1);
   `measure_allreduce` times all-reduces of several sizes;
   `train_data_parallel` trains TinyGPT with DistributedDataParallel and splits each step's
   time into compute and gradient all-reduce.

Process management (why `launch` looks the way it does):
- Workers never start by forking the notebook kernel (unsafe once it runs threads). Where the
  OS offers it (Linux, macOS) they fork from multiprocessing's 'forkserver', a clean helper
  process started on first use that has imported torch once; elsewhere each worker is a
  fresh 'spawn'ed interpreter. Either way a worker imports its function by name, so workers
  are plain functions in this module (a function typed into a notebook cell cannot be
  imported by another process). The fork server and multiprocessing's resource tracker are
  helpers, not workers: they stay while the kernel runs and exit with it.
- Every wait has a deadline. A worker that fails sends its traceback through a pipe; the
  parent then stops all the others at once (a worker stuck in an all-reduce with a dead
  partner would otherwise wait for gloo's timeout) and raises WorkerError naming the rank.
- Workers are always stopped: in a `finally`, so also when you interrupt the cell. A worker
  also exits by itself if the process that launched it disappears (a killed kernel), and
  ignores Ctrl-C so that only the launcher decides.
- One thread per worker: two processes with one thread each fill a 2-core machine.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import statistics
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from multiprocessing import connection, get_all_start_methods, get_context

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from course_lib import data as data_lib
from course_lib import flops, references, runtime, training, validate
from course_lib.model import TinyGPT

THREADS_PER_WORKER = 1
DEFAULT_TIMEOUT_S = 120.0
_STOP_GRACE_S = 5.0  # how long a worker gets to exit after SIGTERM before SIGKILL
_FAILURE_GRACE_S = 2.0  # after a failure, how long the other workers get to report theirs
_HOST = "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# 1. The model of scaling out
# ---------------------------------------------------------------------------------------------




def _check_chips(chips) -> np.ndarray:
    array = np.asarray(chips, dtype=float)
    if not np.all(np.isfinite(array)) or np.any(array < 1) or np.any(array != np.round(array)):
        raise ValueError(f"chips must be whole numbers >= 1, got {chips!r}")
    return array


def one_way_bandwidth(key: str) -> float:
    """Bytes/s one way of a cited interconnect (references key 'interconnect.<name>').

    Vendors quote NVLink and PCIe for both directions together; a ring all-reduce sends
    one way and receives the other way at the same time, so the ring uses half of it.
    InfiniBand ports are quoted per direction already.
    """
    entry = references.get(key)
    if not key.startswith("interconnect."):
        raise ValueError(f"key must name an interconnect ('interconnect.<name>'), got {key!r}")
    return entry.value / 2 if "both directions" in entry.unit else entry.value


def interconnects() -> dict[str, float]:
    """Every cited interconnect: description -> one-way bandwidth in bytes/s."""
    return {entry.what: one_way_bandwidth(entry.key)
            for entry in references.entries("interconnect.")}


def ring_allreduce_seconds(gradient_bytes, chips, link_bandwidth, latency_s=0.0):
    """Seconds for a ring all-reduce of `gradient_bytes` over `chips` chips.

    Each chip sends (and receives) 2(p-1)/p x gradient_bytes over its link of
    `link_bandwidth` bytes/s one way (a reduce-scatter then an all-gather, p-1 steps each),
    and pays `latency_s` seconds per step: 2(p-1)/p x bytes / bandwidth + 2(p-1) x latency.
    Zero for one chip. Works elementwise on NumPy arrays of chips.
    The bandwidth term hardly grows with p (it tends to 2 x bytes / bandwidth); the latency
    term grows linearly, which is why large clusters use tree or hierarchical algorithms.
    """
    validate.positive_array("gradient_bytes", gradient_bytes, allow_zero=True)
    validate.positive_array("link_bandwidth", link_bandwidth)
    validate.positive_array("latency_s", latency_s, allow_zero=True)
    p = _check_chips(chips)
    seconds = 2 * (p - 1) / p * np.asarray(gradient_bytes, float) / link_bandwidth \
        + 2 * (p - 1) * latency_s
    return float(seconds) if np.ndim(seconds) == 0 else seconds


def data_parallel_scaling(compute_s_one_chip, gradient_bytes, chips, link_bandwidth,
                          latency_s=0.0, *, fixed_global_batch: bool = True,
                          overlap: bool = False) -> dict:
    """Step time, speedup and scaling efficiency of data-parallel training on `chips` chips.

    compute_s_one_chip: seconds one chip needs for the forward and backward pass of the
    whole global batch. fixed_global_batch=True (the usual constraint: a batch much bigger
    than the one that trains well wastes tokens) splits that batch over the chips, so each
    chip computes for compute_s / p; False keeps each chip's batch fixed (the global batch
    grows with p). The gradient all-reduce costs `ring_allreduce_seconds` per step.
    overlap=False adds compute and all-reduce (nothing hidden); overlap=True takes the larger
    of the two (DDP's ideal: gradients of late layers are sent while early layers still
    compute their backward). The truth lies in between.

    Returns arrays (or floats): compute_s and allreduce_s per step, step_s, speedup (work
    per second relative to one chip) and efficiency = speedup / chips (1 = perfect).
    """
    validate.positive_array("compute_s_one_chip", compute_s_one_chip)
    p = _check_chips(chips)
    compute = compute_s_one_chip / p if fixed_global_batch else compute_s_one_chip * np.ones_like(p)
    allreduce = np.asarray(ring_allreduce_seconds(gradient_bytes, p, link_bandwidth, latency_s))
    step = np.maximum(compute, allreduce) if overlap else compute + allreduce
    work_per_step = 1.0 if fixed_global_batch else p  # in global batches of one chip
    speedup = work_per_step * compute_s_one_chip / step
    result = {"chips": p, "compute_s": compute, "allreduce_s": allreduce, "step_s": step,
              "speedup": speedup, "efficiency": speedup / p}
    if np.ndim(chips) == 0:
        return {key: float(value) for key, value in result.items()}
    return result


def training_compute_seconds(params: float, tokens: float, peak_flops: float,
                             utilization: float) -> float:
    """Seconds of forward+backward for `tokens` tokens on one chip: 6 N D / (peak x MFU).

    utilization is the model FLOPs utilisation (the fraction of peak FLOP/s really used).
    """
    for name, value in (("params", params), ("tokens", tokens), ("peak_flops", peak_flops)):
        validate.positive_array(name, value)
    validate.positive("utilization", utilization, upper=1)
    return flops.six_n_d(params, tokens) / (peak_flops * utilization)


def replica_scaling(replicas, tokens_per_s_one_replica: float, latency_s_one_request: float
                    ) -> dict:
    """Inference replicas as independent workers: no gradients, nothing to synchronise.

    Each replica holds a full copy of the model and serves its own requests, so throughput
    (tokens/s) is linear in replicas and the latency of one request (seconds) is unchanged:
    efficiency 1 at any scale (a load balancer in front is all the coordination there is).
    """
    r = _check_chips(replicas)
    validate.positive_array("tokens_per_s_one_replica", tokens_per_s_one_replica)
    validate.positive_array("latency_s_one_request", latency_s_one_request)
    result = {"replicas": r, "tokens_per_s": r * tokens_per_s_one_replica,
              "latency_s": latency_s_one_request * np.ones_like(r),
              "efficiency": np.ones_like(r)}
    if np.ndim(replicas) == 0:
        return {key: float(value) for key, value in result.items()}
    return result


def fit_allreduce(message_bytes, seconds, world_size: int) -> dict:
    """Fit the ring model to measured all-reduce times: latency per step and bandwidth.

    Least squares on seconds = 2(p-1) x latency + 2(p-1)/p x bytes / bandwidth.
    Returns latency_s (per ring step) and bandwidth (bytes/s one way).
    """
    x = np.asarray(message_bytes, float)
    y = np.asarray(seconds, float)
    if x.shape != y.shape or x.size < 2 or len(np.unique(x)) < 2:
        raise ValueError("message_bytes and seconds must be equally long, with at least two "
                         f"different sizes; got {x.size} sizes and {y.size} times")
    p = validate.whole("world_size", world_size, lowest=2)
    slope, intercept = np.polyfit(2 * (p - 1) / p * x, y, 1)
    if slope <= 0:
        raise ValueError("the measured times do not grow with message size: measure larger "
                         "messages (megabytes) so that bandwidth, not noise, dominates")
    return {"latency_s": max(float(intercept), 0.0) / (2 * (p - 1)), "bandwidth": 1 / slope}


# ---------------------------------------------------------------------------------------------
# 2. Starting, watching and always stopping worker processes
# ---------------------------------------------------------------------------------------------


class WorkerError(RuntimeError):
    """A worker process failed; the message names its rank and carries its traceback."""


def check_world_size(world_size: int, oversubscribe: bool = False) -> int:
    """world_size (number of worker processes), checked against the CPUs the course may use.

    oversubscribe=True allows more workers than cores (they take turns: right results,
    meaningless timings), e.g. to try 2 workers on a 1-CPU Binder.
    """
    validate.whole("world_size (the number of worker processes)", world_size)
    cpus = runtime.available_cpus()
    if world_size * THREADS_PER_WORKER > cpus and not oversubscribe:
        raise ValueError(
            f"world_size={world_size} needs {world_size * THREADS_PER_WORKER} CPU cores (one "
            f"per worker process) but this machine lets the course use {cpus} "
            f"(runtime.available_cpus()); use world_size between 1 and "
            f"{cpus // THREADS_PER_WORKER}. More processes than cores would take turns on the "
            f"same core, and the timings would measure the turn-taking (pass "
            f"oversubscribe=True to run them anyway).")
    return world_size


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        return probe.getsockname()[1]


def check_port(port: int | None) -> int:
    """`port` if it is free on 127.0.0.1; a free port if `port` is None."""
    if port is None:
        return free_port()
    validate.whole("port (or None for a free one)", port, lowest=1024, highest=65535)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((_HOST, port))
        except OSError:
            raise ValueError(f"port {port} is already in use on {_HOST}; pass port=None and "
                             f"the course picks a free port") from None
    return port


def _loopback_interface() -> str | None:
    """Name of the loopback network interface ('lo' on Linux, 'lo0' on macOS), if any."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except (AttributeError, OSError):
        return None
    return next((name for name in ("lo", "lo0") if name in names), None)


def _exit_with_parent(lifeline) -> None:
    """Exit this worker as soon as the process that launched it is gone.

    `lifeline` is the read end of a pipe whose only write end the launcher holds: reading
    it blocks until the launcher closes it or dies (a killed kernel runs no cleanup code),
    then fails with EOF. (The worker's parent process may be the fork server, which outlives
    the kernel while workers run, so watching the parent would not do.)
    """
    def watch() -> None:
        try:
            lifeline.recv()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-launcher").start()


def _worker_main(worker, rank, world_size, port, timeout_s, args, conn, lifeline) -> None:
    """Entry point of every worker process: join the group, run `worker`, report back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us
    _exit_with_parent(lifeline)
    torch.set_num_threads(THREADS_PER_WORKER)
    loopback = _loopback_interface()
    if loopback and "GLOO_SOCKET_IFNAME" not in os.environ:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback  # gloo talks over loopback, not the LAN
    try:
        try:
            dist.init_process_group("gloo", init_method=f"tcp://{_HOST}:{port}", rank=rank,
                                    world_size=world_size, timeout=timedelta(seconds=timeout_s))
            message = ("ok", worker(rank, world_size, *args))
        except BaseException as error:  # report everything, SystemExit included
            message = ("error", (time.time(), f"{type(error).__name__}: {error}\n\n--- traceback"
                                              f" of worker rank {rank} ---\n"
                                              f"{traceback.format_exc()}"))
        # Report before leaving the group: the other workers fail as soon as this one leaves,
        # and the time stamp lets the parent tell the first failure from its consequences.
        try:
            conn.send(message)
        except (BrokenPipeError, ConnectionError):
            pass  # the parent has gone: nobody to report to
        except Exception as error:  # e.g. a result that cannot be pickled
            conn.send(("error", (time.time(), f"could not send the result back: "
                                              f"{type(error).__name__}: {error}")))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        conn.close()


def _receive(conn):
    """The message waiting on `conn`, or None if there is none (or the pipe closed empty)."""
    try:
        return conn.recv() if conn.poll() else None
    except (EOFError, OSError):
        return None


def _stop(processes, graceful: bool) -> None:
    """Make sure every process has exited: wait (if graceful), then SIGTERM, then SIGKILL."""
    deadline = time.monotonic() + _STOP_GRACE_S
    if graceful:
        for proc in processes:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + _STOP_GRACE_S
    for proc in processes:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in processes:
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=_STOP_GRACE_S)


def _context():
    """The multiprocessing context workers start from: 'forkserver' where the OS has it.

    'forkserver' starts one clean helper process the first time (it imports torch and this
    module once), then forks each new worker from it in milliseconds; 'spawn' (Windows)
    starts a fresh interpreter per worker, which imports torch each time (seconds). Neither
    forks the notebook kernel itself, which is unsafe once it runs threads.
    """
    if "forkserver" in get_all_start_methods():
        context = get_context("forkserver")
        # DDP imports torch._dynamo on first use, several seconds: do it once, in the server.
        context.set_forkserver_preload([__name__, "torch._dynamo"])
        return context
    return get_context("spawn")


def launch(worker: Callable, world_size: int, args: tuple = (), *, port: int | None = None,
           timeout_s: float = DEFAULT_TIMEOUT_S, oversubscribe: bool = False) -> list:
    """Run worker(rank, world_size, *args) in `world_size` new processes; return their results.

    Each process joins a torch.distributed process group (gloo backend, on 127.0.0.1:port;
    port=None picks a free one) before `worker` runs. Results come back in rank order.
    Raises WorkerError (naming the rank, with its traceback) as soon as any worker fails,
    and TimeoutError if they have not all finished after timeout_s seconds. In every case,
    also on Ctrl-C, every worker process has exited when this function returns or raises.
    oversubscribe: see check_world_size.
    """
    world_size = check_world_size(world_size, oversubscribe)
    port = check_port(port)
    if not callable(worker):
        raise TypeError(f"worker must be a function, got {worker!r}")
    if getattr(worker, "__module__", "__main__") == "__main__" or "<locals>" in getattr(
            worker, "__qualname__", "<locals>"):
        raise ValueError("worker must be a top-level function of an importable module (such "
                         "as course_lib.distributed), not one defined in a notebook cell or "
                         "inside another function: worker processes import it by name")
    validate.positive_array("timeout_s", timeout_s)
    context = _context()
    processes, pipes = [], []
    lifeline, lifeline_end = context.Pipe(duplex=False)  # workers read, only we hold the end
    ok = False
    try:
        for rank in range(world_size):
            receiver, sender = context.Pipe(duplex=False)
            pipes.append(receiver)
            proc = context.Process(
                target=_worker_main, name=f"course-worker-{rank}", daemon=True,
                args=(worker, rank, world_size, port, timeout_s, args, sender, lifeline))
            proc.start()
            processes.append(proc)
            sender.close()  # only the worker writes; the parent then sees EOF if it dies
        results = _collect(processes, pipes, time.monotonic() + timeout_s, timeout_s)
        ok = True
        return results
    finally:
        if not ok:
            lifeline_end.close()  # every worker exits by itself at once, even if we are cut short
        _stop(processes, graceful=ok)
        for end in pipes + [lifeline, lifeline_end]:
            end.close()


def _collect(processes, pipes, deadline: float, timeout_s: float) -> list:
    """Wait for every worker's message until `deadline`; raise on failure.

    After the first failure the others get _FAILURE_GRACE_S to report too (a worker whose
    partner died fails a moment later), so the error can name the first one as the cause.
    """
    results = [None] * len(processes)
    pending = set(range(len(processes)))
    failures = []  # (time stamp, rank, description)
    while pending:
        now = time.monotonic()
        if failures and now >= deadline:
            break
        if now >= deadline:
            raise TimeoutError(
                f"the workers did not finish within timeout_s={timeout_s:g} s (ranks still "
                f"running: {sorted(pending)}); they have been stopped. Pass a larger "
                f"timeout_s for a longer run.")
        ready = connection.wait([pipes[r] for r in pending]
                                + [processes[r].sentinel for r in pending],
                                timeout=deadline - now)
        for rank in sorted(pending):
            if pipes[rank] not in ready and processes[rank].sentinel not in ready:
                continue
            message = _receive(pipes[rank])
            if message is None:
                if processes[rank].sentinel in ready:
                    processes[rank].join(timeout=_STOP_GRACE_S)
                    failures.append((time.time(), rank, _silent_exit(processes[rank].exitcode)))
                    pending.discard(rank)
                continue
            pending.discard(rank)
            status, payload = message
            if status == "ok":
                results[rank] = payload
            else:
                failures.append((payload[0], rank, payload[1]))
                deadline = min(deadline, time.monotonic() + _FAILURE_GRACE_S)
    if failures:
        raise WorkerError(_describe_failures(sorted(failures), len(processes)))
    return results


def _silent_exit(exitcode) -> str:
    return (f"exited with code {exitcode} without reporting a result. A negative code is the "
            f"signal that killed it (-9: out of memory?). Exit code 1 at start-up: when run "
            f"from a script, call this under `if __name__ == '__main__':`")


def _describe_failures(failures: list, world_size: int) -> str:
    """The first failure in full; the later ones (usually its consequences) in one line each."""
    _, rank, text = failures[0]
    lines = [f"worker rank {rank} of {world_size} failed: {text}"]
    if len(failures) > 1:
        lines.append("Then, most likely because of it:")
        lines += [f"  rank {r}: {t.splitlines()[0][:200]}" for _, r, t in failures[1:]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# 3. Measuring all-reduce, and data-parallel training of TinyGPT with DDP
# ---------------------------------------------------------------------------------------------


def _timed_allreduce(buffer: torch.Tensor) -> float:
    """Seconds for one all-reduce of `buffer`, started by every rank together (a barrier)."""
    dist.barrier()
    began = time.perf_counter()
    dist.all_reduce(buffer)
    return time.perf_counter() - began


def _allreduce_worker(rank: int, world_size: int, sizes_bytes, repeats: int) -> list:
    """Times of `repeats` all-reduces of float32 buffers of each size (runs in each worker)."""
    timings = []
    for nbytes in sizes_bytes:
        buffer = torch.ones(max(1, nbytes // 4), dtype=torch.float32)
        dist.all_reduce(buffer)  # warm-up: the first call sets up buffers and connections
        timings.append([_timed_allreduce(buffer) for _ in range(repeats)])
    return timings


SWEEP_BYTES = (2**12, 2**16, 2**20, 2**22, 2**24)  # 4 KB to 16 MB


def _check_sizes(sizes_bytes) -> list[int]:
    sizes = [int(size) for size in sizes_bytes]
    if not sizes or min(sizes) < 4:
        raise ValueError(f"sizes_bytes must be message sizes >= 4 bytes, got {sizes_bytes!r}")
    return sizes


def _summarise_sweep(per_rank: list, sizes: list[int], world_size: int) -> dict:
    slowest = np.max(np.asarray(per_rank), axis=0)  # (sizes, repeats): every rank must finish
    return {"bytes": np.asarray(sizes), "seconds": np.median(slowest, axis=1),
            "world_size": world_size}


def measure_allreduce(sizes_bytes=SWEEP_BYTES, world_size: int = 2, repeats: int = 5, *,
                      port: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                      oversubscribe: bool = False) -> dict:
    """Measured all-reduce time for messages of `sizes_bytes` bytes among world_size processes.

    Returns bytes, seconds (median over repeats of the slowest rank) and world_size: feed
    them to fit_allreduce to get this machine's latency and bandwidth.
    """
    sizes = _check_sizes(sizes_bytes)
    validate.whole("repeats", repeats)
    per_rank = launch(_allreduce_worker, world_size, (sizes, repeats), port=port,
                      timeout_s=timeout_s, oversubscribe=oversubscribe)
    return _summarise_sweep(per_rank, sizes, world_size)


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


def _forward_backward(model, x, y) -> float:
    """Seconds for one forward and backward pass (gradients accumulate in .grad)."""
    began = time.perf_counter()
    model(x, y)[1].backward()
    return time.perf_counter() - began


def _ddp_worker(rank: int, world_size: int, train_tokens: np.ndarray, model_config,
                train_config, probe_steps: int, fail_at_step: int | None,
                sweep_bytes: list[int]) -> dict:
    """Train TinyGPT with DDP on this worker's share of every global batch (runs in a worker).

    Every worker draws the same global batch (same seed) and keeps its own rows, so the
    union of the shards is exactly the batch a single process would use.
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
                                  generator)
        return x[shard], y[shard]

    losses, step_s = [], []
    for step in range(train_config.max_iters):
        if step == fail_at_step and rank == world_size - 1:
            raise RuntimeError(f"simulated failure of worker {rank} at step {step}")
        began = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = training.learning_rate_at(step, train_config)
        x, y = local_batch()
        _, loss = model(x, y)
        loss.backward()  # DDP averages the gradients of all workers during the backward
        if train_config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_s.append(time.perf_counter() - began)
        losses.append(loss.item())

    # Timing probe, after training (no optimizer steps, so the weights stay as trained).
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
    state = {name: value.detach().numpy().copy()
             for name, value in model.module.state_dict().items()}
    return {"losses": losses, "step_s": step_s, "compute_s": compute, "synced_s": synced,
            "allreduce_s": allreduce, "gradient_bytes": gradient_bytes, "state": state,
            "sweep": _allreduce_worker(rank, world_size, sweep_bytes, probe_steps)}


def train_data_parallel(world_size: int, train_config=None, model_config=None, data=None, *,
                        probe_steps: int = 5, fail_at_step: int | None = None,
                        sweep_bytes=(), port: int | None = None,
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
    communication alone, which is what ring_allreduce_seconds predicts).
    sweep_bytes: message sizes to time all-reduces of as well (probe_steps times each), as
    measure_allreduce does but without starting processes again; the result's `sweep`.
    fail_at_step: make the last worker raise at that step (to see how a failure is handled).
    oversubscribe: see check_world_size.
    """
    world_size = check_world_size(world_size, oversubscribe)
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


# ---------------------------------------------------------------------------------------------
# 4. Figures and the notebook's explorer
# ---------------------------------------------------------------------------------------------

# Per-step latency of a ring all-reduce between datacenter chips: an assumption of the right
# order, not a datasheet figure (cited as such in course_lib.references).
ASSUMED_LATENCY_S = references.value("assumption.allreduce_step_latency_s")
BYTES_PER_GRADIENT = flops.bytes_per_weight("bf16")  # as in mixed-precision training
CHIP_COUNTS = tuple(2**k for k in range(15))  # 1 to 16,384 chips


def real_model_scaling(params: float, chips, link_bandwidth: float, *,
                       latency_s: float = ASSUMED_LATENCY_S, overlap: bool = False) -> dict:
    """data_parallel_scaling for a model of `params` parameters trained on H100 SXMs.

    Assumptions, all cited or stated: global batch = GPT-3's batch in tokens, the H100 SXM's
    dense BF16 peak at Llama 3 405B's utilisation, bf16 gradients, pure data parallelism
    (every chip holds the whole model, which a big model would not fit: real runs also
    split the model, so each chip all-reduces only its share of the gradients).
    """
    compute = training_compute_seconds(params, references.value("gpt3.batch_tokens"),
                                       references.value("h100_sxm.peak_flops"),
                                       references.value("llama31_405b.mfu"))
    return data_parallel_scaling(compute, BYTES_PER_GRADIENT * params, chips, link_bandwidth,
                                 latency_s, overlap=overlap)


def draw_scaling(ax, curves: dict, mark_chips: int | None = None, title: str | None = None):
    """Scaling efficiency against chips: one line per training case, and inference replicas.

    curves: label -> the dict returned by data_parallel_scaling (arrays over chips).
    """
    from course_lib import plots

    palette = plots.colors()
    chips = None
    for i, (label, result) in enumerate(curves.items()):
        chips = result["chips"]
        ax.plot(chips, result["efficiency"], "o-", ms=3, color=palette[i % len(palette)],
                label=f"training: {label}")
    replicas = replica_scaling(chips, 1.0, 1.0)
    ax.plot(chips, replicas["efficiency"], "--", color=palette[-1], lw=2,
            label="inference replicas (any model, any link)")
    if mark_chips is not None:
        ax.axvline(mark_chips, color="grey", lw=1, ls=":")
    plots.log_axis(ax, "x", "chips (data-parallel workers or inference replicas)")
    ax.set_ylabel("scaling efficiency\n(speedup / chips)")
    ax.set_ylim(0, 1.08)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def draw_allreduce_fit(ax, measured: dict, fit: dict, gradient_bytes: int | None = None):
    """Measured all-reduce seconds against message bytes (log-log) and the fitted ring model."""
    from course_lib import plots

    palette = plots.colors()
    sizes = np.logspace(np.log10(measured["bytes"].min()), np.log10(measured["bytes"].max()))
    p = measured["world_size"]
    ax.plot(measured["bytes"], measured["seconds"], "o", color=palette[0],
            label=f"measured, {p} processes (gloo, loopback)")
    ax.plot(sizes, ring_allreduce_seconds(sizes, p, fit["bandwidth"], fit["latency_s"]),
            color=palette[1], label=f"ring model: {plots.fmt(fit['bandwidth'] / 1e9)} GB/s, "
                                    f"{plots.fmt(fit['latency_s'] * 1e6)} us per step")
    if gradient_bytes:
        ax.axvline(gradient_bytes, color="grey", ls=":", label="TinyGPT's gradients")
    plots.log_axis(ax, "x", "message size (bytes)")
    plots.log_axis(ax, "y", "all-reduce time (s)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Small messages pay latency, large ones bandwidth", fontsize=10)
    return ax


def scaling_explorer(params: float | None = None, measured_bandwidth: float | None = None):
    """Notebook 08's widget: model size, chips and link -> training vs inference scaling.

    measured_bandwidth: bytes/s one way that you measured (loopback gloo), offered as a link.
    The last expression of a cell shows it, live in JupyterLab or as a static copy.
    """
    import ipywidgets as W

    from course_lib import plots, widgets

    links = [(f"{entry.what.split(' (')[0]} ({plots.fmt(one_way_bandwidth(entry.key) / 1e9)}"
              f" GB/s)", one_way_bandwidth(entry.key))
             for entry in references.entries("interconnect.")]
    if measured_bandwidth is not None:
        validate.positive_array("measured_bandwidth", measured_bandwidth)
        links.append((f"this machine, loopback gloo (measured, "
                      f"{plots.fmt(measured_bandwidth / 1e9)} GB/s)", measured_bandwidth))

    class ScalingOutExplorer(widgets.Explorer):
        figsize = (7.0, 3.6)

        def __init__(self):
            default_link = one_way_bandwidth("interconnect.infiniband_ndr_port")
            super().__init__({
                "params": widgets.log_slider(
                    "parameters N", params or references.value("llama3_70b.params"), 5, 12),
                "chips": W.SelectionSlider(options=CHIP_COUNTS, value=1024,
                                           description="chips", continuous_update=False,
                                           **widgets.wide()),
                "link": W.Dropdown(options=links, value=default_link,
                                   description="link (one way)", **widgets.wide()),
            })

        def draw(self, axes) -> str:
            c = {name: control.value for name, control in self.controls.items()}
            plain = real_model_scaling(c["params"], np.asarray(CHIP_COUNTS), c["link"])
            ideal = real_model_scaling(c["params"], np.asarray(CHIP_COUNTS), c["link"],
                                       overlap=True)
            here = real_model_scaling(c["params"], c["chips"], c["link"])
            here_ideal = real_model_scaling(c["params"], c["chips"], c["link"], overlap=True)
            draw_scaling(axes[0], {"all-reduce after backward": plain,
                                   "all-reduce fully hidden": ideal}, mark_chips=c["chips"],
                         title=f"At {c['chips']:,} chips training keeps "
                               f"{here['efficiency']:.0%} to {here_ideal['efficiency']:.0%}; "
                               f"inference replicas 100%")
            return widgets.table_html([
                ("compute per step (per chip)", plots.fmt(here["compute_s"], "s")),
                ("gradient all-reduce per step", plots.fmt(here["allreduce_s"], "s")),
                ("training speedup over one chip",
                 f"{plots.fmt(here['speedup'])}x to {plots.fmt(here_ideal['speedup'])}x"),
                ("inference throughput over one replica",
                 f"{c['chips']:,}x, each request as fast as on one replica"),
                ("assumed", f"global batch {plots.fmt(references.value('gpt3.batch_tokens'))} "
                            f"tokens, H100 SXM at "
                            f"{references.value('llama31_405b.mfu'):.0%} utilisation, bf16 "
                            f"gradients, {ASSUMED_LATENCY_S * 1e6:g} us per ring step"),
            ])

    return ScalingOutExplorer()
