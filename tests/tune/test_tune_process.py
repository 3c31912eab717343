"""Whole-process behaviour: the CLI end to end, stopping from another thread, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
from _cli import sigint_cli_tune

import dltoolkit.bundle
from dltoolkit.cli import main
from dltoolkit.tune import resume
from dltoolkit.tune.trainable import TRACE_ENV


def test_cli_tune_end_to_end(ray_session, make_spec, tmp_path, capsys):
    spec_path = make_spec().save(tmp_path / "tiny.yaml")
    out = tmp_path / "sweep"
    code = main(
        [
            "tune",
            str(spec_path),
            "--samples",
            "2",
            "--scheduler",
            "asha",
            "--search",
            "optuna",
            "--max-concurrent",
            "2",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "pre-flight: " in printed and "trial" in printed and "best: trial" in printed
    assert printed.count("\n") > 6  # the live lines, then the table
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 and set(trials["status"]) == {"TERMINATED"}
    model = dltoolkit.bundle.load(out / "best")
    assert len(model.predict(model.example_input(2))) == 2
    saved = (out / "spec.yaml").read_text()
    assert "graph.nodes.hidden.units" in saved and "scheduler: asha" in saved and "search: optuna" in saved
    assert {p.name for p in (out / "plots").iterdir()} == {"curves.png", "parallel.png", "importance.png"}


STOP_SCRIPT = """
import json, sys, threading, time, psutil
from dltoolkit.spec import Spec
from dltoolkit.tune import sweep
spec = Spec.load(sys.argv[1])
first = threading.Event()
s = sweep(spec, out=sys.argv[2], background=True)
s.subscribe(lambda row: first.set())
first.wait(300)
me = psutil.Process()
ours = [p.pid for p in me.children(recursive=True)]
stopper = threading.Thread(target=s.stop)
stopper.start(); stopper.join(300)
deadline = time.time() + 60
while time.time() < deadline and any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in ours):
    time.sleep(0.5)
left = [p for p in ours if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
import ray
print(json.dumps({"done": s.done, "ray_processes": len(ours), "left": left, "ray_up": ray.is_initialized(),
                  "statuses": sorted(set(s.trials()["status"])), "epochs": int(s.trials()["epochs"].max())}))
"""


def test_stop_from_another_thread_leaves_no_ray_process(make_spec, tmp_path):
    spec = make_spec(train={"epochs": 200}, max_epochs=200, samples=2)
    spec.save(tmp_path / "spec.yaml")
    (tmp_path / "stop.py").write_text(STOP_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(tmp_path / "stop.py"), str(tmp_path / "spec.yaml"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["done"] and not report["ray_up"]
    assert report["ray_processes"] > 0 and report["left"] == []
    assert report["epochs"] < 200  # stopped, not finished


RESUME_SCRIPT = """
import sys
from dltoolkit.spec import Spec
from dltoolkit.tune import sweep
sweep(Spec.load(sys.argv[1]), out=sys.argv[2])
"""


def _trace(path: Path, ids: set[str] | None = None) -> list[tuple[str, int]]:
    if not path.is_file():
        return []
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    return [(t, int(e)) for t, e in lines if ids is None or t in ids]


def test_resume_after_driver_sigkill_finishes_every_trial_once(ray_session, trace_dir, tmp_path):
    from dltoolkit.recipes import load_recipe

    epochs = 12
    spec = load_recipe("digits-mlp").with_values(
        {
            "search.samples": 3,
            "search.max_concurrent": 1,
            "search.scheduler": "fifo",
            "search.max_epochs": epochs,
            "search.engine": "ray",
        }
    )
    spec.save(tmp_path / "spec.yaml")
    (tmp_path / "drive.py").write_text(textwrap.dedent(RESUME_SCRIPT))
    out, trace = tmp_path / "out", trace_dir / "trace.txt"
    before = len(_trace(trace))
    env = os.environ | {TRACE_ENV: str(trace_dir), "TUNE_GLOBAL_CHECKPOINT_S": "0"}
    driver = subprocess.Popen(
        [sys.executable, str(tmp_path / "drive.py"), str(tmp_path / "spec.yaml"), str(out)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 400
        while time.time() < deadline:  # kill once one trial finished and the next one is training
            lines = _trace(trace)[before:]
            finished = {t for t, e in lines if e == epochs}
            if finished and any(t not in finished for t, _ in lines):
                break
            assert driver.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.2)
        time.sleep(1.0)
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # the Ray processes that driver started
        except ProcessLookupError:
            pass
    at_kill = _trace(trace)[before:]
    done_before = {t for t, e in at_kill if e == epochs}
    result = resume(out).wait()
    table = result.trials()
    ids = set(table["trial_id"])
    after = _trace(trace)[before + len(at_kill) :]
    assert len(table) == 3 and set(table["status"]) == {"TERMINATED"}
    assert (table["epochs"] == epochs).all()
    assert done_before and done_before <= ids
    assert not [t for t, _ in after if t in done_before], "a finished trial ran again"
    assert result.best_bundle is not None and (result.best_bundle / "weights.pt").is_file()


def test_ctrl_c_stops_the_cli_sweep_and_resume_finishes_it(ray_session, make_spec, tmp_path, capsys):

    epochs = 200
    spec_path = make_spec(train={"epochs": epochs}, samples=2, max_concurrent=1).save(tmp_path / "tiny.yaml")
    out = tmp_path / "sweep"
    stderr = sigint_cli_tune([str(spec_path), "--out", str(out)])
    assert f"dltoolkit tune --resume {out}" in stderr, stderr[-2000:]
    stopped = pd.read_csv(out / "trials.csv")
    assert "STOPPED" in set(stopped["status"]) and (stopped["epochs"] < epochs).all()

    capsys.readouterr()
    assert main(["tune", "--resume", str(out)]) == 0
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"} and (table["epochs"] == epochs).all()
