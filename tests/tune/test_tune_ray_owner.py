"""Ray outlives the thread that started it (a notebook panel's short-lived launch thread).

On Linux a child's parent-death signal follows the thread that spawned it: Ray's ``gcs_server`` and
``raylet`` started from a thread that then ends are killed at once (zombies), and the driver exits
about 60 s later ("Failed to connect to GCS"). Each check runs in a fresh process, where no Ray
runs yet, as in a new notebook kernel.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    import psutil, ray
    from dltoolkit.recipes import load_recipe
    from dltoolkit.tune._ray import start_ray
    from dltoolkit.widgets import SpecState, TuneController

    def ray_processes():
        time.sleep(1)  # a parent-death signal is delivered at once; give the kernel a moment
        kids = psutil.Process().children(recursive=True)
        return sorted((p.name(), p.status()) for p in kids if p.name() in ("gcs_server", "raylet"))

    if sys.argv[1] == "thread":
        t = threading.Thread(target=start_ray, args=(None,), name="short-lived")
        t.start(); t.join()
        print("after the thread", ray_processes())
        print("task", ray.get(ray.remote(lambda: 41 + 1).remote(), timeout=60))
    else:
        spec = load_recipe("wine").with_values({"train.epochs": 1, "search.samples": 1,
            "search.max_epochs": 2, "search.max_concurrent": 1, "search.scheduler": "fifo",
            "search.engine": "ray"})  # the Ray path: its processes must outlive the launch thread
        c = TuneController(SpecState(spec), out=sys.argv[2])
        for n in (1, 2):
            c.launch(); assert c.wait(300)
            print(f"sweep {n}", c.status, c.error, ray_processes())
        print("task", ray.get(ray.remote(lambda: 41 + 1).remote(), timeout=60))
    ray.shutdown()
    """
)


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


def test_ray_started_from_a_thread_that_ends_stays_up():
    out = _run("thread")
    assert "after the thread [('gcs_server', 'sleeping'), ('raylet', 'sleeping')]" in out, out
    assert "task 42" in out


def test_two_panel_sweeps_in_one_process_with_ray_alive_after_each(tmp_path):
    out = _run("panel", str(tmp_path))
    for n in (1, 2):
        assert f"sweep {n} done  [('gcs_server', 'sleeping'), ('raylet', 'sleeping')]" in out, out
    assert "task 42" in out
