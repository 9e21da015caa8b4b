"""Where and how the course runs: fast mode, the cache folder, seeds, threads, device.

Notebooks read these settings through this module, never from the
environment by hand, so that one switch (COURSE_FAST=1) shrinks every long
step for tests and CI, and one variable (COURSE_CACHE_DIR) moves every
checkpoint and measurement.

Foundation layer: importing it does not load PyTorch (the cost lessons and exercise
checks never need it). torch is imported only inside the functions that seed it, set its
threads or pick its device, which are called from the torch layer and notebooks anyway.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from pathlib import Path

import numpy as np

from course_lib import validate

FAST_ENV = "COURSE_FAST"
CACHE_ENV = "COURSE_CACHE_DIR"
THREADS_ENV = "COURSE_THREADS"
DEVICE_ENV = "COURSE_DEVICE"
MAX_THREADS = 1024  # more than any machine this course meets; a typo such as 100000 is caught


def _torch():
    """PyTorch, imported on first use: a lazy import of an optional heavy dependency, so that
    the arithmetic layer, which imports this module, never loads torch."""
    import torch  # lazy on purpose (see the docstring), not to dodge an import cycle

    return torch


class CourseSetupError(RuntimeError):
    """The machine is not set up the way the course needs; the message says how to fix it."""


_FAST_ON = {"1", "true", "yes", "on"}
_FAST_OFF = {"", "0", "false", "no", "off"}


def fast_mode() -> bool:
    """True when COURSE_FAST is 1/true/yes/on: every long step runs a shrunken version.

    0/false/no/off or unset means the full run; anything else is a mistake worth naming
    (COURSE_FAST=2 silently meaning "off" would cost a learner a full run).
    """
    value = os.environ.get(FAST_ENV, "").strip().lower()
    if value not in _FAST_ON | _FAST_OFF:
        raise CourseSetupError(f"{FAST_ENV} must be 1 (fast mode) or 0 (full run), got "
                               f"{os.environ[FAST_ENV]!r}")
    return value in _FAST_ON


def pick(full, fast):
    """Return `fast` in fast mode and `full` otherwise (e.g. `pick(2000, 50)` iterations)."""
    return fast if fast_mode() else full


def cache_dir() -> Path:
    """The folder for checkpoints and measurements, created if needed and checked writable.

    Defaults to ~/.cache/training-vs-inference (or $XDG_CACHE_HOME/...); set
    COURSE_CACHE_DIR to move it. Never inside notebooks/, so that checkpoints
    do not end up in a learner's commits.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        folder = Path(override).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = Path(base) / "training-vs-inference"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise CourseSetupError(
            f"The course cache folder {folder} cannot be written ({error.strerror}). "
            f"Point the environment variable {CACHE_ENV} at a folder you can write, "
            f"for example: export {CACHE_ENV}=/tmp/course-cache"
        ) from error
    return folder


def seed_everything(seed: int = 1337) -> None:
    """Seed Python, NumPy and PyTorch so a run is reproducible on the same machine."""
    seed = validate.seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    _torch().manual_seed(seed)


@validate.checked
def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the container's CPU quota (cgroup v2 or v1), or None if unlimited."""
    v2 = root / "cpu.max"
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.exists():
            quota = int(v1.read_text())
            period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
            return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None
    return None


def available_cpus() -> int:
    """CPUs this process may really use: the smallest of affinity and cgroup quota.

    os.cpu_count() reports the host's cores; inside a 1-CPU Binder container
    that can be 16 or more, and a thread per core gets throttled by the quota.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.floor(limit)))
    return max(1, cpus)


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to `threads`, COURSE_THREADS, or the usable CPUs.

    Returns the number set.
    """
    if threads is None:
        env = os.environ.get(THREADS_ENV)
        if env:
            try:
                threads = int(env)
            except ValueError:
                raise ValueError(
                    f"{THREADS_ENV} must be a whole number from 1 to {MAX_THREADS}, got {env!r}"
                ) from None
    if threads is None:
        threads = available_cpus()
    validate.whole(f"threads ({THREADS_ENV})", threads, highest=MAX_THREADS)
    _torch().set_num_threads(threads)
    return threads


def device():
    """The torch.device to compute on: COURSE_DEVICE if set, else CUDA when present, else CPU.

    COURSE_DEVICE takes 'cpu', 'cuda' or 'cuda:N' (case and surrounding spaces ignored);
    asking for CUDA where PyTorch sees no GPU is an error, never a silent CPU run.
    """
    torch = _torch()
    raw = os.environ.get(DEVICE_ENV)
    if raw is None or not raw.strip():
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = raw.strip().lower()
    kind, _, index = name.partition(":")
    if kind not in {"cpu", "cuda"} or (index and (kind == "cpu" or not index.isdigit())):
        raise CourseSetupError(f"{DEVICE_ENV} must be 'cpu', 'cuda' or 'cuda:N' (N a GPU "
                               f"number), got {raw!r}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise CourseSetupError(f"{DEVICE_ENV}={raw.strip()} but PyTorch sees no CUDA GPU "
                                   f"here. Unset {DEVICE_ENV} or set it to cpu.")
        if index and int(index) >= torch.cuda.device_count():
            raise CourseSetupError(f"{DEVICE_ENV}={raw.strip()}: this machine has "
                                   f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    return torch.device(name)


def as_device(name: str, value):
    """`value` ('cpu', 'cuda', 'cuda:N' or a torch.device) as a torch.device; anything else
    is a ValueError or TypeError naming the parameter, not PyTorch's list of 20 device types."""
    torch = _torch()
    if isinstance(value, torch.device):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be 'cpu', 'cuda', 'cuda:N' or a torch.device, got "
                        f"{value!r:.60}")
    kind, _, index = value.strip().lower().partition(":")
    if kind not in {"cpu", "cuda"} or (index and (kind == "cpu" or not index.isdigit())):
        raise ValueError(f"{name} must be 'cpu', 'cuda' or 'cuda:N', got {value!r:.60}")
    return torch.device(value.strip().lower())


def synchronize(where) -> None:
    """Wait for a GPU's queued work before reading the clock (GPU work is asynchronous);
    nothing to wait for on a CPU. `where` is a torch.device."""
    if where.type == "cuda":
        _torch().cuda.synchronize(where)


@validate.checked
def describe_setup(settings: dict) -> str:
    """What `setup()` returned, as labelled lines a learner can read (not a raw dict)."""
    mode = ("fast mode (COURSE_FAST=1): long steps are shortened" if settings["fast_mode"]
            else "full run (the learner's default)")
    threads = settings["threads"]
    return "\n".join([
        f"mode:    {mode}",
        f"threads: {threads} PyTorch thread{'s' if threads != 1 else ''} (the CPUs this "
        "process may use)",
        f"device:  {settings['device']}",
        f"seed:    {settings['seed']} (random numbers repeat from run to run)",
        f"cache:   {settings['cache_dir']} (checkpoints and measurements)",
    ])


def setup(seed: int = 1337) -> dict:
    """Start-of-notebook call: threads, seeds, cache; returns the settings (print them with
    describe_setup)."""
    threads = configure_threads()
    seed_everything(seed)
    return {
        "fast_mode": fast_mode(),
        "threads": threads,
        "device": str(device()),
        "cache_dir": str(cache_dir()),
        "seed": seed,
    }
