"""A real two-node Ray cluster on loopback for tests, started with ``ray start`` and stopped by PID.

Both nodes run on this machine as separate ``ray start --block`` processes, each in its own
process group, with token authentication (RAY_AUTH_MODE=token and a fresh RAY_AUTH_TOKEN) and a
temp dir of their own. Every wait is bounded. ``stop`` ends the processes of this cluster only:
the two process groups, then any process whose command line names this cluster's temp dir or
GCS address, by PID, and returns what is left (nothing, unless something refused to die).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(shutil.which("ray") or "ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll ``check`` until it is true; raise TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LoopbackCluster:
    """Handles on a started cluster: its address, the env a driver needs, its processes."""

    port: int
    temp_dir: Path
    env: dict[str, str]
    starters: list[subprocess.Popen] = field(default_factory=list)
    node_ids: dict[str, str] = field(default_factory=dict)  # "head_node"/"worker_node" -> id
    restarts: int = 0  # nodes started again because `ray start` gave up (timeouts under load)
    failed: list[subprocess.Popen] = field(default_factory=list)
    _args: list[tuple[list[str], str]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pids(self) -> set[int]:
        """Every live process of this cluster (by process group or command line)."""
        groups = {p.pid for p in self.starters + self.failed}
        marks = (str(self.temp_dir).encode(), self.address.encode())
        found = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            pid = int(entry.name)
            try:
                cmdline = (entry / "cmdline").read_bytes()
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, pgid = stat.rsplit(")", 1)[1].split()[0], int(stat.rsplit(")", 1)[1].split()[2])
            if state == "Z":
                continue
            if pgid in groups or any(mark in cmdline for mark in marks):
                found.add(pid)
        return found

    def start_node(self, args: list[str], log: str) -> None:
        out = open(self.temp_dir.parent / log, "wb")  # noqa: SIM115 (kept for the process's life)
        proc = subprocess.Popen(
            [RAY, "start", "--block", *args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starters.append(proc)
        self._args.append((args, log))

    def restart_failed(self, limit: int = 2) -> None:
        """Start again a non-head node whose ``ray start --block`` exited (at most ``limit`` times)."""
        for i, proc in enumerate(self.starters):
            if i > 0 and proc.poll() is not None and self.restarts < limit:
                self.restarts += 1
                args, log = self._args.pop(i)
                self.failed.append(self.starters.pop(i))  # its group is still ended by stop()
                self.start_node(args, f"{log}.{self.restarts}")
                return

    def stop(self, grace: float = 10.0) -> set[int]:
        """SIGTERM, then after ``grace`` s SIGKILL, every process of this cluster; return the PIDs left."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in self.starters + self.failed:
                _signal_group(proc.pid, sig)  # the group outlives its leader
            for pid in self.pids():
                _signal(pid, sig)
            try:
                wait_for(lambda: not self.pids(), grace, "the cluster's processes to exit")
                break
            except TimeoutError:
                continue
        for proc in self.starters + self.failed:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        return self.pids()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_cluster(root: Path, timeout: float = 120.0) -> LoopbackCluster:
    """Start a head node (resource ``head_node``) and a worker node (``worker_node``), 1 CPU each."""
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16), RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env.pop("RAY_ADDRESS", None)
    cluster = LoopbackCluster(free_port(), root / "ray", env)
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
    try:
        cluster.start_node(
            [
                "--head",
                f"--port={cluster.port}",
                f"--temp-dir={cluster.temp_dir}",
                "--include-dashboard=false",
                '--resources={"head_node": 1}',
                *common,
            ],
            "head.log",
        )
        wait_for(lambda: _listening(cluster.port), timeout, "the head node's GCS to listen")
        cluster.start_node(
            [
                f"--address={cluster.address}",
                f"--temp-dir={cluster.temp_dir}",
                '--resources={"worker_node": 1}',
                *common,
            ],
            "worker.log",
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster
