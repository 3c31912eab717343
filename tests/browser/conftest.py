"""A real JupyterLab on loopback and headless Chromium (Debian's package) driven by Playwright.

The session fixture copies the test notebook into a temporary root, starts ``jupyter lab`` on a
free port with a random token, waits (bounded) until it answers, and kills it by PID after.
Screenshots go to ``$DLTOOLKIT_ARTIFACTS`` or ``test-artifacts/screenshots/``; the folder is
printed in the terminal summary.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).parent
NOTEBOOK = "studio_test.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def artifacts_dir() -> Path:
    return Path(os.environ.get("DLTOOLKIT_ARTIFACTS") or Path.cwd() / "test-artifacts" / "screenshots")


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives a real JupyterLab in headless Chromium")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    folder = artifacts_dir()
    shots = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if shots:
        terminalreporter.write_sep("-", "browser screenshots")
        terminalreporter.write_line(f"{len(shots)} screenshot(s) in {folder.resolve()}")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _shutdown_kernels(base: str, token: str) -> None:
    import json

    try:
        with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as r:
            kernels = json.loads(r.read())
        for kernel in kernels:
            request = urllib.request.Request(
                f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE"
            )
            urllib.request.urlopen(request, timeout=60).close()
    except OSError:
        pass  # the server is gone already; killing its session below ends what is left


@pytest.fixture(scope="session")
def jupyter(tmp_path_factory):
    """(base url, token, root folder) of a JupyterLab serving a copy of the test notebook."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium")
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(HERE / NOTEBOOK, root / NOTEBOOK)
    extensions = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, timeout=120
    )
    assert "@jupyter-widgets/jupyterlab-manager" in extensions.stdout + extensions.stderr, (
        "ipywidgets' JupyterLab renderer (jupyterlab_widgets) is not installed"
    )
    token, port = secrets.token_hex(16), _free_port()
    env = os.environ | {
        "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"),
        "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
        "MPLBACKEND": "Agg",
    }
    log = root / "jupyter.log"
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--IdentityProvider.token={token}",
        "--port", str(port), "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI containers run as root
        command.append("--allow-root")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/api/status?token={token}", proc, log)
        yield base, token, root
    finally:
        _shutdown_kernels(base, token)  # a clean exit lets a kernel's Ray shut itself down
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and the kernels it started
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def page(browser, jupyter):
    base, token, _root = jupyter
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    news = page.locator(".jp-Notification-Toast-Close, .Toastify__close-button")
    try:  # JupyterLab asks once about news; close it so it does not cover the screenshots
        news.first.click(timeout=5_000)
    except Exception:  # noqa: BLE001 - no toast this time
        pass
    yield page
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and page is not None:
        folder = artifacts_dir()
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"failed-{item.name}.png"), full_page=True)
