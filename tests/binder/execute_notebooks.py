"""Execute notebooks in smoke mode, each in a fresh kernel, and measure the peak memory of each kernel.

Used by ``.ci/binder_check.sh`` with the Python of the Binder venv (so the kernels run on exactly what
``binder/requirements.txt`` installs). The memory of a kernel is that of its whole process tree — the kernel
plus everything it starts (a local Ray and its workers, a model server) — sampled every ``--interval``
seconds: the sum of PSS (proportional set size: shared pages split between the processes sharing them,
close to what a container's memory limit counts) and, as an upper bound, the sum of RSS.

Example:
    python tests/binder/execute_notebooks.py notebooks/*.ipynb --limit-mb 2048 --report memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

SMOKE_ENV = "DLTOOLKIT_SMOKE"  # as dltoolkit.api.SMOKE_ENV (not imported: this runs before any check of it)
WARM_ENV = "DLTOOLKIT_WARM_WORKERS"  # as dltoolkit.tune.workers.WORKERS_ENV


def tree_memory(root: psutil.Process) -> tuple[int, int, list[tuple[str, int]]]:
    """(sum of PSS, sum of RSS) in bytes over ``root`` and all its descendants, and each one's PSS."""
    pss = rss = 0
    each = []
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0, []
    for proc in processes:
        try:
            one = _pss(proc.pid)
            rss += proc.memory_info().rss
            pss += one
            each.append((_label(proc), one))
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            continue
    return pss, rss, each


def _label(proc: psutil.Process) -> str:
    """A short name: Ray's process title (``ray::IDLE``), else the script or module a Python runs."""
    words = proc.cmdline() or [proc.name()]
    if words[0].startswith("ray::") or len(words) == 1:
        return words[0][:40]
    named = [w for w in words[1:] if not w.startswith("-")]
    return Path(named[0]).name[:40] if named else Path(words[0]).name


def _pss(pid: int) -> int:
    """PSS from /proc/PID/smaps_rollup (cheap: one summary line), in bytes."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMonitor:
    """Samples ``tree_memory`` of a process in a thread; ``peak_pss`` / ``peak_rss`` hold the maxima."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_pss = self.peak_rss = 0
        self.at_peak: list[tuple[str, int]] = []  # (process, PSS bytes) at the PSS peak, largest first
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-monitor")

    def __enter__(self) -> PeakMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pss, rss, each = tree_memory(self.process)
            if pss > self.peak_pss:
                self.peak_pss, self.at_peak = pss, sorted(each, key=lambda item: -item[1])
            self.peak_rss = max(self.peak_rss, rss)
            self.samples += 1
            self._stop.wait(self.interval)


def execute(path: Path, timeout: int, interval: float) -> dict:
    """Run one notebook in a fresh kernel in a scratch folder; return its time, peak memory and error."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix=f"nb-{path.stem}-") as work:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": work}}
        )
        started, error = time.perf_counter(), None
        with client.setup_kernel():
            with PeakMonitor(client.km.provisioner.pid, interval) as monitor:
                try:
                    for index, cell in enumerate(nb.cells):
                        client.execute_cell(cell, index)
                except Exception as e:  # noqa: BLE001 - reported per notebook
                    error = f"{type(e).__name__}: {str(e)[-3000:]}"
    return {
        "notebook": path.name,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_pss_mb": round(monitor.peak_pss / 2**20),
        "peak_rss_mb": round(monitor.peak_rss / 2**20),
        "samples": monitor.samples,
        "at_peak_mb": [[name, round(size / 2**20)] for name, size in monitor.at_peak],
        "error": error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--limit-mb", type=int, default=2048, help="fail above this peak PSS (Binder: 2048)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between memory samples")
    parser.add_argument("--report", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    # the kernels inherit these; put back afterwards, as a test runs main() in its own process
    saved = {key: os.environ.get(key) for key in (SMOKE_ENV, WARM_ENV)}
    os.environ[SMOKE_ENV] = "1"
    # Binder's 2 GB limit turns warm trial workers off (dltoolkit.tune.workers.wanted); this
    # machine has the memory for them, so the kernels are told what Binder's would decide
    os.environ.setdefault(WARM_ENV, "0")
    try:
        return _run(args)
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def _run(args: argparse.Namespace) -> int:
    results = []
    for path in args.notebooks:
        result = execute(path.resolve(), args.timeout, args.interval)
        results.append(result)
        print(
            f"{result['notebook']:<36} {result['seconds']:6.1f} s  peak PSS {result['peak_pss_mb']:5d} MB  "
            f"(RSS sum {result['peak_rss_mb']:5d} MB)  {'ok' if not result['error'] else 'FAILED'}",
            flush=True,
        )
        biggest = ", ".join(f"{name} {mb}" for name, mb in result["at_peak_mb"][:6])
        print(f"    at the peak ({len(result['at_peak_mb'])} processes, MB PSS): {biggest}", flush=True)
        if result["error"]:
            print(result["error"], file=sys.stderr)
    peak = max(r["peak_pss_mb"] for r in results)
    print(f"peak memory of any notebook's kernel tree: {peak} MB PSS (limit {args.limit_mb} MB)")
    if args.report:
        args.report.write_text(
            json.dumps({"limit_mb": args.limit_mb, "peak_pss_mb": peak, "notebooks": results}, indent=2)
        )
    failed = [r["notebook"] for r in results if r["error"]]
    if failed:
        print(f"FAILED notebooks: {failed}", file=sys.stderr)
        return 1
    if peak >= args.limit_mb:
        print(f"peak memory {peak} MB is not under the limit of {args.limit_mb} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
