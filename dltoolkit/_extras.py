"""Optional dependencies: which extra brings which packages, and one clear error when one is missing.

The core install (``pip install dltoolkit``) trains, evaluates, predicts and exports to TorchScript.
Sweeps, notebook panels, the HTTP server and ONNX export each need an extra:

======== ========================================== ==========================================================
extra    packages                                   needed by
======== ========================================== ==========================================================
tune     ray[tune], optuna                          ``dltoolkit tune``, ``dltoolkit.sweep``, ``run --address``
notebook ipywidgets, anywidget, ipython, jupyterlab ``dltoolkit.studio``, the panels, ``%load_ext dltoolkit``
serve    fastapi, uvicorn, python-multipart         ``dltoolkit serve``, ``create_app``
export   onnx, onnxruntime, onnxscript              ``dltoolkit export --format onnx``
vision   torchvision                                image sources, transforms and pretrained backbones
text     tokenizers                                 ``preprocess.text.tokenizer: bpe``
explain  captum                                     ``dltoolkit explain``, ``dltoolkit.explain`` (attributions)
track    mlflow, tensorboard                        the spec's ``track`` section, ``--track``, MLflow runs in
                                                    the Evaluation panel
======== ========================================== ==========================================================

``pip install 'dltoolkit[all]'`` installs every extra but ``track`` (MLflow brings its own server,
Flask, Docker and Databricks clients: about 30 packages): ``pip install 'dltoolkit[all,track]'``.

Example:
    >>> require("tune", "dltoolkit tune")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util

from dltoolkit.errors import DLToolkitError, message

EXTRAS: dict[str, tuple[str, ...]] = {  # extra -> the modules it provides
    "tune": ("ray", "optuna"),
    "notebook": ("ipywidgets", "anywidget", "IPython"),
    "serve": ("fastapi", "uvicorn", "python_multipart"),
    "export": ("onnx", "onnxruntime", "onnxscript"),
    "vision": ("torchvision",),
    "text": ("tokenizers",),
    "explain": ("captum",),
    "parquet": ("pyarrow",),
    "track": ("mlflow", "tensorboard"),
}


NOT_IN_ALL = ("track",)  # extras that ``dltoolkit[all]`` leaves out


class MissingExtraError(DLToolkitError, ImportError):
    """A feature needs an optional extra that is not installed."""


def missing(extra: str) -> str | None:
    """The first module of ``extra`` that cannot be imported here (None: all can)."""
    for module in EXTRAS[extra]:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):  # a parent package missing, or a module set to None
            return module
    return None


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` when a module it provides is missing.

    Args:
        extra: one of :data:`EXTRAS` (``"tune"``, ``"notebook"``, ``"serve"``, ``"export"``).
        feature: what the user asked for, as they would name it (``"dltoolkit serve"``).
    """
    module = missing(extra)
    if module is not None:
        raise MissingExtraError(
            message(
                f"{feature} needs the {extra} extra, which is not installed",
                f"no module named {module!r}",
                f"the packages of dltoolkit[{extra}]: {', '.join(EXTRAS[extra])}",
                f"Install it: pip install 'dltoolkit[{extra}]'"
                + (" (or 'dltoolkit[all]')." if extra not in NOT_IN_ALL else "."),
            )
        )
