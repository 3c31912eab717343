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


def test_quiet_blocks_in_threads_restore_the_levels_and_filters_only_when_the_last_one_closes(monkeypatch):
    """Trials of a local sweep train side by side, each in a quiet block: the first to close must
    not let the libraries speak while the other trains, and the last must leave things as they were."""
    import logging
    import threading
    import warnings

    from dltoolkit._quiet import quiet_libraries

    monkeypatch.delenv("DLTOOLKIT_VERBOSE", raising=False)
    lightning = logging.getLogger("pytorch_lightning")
    monkeypatch.setattr(lightning, "level", logging.INFO)
    filters = list(warnings.filters)
    a_inside, b_inside, a_left = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def a() -> None:
        with quiet_libraries():
            a_inside.set()
            b_inside.wait(10)
        a_left.set()

    def b() -> None:
        a_inside.wait(10)
        with quiet_libraries():
            b_inside.set()
            a_left.wait(10)
            seen["level while b trains alone"] = lightning.level

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen["level while b trains alone"] == logging.ERROR  # a's exit left b quiet
    assert lightning.level == logging.INFO  # and b's exit restored the level from before both
    assert list(warnings.filters) == filters
