"""The ``lr-find`` verb of the ``dltoolkit`` command line.

Example:
    $ dltoolkit lr-find digits-mlp
    $ dltoolkit lr-find my-spec.yaml --set train.batch_size=64 --out lr-found
"""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_lr_find(args: argparse.Namespace) -> int:
    from dltoolkit._files import atomic_dir, check_out
    from dltoolkit.api import resolve_spec
    from dltoolkit.cli import _overrides, signals_raise
    from dltoolkit.train.lr_find import lr_find

    if args.out:
        check_out(args.out, args.overwrite)  # before any work
    spec = resolve_spec(args.spec, _overrides(args.set))
    with signals_raise():
        found = lr_find(spec, min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps)
    ended = "the loss diverged" if found.diverged else f"reached {found.max_lr:g} without diverging"
    print(f"range test: {len(found.lrs)} steps from {found.min_lr:g}; {ended}")
    print(f"suggested learning rate: {found.suggestion:.2g} (the spec had {spec.train.optimizer.lr:g})")
    if args.out:
        out = Path(args.out)
        with atomic_dir(out) as tmp:  # the plot and the spec appear together or not at all
            found.save_plot(tmp / "lr_find.png")
            found.spec.save(tmp / "spec.yaml")
        print(f"wrote {out}/ (plot: {out / 'lr_find.png'}, spec with the suggestion: {out / 'spec.yaml'})")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lr-find``."""
    p = subparsers.add_parser(
        "lr-find",
        help="suggest a learning rate with a range test (exponential ramp, smoothed loss, stop on divergence)",
    )
    p.add_argument(
        "spec", help="a spec file (.yaml/.json) or a bundled recipe name (see `dltoolkit recipes`)"
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a spec value, e.g. train.batch_size=64"
    )
    p.add_argument("--min-lr", type=float, default=1e-7, help="the learning rate of the first step")
    p.add_argument("--max-lr", type=float, default=1.0, help="the learning rate of the last step")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps from --min-lr to --max-lr")
    p.add_argument(
        "--out", help="write lr_find.png and spec.yaml (the spec with the suggested learning rate) here"
    )
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty --out")
    p.set_defaults(func=cmd_lr_find)
