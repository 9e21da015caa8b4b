"""`make lab` starts a JupyterLab server that serves the course.

Started exactly as the README says (make lab), on a free loopback port and
without a browser (the lab_server fixture in conftest.py), then asked for /lab
and the notebook listing.
"""

import json


def test_make_lab_serves_the_course(lab_server):
    status, page = lab_server.get("/lab")
    assert status == 200 and "JupyterLab" in page
    status, body = lab_server.get("/api/contents/notebooks")
    names = {item["name"] for item in json.loads(body)["content"]}
    assert "00_start_here.ipynb" in names, f"notebooks/ listing: {sorted(names)}"


def test_the_widget_manager_is_installed_in_the_lab(lab_server):
    """Without @jupyter-widgets/jupyterlab-manager, sliders show up as plain text."""
    _, body = lab_server.get("/lab/api/extensions")
    extensions = {item["name"]: item for item in json.loads(body)}
    manager = [item for name, item in extensions.items() if "jupyterlab-manager" in name]
    assert manager, f"widget manager missing; extensions: {sorted(extensions)}"
    assert manager[0].get("enabled", True), "the widget manager is installed but disabled"
