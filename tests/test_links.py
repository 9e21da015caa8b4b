"""Every link in the README and the notebooks that points into the repo opens something.

Courses have shipped Binder badges that open nothing; this test follows
relative links, Binder `urlpath=` targets and nbviewer/GitHub blob paths.
"""

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import nbformat
import pytest

from course_lib import outline

ROOT = Path(__file__).resolve().parent.parent
# "](target)" catches plain links, images and badges (a link around an image).
LINK = re.compile(r"\]\(\s*([^)\s]+)[^)]*\)|(?:href|src)=\"([^\"]+)\"")


def documents():
    yield ROOT / "README.md", (ROOT / "README.md").read_text()
    for path in outline.every_notebook(ROOT):
        cells = nbformat.read(path, as_version=4).cells
        yield path, "\n".join(c.source for c in cells if c.cell_type == "markdown")
    readme = ROOT / "exercises" / "README.md"
    if readme.exists():
        yield readme, readme.read_text()


def links(text: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in LINK.finditer(text)]


def target_in_repo(document: Path, link: str) -> Path | None:
    """The repo file a link must open, or None for an external page or an anchor."""
    url = urlparse(link)
    if url.scheme in {"http", "https"}:
        if url.netloc.endswith("mybinder.org"):
            urlpath = parse_qs(url.query).get("urlpath", [""])[0]
            return ROOT / re.sub(r"^(lab|tree)/(tree/)?", "", unquote(urlpath))
        if url.netloc.endswith("nbviewer.org") or "/blob/" in url.path:
            return ROOT / url.path.split("/blob/", 1)[1].split("/", 1)[1]
        return None
    if url.scheme or not url.path:  # mailto:, data:, "#anchor"
        return None
    return (document.parent / unquote(url.path)).resolve()


CASES = [(doc, link) for doc, text in documents() for link in links(text)
         if target_in_repo(doc, link) is not None]


def test_readme_has_a_binder_badge_that_opens_the_first_notebook():
    readme_links = links((ROOT / "README.md").read_text())
    binder = [link for link in readme_links if "mybinder.org" in link and "urlpath" in link]
    assert binder, "README needs an 'Open in Binder' badge link"
    assert any(target_in_repo(ROOT / "README.md", link).name == "00_start_here.ipynb"
               for link in binder)


@pytest.mark.parametrize("document, link", CASES,
                         ids=[f"{d.relative_to(ROOT)}->{link}" for d, link in CASES])
def test_link_points_to_an_existing_file(document, link):
    target = target_in_repo(document, link)
    assert target.exists(), f"{document.relative_to(ROOT)} links to {link}, which does not exist"
