"""course_lib.distributed: the scaling-out model, and real data-parallel training in processes.

The process tests start real worker processes (torch.distributed, gloo, 127.0.0.1). Workers
that must fail or hang are defined here, at module level, so worker processes can import
them; each writes its process id to a file, and /proc (Linux) then tells whether that process
still runs (elsewhere those checks are skipped).
"""

import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import data as data_lib
from course_lib import distributed, references, runtime, training
from course_lib.model import ModelConfig, TinyGPT

ROOT = Path(__file__).resolve().parent.parent
HAS_PROC = Path("/proc/self/stat").exists()
needs_two_cpus = pytest.mark.skipif(runtime.available_cpus() < 2,
                                    reason="needs 2 CPUs for 2 worker processes")

# --- the scaling-out model ---------------------------------------------------------------------


def test_ring_allreduce_matches_the_formula_and_is_free_on_one_chip():
    gradient_bytes, bandwidth, latency = 4e9, 50e9, 5e-6
    assert distributed.ring_allreduce_seconds(gradient_bytes, 1, bandwidth, latency) == 0.0
    # p = 2: each chip sends half the buffer twice (reduce-scatter, all-gather), 2 steps
    two = distributed.ring_allreduce_seconds(gradient_bytes, 2, bandwidth, latency)
    assert two == pytest.approx(gradient_bytes / bandwidth + 2 * latency)
    # many chips: the bandwidth term tends to 2 x bytes / bandwidth, the latency term grows
    many = distributed.ring_allreduce_seconds(gradient_bytes, 4096, bandwidth, 0.0)
    assert many == pytest.approx(2 * gradient_bytes / bandwidth, rel=1e-3)
    with_latency = distributed.ring_allreduce_seconds(gradient_bytes, 4096, bandwidth, latency)
    assert with_latency - many == pytest.approx(2 * 4095 * latency)


def test_ring_allreduce_works_on_arrays_like_on_scalars():
    chips = np.array([1, 2, 8, 1024])
    array = distributed.ring_allreduce_seconds(1e6, chips, 1e9, 1e-6)
    scalars = [distributed.ring_allreduce_seconds(1e6, int(p), 1e9, 1e-6) for p in chips]
    np.testing.assert_allclose(array, scalars)


@pytest.mark.parametrize("kwargs, word", [
    (dict(chips=0), "chips"), (dict(chips=1.5), "chips"), (dict(link_bandwidth=0), "bandwidth"),
    (dict(link_bandwidth=-1e9), "bandwidth"), (dict(gradient_bytes=float("nan")), "gradient"),
    (dict(latency_s=-1), "latency"),
])
def test_ring_allreduce_rejects_bad_input(kwargs, word):
    args = dict(gradient_bytes=1e6, chips=2, link_bandwidth=1e9, latency_s=0.0) | kwargs
    with pytest.raises(ValueError, match=word):
        distributed.ring_allreduce_seconds(**args)


def test_no_communication_means_perfect_scaling():
    chips = np.array([1, 2, 64, 4096])
    result = distributed.data_parallel_scaling(1.0, 0.0, chips, 1e9)
    np.testing.assert_allclose(result["efficiency"], 1.0)
    np.testing.assert_allclose(result["speedup"], chips)


def test_fixed_global_batch_splits_compute_and_adds_the_allreduce():
    compute, grad_bytes, bandwidth = 2.0, 1e9, 1e10
    one = distributed.data_parallel_scaling(compute, grad_bytes, 8, bandwidth)
    comm = distributed.ring_allreduce_seconds(grad_bytes, 8, bandwidth)
    assert one["compute_s"] == pytest.approx(compute / 8)
    assert one["step_s"] == pytest.approx(compute / 8 + comm)
    assert one["efficiency"] == pytest.approx(compute / (8 * (compute / 8 + comm)))
    hidden = distributed.data_parallel_scaling(compute, grad_bytes, 8, bandwidth, overlap=True)
    assert hidden["step_s"] == pytest.approx(max(compute / 8, comm))


def test_fixed_per_chip_batch_keeps_compute_per_step():
    result = distributed.data_parallel_scaling(1.0, 1e9, 16, 1e10, fixed_global_batch=False)
    comm = distributed.ring_allreduce_seconds(1e9, 16, 1e10)
    assert result["compute_s"] == pytest.approx(1.0)
    assert result["efficiency"] == pytest.approx(1.0 / (1.0 + comm))


@settings(max_examples=60, deadline=None)
@given(compute=st.floats(1e-4, 1e3), grad_bytes=st.floats(0, 1e12),
       bandwidth=st.floats(1e8, 1e12), latency=st.floats(0, 1e-3),
       fixed=st.booleans(), overlap=st.booleans())
def test_efficiency_is_at_most_one_and_falls_with_more_chips(compute, grad_bytes, bandwidth,
                                                             latency, fixed, overlap):
    chips = np.array([1, 2, 4, 16, 256, 4096])
    result = distributed.data_parallel_scaling(compute, grad_bytes, chips, bandwidth, latency,
                                               fixed_global_batch=fixed, overlap=overlap)
    efficiency = result["efficiency"]
    assert efficiency[0] == pytest.approx(1.0)
    assert np.all(efficiency <= 1 + 1e-12) and np.all(efficiency > 0)
    assert np.all(np.diff(efficiency) <= 1e-12), f"efficiency rose with chips: {efficiency}"


def test_inference_replicas_scale_linearly_with_unchanged_latency():
    replicas = np.array([1, 10, 1000])
    result = distributed.replica_scaling(replicas, 50.0, 0.2)
    np.testing.assert_allclose(result["tokens_per_s"], 50.0 * replicas)
    np.testing.assert_allclose(result["latency_s"], 0.2)
    np.testing.assert_allclose(result["efficiency"], 1.0)
    with pytest.raises(ValueError, match="replicas|chips"):
        distributed.replica_scaling(0, 50.0, 0.2)


def test_fit_recovers_latency_and_bandwidth_of_the_ring_model():
    sizes = np.array([1e3, 1e5, 1e6, 1e7])
    for world_size in (2, 4):
        seconds = distributed.ring_allreduce_seconds(sizes, world_size, 2e9, 30e-6)
        fit = distributed.fit_allreduce(sizes, seconds, world_size)
        assert fit["bandwidth"] == pytest.approx(2e9, rel=1e-6)
        assert fit["latency_s"] == pytest.approx(30e-6, rel=1e-6)


def test_fit_rejects_what_it_cannot_fit():
    with pytest.raises(ValueError, match="two"):
        distributed.fit_allreduce([1e6], [1e-3], 2)
    with pytest.raises(ValueError, match="world_size"):
        distributed.fit_allreduce([1e3, 1e6], [1e-3, 2e-3], 1)
    with pytest.raises(ValueError, match="grow"):
        distributed.fit_allreduce([1e3, 1e6], [2e-3, 1e-3], 2)


def test_interconnects_are_cited_and_converted_to_one_way():
    nvlink = references.get("interconnect.nvlink4_h100_sxm")
    assert distributed.one_way_bandwidth(nvlink.key) == pytest.approx(nvlink.value / 2)
    infiniband = references.get("interconnect.infiniband_ndr_port")
    assert distributed.one_way_bandwidth(infiniband.key) == infiniband.value
    table = distributed.interconnects()
    assert len(table) == len(references.entries("interconnect."))
    assert all(value > 0 for value in table.values())
    with pytest.raises(ValueError, match="interconnect"):
        distributed.one_way_bandwidth("gpt3.params")


def test_training_compute_seconds_reproduces_gpt3_compute():
    """At 100% utilisation, seconds x peak FLOP/s is the cited 6ND compute of GPT-3."""
    peak = references.value("h100_sxm.peak_flops")
    seconds = distributed.training_compute_seconds(
        references.value("gpt3.params"), references.value("gpt3.training_tokens"), peak, 1.0)
    assert seconds * peak == pytest.approx(references.value("gpt3.training_flops"), rel=0.01)
    with pytest.raises(ValueError, match="utilization"):
        distributed.training_compute_seconds(1e9, 1e9, peak, 0.0)


# --- bad input to the process launcher --------------------------------------------------------


def test_world_size_below_one_is_refused():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=r"world_size \(the number of worker processes\) "
                                             r"must be a whole number >= 1"):
            distributed.check_world_size(bad)


def test_more_processes_than_cpus_is_refused_with_the_limit():
    too_many = runtime.available_cpus() + 1
    with pytest.raises(ValueError, match=f"world_size={too_many}.*{too_many - 1}"):
        distributed.launch(_write_pid_and_sleep, too_many, ("unused",), timeout_s=5)
    assert distributed.check_world_size(too_many, oversubscribe=True) == too_many


def test_a_port_in_use_is_named_and_none_picks_a_free_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"port {port} is already in use"):
            distributed.launch(_write_pid_and_sleep, 1, ("unused",), port=port, timeout_s=5)
    free = distributed.check_port(None)
    assert 1 <= free <= 65535
    with pytest.raises(ValueError, match="port"):
        distributed.check_port(80)


def test_a_worker_defined_in_a_notebook_cell_is_refused():
    def local_worker(rank, world_size):
        return rank

    with pytest.raises(ValueError, match="notebook cell"):
        distributed.launch(local_worker, 1, timeout_s=5)


# --- processes: failures, timeouts, interrupts, and nothing left behind ------------------------


def _write_pid(folder, rank):
    Path(folder, f"{rank}.pid").write_text(str(os.getpid()))


def _fail_on_last_rank(rank, world_size, folder):
    """Test worker: the last rank raises, the others wait forever for it in a barrier."""
    _write_pid(folder, rank)
    if rank == world_size - 1:
        raise ValueError("boom from the test worker")
    dist.barrier()


def _write_pid_and_sleep(rank, world_size, folder):
    _write_pid(folder, rank)
    time.sleep(3600)


def _alive(pid: int) -> bool:
    """True if process `pid` exists and is not a zombie (an exited process not yet reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _worker_pids(folder) -> list[int]:
    return [int(path.read_text()) for path in Path(folder).glob("*.pid")]


@pytest.mark.skipif(not HAS_PROC, reason="looks for leftover processes in /proc")
@needs_two_cpus
def test_a_failing_worker_gives_a_clear_error_and_leaves_no_process(tmp_path):
    began = time.monotonic()
    with pytest.raises(distributed.WorkerError) as info:
        distributed.launch(_fail_on_last_rank, 2, (str(tmp_path),), timeout_s=60)
    message = str(info.value)
    assert "rank 1" in message and "ValueError: boom from the test worker" in message
    assert "traceback" in message
    # rank 0 was stuck in a barrier: it was stopped, not waited for until the timeout
    assert time.monotonic() - began < 50
    pids = _worker_pids(tmp_path)
    assert len(pids) == 2, "both workers should have started"
    assert not [pid for pid in pids if _alive(pid)], "worker processes were left behind"
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(not HAS_PROC, reason="looks for leftover processes in /proc")
def test_a_hanging_worker_hits_the_timeout_and_is_stopped(tmp_path):
    with pytest.raises(TimeoutError, match="timeout_s=8"):
        distributed.launch(_write_pid_and_sleep, 1, (str(tmp_path),), timeout_s=8)
    pids = _worker_pids(tmp_path)
    assert not [pid for pid in pids if _alive(pid)], "the hanging worker was left behind"
    assert multiprocessing.active_children() == []


def _start_sleeping_launcher(tmp_path):
    """A separate Python process that launches two sleeping workers; returns it and their pids."""
    script = ("import sys\nfrom course_lib import distributed\nimport test_distributed as t\n"
              "distributed.launch(t._write_pid_and_sleep, 2, (sys.argv[1],), timeout_s=300)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while len(list(tmp_path.glob("*.pid"))) < 2:
        if time.monotonic() > deadline or parent.poll() is not None:
            parent.kill()
            parent.wait(10)
            pytest.fail("the launcher did not start its two workers within 90 s")
        time.sleep(0.2)
    time.sleep(0.5)  # let the pid files be fully written
    return parent, _worker_pids(tmp_path)


def _wait_until_gone(pids, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    return [pid for pid in pids if _alive(pid)]


@pytest.mark.skipif(not HAS_PROC, reason="looks for leftover processes in /proc")
@needs_two_cpus
def test_interrupting_the_launcher_stops_every_worker(tmp_path):
    """Ctrl-C in the notebook (SIGINT to the kernel) must not leave workers running."""
    parent, pids = _start_sleeping_launcher(tmp_path)
    try:
        parent.send_signal(signal.SIGINT)
        parent.wait(timeout=30)
        left = _wait_until_gone(pids, 10)
    finally:
        parent.kill()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} kept running after the launcher was interrupted"


@pytest.mark.skipif(not HAS_PROC, reason="looks for leftover processes in /proc")
@needs_two_cpus
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    """A killed kernel runs no cleanup code: the workers notice on their own."""
    parent, pids = _start_sleeping_launcher(tmp_path)
    try:
        parent.kill()
        parent.wait(timeout=30)
        left = _wait_until_gone(pids, 10)
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived their killed parent"


# --- data-parallel training gives the weights of single-process training -----------------------

# Tolerance for "the same weights": float32 sums in another order (two half-batch means
# averaged instead of one full-batch mean) differ in the last bits, and AdamW divides each
# update by the root of its squared gradients, which magnifies that for tiny gradients.
# 1e-4 is far below what the training changes (checked below: > 1e-2).
WEIGHT_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def small_run():
    """A small model and corpus (this repo's model.py), 8 steps with a global batch of 8."""
    text = (ROOT / "course_lib" / "model.py").read_text()
    data = data_lib.prepare(data_lib.Corpus("model.py", text, "test"), block_size=32)
    model_config = ModelConfig(vocab_size=data.tokenizer.vocab_size, n_layer=2, n_head=2,
                               n_embd=32, block_size=32)
    train_config = training.TrainConfig(batch_size=8, max_iters=8, warmup_iters=2,
                                        learning_rate=1e-2, seed=7)
    return data, model_config, train_config


def _single_process_weights(data, model_config, train_config):
    """The plain training step of course_lib.training, in this process, no torch.distributed."""
    runtime.seed_everything(train_config.seed)
    model = TinyGPT(model_config)
    optimizer = training.make_optimizer(model, train_config)
    generator = torch.Generator().manual_seed(train_config.seed)
    for step in range(train_config.max_iters):
        for group in optimizer.param_groups:
            group["lr"] = training.learning_rate_at(step, train_config)
        x, y = data_lib.get_batch(data.train, train_config.batch_size,
                                  model_config.block_size, generator)
        model(x, y)[1].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {name: value.detach().numpy() for name, value in model.state_dict().items()}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[name] - b[name]))) for name in a)


@needs_two_cpus
def test_two_processes_train_the_same_weights_as_one(small_run):
    data, model_config, train_config = small_run
    one = distributed.train_data_parallel(1, train_config, model_config, data, probe_steps=1,
                                          timeout_s=120)
    two = distributed.train_data_parallel(2, train_config, model_config, data, probe_steps=2,
                                          sweep_bytes=(4096, 2**20), timeout_s=120)
    reference = _single_process_weights(data, model_config, train_config)
    runtime.seed_everything(train_config.seed)
    initial = {k: v.detach().numpy() for k, v in TinyGPT(model_config).state_dict().items()}
    assert _max_difference(initial, reference) > 1e-2, "training barely moved the weights"
    assert two.replica_max_diff == 0.0, "the two workers ended with different weights"
    for name, run in (("1 process", one), ("2 processes", two)):
        difference = _max_difference(run.state, reference)
        assert difference < WEIGHT_TOLERANCE, \
            f"{name}: weights differ from single-process training by {difference:.2e}"
    np.testing.assert_allclose(two.losses, one.losses, rtol=1e-4)
    assert len(two.step_s) == train_config.max_iters and all(t > 0 for t in two.step_s)
    params = sum(v.size for k, v in two.state.items() if k != "lm_head.weight")
    assert two.gradient_bytes == 4 * params, "gradients are float32, one per parameter"
    assert two.allreduce_s > 0 and two.compute_s > 0 and math.isfinite(two.synced_s)
    assert one.sweep is None
    np.testing.assert_array_equal(two.sweep["bytes"], [4096, 2**20])
    assert two.sweep["world_size"] == 2 and np.all(two.sweep["seconds"] > 0)


@needs_two_cpus
def test_measure_allreduce_times_every_size():
    sweep = distributed.measure_allreduce((64, 2**20), world_size=2, repeats=2, timeout_s=120)
    np.testing.assert_array_equal(sweep["bytes"], [64, 2**20])
    assert sweep["world_size"] == 2
    assert np.all(np.isfinite(sweep["seconds"])) and np.all(sweep["seconds"] > 0)


@pytest.mark.parametrize("kwargs, word", [(dict(sizes_bytes=()), "sizes_bytes"),
                                          (dict(sizes_bytes=(2,)), "sizes_bytes"),
                                          (dict(repeats=0), "repeats")])
def test_measure_allreduce_rejects_bad_input_before_starting_processes(kwargs, word):
    with pytest.raises(ValueError, match=word):
        distributed.measure_allreduce(**({"world_size": 1} | kwargs))


def test_global_batch_must_split_evenly(small_run):
    data, model_config, train_config = small_run
    odd = training.TrainConfig(batch_size=5, max_iters=1)
    if runtime.available_cpus() < 2:
        pytest.skip("needs 2 CPUs")
    with pytest.raises(ValueError, match="divisible by world_size=2"):
        distributed.train_data_parallel(2, odd, model_config, data)


@needs_two_cpus
def test_a_simulated_worker_failure_during_training_is_reported(small_run):
    data, model_config, train_config = small_run
    with pytest.raises(distributed.WorkerError, match="rank 1.*simulated failure"):
        distributed.train_data_parallel(2, train_config, model_config, data, fail_at_step=1,
                                        timeout_s=120)


def test_the_explorer_compares_training_with_inference_replicas(monkeypatch):
    monkeypatch.setenv("COURSE_WIDGETS", "static")
    explorer = distributed.scaling_explorer(measured_bandwidth=1e9)
    infiniband = distributed.one_way_bandwidth("interconnect.infiniband_ndr_port")
    explorer.set(params=1e9, chips=64, link=infiniband)
    expected = distributed.real_model_scaling(1e9, 64, infiniband)
    assert f"{expected['speedup']:.3g}x" in explorer.readout.value
    assert "64x" in explorer.readout.value  # inference: 64 replicas, 64 times the throughput
    assert explorer.image.value[:4] == b"\x89PNG"
    explorer.set(link=1e9)  # the measured loopback link is one of the choices
    assert "Cannot compute" not in explorer.readout.value
