"""``run``: one experiment from spec to trained, evaluated, bundled model (the CLI's ``run`` too).

Example:
    >>> result = run("digits-mlp", out="runs/digits-mlp")   # doctest: +SKIP
    >>> result.metrics["accuracy"]                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dltoolkit._files import check_out, claim_out, new_out_dir
from dltoolkit.bundle import Predictor, graph_for, save_bundle
from dltoolkit.data import Prepared, make_augment, prepare
from dltoolkit.errors import SpecError, message
from dltoolkit.graph import Graph
from dltoolkit.spec import Spec, atomic_write_text


def resolve_spec(spec: Spec | str | os.PathLike | dict, overrides: dict[str, Any] | None = None) -> Spec:
    """A Spec from a Spec, a dict, a YAML/JSON path or a bundled recipe name, with overrides applied."""
    from dltoolkit.recipes import load_recipe

    if isinstance(spec, Spec):
        resolved = spec
    elif isinstance(spec, dict):
        resolved = Spec.from_dict(spec)
    elif isinstance(spec, str | os.PathLike):
        text = str(spec)
        is_file = text.endswith((".yaml", ".yml", ".json")) or os.sep in text or Path(text).is_file()
        resolved = Spec.load(text) if is_file else load_recipe(text)
    else:
        raise SpecError(
            message(
                "Cannot read a spec from this",
                type(spec).__name__,
                "a Spec, a dict, a path to a YAML/JSON file or a recipe name",
            )
        )
    resolved = resolved.with_values(overrides) if overrides else resolved
    return smoke(resolved) if os.environ.get(SMOKE_ENV) else resolved


SMOKE_ENV = "DLTOOLKIT_SMOKE"  # set (e.g. to 1) to shrink every experiment: CI runs the notebooks so


def smoke(spec: Spec) -> Spec:
    """The spec shrunk for a smoke run: at most 2 epochs, 2 trials of at most 2 epochs each, and an
    image set the package writes (``digits_folder``, ``shapes_folder``) at most 30 images a class."""
    from dltoolkit.data.images.samples import IMAGE_SETS, SET_DEFAULTS

    search = spec.search
    shrunk: dict[str, Any] = {
        "train.epochs": min(spec.train.epochs, 2),
        "train.early_stopping": None,
        "search.samples": min(search.samples, 2),
        "search.max_epochs": min(search.max_epochs or spec.train.epochs, 2),
        "search.grace_period": 1,
    }
    if spec.data.source in IMAGE_SETS:
        per_class = spec.data.options.get("per_class", SET_DEFAULTS["per_class"])
        shrunk["data.options"] = {**spec.data.options, "per_class": min(per_class or 30, 30)}
    return spec.with_values(shrunk)


@dataclass
class Checked:
    """A spec that passed every check, with its prepared data and built graph."""

    spec: Spec
    data: Prepared
    graph: Graph


def check(spec: Spec, data: Any = None) -> Checked:
    """Validate everything before any training: names, values, the data against the task, shapes."""
    from dltoolkit.train.losses import loss_name
    from dltoolkit.train.optim import OPTIMIZERS, SCHEDULES

    if spec.track.enabled:
        from dltoolkit._extras import require

        require("track", "Experiment tracking (the spec's track section, --track)")
    OPTIMIZERS.get(spec.train.optimizer.name)
    SCHEDULES.get(spec.train.schedule.name)
    loss_name(spec)
    prepared = prepare(spec, data)
    graph = graph_for(spec, prepared.preprocessor, prepared.n_outputs)
    make_augment(spec.preprocess.augment, prepared.input_shape)
    _check_backbone_lr(spec, graph)
    return Checked(spec, prepared, graph)


def _check_backbone_lr(spec: Spec, graph: Graph) -> None:
    """``train.optimizer.backbone_lr`` set on a graph without a backbone node would be ignored: an error."""
    if spec.train.optimizer.backbone_lr is not None and not any(n.op == "backbone" for n in graph.nodes):
        raise SpecError(
            message(
                "train.optimizer.backbone_lr is set but the graph has no backbone node",
                spec.train.optimizer.backbone_lr,
                "a graph with a node of op backbone, or no backbone_lr",
                "Remove train.optimizer.backbone_lr (train.optimizer.lr applies to every node).",
            )
        )


@dataclass
class Run:
    """What ``run`` produced: the spec, metrics, history, the predictor and where things were written."""

    spec: Spec
    metrics: dict[str, Any]
    history: pd.DataFrame
    predictor: Predictor
    out: Path
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)
    # run(..., explain=True): the dltoolkit.explain result its report shows (None: not asked, or it failed)
    explanation: Any = field(default=None, kw_only=True)
    # where it was tracked (mlflow_uri, mlflow_run_id, tensorboard); keyword-only: subclasses add fields
    tracking: dict[str, Any] = field(default_factory=dict, kw_only=True)

    @property
    def bundle(self) -> Path:
        return self.out / "model"

    def _repr_html_(self) -> str:
        from dltoolkit._html import esc, table
        from dltoolkit.evaluate import metrics_table

        return (
            f"<b>Run</b> {esc(repr(self.spec.name))}: {len(self.history)} epochs in {self.seconds:.1f} s, "
            f"bundle at <code>{esc(self.bundle)}</code>{table(metrics_table(self.metrics), index=True)}"
        )


def default_out(spec: Spec, kind: str = "") -> Path:
    """A fresh, unique output folder ``runs/<name>[-<kind>]-<time>-<suffix>`` (created empty)."""
    return new_out_dir(f"{spec.name}-{kind}" if kind else spec.name)


def run(
    spec: Spec | str | dict,
    data: Any = None,
    *,
    out: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = False,
    plots: bool = True,
    listeners: Sequence[Callable[[dict[str, Any]], None]] = (),
    callbacks: Sequence[Any] = (),
    overwrite: bool = False,
    explain: bool = False,
) -> Run:
    """Train and evaluate one experiment and write its outputs into ``out``.

    ``out`` receives ``spec.yaml``, ``metrics.json``, ``history.csv``, ``model/`` (the bundle),
    ``plots/*.png`` and ``report.html``. Everything is validated before training starts.

    Args:
        spec: a Spec, a dict, a spec file path or a bundled recipe name.
        data: a DataFrame or ``(X, y)`` arrays when the spec's source is ``frame``.
        out: the output directory (default a new ``runs/<name>-<time>-<suffix>``); an existing
            non-empty one is refused unless ``overwrite``.
        overrides: dotted-path values applied to the spec, e.g. ``{"train.epochs": 5}``.
        progress: show a per-epoch progress bar.
        plots: write the plots and the report.
        listeners: called with each epoch's metrics as training goes.
        callbacks: extra Lightning callbacks (e.g. one that stops training from a panel's button).
        overwrite: replace the contents of a non-empty ``out`` (removed once the spec and the
            data passed their checks).
        explain: also explain the model on its test split (:func:`dltoolkit.explain` with its
            defaults: permutation importance for tables, attributions of a few test rows) into
            ``out/explain/``, shown in ``report.html`` as "Understand the model" and kept in
            ``Run.explanation``. Needs the ``explain`` extra (Captum), checked before training. An
            explanation that cannot be made (an ensemble, a streamed source) is a warning in
            the report; the run itself is kept.

    Raises:
        OutputExistsError: ``out`` is not empty and ``overwrite`` is false (checked first).

    An interrupted run (Ctrl-C, SIGTERM, a stop that ends the process) removes the output folder
    it was writing, so no half-written run is left behind.

    With the spec's ``track`` section on, the run is also logged to MLflow and/or TensorBoard
    (:mod:`dltoolkit.track`); ``Run.tracking`` then says where.
    """
    spec = resolve_spec(spec, overrides)
    if out is not None:
        check_out(out, overwrite)
    if explain and plots:
        from dltoolkit._extras import require

        require("explain", "dltoolkit.run(explain=True)")  # before any work
    checked = check(spec, data)
    from dltoolkit.train.fit import device_settings

    device_settings(spec)  # a GPU or 16-mixed where there is no CUDA GPU: an error before any output
    out = claim_out(out, overwrite) if out is not None else default_out(spec)
    tracking = None
    if spec.track.enabled:
        from dltoolkit.track import RunTracking

        tracking = RunTracking(spec, out)
        listeners = [*listeners, *tracking.listeners]
    try:
        result = _train_and_write(
            spec, checked, out, progress, plots, listeners, callbacks, explain=explain, data=data
        )
    except BaseException as e:
        if tracking is not None:
            tracking.fail(e)
        if not isinstance(e, Exception):  # interrupted: leave no half-written run behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    if tracking is not None:
        result.tracking = tracking.finish(result)
    return result


def _train_and_write(
    spec: Spec,
    checked: Checked,
    out: Path,
    progress: bool,
    plots: bool,
    listeners: Sequence[Callable[[dict[str, Any]], None]],
    callbacks: Sequence[Any],
    explain: bool = False,
    data: Any = None,
) -> Run:
    """Train, test and write the run's outputs; with ``explain`` (and ``plots``) also the explanation
    of the model on ``data`` (the run's own data; None: the spec's source)."""
    from dltoolkit.train.fit import fit

    started = time.perf_counter()
    augment = make_augment(spec.preprocess.augment, checked.data.input_shape)
    result = fit(
        spec,
        checked.graph,
        checked.data,
        out / ".work",
        progress=progress,
        listeners=listeners,
        augment=augment,
        extra_callbacks=callbacks,
    )
    d = checked.data
    predictor = Predictor(spec, d.preprocessor, d.target, result.model, examples=d.raw_test)
    metrics, y_true, shown = test_metrics(predictor, d)
    notes = [*d.preprocessor.warnings_, *result.warnings()]  # the data's and the training's
    metrics["warnings"] = [*metrics.get("warnings", []), *notes]
    explanation = None
    if plots and explain:
        explanation = _explain(predictor, data, metrics)
    seconds = time.perf_counter() - started
    files = _write_outputs(
        out,
        spec,
        predictor,
        result.history,
        metrics,
        y_true,
        shown,
        d.classes,
        plots,
        explanation,
        {
            "seconds": round(seconds, 2),
            "best_epoch": result.best_epoch,
            "monitor": result.monitor,
            "best_score": result.best_score,
            **result.info(),
        },
    )
    shutil.rmtree(out / ".work", ignore_errors=True)
    return Run(spec, metrics, result.history, predictor, out, seconds, files, explanation=explanation)


def _explain(predictor: Predictor, data: Any, metrics: dict[str, Any]) -> Any:
    """``dltoolkit.explain`` of the trained predictor on the run's data; a DLToolkitError (a
    model or source it cannot explain) becomes one of the report's warnings instead."""
    from dltoolkit.errors import DLToolkitError
    from dltoolkit.interpret import explain

    try:
        return explain(predictor, data)
    except DLToolkitError as e:
        metrics["warnings"] = [*metrics.get("warnings", []), f"No explanation in this report: {e}"]
        return None


def test_metrics(predictor: Predictor, data: Prepared) -> tuple[dict[str, Any], Any, Any]:
    """Evaluate ``predictor`` on the prepared test split and attach the metrics to it.

    Returns:
        (metrics, y_true, output): class indices and probabilities for classification, values in
        the target's original units for regression — what the plots take.
    """
    from dltoolkit.evaluate import evaluate

    kind = predictor.spec.task.kind
    # an image split (a Dataset) comes with an ImagePredictor, whose output reads it
    output = predictor.output(data.X_test)  # type: ignore[arg-type]
    y_true = data.y_test.numpy()
    if kind == "regression":
        y_true, output = data.target.inverse(y_true), data.target.inverse(output)
    predictor.metrics = evaluate(kind, y_true, output, data.classes)
    return predictor.metrics, y_true, output


def _write_outputs(
    out: Path,
    spec: Spec,
    predictor: Predictor,
    history: pd.DataFrame,
    metrics: dict[str, Any],
    y_true: np.ndarray,
    output: np.ndarray,
    classes: list[str] | None,
    plots: bool,
    explanation: Any,
    info: dict[str, Any],
) -> dict[str, Path]:
    files = {"spec": spec.save(out / "spec.yaml"), "model": save_bundle(out / "model", predictor, info)}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(out / "history.csv", history.to_csv(index=False))
    files |= {"metrics": out / "metrics.json", "history": out / "history.csv"}
    if plots:
        from dltoolkit.evaluate import save_plots, write_report

        pictures = save_plots(out / "plots", spec.task.kind, history, y_true, output, classes)
        explained: dict[str, Path] = {}
        if explanation is not None:
            explained = explanation.save(out / "explain")
            files["explain"] = out / "explain"
        files["report"] = write_report(
            out,
            title=f"dltoolkit run: {spec.name}",
            spec_yaml=spec.to_yaml(),
            metrics=metrics,
            history=history,
            plots=pictures,
            extra=info,
            explanation=explanation,
            explanation_plots={name: path for name, path in explained.items() if path.suffix == ".png"},
        )
    return files
