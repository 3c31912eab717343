"""No lost results: a non-empty --out is refused, default folders are unique, files follow the
umask, and an interrupted run says so, removes its partial output and exits 130 / 143."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dltoolkit._files import OutputExistsError, new_out_dir
from dltoolkit.api import default_out, run
from dltoolkit.cli import main
from dltoolkit.spec import Spec

DLTOOLKIT = str(Path(sys.executable).with_name("dltoolkit"))
SPEC = {
    "name": "tiny",
    "task": {"kind": "binary", "target": "label"},
    "data": {"source": "frame", "split": {"test": 0.25, "val": 0.2}},
    "graph": {"nodes": [{"name": "hidden", "op": "linear", "units": 4}]},
    "train": {"epochs": 1},
}


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    a = rng.normal(size=60)
    return pd.DataFrame({"a": a, "b": rng.normal(size=60), "label": np.where(a > 0, "yes", "no")})


def test_run_refuses_a_non_empty_out_unless_overwrite(tmp_path, frame):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("earlier results")
    with pytest.raises(OutputExistsError, match=r"not empty: received \['keep.txt'\].*--overwrite"):
        run(SPEC, frame, out=out, plots=False)
    assert (out / "keep.txt").read_text() == "earlier results"
    result = run(SPEC, frame, out=out, plots=False, overwrite=True)
    assert not (out / "keep.txt").exists() and (result.out / "model" / "weights.pt").is_file()


def test_cli_run_refuses_a_non_empty_out(tmp_path, capsys):
    (tmp_path / "old.csv").write_text("x\n1\n")
    assert main(["run", "seed-linear", "--out", str(tmp_path), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", "seed-linear", "--out", str(tmp_path), "--quiet", "--overwrite"]) == 0
    assert not (tmp_path / "old.csv").exists() and (tmp_path / "metrics.json").is_file()


def test_sweep_into_an_earlier_sweep_points_to_resume(tmp_path):
    from dltoolkit.tune import sweep

    (tmp_path / "tune").mkdir()
    (tmp_path / "spec.yaml").write_text("name: old\n")
    with pytest.raises(OutputExistsError, match=r"earlier sweep.*--resume.*resume\(.*overwrite=True"):
        sweep("digits-mlp", samples=1, out=tmp_path)
    assert (tmp_path / "spec.yaml").read_text() == "name: old\n"


def test_cli_tune_into_an_earlier_sweep_points_to_resume(tmp_path, capsys):
    (tmp_path / "tune").mkdir()
    (tmp_path / "spec.yaml").write_text("name: old\n")
    assert main(["tune", "digits-mlp", "--samples", "1", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"dltoolkit tune --resume {tmp_path}" in err and "--overwrite" in err


def test_a_refused_sweep_leaves_no_default_folder(tmp_path, monkeypatch):
    from dltoolkit.errors import DLToolkitError
    from dltoolkit.tune import sweep

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DLToolkitError, match="no search space"):
        sweep("seed-linear", samples=2)
    assert list(tmp_path.glob("runs/*")) == []


def test_default_out_is_unique_within_one_second(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = Spec.from_dict(SPEC)
    folders = [default_out(spec) for _ in range(20)] + [new_out_dir("tiny", tmp_path / "runs")]
    assert len(set(folders)) == len(folders)
    assert all(f.is_dir() and f.name.startswith("tiny-") for f in folders)
    assert len({default_out(spec, "sweep") for _ in range(5)}) == 5


def test_written_files_follow_the_umask(tmp_path, frame):
    old = os.umask(0o022)
    try:
        result = run(SPEC, frame, out=tmp_path / "run")
    finally:
        os.umask(old)
    paths = [p for p in result.out.rglob("*")]
    assert {"report.html", "weights.pt", "metrics.json", "spec.yaml", "roc.png"} <= {p.name for p in paths}
    modes = {p.relative_to(result.out).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in paths}
    wrong = {p: oct(m) for p, m in modes.items() if m != (0o755 if (result.out / p).is_dir() else 0o644)}
    assert not wrong


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_interrupted_run_says_so_and_leaves_nothing(tmp_path, sig, code, name):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    args = [DLTOOLKIT, "run", "wine", "--out", str(out), "--quiet", "--set", "train.epochs=100000"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while not (out / ".work" / "checkpoints").is_dir():  # training has finished an epoch
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stderr.read() if proc.poll() else ""
            )
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert f"interrupted by {name}" in err and "Traceback" not in err
    assert "Detected KeyboardInterrupt" not in err
    assert not out.exists()
