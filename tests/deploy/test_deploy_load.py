"""A real ``dltoolkit serve`` process on loopback under load: 2,000 requests from 8 concurrent clients."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from dltoolkit.data import prepare

REQUESTS, CLIENTS = 2000, 8
START_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def server(wine_bundle, free_port, tmp_path_factory):
    """``(base_url, log_path)`` of a ``dltoolkit serve`` subprocess, ended by PID afterwards."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dltoolkit.cli", "serve", str(wine_bundle), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not answer /health within {START_TIMEOUT_S} s:\n{log.read_text()}")


def test_load_2000_requests_from_8_clients_match_in_process(server, wine, to_records):
    url, log = server
    X = prepare(wine.spec).raw_test.reset_index(drop=True)
    rows = to_records(X)
    expected = [
        (wine.predict(X.iloc[[i]]).tolist(), wine.predict_proba(X.iloc[[i]]).tolist()) for i in range(len(X))
    ]
    mismatches: list[str] = []
    errors: list[str] = []
    done = [0] * CLIENTS

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for j in range(k, REQUESTS, CLIENTS):
                i = j % len(rows)
                try:
                    reply = http.post("/predict", json={"records": [rows[i]]})
                except httpx.HTTPError as e:
                    errors.append(f"request {j}: {type(e).__name__}: {e}")
                    continue
                if reply.status_code != 200:
                    errors.append(f"request {j}: HTTP {reply.status_code} {reply.text[:200]}")
                    continue
                body = reply.json()
                if (body["predictions"], body["probabilities"]) != expected[i]:
                    mismatches.append(f"request {j} (row {i}): {body} != {expected[i]}")
                done[k] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a client did not finish within 300 s"
    assert errors == []
    assert mismatches == []
    assert sum(done) == REQUESTS
    assert "http://127.0.0.1:" in log.read_text()  # bound to loopback by default
    assert httpx.get(f"{url}/health", timeout=5).json() == {"status": "ok"}


def test_server_process_survives_bad_input(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=10) as http:
        replies = [
            http.post("/predict", content=b"\xff\xfe garbage", headers={"content-type": "application/json"}),
            http.post("/predict", json={"records": [{"alcohol": "strong"}]}),
            http.post("/predict", content=b'{"records": [' + b"{}, " * 400_000 + b"{}]}"),
        ]
        assert [r.status_code for r in replies] == [400, 422, 413]
        assert http.get("/health").status_code == 200
        assert http.get("/metadata").json()["task"] == "multiclass"
