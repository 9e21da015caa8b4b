"""course_lib.runtime: fast mode, cache folder, seeds, threads from the CPU quota."""

import random

import numpy as np
import pytest
import torch

from course_lib import runtime


@pytest.mark.parametrize("raw, expected", [("1", True), ("true", True), ("YES", True),
                                           ("0", False), ("", False), ("no", False)])
def test_fast_mode_reads_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(runtime.FAST_ENV, raw)
    assert runtime.fast_mode() is expected
    assert runtime.pick("full", "fast") == ("fast" if expected else "full")


def test_cache_dir_honours_the_override_and_is_created(monkeypatch, tmp_path):
    target = tmp_path / "nested" / "cache"
    monkeypatch.setenv(runtime.CACHE_ENV, str(target))
    assert runtime.cache_dir() == target
    assert target.is_dir()


def test_unwritable_cache_dir_names_the_folder_and_the_variable(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # A path below a regular file cannot be created, even by root.
    monkeypatch.setenv(runtime.CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(runtime.CourseSetupError) as error:
        runtime.cache_dir()
    assert str(blocker / "cache") in str(error.value)
    assert runtime.CACHE_ENV in str(error.value)


def test_default_cache_dir_is_outside_the_notebooks(monkeypatch, tmp_path):
    monkeypatch.delenv(runtime.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = runtime.cache_dir()
    assert folder.parent == tmp_path
    assert "notebooks" not in folder.parts


def test_seed_everything_makes_all_three_generators_repeat():
    runtime.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    runtime.seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(1).item())
    assert first == second


@pytest.mark.parametrize("content, expected", [("max 100000", None), ("100000 100000", 1.0),
                                               ("150000 100000", 1.5), ("400000 100000", 4.0)])
def test_cgroup_v2_quota_is_read(tmp_path, content, expected):
    (tmp_path / "cpu.max").write_text(content + "\n")
    assert runtime.cgroup_cpu_limit(tmp_path) == expected


def test_cgroup_v1_quota_is_read(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert runtime.cgroup_cpu_limit(tmp_path) == 2.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert runtime.cgroup_cpu_limit(tmp_path) is None


def test_no_cgroup_files_means_no_limit(tmp_path):
    assert runtime.cgroup_cpu_limit(tmp_path) is None


def test_a_one_cpu_quota_gives_one_thread(monkeypatch):
    """Binder: a 1-CPU quota on a many-core host must not start one thread per host core."""
    monkeypatch.setattr(runtime, "cgroup_cpu_limit", lambda: 1.0)
    monkeypatch.delenv(runtime.THREADS_ENV, raising=False)
    assert runtime.available_cpus() == 1
    before = torch.get_num_threads()
    try:
        assert runtime.configure_threads() == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_threads_variable_wins_and_bad_values_are_named(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(runtime.THREADS_ENV, "1")
        assert runtime.configure_threads() == 1
        monkeypatch.setenv(runtime.THREADS_ENV, "many")
        with pytest.raises(ValueError, match=runtime.THREADS_ENV):
            runtime.configure_threads()
        for bad in ("0", "100000"):
            monkeypatch.setenv(runtime.THREADS_ENV, bad)
            with pytest.raises(ValueError, match=rf"{runtime.THREADS_ENV}.* >= 1 and <= 1024"):
                runtime.configure_threads()
        monkeypatch.delenv(runtime.THREADS_ENV)
        with pytest.raises(ValueError, match="threads .* >= 1 and <= 1024, got 0"):
            runtime.configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_setup_reports_what_it_set(monkeypatch, tmp_path):
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(runtime.THREADS_ENV, "1")
    before = torch.get_num_threads()
    try:
        summary = runtime.setup(seed=3)
    finally:
        torch.set_num_threads(before)
    assert summary["threads"] == 1
    assert summary["cache_dir"] == str(tmp_path)
    assert summary["seed"] == 3
    assert summary["device"] in {"cpu", "cuda"}
    text = runtime.describe_setup(summary)
    assert "{" not in text, "a learner reads labelled lines, not a dict"
    assert "1 PyTorch thread " in text and str(tmp_path) in text and "seed:    3" in text
    assert text.splitlines()[0].startswith("mode:")


@pytest.mark.parametrize("raw", ["2", "maybe", "fast"])
def test_an_unreadable_fast_setting_is_an_error_not_a_full_run(monkeypatch, raw):
    monkeypatch.setenv(runtime.FAST_ENV, raw)
    with pytest.raises(runtime.CourseSetupError, match=f"{runtime.FAST_ENV} must be 1"):
        runtime.fast_mode()


@pytest.mark.parametrize("raw, expected", [("cpu", "cpu"), (" CPU ", "cpu"), ("", None)])
def test_device_setting_is_read_forgivingly(monkeypatch, raw, expected):
    monkeypatch.setenv(runtime.DEVICE_ENV, raw)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.device().type == (expected or auto)


@pytest.mark.parametrize("raw", ["gpu", "cuda:x", "cpu:0", "mps", "cuda0"])
def test_an_unknown_device_names_the_variable_and_the_choices(monkeypatch, raw):
    monkeypatch.setenv(runtime.DEVICE_ENV, raw)
    with pytest.raises(runtime.CourseSetupError, match="'cpu', 'cuda' or 'cuda:N'"):
        runtime.device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("raw", ["cuda", "CUDA", "cuda:0"])
def test_cuda_without_a_gpu_is_an_error_not_a_silent_cpu_run(monkeypatch, raw):
    monkeypatch.setenv(runtime.DEVICE_ENV, raw)
    with pytest.raises(runtime.CourseSetupError, match="sees no CUDA GPU"):
        runtime.device()
