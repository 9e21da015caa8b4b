"""Starting, watching and always stopping the worker processes of a torch.distributed run.

Torch layer. `launch(worker, world_size, args)` runs worker(rank, world_size, *args) in
world_size new processes that have joined one torch.distributed process group (gloo
backend, every socket on 127.0.0.1), and returns their results in rank order.
course_lib.data_parallel runs its all-reduce and DDP workers with it.

Process management (why `launch` looks the way it does):
- Workers never start by forking the notebook kernel (unsafe once it runs threads). Where the
  OS offers it (Linux, macOS) they fork from multiprocessing's 'forkserver', a clean helper
  process started on first use that has imported torch once; elsewhere each worker is a
  fresh 'spawn'ed interpreter. Either way a worker imports its function by name, so workers
  are plain functions of a module (a function typed into a notebook cell cannot be
  imported by another process). The fork server and multiprocessing's resource tracker are
  helpers, not workers: they stay while the kernel runs and exit with it.
- Nothing listens beyond this machine: rank 0 serves the rendezvous store on 127.0.0.1 only
  (torch's tcp:// rendezvous would listen on every interface; see `_rendezvous_store` for
  Windows), and gloo uses the loopback interface.
- Every wait has a deadline. A worker that fails sends its traceback through a pipe; the
  parent then stops all the others at once (a worker stuck in an all-reduce with a dead
  partner would otherwise wait for gloo's timeout) and raises WorkerError naming the rank.
- Workers are always stopped: in a `finally`, so also when you interrupt the cell. Ctrl-C
  while a worker starts is held until that worker is known (see `_interrupts_held`). A
  worker also exits by itself if the process that launched it disappears (a killed kernel),
  and ignores Ctrl-C so that only the launcher decides.
- One thread per worker: two processes with one thread each fill a 2-core machine.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from multiprocessing import connection, get_all_start_methods, get_context
from multiprocessing.context import BaseContext

import torch
import torch.distributed as dist

from course_lib import runtime, validate

THREADS_PER_WORKER = 1
DEFAULT_TIMEOUT_S = 120.0
_STOP_GRACE_S = 5.0  # how long a worker gets to exit after SIGTERM before SIGKILL
_FAILURE_GRACE_S = 2.0  # after a failure, how long the other workers get to report theirs
_HOST = "127.0.0.1"


class WorkerError(RuntimeError):
    """A worker process failed; the message names its rank and carries its traceback."""


@validate.checked
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


# --- inside a worker process --------------------------------------------------------------


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


def _rendezvous_store(rank: int, world_size: int, port: int,
                      timeout: timedelta) -> dist.TCPStore:
    """The key-value store where the workers meet: rank 0 serves it on 127.0.0.1:port only.

    torch's own tcp:// rendezvous makes rank 0 listen on every interface (IPv6 '::', dual
    stack) with no authentication, so that other machines could connect while a run lasts.
    Here rank 0 binds the listening socket itself, to loopback, and hands it to the store.
    master_listen_fd takes a POSIX file descriptor; on Windows (not tested) the store still
    binds the port itself.
    """
    if rank == 0 and os.name == "posix":
        listener = socket.create_server((_HOST, port))
        return dist.TCPStore(_HOST, port, world_size, is_master=True, timeout=timeout,
                             master_listen_fd=listener.detach())  # the store now owns it
    return dist.TCPStore(_HOST, port, world_size, is_master=rank == 0, timeout=timeout)


def _join_group(rank: int, world_size: int, port: int, timeout_s: float) -> None:
    """Join the gloo process group through the loopback store; gloo talks over loopback."""
    loopback = _loopback_interface()
    if loopback and "GLOO_SOCKET_IFNAME" not in os.environ:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback  # gloo talks over loopback, not the LAN
    timeout = timedelta(seconds=timeout_s)
    dist.init_process_group("gloo", store=_rendezvous_store(rank, world_size, port, timeout),
                            rank=rank, world_size=world_size, timeout=timeout)


def _run(worker: Callable, rank: int, world_size: int, port: int, timeout_s: float,
         args: tuple) -> tuple:
    """("ok", result) of worker(rank, world_size, *args) run in the group, or
    ("error", (time stamp, description with the traceback)) if anything failed."""
    try:
        _join_group(rank, world_size, port, timeout_s)
        return ("ok", worker(rank, world_size, *args))
    except BaseException as error:  # report everything, SystemExit included
        return ("error", (time.time(), f"{type(error).__name__}: {error}\n\n--- traceback of "
                                       f"worker rank {rank} ---\n{traceback.format_exc()}"))


def _report(conn, message: tuple) -> None:
    """Send `message` to the launcher (before leaving the group: the other workers fail as
    soon as this one leaves, and the time stamp lets the parent tell the first failure from
    its consequences)."""
    try:
        conn.send(message)
    except (BrokenPipeError, ConnectionError):
        pass  # the parent has gone: nobody to report to
    except Exception as error:  # e.g. a result that cannot be pickled
        conn.send(("error", (time.time(), f"could not send the result back: "
                                          f"{type(error).__name__}: {error}")))


def _worker_main(worker, rank, world_size, port, timeout_s, args, conn, lifeline) -> None:
    """Entry point of every worker process: join the group, run `worker`, report back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us
    _exit_with_parent(lifeline)
    torch.set_num_threads(THREADS_PER_WORKER)
    try:
        _report(conn, _run(worker, rank, world_size, port, timeout_s, args))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        conn.close()


# --- in the launching process -------------------------------------------------------------


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


def _preload(worker: Callable) -> list[str]:
    """Modules the fork server imports once, so that workers forked from it need not: this
    one, the worker's, and torch._dynamo, which DDP imports on first use (seconds)."""
    return list(dict.fromkeys([__name__, worker.__module__, "torch._dynamo"]))


def _context(worker: Callable) -> BaseContext:
    """The multiprocessing context workers start from: 'forkserver' where the OS has it.

    'forkserver' starts one clean helper process the first time (it imports torch and the
    `_preload` modules once), then forks each new worker from it in milliseconds; 'spawn'
    (Windows) starts a fresh interpreter per worker, which imports torch each time
    (seconds). Neither forks the notebook kernel itself, which is unsafe once it runs threads.
    """
    if "forkserver" in get_all_start_methods():
        context = get_context("forkserver")
        context.set_forkserver_preload(_preload(worker))
        return context
    return get_context("spawn")


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) while a worker starts; deliver it as soon as the worker is known.

    multiprocessing's Process.start() is not safe to interrupt: Ctrl-C while it writes the
    worker's arguments to the new process leaves that process waiting for the rest of them,
    unknown to the launcher, for as long as the interrupted traceback lives (in a notebook,
    until the kernel restarts). So a first Ctrl-C is noted and raised again once start()
    has returned, when launch's `finally` can stop the worker; a second one interrupts at
    once, in case start-up hangs. Signals reach only the main thread: elsewhere, or where
    Python does not handle SIGINT, nothing is held.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    held = []

    def hold(signum, frame) -> None:
        if held:
            previous(signum, frame)
        held.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        signal.raise_signal(signal.SIGINT)


def _check_worker(worker: Callable) -> None:
    """Refuse a worker that other processes cannot import by name."""
    if not callable(worker):
        raise TypeError(f"worker must be a function, got {worker!r}")
    if getattr(worker, "__module__", "__main__") == "__main__" or "<locals>" in getattr(
            worker, "__qualname__", "<locals>"):
        raise ValueError("worker must be a top-level function of an importable module (such "
                         "as course_lib.data_parallel), not one defined in a notebook cell or "
                         "inside another function: worker processes import it by name")


def launch(worker: Callable, world_size: int, args: tuple = (), *, port: int | None = None,
           timeout_s: float = DEFAULT_TIMEOUT_S, oversubscribe: bool = False) -> list:
    """Run worker(rank, world_size, *args) in `world_size` new processes; return their results.

    Each process joins a torch.distributed process group (gloo backend, rendezvous on
    127.0.0.1:port; port=None picks a free one) before `worker` runs. Results come back in
    rank order. Raises WorkerError (naming the rank, with its traceback) as soon as any
    worker fails, and TimeoutError if they have not all finished after timeout_s seconds.
    In every case, also on Ctrl-C, every worker process has exited when this function
    returns or raises. oversubscribe: see check_world_size.
    """
    world_size = check_world_size(world_size, oversubscribe)
    port = check_port(port)
    _check_worker(worker)
    validate.positive_array("timeout_s", timeout_s)
    context = _context(worker)
    processes, pipes = [], []
    lifeline, lifeline_end = context.Pipe(duplex=False)  # workers read, only we hold the end
    ok = False
    try:
        for rank in range(world_size):
            with _interrupts_held():
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
