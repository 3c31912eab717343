"""Peak memory of a streamed training run against the data's size: a Parquet table and an image folder.

    python benchmarks/streaming_memory.py [--rows 100000] [--images 200] [--workers 1]

Writes a generated table (:func:`dltoolkit.data.tables.samples.credit_table`) of ``M`` and ``8M``
rows as Parquet shards, and digits image folders (:func:`dltoolkit.data.images.samples.write_digits_folder`)
of ``N`` and ``8N`` images, then runs ``dltoolkit.run`` for one epoch on each, every run in a fresh
Python process, with ``data.in_memory_mb`` set below the data's size (so the table and the images
are streamed: read and decoded in DataLoader worker processes).

A thread samples every 20 ms the resident memory of the run's process plus all its child processes
(the DataLoader workers): ``rss`` sums their RSS (shared pages counted in each process), ``pss``
their proportional set size (shared pages split between the processes, from
``/proc/<pid>/smaps_rollup``). The peak covers the whole run: the streaming preprocessing pass, the
training epoch with its validation, and the test predictions.

Prints the peaks and the growth ratios 8x-data / 1x-data (target: at most 1.15). Measured on a
loaded 2-core machine with the defaults (M = 100 000 rows, N = 200 images, 1 worker per loader):
table x1.014 RSS, x1.030 PSS (497 -> 512 MiB PSS); images x0.995 RSS, x1.024 PSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROW_GROUP = 5_000


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Peak:
    """Peak RSS and PSS of this process and its children, sampled on a thread."""

    def __init__(self, every: float = 0.02) -> None:
        import psutil

        self.me, self.every = psutil.Process(), every
        self.rss = self.pss = 0
        self.workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            procs = [self.me, *self.me.children(recursive=True)]
            rss = pss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    pss += _pss(p.pid)
                except psutil.Error:
                    continue
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self.workers = max(self.workers, len(procs) - 1)
            self._stop.wait(self.every)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def child(kind: str, source: str, workers: int) -> None:
    """One streamed training run; prints a JSON line with the peaks."""
    import dltoolkit  # before Lightning (see dltoolkit._vision)

    if kind == "table":
        spec = {
            "task": {"kind": "binary", "target": "default"},
            "data": {"source": source, "in_memory_mb": 0, "workers": workers},
            "preprocess": {"impute": "median"},
            "graph": {"nodes": [{"name": "h", "op": "linear", "units": 32}, {"name": "a", "op": "relu"}]},
            "train": {"epochs": 1, "batch_size": 512},
        }
    else:
        spec = {
            "task": {"kind": "multiclass", "target": "target"},
            "data": {"source": source, "in_memory_mb": 0, "workers": workers},
            "preprocess": {"image": {"size": [32, 32], "channels": 3}},
            "graph": {
                "nodes": [
                    {"name": "c", "op": "conv2d", "channels": 8, "kernel_size": 3},
                    {"name": "a", "op": "relu"},
                    {"name": "p", "op": "maxpool2d", "kernel_size": 4},
                    {"name": "f", "op": "flatten"},
                ]
            },  # fmt: skip
            "train": {"epochs": 1, "batch_size": 64},
        }
    with tempfile.TemporaryDirectory() as out, Peak() as peak:
        started = time.perf_counter()
        run = dltoolkit.run(spec, out=Path(out) / "run", plots=False)
        seconds = time.perf_counter() - started
    streamed = type(run.predictor).__name__
    print(json.dumps({"rss": peak.rss, "pss": peak.pss, "workers": peak.workers, "seconds": seconds,
                      "predictor": streamed}))  # fmt: skip


def measure(kind: str, source: Path, workers: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(source), "--workers", str(workers)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"the {kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_table(folder: Path, rows: int) -> Path:
    from dltoolkit.data.tables.samples import write_credit_shards

    return write_credit_shards(folder, rows=rows, shards=8, row_group=ROW_GROUP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="M: rows of the small table")
    parser.add_argument("--images", type=int, default=200, help="N: images of the small folder (8N <= 1790)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.workers)
        return
    from dltoolkit.data.images.samples import write_digits_folder

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for scale in (1, 8):
            rows = args.rows * scale
            table = write_table(root / f"table-{scale}", rows)
            size = sum(f.stat().st_size for f in table.iterdir())
            results[("table", scale)] = measure("table", table, args.workers) | {
                "size": f"{rows} rows, {size / 2**20:.1f} MiB on disk"
            }
            n = args.images * scale
            folder = write_digits_folder(
                root / f"images-{scale}", per_class=n // 10, sizes=(32,), formats=("png",)
            )
            results[("images", scale)] = measure("images", folder, args.workers) | {"size": f"{n} images"}
    print(f"{'source':8} {'data':>30} {'peak RSS (MiB)':>15} {'peak PSS (MiB)':>15} {'workers':>8} {'s':>7}")
    for (kind, _), r in results.items():
        print(f"{kind:8} {r['size']:>30} {r['rss'] / 2**20:15.1f} {r['pss'] / 2**20:15.1f} {r['workers']:8d} {r['seconds']:7.1f}")  # fmt: skip
    for kind in ("table", "images"):
        small, big = results[(kind, 1)], results[(kind, 8)]
        print(f"{kind}: 8x data -> peak RSS x{big['rss'] / small['rss']:.3f}, peak PSS x{big['pss'] / small['pss']:.3f} (target <= 1.15)")  # fmt: skip


if __name__ == "__main__":
    main()
