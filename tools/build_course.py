"""Execute every course notebook headless and write a readable HTML copy to build/.

    make course          full mode, the learner's default
    make check-binder    one CPU thread, and fail if a kernel's peak memory passes 1.8 GB

Prints each notebook's wall time and the peak memory (resident set) of its
kernel process together with any processes the kernel starts (notebook 10's
training workers count: Binder's 2 GB limit is for all of them), and writes
build/index.html linking every executed notebook. Name notebooks to run only
those (the index then lists only those).

Fast mode and threads reach the kernels through an environment built for them
(kernel_env); this script never changes its caller's os.environ, so the tests can
call main() in-process.
"""

from __future__ import annotations

import argparse
import html
import mmap
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course_lib import outline, runtime  # noqa: E402

BUILD = ROOT / "build"
CELL_TIMEOUT_SECONDS = 1800


PAGE_BYTES = mmap.PAGESIZE
SAMPLE_SECONDS = 0.2


def tree_rss_bytes(pid: int) -> int | None:
    """Resident memory of a process and all its descendants (Linux /proc), or None elsewhere."""
    if not Path(f"/proc/{pid}/statm").exists():
        return None
    children = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # the name field may hold spaces or brackets: the parent id follows the last ')'
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        children[parent].append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * PAGE_BYTES
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(children.get(current, []))
    return total


def kernel_high_water_bytes(pid: int) -> int | None:
    """The kernel's own peak resident memory (VmHWM), which catches spikes between samples."""
    status = Path(f"/proc/{pid}/status")
    try:
        lines = status.read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith("VmHWM:")),
                None)


class PeakMemory:
    """Samples the kernel's process tree in a background thread while a notebook runs."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _observe(self, value: int | None) -> None:
        if value is not None:
            self.peak = value if self.peak is None else max(self.peak, value)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            if self.pid is not None:
                self._observe(tree_rss_bytes(self.pid))

    def start(self) -> None:
        self._thread.start()

    def after_cell(self, client: NotebookClient) -> None:
        """Called after every cell, while the kernel is still alive."""
        self.pid = getattr(client.km.provisioner, "pid", None)
        if self.pid is not None:
            self._observe(kernel_high_water_bytes(self.pid))

    def stop(self) -> int | None:
        self._stop.set()
        self._thread.join()
        return self.peak


def kernel_config(sockets: str) -> Config:
    """Talk to the kernel over Unix sockets in `sockets` where the system has them: over
    TCP, ipykernel warns at every start that the traffic is unencrypted."""
    if os.name != "posix":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})


def kernel_env(fast: bool, threads: int | None,
               base: Mapping[str, str] = os.environ) -> dict[str, str]:
    """A copy of `base` for the kernels: COURSE_FAST=1 or 0, and COURSE_THREADS when given.

    Full mode is written out as 0 rather than left unset, so that a COURSE_FAST=1 in the
    caller's environment cannot turn `make course` into a fast run.
    """
    env = dict(base)
    env[runtime.FAST_ENV] = "1" if fast else "0"
    if threads is not None:
        env[runtime.THREADS_ENV] = str(threads)
    return env


def execute(path: Path, env: Mapping[str, str]) -> tuple[nbformat.NotebookNode, float, int | None]:
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="course-kernel-") as sockets:
        return run_notebook(notebook, path, kernel_config(sockets), env)


def run_notebook(notebook: nbformat.NotebookNode, path: Path, config: Config,
                 env: Mapping[str, str]) -> tuple[nbformat.NotebookNode, float, int | None]:
    """Execute `notebook` in a fresh kernel started with exactly the environment `env`."""
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}, config=config)
    memory = PeakMemory()
    client.on_cell_executed = lambda **_: memory.after_cell(client)
    # The kernel's pid is known once it starts: read it as soon as the first cell begins.
    client.on_cell_start = lambda **_: setattr(
        memory, "pid", getattr(client.km.provisioner, "pid", None))
    memory.start()
    start = time.perf_counter()
    try:
        client.execute(env=dict(env))
    finally:
        peak = memory.stop()
    return notebook, time.perf_counter() - start, peak


def write_index(rows: list[tuple[outline.NotebookInfo, str, float, int | None]]) -> Path:
    items = "\n".join(
        f'<tr><td><a href="{html.escape(page)}">{html.escape(info.title)}</a></td>'
        f"<td>{info.minutes or '?'} min</td><td>{html.escape(info.summary)}</td>"
        f"<td>{seconds:.0f} s</td><td>{'n/a' if peak is None else f'{peak / 1e9:.2f} GB'}</td></tr>"
        for info, page, seconds, peak in rows)
    total = sum(info.minutes or 0 for info, *_ in rows)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Training vs Inference: the two demands of AI compute</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.3rem .6rem;text-align:left;vertical-align:top}}
tr:nth-child(even){{background:#f3f3f3}}</style>
</head><body>
<h1>Training vs Inference: the two demands of AI compute</h1>
<p>An executed copy of the course, readable without running it. About {total} minutes of study.
Run it yourself with <code>make lab</code> (see the README).</p>
<table><tr><th>notebook</th><th>study time</th><th>what you do</th>
<th>run time here</th><th>peak memory (kernel and its processes)</th></tr>
{items}
</table></body></html>
"""
    index = BUILD / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="CPU threads for each kernel")
    parser.add_argument("--max-memory-gb", type=float,
                        help="fail if a kernel's peak memory exceeds this many GB")
    parser.add_argument("--fast", action="store_true", help="fast mode (as the tests run)")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="run only these notebooks (default: the whole course)")
    args = parser.parse_args()
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    env = kernel_env(args.fast, args.threads)

    BUILD.mkdir(exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    rows, too_big = [], []
    print(f"{'notebook':<40} {'wall time':>10} {'peak memory':>12}  (kernel and its processes)")
    chosen = {path.resolve() for path in args.notebooks}
    missing = [str(path) for path in args.notebooks if not path.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    for info in outline.course_notebooks():
        if chosen and info.path.resolve() not in chosen:
            continue
        notebook, seconds, peak = execute(info.path, env)
        body, _ = exporter.from_notebook_node(notebook)
        page = info.path.with_suffix(".html").name
        (BUILD / page).write_text(body, encoding="utf-8")
        rows.append((info, page, seconds, peak))
        shown = "n/a" if peak is None else f"{peak / 1e9:.2f} GB"
        print(f"{info.path.name:<40} {seconds:>9.1f}s {shown:>12}", flush=True)
        if args.max_memory_gb and peak is not None and peak > args.max_memory_gb * 1e9:
            too_big.append(info.path.name)
    total = sum(seconds for *_, seconds, _ in rows)
    print(f"{'total':<40} {total:>9.1f}s")
    print(f"HTML copy of the course: {write_index(rows)}")
    if too_big:
        print(f"Peak memory above {args.max_memory_gb} GB: {', '.join(too_big)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
