"""``dltoolkit tune SPEC --samples N --scheduler asha --search optuna [--address ADDR] --out DIR``.

Prints the engine it runs on and why (``search.engine``: auto, local or ray; ``--engine``), a live table (one line per reported epoch), then the trial table, and writes ``trials.csv``,
``best/`` (a model bundle), ``plots/`` and ``spec.yaml`` (with the search space) into ``--out``.
``--resume DIR`` continues a sweep whose driver died. A non-empty ``--out`` is refused (pointing to
``--resume`` when it holds a sweep) unless ``--overwrite``; without ``--out`` each sweep gets a new
``runs/<name>-sweep-<time>-<suffix>`` folder.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_HEADER = f"{'trial':<14}{'epoch':>6}  {'metric':>10}  config"


def add_parser(subparsers: Any) -> None:
    """Register the ``tune`` verb."""
    p = subparsers.add_parser("tune", help="hyperparameter sweep over the spec's search space (local or Ray)")
    p.add_argument("spec", nargs="?", help="a spec file or recipe name (not needed with --resume)")
    p.add_argument("--samples", type=int, help="trials (grid search: repeats of the grid)")
    p.add_argument("--scheduler", help="fifo, asha, hyperband, median or pbt")
    p.add_argument("--search", help="random, grid or optuna")
    p.add_argument("--address", help="an existing Ray cluster, e.g. 127.0.0.1:6379 (default: local Ray)")
    p.add_argument("--max-concurrent", type=int, help="trials running at once")
    p.add_argument(
        "--engine", choices=["auto", "local", "ray"], help="where trials run (default: search.engine)"
    )
    p.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR (its --out folder)")
    p.add_argument("--out", help="output folder (default a new runs/<name>-sweep-<time>-<suffix>)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the contents of a non-empty --out (see --resume)"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a spec value first")
    p.add_argument("--quiet", action="store_true", help="no live table")
    from dltoolkit.cli import TRACK_HELP

    p.add_argument("--track", metavar="URI", help=f"{TRACK_HELP}; each trial a nested run")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    import os

    from dltoolkit.cli import _overrides, _track
    from dltoolkit.errors import DLToolkitError
    from dltoolkit.tune import resume, sweep

    if not args.spec and not args.resume:
        raise DLToolkitError("dltoolkit tune needs a SPEC (file or recipe name) or --resume DIR.")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Ray's own table would interleave with ours
    live = None if args.quiet else LiveTable()
    if args.resume:
        runner = resume(args.resume, address=args.address, background=True)
    else:
        runner = sweep(
            args.spec,
            samples=args.samples,
            search=args.search,
            scheduler=args.scheduler,
            address=args.address,
            max_concurrent=args.max_concurrent,
            out=args.out,
            overrides=_overrides(args.set) | _track(args.track),
            background=True,
            overwrite=args.overwrite,
            engine=args.engine,
        )
    print(runner.preflight)
    print(f"engine: {runner.engine} ({runner.engine_reason})", flush=True)
    if live:
        live.metric = runner.plan.metric
        runner.subscribe(live)
    try:
        runner.wait()  # Ctrl-C stops the sweep (Sweep.stop) and ends the command with 130
    except KeyboardInterrupt:
        print(f"stopped; continue it with: dltoolkit tune --resume {runner.out}", file=sys.stderr)
        raise
    table = runner.trials()
    print(table.drop(columns=["error"] if table["error"].isna().all() else []).to_string(index=False))
    best = runner.best
    if best:
        print(
            f"best: trial {best['trial_id']} {runner.plan.metric}={best['score']:.4f} at epoch {best['epoch']}"
        )
    runner.wait(plots=True)  # the plots are drawn after the sweep's end (see Sweep.wait)
    print(f"wrote {runner.out}/ (trials.csv, best/, plots/, spec.yaml)")
    if runner.tracking.get("mlflow_run_id"):
        print(f"tracked in MLflow: run {runner.tracking['mlflow_run_id']} at {runner.tracking['mlflow_uri']}")
    return 0


class LiveTable:
    """Prints one line per reported epoch, under a header printed once."""

    def __init__(self, metric: str = "val_acc", stream: Any = None) -> None:
        self.metric, self.stream, self.started = metric, stream or sys.stdout, False

    def __call__(self, row: dict[str, Any]) -> None:
        if not self.started:
            print(_HEADER, file=self.stream)
            self.started = True
        value = row["metrics"].get(self.metric, float("nan"))
        config = ", ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in row["config"].items())
        print(
            f"{row['trial_id']:<14}{row['epoch']:>6}  {value:>10.4f}  {config}", file=self.stream, flush=True
        )


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
