"""Optional extras: the core works without them, and a missing one is a clear error naming it.

A missing package is simulated in a fresh interpreter by ``sys.modules[name] = None`` (what Python
does for a module that cannot be imported), so the installed venv stays as it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from dltoolkit._extras import EXTRAS

# torchvision stays importable: torchmetrics (core) probes for it with find_spec, which finds the installed
# one, then imports it; a blocked module there is not what a core install (no torchvision at all) lives through.
# pyarrow (the parquet extra) stays importable: scikit-learn (core) reads sys.modules["pyarrow"] and fails
# on the None that blocks a module here, which a real install without pyarrow never shows it.
ALL_EXTRAS = [m for modules in EXTRAS.values() for m in modules if m not in ("torchvision", "pyarrow")] + [
    "jupyterlab"
]


def _python(code: str, block: list[str]) -> subprocess.CompletedProcess:
    prelude = f"import sys\nfor name in {block!r}:\n    sys.modules[name] = None\n"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _cli(args: list[str], block: list[str]) -> subprocess.CompletedProcess:
    return _python(f"from dltoolkit.cli import main\nsys.exit(main({args!r}))", block)


@pytest.mark.parametrize(
    ("extra", "args", "feature"),
    [
        ("serve", ["serve", "no-such-model"], "dltoolkit serve"),
        ("export", ["export", "no-such-model", "--format", "onnx", "--out", "x.onnx"], "ONNX export"),
        ("tune", ["tune", "wine", "--samples", "1"], "A sweep"),
        ("tune", ["run", "wine", "--workers", "2"], "dltoolkit run --address/--workers"),
        ("explain", ["explain", "no-such-model"], "dltoolkit explain"),
        ("track", ["run", "wine", "--track", "true"], "Experiment tracking"),
    ],
    ids=["serve", "export", "tune", "run-workers", "explain", "track"],
)
def test_a_verb_names_its_missing_extra(extra, args, feature, tmp_path):
    result = _cli(args, list(EXTRAS[extra]))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {feature}")
    assert f"needs the {extra} extra" in result.stderr
    assert f"pip install 'dltoolkit[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_panels_name_the_notebook_extra():
    result = _python(
        """
        import dltoolkit
        try:
            dltoolkit.studio
        except ImportError as e:
            print(type(e).__name__, e)
        """,
        ["ipywidgets", "IPython", "jupyterlab"],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MissingExtraError The notebook panels")
    assert "pip install 'dltoolkit[notebook]'" in result.stdout


@pytest.fixture(scope="module")
def core_only_run(tmp_path_factory):
    """``dltoolkit run`` with every optional package blocked: the core install trains and reports."""
    out = tmp_path_factory.mktemp("core") / "wine"
    result = _cli(["run", "wine", "--set", "train.epochs=1", "--quiet", "--out", str(out)], ALL_EXTRAS)
    return out, result


def test_the_core_install_runs_without_any_extra(core_only_run):
    out, result = core_only_run
    assert result.returncode == 0, result.stderr
    assert (out / "model" / "weights.pt").is_file() and (out / "report.html").is_file()


def test_a_serving_install_needs_no_notebook_tune_or_export(core_only_run):
    out, _ = core_only_run
    block = [m for e in ("notebook", "tune", "export") for m in EXTRAS[e]] + ["jupyterlab"]
    result = _python(
        f"""
        from fastapi.testclient import TestClient
        from dltoolkit.deploy.serve import create_app
        client = TestClient(create_app({str(out / "model")!r}))
        print(client.get("/metadata").json()["task"])
        print(sorted(m for m in {block!r} if sys.modules.get(m) is not None))
        """,
        block,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["multiclass", "[]"]


def test_pyproject_extras_match_and_a_serving_install_pulls_no_jupyter():
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(EXTRAS) | {"all", "test"} == set(extras)
    assert Requirement(extras["all"][0]).extras == set(EXTRAS) - {"track"}  # MLflow: ~30 packages
    assert Requirement(extras["test"][0]).extras == {"all", "track"}
    serving = {Requirement(r).name for r in project["dependencies"] + extras["serve"]}
    assert serving.isdisjoint({"jupyterlab", "ipywidgets", "ipython", "ray", "optuna", "onnx"})
    for requirement in project["dependencies"] + [r for e in EXTRAS for r in extras[e]]:
        spec = Requirement(requirement).specifier
        assert any(s.operator == ">=" for s in spec) and any(s.operator == "<" for s in spec), requirement
