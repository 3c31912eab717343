"""``dltoolkit run`` and ``export`` print dltoolkit's own lines only; ``--verbose`` shows the libraries'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DLTOOLKIT = str(Path(sys.executable).with_name("dltoolkit"))
CHATTER = (
    "GPU available",
    "TPU available",
    "Tip:",
    "litlogger",
    "deprecated",
    "Warning",
    "`Trainer.fit` stopped",
    "torchvision is not installed",
    "Token authentication",
    "Started a local Ray",
    "Configuration for experiment",
)


def _cli(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "DLTOOLKIT_VERBOSE")}
    result = subprocess.run([DLTOOLKIT, *args], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quiet") / "wine"
    return out, _cli("run", "wine", "--set", "train.epochs=2", "--quiet", "--out", str(out))


def test_run_quiet_prints_only_dltoolkit_lines(quiet_run):
    _, text = quiet_run
    assert [c for c in CHATTER if c in text] == []
    assert "accuracy" in text and "wrote" in text


def test_export_prints_only_dltoolkit_lines(quiet_run, tmp_path):
    out, _ = quiet_run
    text = _cli("export", str(out / "model"), "--format", "onnx", "--out", str(tmp_path / "wine.onnx"))
    assert [c for c in CHATTER if c in text] == []
    assert text.startswith("wrote ") and len(text.strip().splitlines()) == 1


def test_verbose_shows_the_libraries_output(tmp_path):
    text = _cli(
        "run", "wine", "--set", "train.epochs=1", "--quiet", "--verbose", "--out", str(tmp_path / "w")
    )
    assert "GPU available" in text and "accuracy" in text
