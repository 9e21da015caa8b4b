"""Scaling out: the arithmetic model (course_lib.scaleout), the process launcher
(course_lib.launcher), real data-parallel training (course_lib.data_parallel), and notebook
08's figures and explorer.

The process tests start real worker processes (torch.distributed, gloo, 127.0.0.1). Workers
that must fail, hang or wait are defined here, at module level, so worker processes can
import them; each writes its process id to a file (atomically: a pid file that exists is
complete), and /proc (Linux) then tells whether that process still runs and which sockets it
listens on (elsewhere those checks are skipped). Every wait is for a condition, with a
generous deadline only as a safety net for a loaded machine.
"""

import ipaddress
import math
import multiprocessing
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import data as data_lib
from course_lib import data_parallel, launcher, references, runtime, scaleout, training
from course_lib.explorers.scaleout import MEASURED, scaleout_explorer
from course_lib.figures.base import new_figure
from course_lib.figures.scaleout import plot_allreduce_fit, plot_scaling
from course_lib.formatting import fmt
from course_lib.model import TinyGPT
from course_lib.shapes import ModelConfig
from course_lib.training_config import TrainConfig, learning_rate_at

ROOT = Path(__file__).resolve().parent.parent
HAS_PROC = Path("/proc/self/stat").exists()
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="looks at processes and sockets in /proc")
needs_two_cpus = pytest.mark.skipif(runtime.available_cpus() < 2,
                                    reason="needs 2 CPUs for 2 worker processes")
SAFETY_NET_S = 120  # upper bound on any wait below; each returns as soon as its condition holds

# --- the scaling-out model ---------------------------------------------------------------------


def test_ring_allreduce_matches_the_formula_and_is_free_on_one_chip():
    gradient_bytes, bandwidth, latency = 4e9, 50e9, 5e-6
    assert scaleout.ring_allreduce_seconds(gradient_bytes, 1, bandwidth, latency) == 0.0
    # p = 2: each chip sends half the buffer twice (reduce-scatter, all-gather), 2 steps
    two = scaleout.ring_allreduce_seconds(gradient_bytes, 2, bandwidth, latency)
    assert two == pytest.approx(gradient_bytes / bandwidth + 2 * latency)
    # many chips: the bandwidth term tends to 2 x bytes / bandwidth, the latency term grows
    many = scaleout.ring_allreduce_seconds(gradient_bytes, 4096, bandwidth, 0.0)
    assert many == pytest.approx(2 * gradient_bytes / bandwidth, rel=1e-3)
    with_latency = scaleout.ring_allreduce_seconds(gradient_bytes, 4096, bandwidth, latency)
    assert with_latency - many == pytest.approx(2 * 4095 * latency)


def test_ring_allreduce_works_on_arrays_like_on_scalars():
    chips = np.array([1, 2, 8, 1024])
    array = scaleout.ring_allreduce_seconds(1e6, chips, 1e9, 1e-6)
    scalars = [scaleout.ring_allreduce_seconds(1e6, int(p), 1e9, 1e-6) for p in chips]
    np.testing.assert_allclose(array, scalars)


@pytest.mark.parametrize("kwargs, word", [
    (dict(chips=0), "chips"), (dict(chips=1.5), "chips"), (dict(link_bandwidth=0), "bandwidth"),
    (dict(link_bandwidth=-1e9), "bandwidth"), (dict(gradient_bytes=float("nan")), "gradient"),
    (dict(latency_s=-1), "latency"),
])
def test_ring_allreduce_rejects_bad_input(kwargs, word):
    args = dict(gradient_bytes=1e6, chips=2, link_bandwidth=1e9, latency_s=0.0) | kwargs
    with pytest.raises(ValueError, match=word):
        scaleout.ring_allreduce_seconds(**args)


def test_no_communication_means_perfect_scaling():
    chips = np.array([1, 2, 64, 4096])
    result = scaleout.data_parallel_scaling(1.0, 0.0, chips, 1e9)
    np.testing.assert_allclose(result["efficiency"], 1.0)
    np.testing.assert_allclose(result["speedup"], chips)


def test_fixed_global_batch_splits_compute_and_adds_the_allreduce():
    compute, grad_bytes, bandwidth = 2.0, 1e9, 1e10
    one = scaleout.data_parallel_scaling(compute, grad_bytes, 8, bandwidth)
    comm = scaleout.ring_allreduce_seconds(grad_bytes, 8, bandwidth)
    assert one["compute_s"] == pytest.approx(compute / 8)
    assert one["step_s"] == pytest.approx(compute / 8 + comm)
    assert one["efficiency"] == pytest.approx(compute / (8 * (compute / 8 + comm)))
    hidden = scaleout.data_parallel_scaling(compute, grad_bytes, 8, bandwidth, overlap=True)
    assert hidden["step_s"] == pytest.approx(max(compute / 8, comm))


def test_fixed_per_chip_batch_keeps_compute_per_step():
    result = scaleout.data_parallel_scaling(1.0, 1e9, 16, 1e10, fixed_global_batch=False)
    comm = scaleout.ring_allreduce_seconds(1e9, 16, 1e10)
    assert result["compute_s"] == pytest.approx(1.0)
    assert result["efficiency"] == pytest.approx(1.0 / (1.0 + comm))


@settings(max_examples=60, deadline=None)
@given(compute=st.floats(1e-4, 1e3), grad_bytes=st.floats(0, 1e12),
       bandwidth=st.floats(1e8, 1e12), latency=st.floats(0, 1e-3),
       fixed=st.booleans(), overlap=st.booleans())
def test_efficiency_is_at_most_one_and_falls_with_more_chips(compute, grad_bytes, bandwidth,
                                                             latency, fixed, overlap):
    chips = np.array([1, 2, 4, 16, 256, 4096])
    result = scaleout.data_parallel_scaling(compute, grad_bytes, chips, bandwidth, latency,
                                               fixed_global_batch=fixed, overlap=overlap)
    efficiency = result["efficiency"]
    assert efficiency[0] == pytest.approx(1.0)
    assert np.all(efficiency <= 1 + 1e-12) and np.all(efficiency > 0)
    assert np.all(np.diff(efficiency) <= 1e-12), f"efficiency rose with chips: {efficiency}"


def test_inference_replicas_scale_linearly_with_unchanged_latency():
    replicas = np.array([1, 10, 1000])
    result = scaleout.replica_scaling(replicas, 50.0, 0.2)
    np.testing.assert_allclose(result["tokens_per_s"], 50.0 * replicas)
    np.testing.assert_allclose(result["latency_s"], 0.2)
    np.testing.assert_allclose(result["efficiency"], 1.0)
    with pytest.raises(ValueError, match="replicas|chips"):
        scaleout.replica_scaling(0, 50.0, 0.2)


def test_fit_recovers_latency_and_bandwidth_of_the_ring_model():
    sizes = np.array([1e3, 1e5, 1e6, 1e7])
    for world_size in (2, 4):
        seconds = scaleout.ring_allreduce_seconds(sizes, world_size, 2e9, 30e-6)
        fit = scaleout.fit_allreduce(sizes, seconds, world_size)
        assert fit["bandwidth"] == pytest.approx(2e9, rel=1e-6)
        assert fit["latency_s"] == pytest.approx(30e-6, rel=1e-6)


def test_fit_rejects_what_it_cannot_fit():
    with pytest.raises(ValueError, match="two"):
        scaleout.fit_allreduce([1e6], [1e-3], 2)
    with pytest.raises(ValueError, match="world_size"):
        scaleout.fit_allreduce([1e3, 1e6], [1e-3, 2e-3], 1)
    with pytest.raises(ValueError, match="grow"):
        scaleout.fit_allreduce([1e3, 1e6], [2e-3, 1e-3], 2)


def test_interconnects_are_cited_and_converted_to_one_way():
    nvlink = references.get("interconnect.nvlink4_h100_sxm")
    assert scaleout.one_way_bandwidth(nvlink.key) == pytest.approx(nvlink.value / 2)
    infiniband = references.get("interconnect.infiniband_ndr_port")
    assert scaleout.one_way_bandwidth(infiniband.key) == infiniband.value
    table = scaleout.interconnects()
    assert len(table) == len(references.entries("interconnect."))
    assert all(value > 0 for value in table.values())
    with pytest.raises(ValueError, match="interconnect"):
        scaleout.one_way_bandwidth("gpt3.params")


def test_real_model_scaling_computes_6nd_of_the_batch_at_the_cited_utilisation():
    """One chip's compute per step x peak x utilisation is 6 N x GPT-3's batch tokens."""
    params = references.value("llama3_70b.params")
    one = scaleout.real_model_scaling(params, 1, 50e9)
    achieved = references.value("h100_sxm.peak_flops") * references.value("llama31_405b.mfu")
    six_n_d = 6 * params * references.value("gpt3.batch_tokens")
    assert one["compute_s"] * achieved == pytest.approx(six_n_d, rel=1e-9)
    assert one["efficiency"] == 1.0
    with pytest.raises(ValueError, match="params"):
        scaleout.real_model_scaling(0.0, 8, 50e9)


# --- bad input to the process launcher --------------------------------------------------------


def test_world_size_below_one_is_refused():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=r"world_size \(the number of worker processes\) "
                                             r"must be a whole number >= 1"):
            launcher.check_world_size(bad)


def test_more_processes_than_cpus_is_refused_with_the_limit():
    too_many = runtime.available_cpus() + 1
    with pytest.raises(ValueError, match=f"world_size={too_many}.*{too_many - 1}"):
        launcher.launch(_write_pid_and_sleep, too_many, ("unused",), timeout_s=5)
    assert launcher.check_world_size(too_many, oversubscribe=True) == too_many


def test_a_port_in_use_is_named_and_none_picks_a_free_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"port {port} is already in use"):
            launcher.launch(_write_pid_and_sleep, 1, ("unused",), port=port, timeout_s=5)
    free = launcher.check_port(None)
    assert 1 <= free <= 65535
    with pytest.raises(ValueError, match="port"):
        launcher.check_port(80)


def test_a_worker_defined_in_a_notebook_cell_is_refused():
    def local_worker(rank, world_size):
        return rank

    with pytest.raises(ValueError, match="notebook cell"):
        launcher.launch(local_worker, 1, timeout_s=5)


# --- processes: failures, timeouts, interrupts, and nothing left behind ------------------------


def _write_pid(folder, rank):
    """Write this process's id to <folder>/<rank>.pid, atomically (write, then rename)."""
    partial = Path(folder, f"{rank}.partial")
    partial.write_text(str(os.getpid()))
    partial.replace(Path(folder, f"{rank}.pid"))


def _fail_on_last_rank(rank, world_size, folder):
    """Test worker: the last rank raises, the others wait forever for it in a barrier."""
    _write_pid(folder, rank)
    if rank == world_size - 1:
        raise ValueError("boom from the test worker")
    dist.barrier()


def _write_pid_and_sleep(rank, world_size, folder, *_payload):
    """Test worker: write the pid, then sleep (an optional payload only makes the start slow)."""
    _write_pid(folder, rank)
    time.sleep(3600)


def _write_pid_and_wait(rank, world_size, folder):
    """Test worker: once every rank has joined (a barrier), write the pid and wait for the
    test to create <folder>/done."""
    dist.barrier()
    _write_pid(folder, rank)
    deadline = time.monotonic() + SAFETY_NET_S
    while not Path(folder, "done").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """True if process `pid` exists and is not a zombie (an exited process not yet reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _worker_pids(folder) -> list[int]:
    return [int(path.read_text()) for path in Path(folder).glob("*.pid")]


def _wait_for(condition, what: str, process: subprocess.Popen | None = None):
    """Poll `condition()` until it returns something true; fail after SAFETY_NET_S seconds
    or as soon as `process` (if given) has exited."""
    deadline = time.monotonic() + SAFETY_NET_S
    while not (value := condition()):
        if process is not None and process.poll() is not None:
            pytest.fail(f"the launcher exited (code {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {SAFETY_NET_S} s")
        time.sleep(0.05)
    return value


def _wait_until_gone(pids) -> list[int]:
    """The processes among `pids` still alive after waiting up to SAFETY_NET_S for them."""
    deadline = time.monotonic() + SAFETY_NET_S
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _kill(pids) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@needs_proc
@needs_two_cpus
def test_a_failing_worker_gives_a_clear_error_and_leaves_no_process(tmp_path):
    began = time.monotonic()
    with pytest.raises(launcher.WorkerError) as info:
        launcher.launch(_fail_on_last_rank, 2, (str(tmp_path),), timeout_s=60)
    message = str(info.value)
    assert "rank 1" in message and "ValueError: boom from the test worker" in message
    assert "traceback" in message
    # rank 0 was stuck in a barrier: it was stopped, not waited for until the timeout
    assert time.monotonic() - began < 50
    pids = _worker_pids(tmp_path)
    assert len(pids) == 2, "both workers should have started"
    assert not [pid for pid in pids if _alive(pid)], "worker processes were left behind"
    assert multiprocessing.active_children() == []


@needs_proc
def test_a_hanging_worker_hits_the_timeout_and_is_stopped(tmp_path):
    with pytest.raises(TimeoutError, match="timeout_s=8"):
        launcher.launch(_write_pid_and_sleep, 1, (str(tmp_path),), timeout_s=8)
    pids = _worker_pids(tmp_path)
    assert not [pid for pid in pids if _alive(pid)], "the hanging worker was left behind"
    assert multiprocessing.active_children() == []


# The launcher process of the interrupt tests. It handles Ctrl-C as Python does by default
# whatever it inherited (a shell's background job starts with SIGINT ignored).
LAUNCHER_SCRIPT = """\
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from course_lib import launcher
import test_distributed as t
launcher.launch(t._write_pid_and_sleep, 2, (sys.argv[1],), timeout_s=300)
"""


def _start_launcher(script: str, folder: Path, *, importable: tuple[Path, ...] = (),
                    **popen) -> subprocess.Popen:
    """Run `script` with `folder` as its argument; it (and its fork server, which ignores the
    launcher's sys.path before Python 3.12) can import the tests and `importable` folders."""
    path = [*importable, ROOT / "tests", ROOT]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(folder) for folder in path))
    return subprocess.Popen([sys.executable, "-c", script, str(folder)], env=env, **popen)


def _start_sleeping_launcher(tmp_path):
    """A separate Python process that launches two sleeping workers; returns it and their pids
    once both workers run."""
    parent = _start_launcher(LAUNCHER_SCRIPT, tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(list(tmp_path.glob("*.pid"))) == 2, "both workers started",
                  parent)
    except BaseException:
        parent.kill()
        parent.wait()
        raise
    return parent, _worker_pids(tmp_path)


@needs_proc
@needs_two_cpus
def test_interrupting_the_launcher_stops_every_worker(tmp_path):
    """Ctrl-C in the notebook (SIGINT to the kernel) must not leave workers running."""
    parent, pids = _start_sleeping_launcher(tmp_path)
    try:
        parent.send_signal(signal.SIGINT)
        parent.wait(timeout=SAFETY_NET_S)
        left = _wait_until_gone(pids)
    finally:
        parent.kill()
        _kill(pids)
    assert parent.returncode == -signal.SIGINT, "the launcher did not stop on Ctrl-C"
    assert not left, f"workers {left} kept running after the launcher was interrupted"


# A launcher that behaves like a notebook kernel: it survives Ctrl-C and keeps the
# interrupted traceback (IPython keeps sys.last_traceback), then waits to be killed. Its fork
# server also imports slow_preload (written by the test), which holds the first worker's
# start until the test says go, and marks every process the fork server forks; the worker's
# arguments (1 MB) are more than a pipe holds, so the launcher waits inside start().
INTERRUPTED_KERNEL_SCRIPT = """\
import signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
from course_lib import launcher
import test_distributed as t
preload = launcher._preload
launcher._preload = lambda worker: preload(worker) + ["slow_preload"]
try:
    launcher.launch(t._write_pid_and_sleep, 2, (sys.argv[1], b"x" * 2**20), timeout_s=300)
except KeyboardInterrupt:
    sys.last_traceback = sys.exc_info()[2]
    Path(sys.argv[1], "interrupted").touch()
    time.sleep(600)
"""
SLOW_PRELOAD = """\
import os, time
from pathlib import Path
folder = Path(__file__).parent
os.register_at_fork(after_in_child=lambda: Path(folder, f"forked-{os.getpid()}").touch())
Path(folder, "preloading").touch()
deadline = time.monotonic() + 300
while not Path(folder, "go").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


@needs_proc
def test_ctrl_c_while_a_worker_starts_leaves_no_worker(tmp_path):
    """Ctrl-C while the launcher is inside the start of a worker (a learner pressing Stop
    while the workers start) stops that worker too, while the kernel lives on.

    Without launcher._interrupts_held, Ctrl-C lands while multiprocessing writes the worker's
    arguments: the worker is forked later, reads part of them and waits for the rest,
    unknown to the launcher, for as long as the interrupted traceback is kept.
    """
    (tmp_path / "slow_preload.py").write_text(SLOW_PRELOAD)
    kernel = _start_launcher(INTERRUPTED_KERNEL_SCRIPT, tmp_path, importable=(tmp_path,),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    forked = []
    try:
        _wait_for((tmp_path / "preloading").exists, "the fork server's preload", kernel)
        kernel.send_signal(signal.SIGINT)  # the launcher waits inside the first start()
        (tmp_path / "go").touch()
        _wait_for((tmp_path / "interrupted").exists, "the KeyboardInterrupt", kernel)
        forked = _wait_for(lambda: [int(path.name.removeprefix("forked-"))
                                    for path in tmp_path.glob("forked-*")],
                           "the fork server forking the first worker", kernel)
        left = _wait_until_gone(forked)
    finally:
        kernel.kill()
        kernel.wait()
        _kill(forked)
    assert not left, f"worker {left} outlived the interrupted start while the kernel lives"


@needs_proc
@needs_two_cpus
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    """A killed kernel runs no cleanup code: the workers notice on their own."""
    parent, pids = _start_sleeping_launcher(tmp_path)
    try:
        parent.kill()
        parent.wait(timeout=SAFETY_NET_S)
        left = _wait_until_gone(pids)
    finally:
        _kill(pids)
    assert not left, f"workers {left} outlived their killed parent"


@pytest.mark.skipif(not callable(signal.getsignal(signal.SIGINT)),
                    reason="this process does not handle SIGINT in Python")
def test_ctrl_c_is_held_while_a_worker_starts_and_a_second_one_is_not():
    before = signal.getsignal(signal.SIGINT)
    done = []
    with pytest.raises(KeyboardInterrupt):
        with launcher._interrupts_held():
            signal.raise_signal(signal.SIGINT)
            done.append("the worker was started and recorded")
    assert done == ["the worker was started and recorded"]
    with pytest.raises(KeyboardInterrupt):
        with launcher._interrupts_held():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # pressed again: start-up may hang
            done.append("not reached")
    assert done == ["the worker was started and recorded"]
    assert signal.getsignal(signal.SIGINT) is before


# --- nothing of a run listens beyond this machine (issue 17) ----------------------------------


def _proc_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp and tcp6 print it: 32-bit words in host byte order."""
    words = [int(hex_address[i:i + 8], 16) for i in range(0, len(hex_address), 8)]
    return ipaddress.ip_address(b"".join(struct.pack("=I", word) for word in words))


def _listening(pid: int) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """(address, port) of every TCP socket process `pid` listens on (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")  # the tables of the process's own namespace
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN; field 9: the inode
                address, port = fields[1].split(":")
                found.append((_proc_address(address), int(port, 16)))
    return found


def _loopback(address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def test_proc_addresses_are_read_as_the_kernel_prints_them():
    if sys.byteorder == "little":  # as on x86 and ARM Linux
        assert _proc_address("0100007F") == ipaddress.ip_address("127.0.0.1")
        assert _proc_address("0" * 24 + "01000000") == ipaddress.ip_address("::1")
        assert _proc_address("0" * 32) == ipaddress.ip_address("::")
    assert _loopback(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not _loopback(ipaddress.ip_address("::"))
    assert not _loopback(ipaddress.ip_address("0.0.0.0"))


@needs_proc
@needs_two_cpus
def test_no_socket_of_a_running_launch_listens_beyond_loopback(tmp_path):
    """The rendezvous store (rank 0) and gloo listen on loopback only, never on every
    interface ('::' or 0.0.0.0), where other machines could connect while a run lasts."""
    errors = []

    def run() -> None:
        try:
            launcher.launch(_write_pid_and_wait, 2, (str(tmp_path),), timeout_s=SAFETY_NET_S)
        except BaseException as error:  # reported by the test below
            errors.append(error)

    thread = threading.Thread(target=run, name="launch-in-background", daemon=True)
    thread.start()
    listening = {}
    try:
        _wait_for(lambda: len(list(tmp_path.glob("*.pid"))) == 2 or not thread.is_alive(),
                  "both workers joined the group")
        listening = {pid: _listening(pid) for pid in _worker_pids(tmp_path)}
    finally:
        (tmp_path / "done").touch()
        thread.join(timeout=SAFETY_NET_S)
    assert not errors, f"the launch failed: {errors}"
    assert len(listening) == 2
    sockets = [(pid, str(address), port) for pid, found in listening.items()
               for address, port in found]
    assert sockets, "no worker listens on any socket: the check itself would see nothing"
    exposed = [(pid, address, port) for pid, found in listening.items()
               for address, port in found if not _loopback(address)]
    assert not exposed, (f"worker sockets listen beyond loopback (pid, address, port): "
                         f"{exposed}; every listening socket: {sockets}")


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
    train_config = TrainConfig(batch_size=8, max_iters=8, warmup_iters=2, learning_rate=1e-2,
                               seed=7)
    return data, model_config, train_config


def _single_process_weights(data, model_config, train_config):
    """The plain training step of course_lib.training, in this process, no torch.distributed."""
    runtime.seed_everything(train_config.seed)
    model = TinyGPT(model_config)
    optimizer = training.make_optimizer(model, train_config)
    generator = torch.Generator().manual_seed(train_config.seed)
    for step in range(train_config.max_iters):
        x, y = data_lib.get_batch(data.train, train_config.batch_size,
                                  model_config.block_size, generator, device="cpu")
        training.train_step(model, optimizer, x, y, learning_rate_at(step, train_config),
                            train_config.grad_clip)
    return {name: value.detach().numpy() for name, value in model.state_dict().items()}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[name] - b[name]))) for name in a)


@needs_two_cpus
def test_two_processes_train_the_same_weights_as_one(small_run):
    data, model_config, train_config = small_run
    one = data_parallel.train_data_parallel(1, train_config, model_config, data, probe_steps=1,
                                            timeout_s=120)
    two = data_parallel.train_data_parallel(2, train_config, model_config, data, probe_steps=2,
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
    sweep = data_parallel.measure_allreduce((64, 2**20), world_size=2, repeats=2, timeout_s=120)
    np.testing.assert_array_equal(sweep["bytes"], [64, 2**20])
    assert sweep["world_size"] == 2
    assert np.all(np.isfinite(sweep["seconds"])) and np.all(sweep["seconds"] > 0)


@pytest.mark.parametrize("kwargs, word", [(dict(sizes_bytes=()), "sizes_bytes"),
                                          (dict(sizes_bytes=(2,)), "sizes_bytes"),
                                          (dict(repeats=0), "repeats")])
def test_measure_allreduce_rejects_bad_input_before_starting_processes(kwargs, word):
    with pytest.raises(ValueError, match=word):
        data_parallel.measure_allreduce(**({"world_size": 1} | kwargs))


def test_global_batch_must_split_evenly(small_run):
    data, model_config, train_config = small_run
    odd = TrainConfig(batch_size=5, max_iters=1)
    if runtime.available_cpus() < 2:
        pytest.skip("needs 2 CPUs")
    with pytest.raises(ValueError, match="divisible by world_size=2"):
        data_parallel.train_data_parallel(2, odd, model_config, data)


@needs_two_cpus
def test_a_simulated_worker_failure_during_training_is_reported(small_run):
    data, model_config, train_config = small_run
    with pytest.raises(launcher.WorkerError, match="rank 1.*simulated failure"):
        data_parallel.train_data_parallel(2, train_config, model_config, data, fail_at_step=1,
                                          timeout_s=120)


# --- notebook 10's figures and explorer --------------------------------------------------------


def test_the_scaling_figure_titles_the_efficiencies_at_the_marked_chips():
    chips = np.asarray(scaleout.CHIP_COUNTS)
    infiniband = scaleout.one_way_bandwidth("interconnect.infiniband_ndr_port")
    params = references.value("llama3_70b.params")
    curves = {"after backward": scaleout.real_model_scaling(params, chips, infiniband),
              "hidden": scaleout.real_model_scaling(params, chips, infiniband, overlap=True)}
    _, (ax,) = new_figure()
    assert plot_scaling(ax, curves, mark_chips=1024) is ax
    low = scaleout.real_model_scaling(params, 1024, infiniband)["efficiency"]
    high = scaleout.real_model_scaling(params, 1024, infiniband, overlap=True)["efficiency"]
    assert ax.get_title() == (f"At 1,024 chips training keeps {low:.0%} to {high:.0%}; "
                              f"inference replicas 100%")
    assert len(ax.get_lines()) == 4  # two training curves, the replicas, the marked chips


def test_the_allreduce_figure_titles_where_latency_gives_way_to_bandwidth():
    sizes = np.array([4096, 2**20, 2**24])
    fit = {"latency_s": 50e-6, "bandwidth": 2e9}
    measured = {"bytes": sizes, "world_size": 2,
                "seconds": scaleout.ring_allreduce_seconds(sizes, 2, fit["bandwidth"],
                                                           fit["latency_s"])}
    _, (ax,) = new_figure()
    assert plot_allreduce_fit(ax, measured, fit, gradient_bytes=2**21) is ax
    assert ax.get_title() == ("Ring model within 1.0x of every point: latency dominates below "
                              "about 2e5 bytes")  # 2 x 50 us x 2 GB/s = 200 kB
    _, (ax,) = new_figure()
    plot_allreduce_fit(ax, measured | {"seconds": measured["seconds"] * [1, 3, 1]}, fit)
    assert ax.get_title().startswith("Ring model off by up to 3.0x; roughly, latency")
    _, (ax,) = new_figure()
    plot_allreduce_fit(ax, measured, fit | {"latency_s": 0.0})
    assert ax.get_title().endswith("every size pays bandwidth, not latency")


def test_the_fit_weighs_small_and_large_messages_alike():
    """Noise of the same relative size on every point: the relative fit misses each by about
    as much, where a plain least-squares fit would follow the largest message alone."""
    sizes = np.array([4096, 65536, 2**20, 2**24], float)
    exact = scaleout.ring_allreduce_seconds(sizes, 2, 2e9, 50e-6)
    noisy = exact * np.array([2.0, 0.5, 2.0, 0.5])
    fit = scaleout.fit_allreduce(sizes, noisy, 2)
    misses = scaleout.fit_misses(sizes, noisy, 2, fit)
    assert scaleout.worst_miss(misses) < 3.0
    assert scaleout.worst_miss([0.5, 2.0, 1.0]) == 2.0
    with pytest.raises(ValueError, match="positive"):
        scaleout.fit_allreduce(sizes, -noisy, 2)


def test_data_parallelism_alone_cannot_hold_a_70b_model_but_sharding_can():
    params = references.value("llama3_70b.params")
    whole = scaleout.training_state_bytes(params)
    assert whole == pytest.approx(16 * params)  # about 1.1 TB
    memory = references.value("h100_sxm.memory")
    assert whole > 13 * memory
    sharded = [scaleout.training_state_bytes(params, 1024, key) for key in scaleout.SHARDED]
    assert sharded[0] == whole and sharded == sorted(sharded, reverse=True)
    assert sharded[-1] == pytest.approx(whole / 1024)
    with pytest.raises(ValueError, match="sharding"):
        scaleout.training_state_bytes(params, 8, "ZeRO-4")


def test_a_larger_global_batch_scales_further():
    params = references.value("llama3_70b.params")
    infiniband = scaleout.one_way_bandwidth("interconnect.infiniband_ndr_port")
    gpt3 = scaleout.real_model_scaling(params, 1024, infiniband)
    llama = scaleout.real_model_scaling(params, 1024, infiniband,
                                        batch_tokens=references.value("llama31_405b.batch_tokens"))
    assert llama["allreduce_s"] == gpt3["allreduce_s"]
    assert llama["compute_s"] == pytest.approx(gpt3["compute_s"] * 16e6 / 3.2e6)
    assert llama["efficiency"] > 1.5 * gpt3["efficiency"]


def test_the_explorer_compares_training_with_inference_replicas(monkeypatch):
    monkeypatch.setenv("COURSE_WIDGETS", "static")
    explorer = scaleout_explorer(measured_bandwidth=1e9)
    infiniband = "interconnect.infiniband_ndr_port"
    explorer.set(params=1e9, chips=64, link=infiniband)
    expected = scaleout.real_model_scaling(1e9, 64, scaleout.one_way_bandwidth(infiniband))
    assert f"{fmt(expected['speedup'])}x" in explorer.readout.value
    assert "64x" in explorer.readout.value  # inference: 64 replicas, 64 times the throughput
    assert explorer.image.value[:4] == b"\x89PNG"
    assert explorer.axes[0].get_title().startswith("At 64 chips training keeps")
    explorer.set(link=MEASURED)  # the measured loopback link is one of the choices
    assert "Cannot compute" not in explorer.readout.value
