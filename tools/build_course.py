"""Execute every course notebook headless and write a readable HTML copy to build/.

    make course          full mode, the learner's default
    make check-binder    one CPU thread, and fail if a kernel's peak memory passes 1.8 GB

Prints each notebook's wall time and the peak memory (resident set) of its
kernel process, and writes build/index.html linking every executed notebook.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course_lib import outline  # noqa: E402

BUILD = ROOT / "build"
CELL_TIMEOUT_SECONDS = 1800


def kernel_peak_bytes(client: NotebookClient) -> int | None:
    """High-water mark of the kernel's resident memory (Linux /proc), or None elsewhere."""
    pid = getattr(client.km.provisioner, "pid", None)
    status = Path(f"/proc/{pid}/status")
    if pid is None or not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def execute(path: Path) -> tuple[nbformat.NotebookNode, float, int | None]:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    peak: dict[str, int | None] = {"bytes": None}

    def record(**_) -> None:  # after every cell, while the kernel is still alive
        peak["bytes"] = kernel_peak_bytes(client)

    client.on_cell_executed = record
    start = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - start, peak["bytes"]


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
<th>run time here</th><th>kernel peak memory</th></tr>
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
    args = parser.parse_args()

    if args.fast:
        os.environ["COURSE_FAST"] = "1"
    else:
        os.environ.pop("COURSE_FAST", None)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        os.environ["COURSE_THREADS"] = str(args.threads)

    BUILD.mkdir(exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    rows, too_big = [], []
    print(f"{'notebook':<40} {'wall time':>10} {'peak memory':>12}")
    for info in outline.course_notebooks():
        notebook, seconds, peak = execute(info.path)
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
