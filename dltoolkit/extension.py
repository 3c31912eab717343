"""The IPython extension: ``%load_ext dltoolkit`` adds magics and rich HTML for dltoolkit objects.

Magics:
    ``%dlt_run SPEC [--out DIR [--overwrite]] [--epochs N] [--set PATH=VALUE ...]``: train a recipe, spec file or
    a Spec/Studio variable; the cell's value is the Run.
    ``%dlt_tune SPEC [--samples N] [--search S] [--scheduler S] [--address A] [--max-concurrent N]
    [--epochs N] [--out DIR [--overwrite]] [--set PATH=VALUE ...]``: launch a sweep in the background; the cell's
    value is the Sweep, shown as a live view (status, trial table, curves) that follows it to its end.
    ``%dlt_sweeps``: the sweeps of this kernel, running and finished, as a table.

Spec, Graph and Run objects render as HTML (a summary table and the graph picture); a Sweep renders
as its live view (a widget; its ``_repr_html_`` where widgets cannot show); model bundles render
through their own ``_repr_html_``.

Loading the extension also imports the training libraries (torch, Lightning, torchmetrics and
dltoolkit's training modules, about 2 s on a small machine), as a script imports its libraries
before it works: the kernel's first run or sweep cell then starts training at once instead of
spending its first seconds in imports. ``DLTOOLKIT_PRELOAD=0`` keeps the load light (only the
magics and formatters); ``import dltoolkit`` alone never imports torch (the CLI, serving and
Ray's trial actors stay light).

Example:
    >>> %load_ext dltoolkit                           # doctest: +SKIP
    >>> %dlt_run seed-linear --epochs 2 --out runs/x  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import shlex
from collections.abc import Callable
from typing import Any

SWEEPS: list[Any] = []  # the sweeps %dlt_tune launched in this kernel


# --------------------------------------------------------------------------- HTML
def _img(fig: Any) -> str:
    from dltoolkit.widgets._common import png

    data = base64.b64encode(png(fig)).decode()
    return f'<img class="dlt-figure" src="data:image/png;base64,{data}"/>'


def graph_html(graph: Any) -> str:
    """A Graph: its summary table beside its picture."""
    return (
        f'<div class="dlt-graph-repr" style="display:flex;gap:1em"><div>{graph._repr_html_()}</div>'
        f"<div>{_img(graph.draw())}</div></div>"
    )


def spec_html(spec: Any) -> str:
    """A Spec: the main settings, the search space and (when the data loads) the graph."""
    t = spec.train
    rows = {
        "task": f"{spec.task.kind} · target {spec.task.target!r}",
        "data": f"{spec.data.source} · split test {spec.data.split.test}, val {spec.data.split.val}",
        "graph": " → ".join(f"{n.name} ({n.op})" for n in spec.graph.nodes),
        "train": f"{t.optimizer.name} lr {t.optimizer.lr:g} · {t.schedule.name} · batch {t.batch_size} · "
        f"{t.epochs} epochs",
        "search": ", ".join(f"{k}: {v}" for k, v in spec.search.space.items()) or "(no search space)",
    }
    body = "".join(
        f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items()
    )
    picture = ""
    try:
        from dltoolkit.widgets._prepared import build_graph

        picture = graph_html(build_graph(spec)) if spec.data.source != "frame" else ""
    except Exception as e:  # noqa: BLE001 - a spec that does not build still renders, with the reason
        picture = f'<p class="dlt-error" style="color:#b00020">{html.escape(str(e))}</p>'
    return f"<b>Spec</b> {html.escape(spec.name)!s}<table class='dlt-spec-repr'>{body}</table>{picture}"


def run_html(run: Any) -> str:
    """A Run: its metrics and its learning curves."""
    from dltoolkit.evaluate import LearningCurveDisplay

    curves = _img(LearningCurveDisplay.from_history(run.history).plot()) if len(run.history) else ""
    return run._repr_html_() + curves


def register_formatters(ipython: Any) -> None:
    from dltoolkit.api import Run
    from dltoolkit.graph import Graph
    from dltoolkit.spec import Spec

    formatter = ipython.display_formatter.formatters["text/html"]
    formatter.for_type(Spec, spec_html)
    formatter.for_type(Graph, graph_html)
    formatter.for_type(Run, run_html)
    # a Sweep shows as its live view (a widget); its static HTML stays for frontends without widgets
    ipython.display_formatter.mimebundle_formatter.for_type_by_name(
        "dltoolkit.tune.sweep", "Sweep", sweep_view
    )


def sweep_view(sweep: Any) -> Any:
    """A Sweep as a live :class:`~dltoolkit.widgets.sweep_view.SweepView` that follows it to its end."""
    from dltoolkit.widgets.sweep_view import SweepView

    return SweepView().watch(sweep)._repr_mimebundle_()


# --------------------------------------------------------------------------- magics
def _parse(line: str, options: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``SPEC --flag value ... --set path=value`` -> (spec, flags, overrides); errors are UsageErrors."""
    from IPython.core.error import UsageError

    from dltoolkit.spec import parse_value

    words = shlex.split(line)
    if not words or words[0].startswith("--"):
        raise UsageError("Name a recipe, a spec file or a Spec variable first, e.g. %dlt_run digits-mlp")
    flags: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    rest = iter(words[1:])
    for word in rest:
        if options.get(word[2:].replace("-", "_")) is bool and word.startswith("--"):
            flags[word[2:].replace("-", "_")] = True  # a switch such as --overwrite takes no value
            continue
        value = next(rest, None)
        if value is None:
            raise UsageError(f"{word} needs a value")
        if word == "--set":
            if "=" not in value:
                raise UsageError(f"--set takes PATH=VALUE, e.g. --set train.epochs=5; received {value!r}")
            path, text = value.split("=", 1)
            overrides[path] = parse_value(text)
        elif word.startswith("--") and word[2:].replace("-", "_") in options:
            name = word[2:].replace("-", "_")
            flags[name] = options[name](value)
        else:
            raise UsageError(
                f"Unknown option {word!r}; expected one of {['--set'] + [f'--{o}' for o in options]}"
            )
    if "epochs" in flags:
        overrides["train.epochs"] = flags.pop("epochs")
    return words[0], flags, overrides


def _resolve(ipython: Any, name: str, overrides: dict[str, Any]) -> tuple[Any, Any]:
    """A Spec (and data) from a variable (Spec or Studio) or a recipe / file name."""
    from dltoolkit.api import resolve_spec

    value = ipython.user_ns.get(name)
    data = None
    if hasattr(value, "state") and hasattr(value, "spec"):  # a Studio
        value, data = value.spec, value.state.data
    return resolve_spec(value if value is not None else name, overrides), data


def _magics(ipython: Any) -> dict[str, Any]:
    from IPython.core.error import UsageError

    from dltoolkit.errors import DLToolkitError

    def guarded(fn: Callable[[str], Any]) -> Callable[[str], Any]:
        def magic(line: str) -> Any:
            try:
                return fn(line)
            except (DLToolkitError, ValueError, KeyError) as e:
                raise UsageError(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)) from None

        magic.__doc__ = fn.__doc__
        return magic

    def dlt_run(line: str) -> Any:
        """%dlt_run SPEC [--out DIR [--overwrite]] [--epochs N] [--set PATH=VALUE ...]: train and
        evaluate; returns the Run."""
        from dltoolkit.api import run

        name, flags, overrides = _parse(line, {"out": str, "epochs": int, "overwrite": bool})
        spec, data = _resolve(ipython, name, overrides)
        return run(spec, data, out=flags.get("out"), progress=True, overwrite=flags.get("overwrite", False))

    def dlt_tune(line: str) -> Any:
        """%dlt_tune SPEC [--samples N] [--search S] [--scheduler S] [--address A] [--max-concurrent N]
        [--epochs N] [--out DIR [--overwrite]] [--set PATH=VALUE ...]: launch a sweep in the background."""
        from dltoolkit.tune import sweep

        options = {
            "samples": int,
            "search": str,
            "scheduler": str,
            "address": str,
            "max_concurrent": int,
            "out": str,
            "epochs": int,
            "overwrite": bool,
        }
        name, flags, overrides = _parse(line, options)
        if "train.epochs" in overrides:
            overrides["search.max_epochs"] = overrides["train.epochs"]
        spec, data = _resolve(ipython, name, overrides)
        result = sweep(spec, data=data, background=True, **flags)
        SWEEPS.append(result)
        return result

    def dlt_sweeps(line: str) -> Any:
        """%dlt_sweeps: the sweeps launched in this kernel (running and finished)."""
        import pandas as pd

        from dltoolkit.widgets.sweep_view import sweep_state

        rows = []
        for s in SWEEPS:
            best = s.best
            rows.append(
                {
                    "name": s.spec.name,
                    "state": sweep_state(s)[0],
                    "trials": len(s.trials()),
                    "best": "" if best is None else f"{s.plan.metric} {best['score']:.4g}",
                    "folder": str(s.out),
                }
            )
        columns = ["name", "state", "trials", "best", "folder"]
        return pd.DataFrame(rows, columns=columns).rename_axis("sweep")

    return {
        name: guarded(fn)
        for name, fn in (("dlt_run", dlt_run), ("dlt_tune", dlt_tune), ("dlt_sweeps", dlt_sweeps))
    }


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and the HTML formatters (``%load_ext dltoolkit``) and import the training
    libraries (unless ``DLTOOLKIT_PRELOAD=0``)."""
    for name, magic in _magics(ipython).items():
        ipython.register_magic_function(magic, magic_kind="line", magic_name=name)
    register_formatters(ipython)
    preload()


def preload() -> bool:
    """Import what training and sweeps import (torch, Lightning, dltoolkit's training modules) now,
    in this thread; False where ``DLTOOLKIT_PRELOAD=0`` or they are not installed (they are then
    imported, or their absence reported, when first used)."""
    import os

    if os.environ.get("DLTOOLKIT_PRELOAD", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        import dltoolkit.train.fit  # noqa: F401  (torch, Lightning, torchmetrics)
        import dltoolkit.tune.training  # noqa: F401
    except ImportError:
        return False
    return True
