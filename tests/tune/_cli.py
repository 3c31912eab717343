"""Driving ``dltoolkit tune`` as a real process in tests."""

from __future__ import annotations


def sigint_cli_tune(args: list[str]) -> str:
    """Run ``dltoolkit tune ARGS`` in its own session, send it SIGINT once a trial has reported its
    third epoch, check it exits 130, and return its stderr (every process it started is killed)."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    cli = subprocess.Popen(
        [sys.executable, "-m", "dltoolkit.cli", "tune", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a Ray it starts too: the finally below ends them all
    )
    third = threading.Event()

    def watch() -> None:
        for line in cli.stdout:  # a live line: "<trial id>  <epoch>  <metric>  <config>"
            fields = line.split()
            if len(fields) > 2 and "_" in fields[0] and fields[1].isdigit() and int(fields[1]) >= 3:
                third.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert third.wait(300), "no third epoch reported"
        cli.send_signal(signal.SIGINT)
        code = cli.wait(300)
        stderr = cli.stderr.read()
        assert code == 130, f"exit {code}; stderr ends:\n{stderr[-3000:]}"
        return stderr
    finally:
        try:
            os.killpg(cli.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
