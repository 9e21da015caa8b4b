"""Is this machine ready for the course? Plain-language checks for notebook 00."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.version import Version

from course_lib import runtime

MIN_PYTHON = (3, 10)
MIN_TORCH = "2.4"
WIDGET_MANAGER = Path("share", "jupyter", "labextensions", "@jupyter-widgets",
                      "jupyterlab-manager")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    return Check("Python", ok, f"Python {version}" if ok else
                 f"Python {version} is too old: install Python {need} or newer and run make again")


def check_torch() -> Check:
    try:
        import torch  # lazy: this check must run, and report, where torch is missing
    except ImportError:
        return Check("PyTorch", False, "PyTorch is not installed: run `make lab` from the "
                     "course folder, or `conda env create -f environment.yml`")
    version = Version(torch.__version__.split("+")[0])
    if version < Version(MIN_TORCH):
        return Check("PyTorch", False, f"PyTorch {torch.__version__} is older than {MIN_TORCH}: "
                     "upgrade it (run `make lab` again, or `pip install -U torch`)")
    where = "with a CUDA GPU" if torch.cuda.is_available() else "CPU only (all the course needs)"
    return Check("PyTorch", True, f"PyTorch {torch.__version__}, {where}")


def check_widgets(prefixes: tuple[Path, ...] | None = None) -> Check:
    """ipywidgets 8 and, in the same environment, JupyterLab's widget manager extension."""
    try:
        widgets_version = metadata.version("ipywidgets")
    except metadata.PackageNotFoundError:
        return Check("Widgets", False, "ipywidgets is not installed: sliders cannot appear. "
                     "Run `make lab` again, or `pip install 'ipywidgets>=8,<9'`")
    if Version(widgets_version).major != 8:
        return Check("Widgets", False, f"ipywidgets {widgets_version} found; the course needs "
                     "ipywidgets 8 (`pip install 'ipywidgets>=8,<9'`)")
    prefixes = prefixes or (Path(sys.prefix), Path(sys.base_prefix))
    if not any((prefix / WIDGET_MANAGER).is_dir() for prefix in prefixes):
        return Check("Widgets", False, "JupyterLab's widget manager is missing from this "
                     "environment, so sliders would show as plain text. Install it here: "
                     "`pip install 'jupyterlab_widgets>=3,<4'`, then reload the page")
    return Check("Widgets", True,
                 f"ipywidgets {widgets_version} with the JupyterLab widget manager")


def check_cache() -> Check:
    try:
        folder = runtime.cache_dir()
    except runtime.CourseSetupError as error:
        return Check("Cache folder", False, str(error))
    return Check("Cache folder", True, f"checkpoints and measurements go to {folder}")


def run_all() -> list[Check]:
    """Every check, in the order a learner would fix them."""
    return [check_python(), check_torch(), check_widgets(), check_cache()]


def report_markdown(checks: list[Check]) -> str:
    rows = ["| check | status | details |", "|---|---|---|"]
    rows += [f"| {c.name} | {'OK' if c.ok else '**PROBLEM**'} | {c.message} |" for c in checks]
    return "\n".join(rows)


def widget_demo():
    """A slider and a sentence that follows it: if the sentence changes, widgets work."""
    import ipywidgets as widgets  # lazy: the other checks must run where ipywidgets is missing

    slider = widgets.IntSlider(value=3, min=1, max=10, description="Move me:")
    answer = widgets.HTML()

    def update(change=None) -> None:
        answer.value = (f"<b>Widgets work.</b> The slider is at {slider.value}; "
                        f"its square is {slider.value ** 2}.")

    slider.observe(update, names="value")
    update()
    return widgets.VBox([slider, answer])
