"""The ``explain`` verb of the ``dltoolkit`` command line.

Example:
    $ dltoolkit explain runs/wine/model
    $ dltoolkit explain runs/houses/model houses.csv --rows 5 --method kernel_shap --out houses-explained
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

TOP = 10  # importances printed


def cmd_explain(args: argparse.Namespace) -> int:
    from dltoolkit._extras import require
    from dltoolkit._files import check_out

    require("explain", "dltoolkit explain")
    if args.out:
        check_out(args.out, args.overwrite)  # before any work
    from dltoolkit.interpret import explain
    from dltoolkit.interpret._inputs import as_predictor

    model = as_predictor(args.model)
    rows = args.row or args.rows
    explanation = explain(
        model, args.data, rows=rows, methods=args.method, repeats=args.repeats, scoring=args.scoring
    )
    out = write_explanation(model, explanation, args.out)
    _print(explanation)
    print(f"wrote {out}/ (report: {out / 'report.html'})")
    return 0


def write_explanation(model: Any, explanation: Any, out: str | None) -> Path:
    """The explanation's files and a report (the bundle's test metrics, the explanation, its spec)
    in ``out`` (default a new ``runs/<name>-explain-<time>-<suffix>``), the folder built aside and
    swapped in whole."""
    from dltoolkit._files import atomic_dir, new_out_dir
    from dltoolkit.evaluate import write_report

    target = Path(out) if out else new_out_dir(f"{model.spec.name}-explain")
    with atomic_dir(target) as tmp:
        files = explanation.save(tmp)
        plots = {name: path for name, path in files.items() if path.suffix == ".png"}
        write_report(
            tmp,
            title=f"dltoolkit explain: {model.spec.name}",
            spec_yaml=model.spec.to_yaml(),
            metrics=model.metrics,
            history=None,
            plots={},
            explanation=explanation,
            explanation_plots=plots,
        )
    return target


def _print(explanation: Any) -> None:
    if explanation.importance is not None:
        print(f"permutation importance (drop in {explanation.scoring}, mean ± std over the repeats):")
        for feature, row in explanation.importance.head(TOP).iterrows():
            print(f"  {str(feature):>28}: {row['importance']:.4f} ± {row['std']:.4f}")
    for row in explanation.rows:
        deltas = ", ".join(f"{m} delta {d:.2g}" for m, d in row.delta.items())
        print(
            f"  test row {row.row}: predicted {row.predicted} (true {row.true}); {row.target} "
            f"{row.output:.3g} vs {row.baseline_output:.3g} at the average input"
            + (f"; {deltas}" if deltas else "")
        )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``explain``."""
    p = subparsers.add_parser(
        "explain",
        help="what drives a trained model: permutation importance and per-row attributions on its test split",
    )
    p.add_argument("model", help="a model bundle directory (the model/ folder a run wrote) or its run folder")
    p.add_argument(
        "data",
        nargs="?",
        help="the CSV the model was trained from, when its spec does not name it (its test split is explained)",
    )
    p.add_argument("--out", help="output directory (default a new runs/<name>-explain-<time>-<suffix>)")
    p.add_argument("--rows", type=int, help="how many test rows to attribute (the first ones)")
    p.add_argument(
        "--row",
        type=int,
        action="append",
        metavar="I",
        help="a test row to attribute, by position (repeatable)",
    )
    p.add_argument(
        "--method",
        action="append",
        metavar="NAME",
        help="integrated_gradients, kernel_shap, saliency or gradcam (repeatable; default: what fits the model)",
    )
    p.add_argument("--repeats", type=int, default=5, help="shuffles per column for permutation importance")
    p.add_argument("--scoring", help="a scikit-learn scorer name (default accuracy, or r2 for regression)")
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty --out")
    p.set_defaults(func=cmd_explain)
