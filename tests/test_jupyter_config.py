"""The Jupyter a student and an instructor get (dynamo_lab/jupyter/, the Makefile's ``lab`` and
``instructor`` targets).

* ``make lab`` hides nbgrader's instructor tools (Formgrader, Create Assignment, Course List):
  a real server started as ``make lab`` starts it serves no Formgrader and tells both
  JupyterLab and Notebook 7 to leave those plugins out; ``make instructor`` keeps them.
* On a focused slider the arrow keys move the slider, in Notebook 7 too: the notebook's
  arrow-key shortcuts no longer fire while a slider's handle has the focus. Checked in a real
  browser (headless Chromium through Playwright) when both are installed, else skipped.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

#: nbgrader's instructor tools, which a student's Jupyter must not show (front end and server).
INSTRUCTOR_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader",
                                "nbgrader.server_extensions.course_list")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "dynamo_lab" / "jupyter"
TOKEN = "dynamo-lab-test"


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_students_folder_hides_exactly_the_instructor_tools():
    page = _json(CONFIG / "student" / "labconfig" / "page_config.json")
    server = _json(CONFIG / "student" / "jupyter_server_config.json")
    assert page["disabledExtensions"] == {p: True for p in INSTRUCTOR_PLUGINS}
    assert server["ServerApp"]["jpserver_extensions"] == {m: False for m in INSTRUCTOR_SERVER_EXTENSIONS}


def test_the_arrow_key_overrides_replace_the_notebooks_own_bindings():
    """Each binding switched off is one the installed notebook extension defines (an upgrade
    that changes them fails here), and each comes back with the slider's handle excluded."""
    tracker = Path(sys.prefix) / "share/jupyter/lab/schemas/@jupyterlab/notebook-extension/tracker.json"
    defaults = {(b["command"], tuple(b["keys"]), b["selector"])
                for b in _json(tracker)["jupyter.lab.shortcuts"]}
    shortcuts = _json(CONFIG / "course" / "labconfig" / "default_setting_overrides.json")[
        "@jupyterlab/shortcuts-extension:shortcuts"]["shortcuts"]
    off = [s for s in shortcuts if s.get("disabled")]
    on = [s for s in shortcuts if not s.get("disabled")]
    assert {tuple(s["keys"]) for s in off} == {("ArrowDown",), ("ArrowUp",), ("ArrowLeft",), ("ArrowRight",)}
    for s in off:
        assert (s["command"], tuple(s["keys"]), s["selector"]) in defaults
    assert sorted((s["command"], s["keys"], s["selector"] + ":not(.noUi-handle)") for s in off) == \
        sorted((s["command"], s["keys"], s["selector"]) for s in on)


def _make_config_path(target: str) -> tuple[str, str]:
    """(JUPYTER_CONFIG_PATH, working folder) of the jupyter command ``make -n TARGET`` prints."""
    out = subprocess.run(["make", "-n", "-s", target], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    line = next(ln for ln in out.splitlines() if "jupyter lab" in ln)
    words = shlex.split(line)
    cwd = ROOT / words[words.index("cd") + 1] if "cd" in words else ROOT
    value = next(w.split("=", 1)[1] for w in words if w.startswith("JUPYTER_CONFIG_PATH="))
    return value, str(cwd)


def test_make_lab_and_make_instructor_use_the_folders():
    student, cwd = _make_config_path("lab")
    assert student.split(os.pathsep) == [str(CONFIG / "student"), str(CONFIG / "course")]
    assert cwd == str(ROOT)
    instructor, cwd = _make_config_path("instructor")
    assert instructor.split(os.pathsep) == [str(CONFIG / "course")]
    assert cwd == str(ROOT / "grader")          # where the Formgrader finds nbgrader_config.py


class Server:
    """``jupyter lab`` as the Makefile starts it, on a free port, with its own HOME."""

    def __init__(self, tmp: Path, config_path: str, cwd: str, root_dir: Path):
        self.root_dir = root_dir
        home = tmp / "home"
        runtime = home / "runtime"
        settings = home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        self.env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "cfg"),
                    "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(runtime),
                    "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
                    "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws"), "IPYTHONDIR": str(home / "ipy"),
                    "JUPYTER_CONFIG_PATH": config_path,
                    "DYNAMO_LAB_COURSE_DIR": str(tmp / "course")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--port=0",
             f"--IdentityProvider.token={TOKEN}", "--ServerApp.ip=127.0.0.1", "--allow-root",
             f"--ServerApp.root_dir={root_dir}"],
            cwd=cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            found = list(runtime.glob(f"jpserver-{self.proc.pid}.json")) if runtime.exists() else []
            if found:
                self.url = _json(found[0])["url"].rstrip("/")
                if self.status("/api/status") == 200:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}")
            time.sleep(0.3)
        self.close()
        raise RuntimeError("jupyter lab did not start within 90 s")

    def get(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        with urllib.request.urlopen(f"{self.url}{path}{sep}token={TOKEN}", timeout=30) as r:
            return r.read().decode("utf-8")

    def status(self, path: str) -> int:
        try:
            self.get(path)
            return 200
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def page_config(self, path: str) -> dict:
        html = self.get(path)
        start = html.index('<script id="jupyter-config-data" type="application/json">')
        body = html[html.index(">", start) + 1:html.index("</script>", start)]
        return json.loads(body)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _notebook(folder: Path) -> None:
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import ipywidgets as W\nW.IntSlider(value=5, description='v')"),
        nbformat.v4.new_code_cell("print('the next cell')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / "slider.ipynb"))


@pytest.fixture(scope="module")
def student_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("student")
    _notebook(tmp / "root")
    config_path, cwd = _make_config_path("lab")
    server = Server(tmp, config_path, cwd, tmp / "root")
    yield server
    server.close()


@pytest.mark.slow
def test_make_lab_serves_no_instructor_tools_to_jupyterlab_or_notebook_7(student_server):
    assert student_server.status("/formgrader") == 404
    for page in ("/lab", "/notebooks/slider.ipynb"):
        disabled = student_server.page_config(page)["disabledExtensions"]
        assert set(INSTRUCTOR_PLUGINS) <= set(disabled), page
        assert not {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment"} & set(disabled)
    settings = json.loads(student_server.get("/lab/api/settings/@jupyterlab/shortcuts-extension:shortcuts"))
    default = settings["schema"]["properties"]["shortcuts"]["default"]
    assert {"command": "notebook:move-cursor-heading-below-or-expand", "keys": ["ArrowRight"],
            "selector": ".jp-Notebook.jp-mod-commandMode:not(.jp-mod-readWrite) :focus:not(.noUi-handle)"} in default


@pytest.mark.slow
def test_make_instructor_keeps_the_formgrader(tmp_path):
    config_path, cwd = _make_config_path("instructor")
    server = Server(tmp_path, config_path, cwd, tmp_path)    # its course folder is in tmp_path
    try:
        assert server.status("/formgrader") == 200
        assert not set(INSTRUCTOR_PLUGINS) & set(server.page_config("/lab")["disabledExtensions"])
    finally:
        server.close()


# -- in a real browser ---------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("needs Playwright: .venv/bin/pip install playwright (and Chromium)")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Chromium: apt-get install -y chromium")
    return sync_playwright


def _slider_after_arrows(page, url: str) -> str:
    page.goto(url)
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-Notebook-cell", timeout=60_000)
    page.wait_for_timeout(2000)
    page.get_by_text("Run", exact=True).first.click()
    page.get_by_text("Run All Cells", exact=True).first.click()
    page.wait_for_selector(".widget-slider .noUi-handle", timeout=60_000)
    page.wait_for_timeout(1000)
    page.locator(".widget-slider .noUi-handle").first.click()
    for key in ("ArrowRight", "ArrowRight", "ArrowLeft"):
        page.keyboard.press(key)
        page.wait_for_timeout(200)
    return page.locator(".widget-readout").first.inner_text()


@pytest.mark.slow
@pytest.mark.parametrize("app", ["notebooks", "lab/tree"], ids=["notebook7", "jupyterlab"])
def test_arrow_keys_move_a_focused_slider(student_server, app):
    sync_playwright = _browser()
    import shutil
    name = f"copy-{app.replace('/', '-')}.ipynb"      # autosave writes the notebook back
    shutil.copy(student_server.root_dir / "slider.ipynb", student_server.root_dir / name)
    url = f"{student_server.url}/{app}/{name}?token={TOKEN}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            assert _slider_after_arrows(page, url) == "6"        # 5, right, right, left
            # Away from a slider the arrow keys still move between cells.
            page.locator(".jp-Cell .jp-InputArea-editor").first.click()
            page.keyboard.press("Escape")
            active = ("() => Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'))"
                      ".findIndex(c => c.classList.contains('jp-mod-active'))")
            assert page.evaluate(active) == 0
            page.keyboard.press("ArrowDown")
            page.wait_for_timeout(300)
            assert page.evaluate(active) == 1
        finally:
            browser.close()
