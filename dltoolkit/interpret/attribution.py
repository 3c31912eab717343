"""Per-row attributions with Captum: how much each input moved one prediction, and in which direction.

The attributed function is what a user reads off the model: the probability of the predicted
class, or the predicted value in the target's units (:func:`~dltoolkit.interpret._inputs.forward_of`).
Each method is Captum's own; this module picks the layer it needs, the baseline and the target,
and reduces Captum's input-shaped result to what is drawn:

============================ ===================================== ===============================
method                       model kinds                           one row's values
============================ ===================================== ===============================
``integrated_gradients``     tabular, image, sequence, text        per original column (one-hot
                                                                   groups summed) / pixel / step /
                                                                   token (``LayerIntegratedGradients``
                                                                   on the embedding)
``kernel_shap``              tabular                               per original column (one-hot
                                                                   groups sampled as one feature)
``saliency``                 tabular, image, sequence              ``|gradient|``
``gradcam``                  image with a ``conv2d`` layer         ``LayerGradCam`` on the last
                                                                   conv layer, upsampled
============================ ===================================== ===============================

Integrated Gradients starts from a baseline: the average training input (pad tokens for text),
so a row's attributions add up to its output minus the output for that average input (Captum's
convergence delta says how closely).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dltoolkit.errors import message
from dltoolkit.interpret.explanation import ExplainError
from dltoolkit.registry import Registry

STEPS = 64  # Integrated Gradients' integration steps (Gauss-Legendre)
SHAP_SAMPLES = 200  # KernelSHAP's coalitions per row


@dataclass
class Context:
    """What a method attributes: the model's function, the rows, their baseline and targets."""

    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    x: torch.Tensor  # (n, *input_shape)
    baseline: torch.Tensor  # (1, *input_shape)
    target: torch.Tensor | None  # (n,) class indices; None for regression (one output per row)
    kind: str  # tabular, image, sequence, text
    groups: np.ndarray  # tabular: the original column of each preprocessed feature
    seed: int = 0


@dataclass(frozen=True)
class Method:
    """An attribution method: its Captum function and the model kinds it fits."""

    label: str
    kinds: tuple[str, ...]
    needs: str  # what a model needs for it, in words
    attribute: Callable[[Context], tuple[np.ndarray, np.ndarray | None]]  # -> (values, |delta| or None)


METHODS: Registry[Method] = Registry("attribution method")


def attribute(name: str, ctx: Context) -> tuple[np.ndarray, np.ndarray | None]:
    """Run method ``name`` on ``ctx``: per-row values and per-row |convergence delta| (or None).

    Raises:
        UnknownNameError: no method of that name (with the closest one).
        ExplainError: the method does not fit this model.
    """
    check_method(name, ctx.kind, ctx.model)
    return METHODS.get(name).attribute(ctx)


def check_method(name: str, kind: str, model: nn.Module) -> None:
    """Raise :class:`ExplainError` when method ``name`` does not fit a ``kind`` model."""
    method = METHODS.get(name)
    if kind in method.kinds and (name != "gradcam" or _last_conv(model) is not None):
        return
    fitting = [m for m in METHODS.names() if m in methods_for(kind, model)]
    raise ExplainError(
        message(
            f"{method.label} does not fit this model",
            f"a {kind} model" + (" without a conv2d layer" if kind == "image" else ""),
            method.needs,
            f"Use one of {fitting} for this model.",
        )
    )


def methods_for(kind: str, model: nn.Module) -> list[str]:
    """Every method that fits a ``kind`` model."""
    names = [n for n in METHODS.names() if kind in METHODS.get(n).kinds]
    return [n for n in names if n != "gradcam" or _last_conv(model) is not None]


def default_methods(kind: str, model: nn.Module) -> list[str]:
    """Saliency, Integrated Gradients and Grad-CAM (with a conv layer) for images; IG otherwise."""
    if kind == "image":
        return [m for m in ("saliency", "integrated_gradients", "gradcam") if m in methods_for(kind, model)]
    return ["integrated_gradients"]


def _last_conv(model: nn.Module) -> nn.Module | None:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def _embedding(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if isinstance(m, nn.Embedding))


def _reduce(ctx: Context, values: torch.Tensor, absolute: bool = False) -> np.ndarray:
    """Input-shaped attributions to one value per original column / pixel / step / token."""
    t = values.detach().abs() if absolute else values.detach()
    a = t.double().numpy()
    if ctx.kind == "tabular":
        out = np.zeros((len(a), int(ctx.groups.max()) + 1))
        np.add.at(out.T, ctx.groups, a.reshape(len(a), -1).T)  # one-hot groups summed
        return out
    if ctx.kind == "image":
        return a.sum(1)  # over channels: (n, H, W)
    return a.sum(-1)  # sequence: over features, text: over embedding dims -> (n, steps)


def _delta(delta: torch.Tensor) -> np.ndarray:
    return delta.detach().abs().double().numpy().reshape(-1)


def _integrated_gradients(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    from captum.attr import IntegratedGradients, LayerIntegratedGradients

    baseline = ctx.baseline.expand_as(ctx.x)
    if ctx.kind == "text":  # ids are not differentiable: integrate along the token embeddings
        ig = LayerIntegratedGradients(ctx.forward, _embedding(ctx.model))
    else:
        ig = IntegratedGradients(ctx.forward)
    values, delta = ig.attribute(
        ctx.x, baselines=baseline, target=ctx.target, n_steps=STEPS, return_convergence_delta=True
    )
    return _reduce(ctx, values), _delta(delta)


def _saliency(ctx: Context) -> tuple[np.ndarray, None]:
    from captum.attr import Saliency

    values = Saliency(ctx.forward).attribute(ctx.x.clone().requires_grad_(), target=ctx.target, abs=True)
    return _reduce(ctx, values, absolute=True), None


def _gradcam(ctx: Context) -> tuple[np.ndarray, None]:
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(ctx.forward, _last_conv(ctx.model))
    values = cam.attribute(ctx.x, target=ctx.target, relu_attributions=True)
    values = LayerAttribution.interpolate(values, tuple(ctx.x.shape[-2:]), "bilinear")
    return values.detach().double().numpy()[:, 0], None


def _kernel_shap(ctx: Context) -> tuple[np.ndarray, None]:
    from captum.attr import KernelShap

    mask = torch.as_tensor(ctx.groups, dtype=torch.long).unsqueeze(0)
    with torch.random.fork_rng():  # seeded coalitions without touching the caller's random state
        torch.manual_seed(ctx.seed)
        values = KernelShap(ctx.forward).attribute(
            ctx.x,
            baselines=ctx.baseline.expand_as(ctx.x),
            target=ctx.target,
            feature_mask=mask,
            n_samples=SHAP_SAMPLES,
        )
    first = np.unique(ctx.groups, return_index=True)[1]  # every feature of a group has its value
    return values.detach().double().numpy()[:, first], None


_FLOAT = ("tabular", "image", "sequence")
METHODS.add(
    "integrated_gradients",
    Method("Integrated Gradients", (*_FLOAT, "text"), "any model", _integrated_gradients),
)
METHODS.add(
    "saliency",
    Method("Saliency", _FLOAT, "float inputs (text models take token ids)", _saliency),
)
METHODS.add(
    "gradcam",
    Method("Grad-CAM", ("image",), "an image model (inputs (channels, height, width)) with a conv2d layer",
           _gradcam),
)  # fmt: skip
METHODS.add(
    "kernel_shap", Method("KernelSHAP", ("tabular",), "a tabular model (a row of columns)", _kernel_shap)
)


def feature_groups(preprocessor: Any) -> np.ndarray:
    """The original column of each preprocessed feature (a one-hot or date block maps to one)."""
    from dltoolkit.data.preprocess import _output_names

    sizes = [len(_output_names(plan)) for plan in preprocessor.columns_]
    return np.repeat(np.arange(len(sizes)), sizes)
