"""Fixtures for the real-browser tests: a JupyterLab server on 127.0.0.1 and headless Debian Chromium.

Nothing here downloads a browser: the only browser used is Debian's ``/usr/bin/chromium`` (install
it with ``.ci/browser-setup``), driven by Playwright for Python through ``executable_path``.
When Chromium, Playwright or JupyterLab is missing, the tests are SKIPPED with a loud reason, and
a banner at the end of the pytest run repeats it, so a CI log never hides it. Set
``BLENDLAB_BROWSER_REQUIRED=1`` to turn that skip into a failure.

Everything is bounded in time and torn down in finalizers: the server (its whole process group,
kernels included) and the browser.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("BLENDLAB_CHROMIUM", "/usr/bin/chromium")
SETUP_HINT = "run .ci/browser-setup (apt-get install chromium chromium-driver; pip install jupyterlab playwright)"

#: Chromium flags: headless, no GPU, and no traffic of its own (updates, sync, first-run pings).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    # a hostname other than the loopback ones never resolves: a stray request fails at once
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]

TOTAL_BUDGET = 175.0  # s for a whole browser test, server start and browser launch included
SERVER_START_TIMEOUT = 45.0  # s until /api answers
BROWSER_LAUNCH_TIMEOUT = 30.0  # s
_skips: list[str] = []
_shot_lists: list[list] = []  # screenshot paths of each browser test, printed at the end


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "browser: end-to-end test in JupyterLab + headless Debian Chromium (needs .ci/browser-setup)",
    )


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """List the screenshots; repeat any browser skip as a banner at the very end of the run."""
    tr = terminalreporter
    shots = [p for lst in _shot_lists for p in lst]
    if shots:
        tr.write_line("")
        tr.write_line(f"browser test screenshots ({len(shots)}):")
        for p in shots:
            tr.write_line(f"  {p}")
    if not _skips:
        return
    tr.write_line("")
    tr.write_line("!" * 78, red=True, bold=True)
    for reason in dict.fromkeys(_skips):
        tr.write_line(reason, red=True, bold=True)
    tr.write_line("!" * 78, red=True, bold=True)


def loud_skip(what: str) -> None:
    """Skip (or fail, with BLENDLAB_BROWSER_REQUIRED=1) with a message nobody can overlook."""
    required = os.environ.get("BLENDLAB_BROWSER_REQUIRED", "") not in ("", "0")
    outcome = "FAILED (BLENDLAB_BROWSER_REQUIRED is set)" if required else "SKIPPED"
    msg = f"BROWSER TEST {outcome}: {what} — {SETUP_HINT}"
    _skips.append(msg)
    print(f"\n{'!' * 78}\n{msg}\n{'!' * 78}", file=sys.__stderr__, flush=True)
    if required:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _require_tools():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        loud_skip(f"chromium not installed ({CHROMIUM} is missing)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        loud_skip("the Python package playwright is not installed")
    try:
        import jupyterlab  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        loud_skip("the Python package jupyterlab is not installed")
    for mod in ("ipykernel", "ipywidgets", "ipycanvas"):
        try:
            __import__(mod)
        except ImportError:
            loud_skip(f"the Python package {mod} is not installed")


# -- the artifacts directory -------------------------------------------------------------------
@pytest.fixture
def artifacts(tmp_path) -> Path:
    """Where screenshots go: $BLENDLAB_BROWSER_ARTIFACTS, else a pytest tmp dir."""
    env = os.environ.get("BLENDLAB_BROWSER_ARTIFACTS")
    path = Path(env).expanduser().resolve() if env else tmp_path / "browser-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def record_shots():
    """``record_shots(paths)``: a list the test fills with screenshot paths, printed at the end."""
    return _shot_lists.append


# -- JupyterLab ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: JupyterLab user settings: no news question, every cell rendered (no virtual scrolling), no
#: autosave dialogs; written into a fresh settings dir so the user's own settings never apply.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


class LabServer:
    def __init__(self, url: str, token: str, root: Path, proc: subprocess.Popen, log: Path, deadline: float):
        self.url, self.token, self.root, self.proc, self.log = url, token, root, proc, log
        self.deadline = deadline  # time.monotonic() by which the whole test must be done

    def api(self, path: str, timeout: float = 5.0):
        req = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:  # 127.0.0.1 only
            return json.loads(r.read().decode() or "null")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


def _stop(proc: subprocess.Popen) -> None:
    """End the server and everything it started (kernels) through its process group."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def lab(tmp_path) -> LabServer:
    """A JupyterLab 4 server on 127.0.0.1 with a random token and a temporary root dir.

    The server's Jupyter config/data/runtime and Lab settings live in temporary dirs (the user's
    own never apply); news, update checks and the PyPI extension manager are off, so the server
    makes no outbound request.
    """
    _require_tools()
    deadline = time.monotonic() + TOTAL_BUDGET
    root = tmp_path / "root"
    home = tmp_path / "jupyter"
    settings = home / "lab-settings"
    for d in (root, home / "config", home / "data", home / "runtime", home / "ipython",
              home / "workspaces", settings):
        d.mkdir(parents=True, exist_ok=True)
    for name, value in LAB_SETTINGS.items():
        f = settings / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))

    port, token = _free_port(), secrets.token_hex(24)
    env = dict(os.environ)
    env.update(
        BLENDLAB_MODELS="tiny",
        BLENDLAB_OFFLINE="1",
        BLENDLAB_HOME=str(tmp_path / "blendlab_home"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        JUPYTER_PLATFORM_DIRS="0",
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ]
    log = tmp_path / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, proc, log, deadline)
    try:
        answer_by = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode} before answering:\n"
                            f"{server.log_tail()}", pytrace=False)
            try:
                if "version" in server.api("/api", timeout=2):
                    server.api("/api/kernelspecs", timeout=5)
                    break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > answer_by:
                pytest.fail(f"JupyterLab did not answer on {server.url}/api within "
                            f"{SERVER_START_TIMEOUT:.0f} s:\n{server.log_tail()}", pytrace=False)
            time.sleep(0.3)
        yield server
    finally:
        _stop(proc)
        print(f"\nJupyterLab log: {log}", file=sys.stderr)


# -- Chromium -----------------------------------------------------------------------------------
class Browser:
    """A Playwright page in headless Debian Chromium, with a log of every request that left 127.0.0.1."""

    def __init__(self, context, page):
        self.context, self.page = context, page
        self.foreign_requests: list[str] = []
        self.console: list[str] = []


def _is_local(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome", "chrome-extension", "devtools"):
        return True
    return parts.hostname in ("127.0.0.1", "localhost", "::1")


@pytest.fixture
def browser(tmp_path, lab) -> Browser:
    """Headless /usr/bin/chromium with a fresh --user-data-dir, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    pw = sync_playwright().start()
    context = None
    try:
        try:
            context = pw.chromium.launch_persistent_context(
                str(profile),  # = --user-data-dir, fresh for this test
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_FLAGS,
                chromium_sandbox=False,
                viewport={"width": 1280, "height": 1400},
                device_scale_factor=1,
                timeout=1000 * BROWSER_LAUNCH_TIMEOUT,
                env={**os.environ, "HOME": str(tmp_path)},
            )
        except Exception as exc:  # noqa: BLE001 - a broken install: say so loudly
            loud_skip(f"chromium at {CHROMIUM} could not be started ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0] if str(exc) else ''})")
        context.set_default_timeout(30_000)
        page = context.pages[0] if context.pages else context.new_page()
        b = Browser(context, page)

        def on_request(request):
            if not _is_local(request.url):
                b.foreign_requests.append(request.url)

        context.on("request", on_request)
        page.on("console", lambda m: b.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: b.console.append(f"pageerror: {e}"))
        yield b
    finally:
        if context is not None:
            try:
                context.close()
            except Exception:  # noqa: BLE001 - already gone
                pass
        pw.stop()
        shutil.rmtree(profile, ignore_errors=True)
