"""The widgets as a learner meets them: JupyterLab in a real browser.

Headless runs (nbval, `make course`) cannot see whether a slider appears in JupyterLab
and whether moving it redraws anything. Here the course's own JupyterLab (`make lab`,
the lab_server fixture in conftest.py) is opened in headless Chromium driven by
Playwright: notebook 05 is run from the Run menu, the lifecycle explorer's "requests per
day" slider is moved with the keyboard, and the crossover sentence and the figure must
change; notebook 00's environment check and widget demo must pass. Screenshots go to
build/screenshots/ (the test prints the paths).

The browser is the system's Chromium (Debian's `chromium` package; .ci/run installs it),
or the one $COURSE_CHROMIUM names. Playwright never downloads a browser of its own here.
Without Playwright or a browser that starts, the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from course_lib import costs

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="browser test skipped: Playwright for Python is not installed "
           "(make test installs it; by hand: pip install -e '.[test,browser]')")

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_ENV = "COURSE_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless and quiet: this machine's network is closed, and Chromium's background
# services would otherwise keep trying to reach Google. Playwright gives every launch
# a fresh, empty profile (--user-data-dir) of its own.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]
# Waits are on real conditions (a prompt, a text, an attribute); the limits only bound a
# hang. A notebook takes seconds in fast mode here, much longer on a loaded CI machine.
WAIT_MS = 120_000
RUN_ALL_MS = 600_000
VIEWPORT = {"width": 1400, "height": 1300}
KEY_PRESSES = 10  # "requests per day" steps by 10**0.05: ten presses divide traffic by ~3

ALL_CELLS_DONE = """() => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
        .map(prompt => prompt.innerText.trim());
    return prompts.length > 0 && /\\[\\d+\\]/.test(prompts[0])
        && !prompts.some(prompt => prompt.includes('*'));
}"""


def find_chromium() -> str | None:
    """$COURSE_CHROMIUM, else the first Chromium or Chrome on PATH."""
    if os.environ.get(CHROMIUM_ENV):
        return os.environ[CHROMIUM_ENV]
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


CHROMIUM = find_chromium()
# Decided at collection, so that a machine without a browser does not start JupyterLab first.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason=f"browser test skipped: no Chromium found (looked for ${CHROMIUM_ENV} and "
           f"{', '.join(CHROMIUM_NAMES)} on PATH); install it, e.g. `apt-get install chromium` "
           f"on Debian/Ubuntu, or set {CHROMIUM_ENV}=/path/to/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    sync_api.expect.set_options(timeout=WAIT_MS)  # its default, 5 s, is short for a busy CI
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                  args=CHROMIUM_FLAGS)
        except sync_api.Error as error:
            pytest.skip(f"browser test skipped: {CHROMIUM} did not start: {error.message}")
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, request) -> Iterator[sync_api.Page]:
    """A fresh page; when the test fails, a screenshot of where it stood."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(WAIT_MS)
    new_page = context.new_page()
    failed_before = request.session.testsfailed
    try:
        yield new_page
    finally:
        if request.session.testsfailed > failed_before:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / f"FAILED_{request.node.name}.png"
            new_page.screenshot(path=shot)
            print(f"\nscreenshot of the failure: {shot}")
        context.close()


def open_notebook(page: sync_api.Page, lab_server, name: str) -> None:
    """Open notebooks/<name> alone in a fresh workspace and wait until its kernel is idle."""
    # A workspace of its own, reset: no notebook left open by an earlier test.
    page.goto(lab_server.url(f"/lab/workspaces/{Path(name).stem}/tree/notebooks/{name}?reset"))
    sync_api.expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible()
    sync_api.expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle")


def run_all_cells(page: sync_api.Page) -> None:
    """Run > Run All Cells, as a learner would, and wait for every cell to finish."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(ALL_CELLS_DONE, timeout=RUN_ALL_MS)
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    stderr = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert all("[ ]" not in prompt for prompt in prompts), (
        f"run all stopped early (prompts {prompts}); error output:\n"
        + "\n".join(stderr.all_inner_texts()))


def output_of(page: sync_api.Page, code: str) -> sync_api.Locator:
    """The output area of the one code cell whose source contains `code`."""
    cell = page.locator(".jp-CodeCell", has_text=code)
    sync_api.expect(cell).to_have_count(1)
    return cell.locator(".jp-OutputArea")


def slider_handle(output: sync_api.Locator, description: str) -> sync_api.Locator:
    """The draggable handle (keyboard-focusable) of the slider labelled `description`."""
    row = output.locator(".widget-slider", has=output.page.locator(
        ".widget-label", has_text=description))
    return row.locator("[role=slider]")


def screenshot(page: sync_api.Page, top: sync_api.Locator, name: str) -> Path:
    """What the learner sees with `top` scrolled to the top of the notebook."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    top.evaluate("element => element.scrollIntoView({block: 'start'})")
    path = SCREENSHOTS / name
    page.screenshot(path=path)
    return path


def test_lifecycle_slider_moves_the_crossover(lab_server, page, capsys):
    open_notebook(page, lab_server, "05_when_inference_dominates.ipynb")
    run_all_cells(page)
    output = output_of(page, 'lifecycle_explorer("chat")')
    handle = slider_handle(output, "requests per day")
    sync_api.expect(handle).to_be_visible()  # a live widget, not its static PNG copy
    crossover = output.locator(".widget-html-content > p > b").first
    figure = output.locator("img.widget-image")
    expected = costs.describe_crossover(costs.presets()["chat"], "usd")
    sync_api.expect(crossover).to_have_text(expected)
    before = screenshot(page, output, "05_lifecycle_before.png")
    text_before, figure_before = crossover.inner_text(), figure.screenshot()

    handle.focus()
    for _ in range(KEY_PRESSES):
        # One press, one redraw in the kernel: wait for both its sentence and its figure.
        text, src = crossover.inner_text(), figure.get_attribute("src")
        handle.press("ArrowLeft")
        sync_api.expect(crossover).not_to_have_text(text)
        sync_api.expect(figure).not_to_have_attribute("src", src)

    after = screenshot(page, output, "05_lifecycle_after.png")
    assert crossover.inner_text() != text_before
    assert "Cannot compute" not in output.inner_text()
    assert figure.screenshot() != figure_before, "the figure did not redraw"
    with capsys.disabled():
        print(f"\nscreenshots: {before}, {after}")


def test_start_here_widget_check_passes(lab_server, page, capsys):
    open_notebook(page, lab_server, "00_start_here.ipynb")
    run_all_cells(page)
    row = page.locator(".jp-RenderedMarkdown tr",
                       has=page.get_by_role("cell", name="Widgets", exact=True))
    sync_api.expect(row).to_contain_text("OK")
    sync_api.expect(row).not_to_contain_text("PROBLEM")

    output = output_of(page, "envcheck.widget_demo()")
    sentence = output.locator(".widget-html-content")
    sync_api.expect(sentence).to_contain_text("The slider is at 3;")
    handle = slider_handle(output, "Move me:")
    handle.focus()
    handle.press("ArrowRight")
    sync_api.expect(sentence).to_contain_text("The slider is at 4; its square is 16.")
    # The check table at the top, the widget demo below it.
    path = screenshot(page, output_of(page, "envcheck.run_all()"), "00_widget_check.png")
    with capsys.disabled():
        print(f"\nscreenshot: {path}")
