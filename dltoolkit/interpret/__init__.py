"""Understand a trained model: what drives it overall, and what moved one prediction.

:func:`explain` takes a bundle (or a run) and its data, and returns an
:class:`~dltoolkit.interpret.explanation.Explanation`:

* **tabular** models: permutation importance on the test split (scikit-learn's
  ``permutation_importance`` over the bundle's raw-row predictions, so a categorical column is
  shuffled as one column and the scores carry the original column names, with the spread over
  the repeats), and per-row attributions (Captum's Integrated Gradients, or KernelSHAP, over the
  preprocessed inputs, summed back to the original columns);
* **image** models (inputs ``(channels, height, width)``): Saliency, Integrated Gradients and
  Grad-CAM (Captum's ``LayerGradCam`` on the last conv layer) maps for chosen test images;
* **sequence** models (``(steps, features)``): Integrated Gradients per time step;
* **text** models (token ids): Integrated Gradients per token, through the embedding
  (Captum's ``LayerIntegratedGradients``).

The methods are in :data:`~dltoolkit.interpret.attribution.METHODS`; the package is imported as
``dltoolkit.interpret`` (the name ``dltoolkit.explain`` is the function).

Example:
    >>> import dltoolkit
    >>> explanation = dltoolkit.explain("runs/wine")     # doctest: +SKIP
    >>> explanation.importance.index[0]                  # doctest: +SKIP
    'proline'
    >>> explanation.save("runs/wine/explain")            # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from dltoolkit.interpret.explanation import ExplainError, Explanation, RowExplanation

__all__ = ["ExplainError", "Explanation", "RowExplanation", "explain"]


def __getattr__(name: str) -> Any:  # explain() imports torch: only when used (the CLI's --help stays fast)
    if name == "explain":
        from dltoolkit.interpret._explain import explain

        return explain
    raise AttributeError(f"module 'dltoolkit.interpret' has no attribute {name!r}")
