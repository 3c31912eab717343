"""The run report: one self-contained HTML page with the metrics, the history, the plots and the spec.

Every piece of text that goes into the page passes through :func:`html.escape`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from dltoolkit.evaluate.metrics import metrics_table
from dltoolkit.spec import atomic_write_text

if TYPE_CHECKING:
    from dltoolkit.interpret import Explanation

HISTORY_ROWS = 30  # a longer history shows only its last rows

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; } img { max-width: 100%; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; }
.note { color: #666; font-size: 0.85em; }
.warn li { color: #8a4b00; }
"""


def write_report(
    out_dir: Path,
    *,
    title: str,
    spec_yaml: str,
    metrics: dict,
    history: pd.DataFrame | None,
    plots: dict[str, Path],
    extra: dict | None = None,
    explanation: Explanation | None = None,
    explanation_plots: dict[str, Path] | None = None,
) -> Path:
    """Write ``out_dir/report.html`` atomically and return its path.

    Args:
        out_dir: Run folder (created); image links are relative to it.
        title: Page title.
        spec_yaml: The experiment spec as YAML, shown verbatim.
        metrics: An :func:`dltoolkit.evaluate.evaluate` result; its ``warnings`` (a class never
            predicted, training ended while still improving...) are listed first.
        history: The training history (the last ``HISTORY_ROWS`` rows are shown), or None.
        plots: Plot name -> PNG path, e.g. from ``save_plots(out_dir / "plots", ...)``; a path
                that does not exist from here is taken as relative to ``out_dir``.
        extra: More facts about the run (duration, best epoch, checkpoint...), shown as a table.
        explanation: A :func:`dltoolkit.explain` result, shown as an "Understand the model" section
            (permutation importance, the explained rows) with ``explanation_plots`` (name -> PNG,
            e.g. from ``explanation.save(out_dir / "explain")``).

    Example:
        >>> write_report(run_dir, title="iris", spec_yaml=spec.to_yaml(), metrics=m,
        ...              history=None, plots=save_plots(run_dir / "plots", ...))  # doctest: +SKIP
        PosixPath('runs/iris/report.html')
    """
    out_dir = Path(out_dir)
    sections = [f"<h1>{_esc(title)}</h1>"]
    if metrics.get("warnings"):
        items = "\n".join(f"<li>{_esc(w)}</li>" for w in metrics["warnings"])
        sections.append(_section("Warnings", f'<ul class="warn">\n{items}\n</ul>'))
    if extra:
        sections.append(_section("Run", _table(["item", "value"], extra.items())))
    sections.append(_section("Test metrics", _metrics_html(metrics)))
    if history is not None and len(history):
        sections.append(_section("Training history", _history_html(history)))
    if plots:
        sections.append(_section("Plots", "\n".join(_figure(n, p, out_dir) for n, p in plots.items())))
    if explanation is not None:
        sections.append(
            _section("Understand the model", _explanation_html(explanation, explanation_plots or {}, out_dir))
        )
    sections.append(_section("Spec", f"<pre>{_esc(spec_yaml)}</pre>"))
    page = _page(title, "\n".join(sections))
    path = out_dir / "report.html"
    atomic_write_text(path, page)
    return path


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _section(heading: str, content: str) -> str:
    return f"<section>\n<h2>{_esc(heading)}</h2>\n{content}\n</section>"


def _table(header: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{_esc(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _metrics_html(metrics: dict) -> str:
    scalars = metrics_table(metrics)["value"]
    parts = [_table(["metric", "value"], scalars.items())]
    per_class = metrics.get("per_class") or {}
    if per_class:
        columns = ["precision", "recall", "f1", "support"]
        rows = ([name, *(scores.get(c) for c in columns)] for name, scores in per_class.items())
        parts.append("<h3>Per class</h3>\n" + _table(["class", *columns], rows))
    matrix = metrics.get("confusion_matrix")
    if matrix:
        names = list(per_class) if len(per_class) == len(matrix) else [str(i) for i in range(len(matrix))]
        rows = ([f"true {name}", *row] for name, row in zip(names, matrix, strict=True))
        parts.append("<h3>Confusion matrix</h3>\n" + _table(["", *(f"pred {n}" for n in names)], rows))
    return "\n".join(parts)


HISTORY_NOTE = (
    "val_* metrics are the test metrics of the same name on the validation split, in the target's "
    "units; train_loss and val_loss are in the units the model trains in (a standardised target "
    "for regression); train_* values are averages over the epoch's training batches."
)


def _history_html(history: pd.DataFrame) -> str:
    shown = history.tail(HISTORY_ROWS)
    note = f'<p class="note">{_esc(HISTORY_NOTE)}</p>\n'
    if len(history) > HISTORY_ROWS:
        note += f'<p class="note">Last {HISTORY_ROWS} of {len(history)} rows.</p>\n'
    rows = (list(row) for row in shown.itertuples(index=False))
    return note + _table(shown.columns, rows)


def _figure(name: str, path: Path, out_dir: Path) -> str:
    path = Path(path)
    if path.is_absolute() or path.exists():  # else it is already relative to out_dir
        path = Path(os.path.relpath(path, out_dir))
    src = path.as_posix()
    return f'<figure><img src="{_esc(src)}" alt="{_esc(name)}"><figcaption>{_esc(name)}</figcaption></figure>'


EXPLAIN_NOTES = {
    "importance": "Permutation importance: how much the test {scoring} drops when one column's values are "
    "shuffled (a categorical column as one column), averaged over {repeats} shuffles; the spread is their "
    "standard deviation.",
    "rows": "Attributions of single test rows: how much each input moved the attributed output away from its "
    "value at the average training input (pad tokens for text). Integrated Gradients' values add up to that "
    "difference; the convergence delta is how far Captum's integral is from it.",
}
IMPORTANCE_ROWS = 15  # the longest importance table shown


def _explanation_html(explanation: Explanation, plots: dict[str, Path], out_dir: Path) -> str:
    parts = [
        f'<p class="note">{_esc(explanation.kind)} model; methods: {_esc(", ".join(explanation.methods))}</p>'
    ]
    table = explanation.importance
    if table is not None:
        repeats = sum(str(c).startswith("repeat_") for c in table.columns)
        note = EXPLAIN_NOTES["importance"].format(scoring=explanation.scoring, repeats=repeats)
        rows = ([f, r["importance"], r["std"]] for f, r in table.head(IMPORTANCE_ROWS).iterrows())
        parts += [f'<p class="note">{_esc(note)}</p>', _table(["column", "importance", "std"], rows)]
    parts.append(f'<p class="note">{_esc(EXPLAIN_NOTES["rows"])}</p>')
    rows = (
        [
            r.row,
            r.true,
            r.predicted,
            r.target,
            r.output,
            r.baseline_output,
            max(r.delta.values(), default=None),
        ]
        for r in explanation.rows
    )
    header = ["test row", "true", "predicted", "attributed", "output", "at the average input", "delta"]
    parts.append(_table(header, rows))
    parts.append("\n".join(_figure(n, p, out_dir) for n, p in plots.items()))
    return "\n".join(parts)
