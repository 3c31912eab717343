"""The Binder configuration: what it installs and runs, and the memory probe of .ci/binder_check.sh.

The full validation (a fresh venv from binder/requirements.txt, postBuild, every notebook in smoke mode under a
2 GB peak, ``jupyter-repo2docker --no-build``) is ``bash .ci/binder_check.sh``, a separate CI step because it
installs a second environment. These tests check the configuration itself and the tools that script uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).parent))
from execute_notebooks import PeakMonitor, main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def requirement_lines() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def home_env(home: Path) -> dict[str, str]:
    """This environment with a scratch HOME, and this Python first on PATH (postBuild runs ``python``)."""
    env = os.environ | {
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("IPYTHONDIR", None)
    env.pop("JUPYTER_CONFIG_DIR", None)
    return env


def test_runtime_is_the_python_of_the_project():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime == "python-3.11"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert Version("3.11") in SpecifierSet(requires)


def test_requirements_install_cpu_torch_dltoolkit_and_jupyterlab():
    lines = requirement_lines()
    assert f"--extra-index-url {CPU_INDEX}" in lines
    options = [ln for ln in lines if ln.startswith("-") and not ln.startswith("-e")]
    assert options == [f"--extra-index-url {CPU_INDEX}"], "no other pip options"
    # repo2docker runs pip from the repository root; the notebooks use every extra (track is not in all)
    assert "-e .[all,track]" in lines
    reqs = {r.name: r for r in (Requirement(ln) for ln in lines if not ln.startswith("-"))}
    assert set(reqs) == {"torch", "torchvision", "jupyterlab"}
    assert str(reqs["torch"].specifier) == "==2.13.0"
    assert str(reqs["torchvision"].specifier) == "==0.28.0", "the torchvision that pairs with torch 2.13"
    assert "torch==2.13.0 torchvision==0.28.0" in (ROOT / ".ci" / "test.sh").read_text(), "as the test venv"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_range = next(Requirement(d) for d in project if d.startswith("torch"))
    assert Version("2.13.0") in torch_range.specifier


def test_start_page_is_the_quickstart_notebook(tmp_path):
    env = home_env(tmp_path)
    run = subprocess.run(
        ["bash", str(BINDER / "postBuild")], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "dltoolkit ready" in run.stdout
    config = (tmp_path / ".jupyter" / "jupyter_server_config.py").read_text()
    url = config.split('default_url = "')[1].split('"')[0]
    assert url == "/lab/tree/notebooks/01-quickstart.ipynb"
    assert (ROOT / url.removeprefix("/lab/tree/")).is_file()


def test_post_build_makes_every_kernel_load_the_extension(tmp_path):
    env = home_env(tmp_path)
    subprocess.run(["bash", str(BINDER / "postBuild")], env=env, check=True, capture_output=True, timeout=300)
    probe = 'print(sorted(get_ipython().extension_manager.loaded), "dlt_run" in get_ipython().magics_manager.magics["line"])'
    command = [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", "-c", probe]
    run = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120
    )  # runs startup files, as a kernel does
    assert run.returncode == 0, run.stderr[-2000:]
    assert "'dltoolkit'" in run.stdout and run.stdout.strip().endswith("True")


def test_post_build_is_an_executable_bash_script():
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK)
    assert post_build.read_text().startswith("#!/usr/bin/env bash")
    assert subprocess.run(["bash", "-n", str(post_build)]).returncode == 0


def test_peak_monitor_sees_memory_of_grandchildren():
    allocate = "b = bytearray(300 * 2**20); import time; time.sleep(2)"  # 300 MB, touched by bytearray
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {allocate!r}])",
        ]
    )
    with PeakMonitor(parent.pid, interval=0.1) as monitor:
        parent.wait(60)
        time.sleep(0.2)
    assert monitor.samples > 3
    assert monitor.peak_pss >= 300 * 2**20 and monitor.peak_rss >= monitor.peak_pss * 0.9


@pytest.mark.timeout(300)
def test_executor_reports_peaks_and_fails_on_a_broken_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("DLTOOLKIT_SMOKE", "")
    monkeypatch.delenv("DLTOOLKIT_WARM_WORKERS", raising=False)
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    cell = nbformat.v4.new_code_cell
    nbformat.write(
        nbformat.v4.new_notebook(cells=[cell("import os; print(os.environ['DLTOOLKIT_SMOKE'])")]), good
    )
    nbformat.write(nbformat.v4.new_notebook(cells=[cell("1 / 0")]), bad)
    assert main([str(good), "--report", str(tmp_path / "ok.json")]) == 0
    report = json.loads((tmp_path / "ok.json").read_text())
    assert report["notebooks"][0]["error"] is None and 10 < report["peak_pss_mb"] < 2048
    assert main([str(good), "--limit-mb", "1"]) == 1  # over the limit fails too
    assert main([str(bad), "--report", str(tmp_path / "bad.json")]) == 1
    assert "ZeroDivisionError" in json.loads((tmp_path / "bad.json").read_text())["notebooks"][0]["error"]
    # the kernels' settings do not leak into this process (later tests would run with them)
    assert os.environ["DLTOOLKIT_SMOKE"] == "" and "DLTOOLKIT_WARM_WORKERS" not in os.environ
