"""The ``dltoolkit`` command line: run, recipes, predict (and tune, export, serve from their stages).

Each stage that adds a verb exposes ``add_parser(subparsers)`` which registers it with a
``func(args) -> int`` default; heavy imports happen inside those functions so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dltoolkit.errors import DLToolkitError, SpecError, message

if TYPE_CHECKING:
    from dltoolkit.api import Run
    from dltoolkit.tune.distributed import DistributedRun

STAGE_VERBS = ("dltoolkit.train.cli", "dltoolkit.tune.cli", "dltoolkit.deploy.cli", "dltoolkit.interpret.cli")


def _overrides(pairs: list[str] | None) -> dict:
    from dltoolkit.spec import parse_value

    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise DLToolkitError(f"--set needs key=value, e.g. --set train.epochs=5; received {pair!r}.")
        key, value = pair.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out


def _track(value: str | None) -> dict:
    """``--track URI``: the spec's ``track.mlflow`` (a URI, a folder, true; false: off)."""
    from dltoolkit.spec import parse_value

    return {} if value is None else {"track.mlflow": parse_value(value)}


TRACK_HELP = (
    "log to MLflow: a tracking URI (http://host:5000, sqlite:///path.db), a folder, or true "
    "(runs/mlflow.db); overrides the spec's track.mlflow"
)


def cmd_run(args: argparse.Namespace) -> int:
    from dltoolkit._files import claim_out
    from dltoolkit.api import default_out, resolve_spec, run

    spec = resolve_spec(args.spec, _overrides(args.set) | _track(args.track))
    result: Run | DistributedRun
    with signals_raise():
        if args.address or args.workers:
            if args.explain:
                raise SpecError(
                    message(
                        "--explain does not go with a data-parallel run",
                        "--explain with --address/--workers",
                        "--explain on a single-process run",
                        "Drop --explain and run `dltoolkit explain OUT/model` once the run is written.",
                    )
                )
            from dltoolkit._extras import require

            require("tune", "dltoolkit run --address/--workers (Ray Train)")
            from dltoolkit.tune.distributed import run_distributed

            out = claim_out(args.out, args.overwrite) if args.out else default_out(spec)
            try:
                result = run_distributed(spec, out=out, address=args.address, workers=args.workers or 1)
            except Interrupted:
                shutil.rmtree(out, ignore_errors=True)
                raise
            except Exception:
                if not args.out:  # the new default folder, if still empty
                    with contextlib.suppress(OSError):
                        out.rmdir()
                raise
        else:
            result = run(
                spec, out=args.out, progress=not args.quiet, overwrite=args.overwrite, explain=args.explain
            )
            out = result.out
    _print_metrics(result.metrics)
    if getattr(result, "explanation", None) is not None:
        print(f"explained: {out / 'explain'}/ (also in the report)")
    print(f"wrote {out}/ (report: {out / 'report.html'}, model: {out / 'model'})")
    tracked = getattr(result, "tracking", {})
    if tracked.get("mlflow_run_id"):
        print(f"tracked in MLflow: run {tracked['mlflow_run_id']} at {tracked['mlflow_uri']}")
    return 0


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: raised in the main thread so that ``finally`` blocks and the
    run's clean-up happen (not a KeyboardInterrupt, which Lightning turns into ``sys.exit(1)``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        names: dict[int, str] = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}
        return names.get(self.signum, str(self.signum))


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM raise :class:`Interrupted` (the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _print_metrics(metrics: dict) -> None:
    for key, value in metrics.items():
        if isinstance(value, float):
            print(f"  {key:>10}: {value:.4f}")
    for text in metrics.get("warnings", []):
        print(f"  warning: {text}")


def cmd_recipes(args: argparse.Namespace) -> int:
    from dltoolkit.recipes import describe

    for name, text in describe():
        print(f"{name:<24}{text}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from dltoolkit.bundle import load
    from dltoolkit.data._rows import InputWarning

    model = load(args.model)
    frame, notes = model.check_inputs(args.input)
    for note in notes:  # unseen categories, ignored columns: one line each, once
        print(f"warning: {note}", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        result = pd.DataFrame({"prediction": model.predict(frame)})
        if isinstance(frame, pd.DataFrame) and list(frame.columns) == ["path"]:  # image files
            result.insert(0, "path", frame["path"].to_numpy())
        if model.classes is not None:
            proba = model.predict_proba(frame)
            for i, name in enumerate(model.classes):
                result[f"proba_{name}"] = proba[:, i]
    if args.out:
        from dltoolkit.spec import atomic_write_text

        atomic_write_text(Path(args.out), result.to_csv(index=False))
        print(f"wrote {len(result)} predictions to {args.out}")
    else:
        sys.stdout.write(result.to_csv(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dltoolkit", description="From a dataset to a tuned, evaluated model."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train and evaluate one experiment (a spec file or a recipe name)")
    p.add_argument(
        "spec", help="a spec file (.yaml/.json) or a bundled recipe name (see `dltoolkit recipes`)"
    )
    p.add_argument("--out", help="output directory (default a new runs/<name>-<time>-<suffix>)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a spec value, e.g. train.epochs=5"
    )
    p.add_argument("--address", help="train data-parallel on this Ray cluster (Ray Train, DDP on gloo)")
    p.add_argument(
        "--workers", type=int, help="number of data-parallel workers (with --address or a local Ray)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty --out")
    p.add_argument("--track", metavar="URI", help=TRACK_HELP)
    p.add_argument(
        "--explain",
        action="store_true",
        help="also explain the model on its test split (as `dltoolkit explain`) into OUT/explain/ and report.html",
    )
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("recipes", help="list the bundled recipes")
    p.set_defaults(func=cmd_recipes)
    p = sub.add_parser("predict", help="predict with a model bundle on a CSV file (or images)")
    p.add_argument("model", help="a model bundle directory (the model/ folder a run wrote)")
    p.add_argument(
        "input",
        help="a CSV file with the original feature columns; for an image model an image file, a folder "
        "of images or a CSV manifest with a path column",
    )
    p.add_argument("--out", help="write predictions to this CSV (default: stdout)")
    p.set_defaults(func=cmd_predict)
    for module in STAGE_VERBS:
        try:
            importlib.import_module(module).add_parser(sub)
        except ModuleNotFoundError as e:
            if not module.startswith(str(e.name)):  # the stage is absent, not broken
                raise
    for verb in sub.choices.values():
        verb.add_argument(
            "--verbose",
            action="store_true",
            help="also show the libraries' own output (Lightning, Ray, ONNX banners and warnings)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        from dltoolkit._quiet import set_verbose

        set_verbose(True)
    try:
        return args.func(args)
    except DLToolkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"interrupted by {e.name}: stopped; the unfinished output was removed", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console() -> None:
    """The ``dltoolkit`` command: :func:`main`, then exit without the interpreter's final garbage
    collections over torch's and Ray's objects (seconds at exit, for nothing left to free)."""
    code = main()
    import gc

    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
