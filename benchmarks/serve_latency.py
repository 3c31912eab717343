"""Inference server latency and throughput over loopback HTTP against a real ``dltoolkit serve`` process.

Prints, measured in the same run:
  * single-record ``POST /predict``: p50 / p99 latency and requests per second from one client
    (sequential, keep-alive) and from ``--clients`` concurrent clients;
  * batch throughput (rows per second) of ``POST /predict`` with ``--batch`` records per request,
    against the bare model called in-process on already-preprocessed tensors (and against
    ``Predictor.predict`` in-process), as ratios. The server and the in-process calls both use one
    torch thread.

    python benchmarks/serve_latency.py [--model runs/wine/model] [--requests 1000] [--batch 1000]

Without ``--model`` it trains the ``wine`` recipe for 3 epochs into a temporary directory.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch

from dltoolkit.bundle import load
from dltoolkit.data import prepare


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dltoolkit.cli", "serve", str(model), "--port", str(port), "--threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def single_record_latency(url: str, rows: list[dict], n: int) -> list[float]:
    """Seconds per request, one client, keep-alive."""
    times = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(n):
            start = time.perf_counter()
            reply = http.post("/predict", json={"records": [rows[i % len(rows)]]})
            times.append(time.perf_counter() - start)
            reply.raise_for_status()
    return times


def concurrent_rate(url: str, rows: list[dict], n: int, clients: int) -> float:
    """Requests per second with ``clients`` threads sharing ``n`` single-record requests."""

    def work(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(k, n, clients):
                http.post("/predict", json={"records": [rows[i % len(rows)]]}).raise_for_status()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (time.perf_counter() - start)


def rows_per_second(call, rows: int, repeats: int) -> float:
    call()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return rows * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model bundle (default: train wine for 3 epochs)")
    parser.add_argument("--requests", type=int, default=1000, help="single-record requests per measurement")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000, help="records per batch request")
    parser.add_argument("--repeats", type=int, default=20, help="batch requests per measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(args.model) if args.model else train_wine(Path(tmp))
        measure(model_dir, args)


def train_wine(tmp: Path) -> Path:
    from dltoolkit.api import run

    return run("wine", out=tmp / "wine", overrides={"train.epochs": 3}, plots=False).bundle


def measure(model_dir: Path, args: argparse.Namespace) -> None:
    model = load(model_dir)
    X = prepare(model.spec).raw_test.reset_index(drop=True)
    rows = [{k: float(v) for k, v in r.items()} for r in X.to_dict("records")]
    batch_frame = X.iloc[np.arange(args.batch) % len(X)].reset_index(drop=True)
    batch_records = [rows[i % len(rows)] for i in range(args.batch)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(model_dir, port)
    try:
        single_record_latency(url, rows, 100)  # warm-up
        times = single_record_latency(url, rows, args.requests)
        rate = concurrent_rate(url, rows, args.requests, args.clients)
        with httpx.Client(base_url=url, timeout=60) as http:
            http_rows = rows_per_second(
                lambda: http.post("/predict", json={"records": batch_records}).raise_for_status(),
                args.batch,
                args.repeats,
            )
    finally:
        stop_server(proc)
    x = model.transform(batch_frame)
    with torch.inference_mode():
        bare_rows = rows_per_second(lambda: model.model(x), args.batch, args.repeats)
    predict_rows = rows_per_second(lambda: model.predict(batch_frame), args.batch, args.repeats)
    ms = sorted(t * 1000 for t in times)
    print(f"model: {model_dir} ({model.spec.name}, {len(model.feature_columns)} features)")
    print(f"single record, 1 client : p50 {statistics.median(ms):.2f} ms, p99 {ms[int(0.99 * (len(ms) - 1))]:.2f} ms, "
          f"{len(ms) / (sum(ms) / 1000):.0f} req/s")  # fmt: skip
    print(f"single record, {args.clients} clients: {rate:.0f} req/s")
    print(f"batch of {args.batch}: /predict {http_rows:,.0f} rows/s; bare model in-process {bare_rows:,.0f} rows/s; "
          f"Predictor.predict in-process {predict_rows:,.0f} rows/s")  # fmt: skip
    print(f"ratio /predict : bare model = {http_rows / bare_rows:.3f}; "
          f"/predict : Predictor.predict = {http_rows / predict_rows:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
