"""Pretrained torchvision backbones as one graph node: features out, the graph adds its own head.

A ``backbone`` node wraps a torchvision classification model with the last ``Linear`` of its
classifier removed, so it maps images ``(3, H, W)`` (a 1-channel image is repeated to 3) to
pooled ``(features,)``. Its stages, named per family, are what ``freeze`` counts in:

| family | stages, input to output |
| --- | --- |
| resnet18/34/50/101/152 | ``stem`` (conv1, bn1), ``layer1``, ``layer2``, ``layer3``, ``layer4`` |
| mobilenet_v3_small/large | ``stem``, ``stage1`` .. ``stage4`` (one per resolution), ``top`` |
| efficientnet_b0 .. b4 | ``stem``, ``stage1`` .. ``stage7`` (the paper's MBConv stages), ``top`` |
| convnext_tiny/small/base | ``stem``, ``stage1`` .. ``stage4``, ``top`` (the final LayerNorm) |

``freeze: all`` fixes every stage, ``freeze: none`` trains them all, ``freeze: layer3`` fixes the
stages up to and including ``layer3``. A frozen stage is a fixed function: its parameters do not
train and it runs in eval mode (batch norm uses its running statistics; dropout and stochastic
depth are off) even while the rest of the model trains. ``unfreeze_after: N`` makes every stage
trainable after N epochs (:class:`dltoolkit.train.finetune.BackboneUnfreeze`), and
``train.optimizer.backbone_lr`` gives the backbone its own learning rate
(:func:`dltoolkit.train.optim.make_optimizer`).

``weights`` is offline by design: a local file (a state dict of the architecture, possibly nested
under a prefix, as in a Lightning checkpoint's ``state_dict`` or a bundle's ``weights.pt``), or a
torchvision weights name (``ResNet18_Weights.IMAGENET1K_V1``, ``IMAGENET1K_V1``, ``DEFAULT``) read
from the torch hub cache where torchvision itself would keep it
(``torch.hub.get_dir()/checkpoints/<file>``), or ``recipe:<name>``: the backbone of a bundled
recipe, trained once on data the package writes and kept in its cache
(:mod:`dltoolkit.recipes.pretrained`). Nothing is ever downloaded: a missing file is an
error naming the file and the folder to put it in.

Example:
    >>> from dltoolkit.spec import GraphSpec
    >>> from dltoolkit.graph import Graph
    >>> spec = GraphSpec.model_validate({"nodes": [
    ...     {"name": "features", "op": "backbone", "arch": "resnet18", "freeze": "layer3"}]})
    >>> g = Graph(spec, input_shape=(3, 32, 32), n_outputs=10)   # doctest: +SKIP
    >>> g.nodes[0].out_shape, g.nodes[0].note                   # doctest: +SKIP
    ((512,), 'resnet18 · random init · frozen: stem..layer3')
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from dltoolkit.errors import DLToolkitError, SpecError, message, unknown

GROUP_ATTR = "_dltoolkit_group"  # set to "backbone" on a backbone's parameters (see train.optim)
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


class WeightsError(DLToolkitError, ValueError):
    """A backbone's weights file is missing, unreadable, or holds another architecture."""


class BackboneWarning(UserWarning):
    """A backbone is used in a way that works but probably not as meant (images far smaller than its weights')."""


@dataclass(frozen=True)
class Family:
    """How one torchvision family splits into stages and where its final classifier layer sits."""

    name: str
    stages: tuple[tuple[str, tuple[str, ...]], ...]  # stage name -> module paths in the torchvision model
    classifier: str  # path of the Linear that is removed
    min_side: int = 1  # the smallest input height/width the architecture runs on


def _features(groups: dict[str, range], last: int, top: tuple[str, ...] = ()) -> tuple:
    stages = [(name, tuple(f"features.{i}" for i in idx)) for name, idx in groups.items()]
    return (*stages, ("top", (f"features.{last}", *top)))


_RESNET = Family(
    "resnet",
    (("stem", ("conv1", "bn1")),) + tuple((f"layer{i}", (f"layer{i}",)) for i in range(1, 5)),
    "fc",
)
_EFFICIENTNET = Family(
    "efficientnet",
    _features({"stem": range(1)} | {f"stage{i}": range(i, i + 1) for i in range(1, 8)}, 8),
    "classifier.1",
)
_CONVNEXT = Family(
    "convnext",
    (
        ("stem", ("features.0",)),
        ("stage1", ("features.1",)),
        ("stage2", ("features.2", "features.3")),
        ("stage3", ("features.4", "features.5")),
        ("stage4", ("features.6", "features.7")),
        ("top", ("classifier.0",)),
    ),
    "classifier.2",
    min_side=32,  # a 4x4 stem and three 2x2 downsamplings
)
ARCHS: dict[str, Family] = {
    **{f"resnet{n}": _RESNET for n in (18, 34, 50, 101, 152)},
    "mobilenet_v3_small": Family(
        "mobilenet_v3",
        _features(
            {"stem": range(1), "stage1": range(1, 2), "stage2": range(2, 4)}
            | {"stage3": range(4, 9), "stage4": range(9, 12)},
            12,
            ("classifier.0",),
        ),
        "classifier.3",
    ),
    "mobilenet_v3_large": Family(
        "mobilenet_v3",
        _features(
            {"stem": range(2), "stage1": range(2, 4), "stage2": range(4, 7)}
            | {"stage3": range(7, 13), "stage4": range(13, 16)},
            16,
            ("classifier.0",),
        ),
        "classifier.3",
    ),
    **{f"efficientnet_b{n}": _EFFICIENTNET for n in range(5)},
    **{f"convnext_{size}": _CONVNEXT for size in ("tiny", "small", "base")},
}


def family(arch: str) -> Family:
    """The :class:`Family` of ``arch``; an unknown name lists the supported ones."""
    if arch not in ARCHS:
        raise unknown("backbone architecture", arch, ARCHS)
    return ARCHS[arch]


def stage_names(arch: str) -> list[str]:
    """The stage names ``freeze`` accepts for ``arch``, input to output."""
    return [name for name, _ in family(arch).stages]


# --------------------------------------------------------------------------- the module
class Backbone(nn.Module):
    """A torchvision model without its last classifier layer, with freezable stages.

    Args:
        arch: the torchvision architecture (a key of :data:`ARCHS`).
        body: the torchvision model, its classifier's last Linear already replaced by Identity.
        freeze: ``"all"``, ``"none"`` or the last stage to freeze.
        unfreeze_after: epochs after which every stage trains (None: never).
        weights: what the weights came from, for display (a weights name, a file, or None).
        preprocess: the weights' recommended preprocessing (see :func:`weights_preprocessing`).
    """

    def __init__(
        self,
        arch: str,
        body: nn.Module,
        freeze: str = "none",
        unfreeze_after: int | None = None,
        weights: str | None = None,
        preprocess: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.arch, self.body, self.family = arch, body, family(arch)
        self.freeze_spec, self.unfreeze_after = freeze, unfreeze_after
        self.weights, self.preprocess = weights, preprocess
        self._tag()
        self.frozen: list[str] = []
        self.freeze(freeze)

    def _tag(self) -> None:
        """Mark the parameters as the backbone's, for the optimizer's parameter groups."""
        for p in self.parameters():
            setattr(p, GROUP_ATTR, "backbone")

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._tag()  # a deep copy's parameters are new objects without the mark

    def stages(self) -> list[tuple[str, list[nn.Module]]]:
        return [(name, [self.body.get_submodule(p) for p in paths]) for name, paths in self.family.stages]

    def freeze(self, upto: str) -> None:
        """Freeze the stages up to and including ``upto`` (``"all"``/``"none"``); train the rest."""
        names = [name for name, _ in self.family.stages]
        if upto not in ("all", "none", *names):
            raise SpecError(
                message(
                    f"Unknown freeze value for the {self.arch} backbone",
                    upto,
                    f"'all', 'none' or a stage name: one of {names}",
                    f"Stages run input to output; freeze: {names[-2]} fixes {names[0]}..{names[-2]}.",
                )
            )
        last = len(names) if upto == "all" else 0 if upto == "none" else names.index(upto) + 1
        self.frozen = names[:last]
        for i, (_, modules) in enumerate(self.stages()):
            for module in modules:
                module.requires_grad_(i >= last)
        self.train(self.training)

    def unfreeze(self) -> None:
        """Make every stage trainable."""
        self.freeze("none")

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        if mode:  # frozen stages stay fixed functions: BN running statistics, no dropout
            for name, modules in self.stages():
                if name in self.frozen:
                    for module in modules:
                        module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.body(x)

    @property
    def trainable_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def note(self) -> str:
        """One line for tables and the graph picture: architecture, weights, frozen stages."""
        source = self.weights or "random init"
        if isinstance(source, str) and os.sep in source:
            source = Path(source).name
        frozen = "none" if not self.frozen else f"{self.frozen[0]}..{self.frozen[-1]}"
        if len(self.frozen) == len(self.family.stages):
            frozen = "all"
        text = f"{self.arch} · {source} · frozen: {frozen}"
        if self.unfreeze_after is not None and self.frozen:
            text += f" (until epoch {self.unfreeze_after})"
        return text

    def details(self) -> dict[str, Any]:
        """What the node is: architecture, weights, stages, frozen stages, the weights' preprocessing."""
        return {
            "arch": self.arch,
            "weights": self.weights,
            "stages": [name for name, _ in self.family.stages],
            "frozen": list(self.frozen),
            "unfreeze_after": self.unfreeze_after,
            "trainable_params": self.trainable_params,
            "preprocess": self.preprocess,
        }

    def extra_repr(self) -> str:
        return self.note


def backbones(model: nn.Module) -> list[Backbone]:
    """The :class:`Backbone` modules inside ``model``."""
    return [m for m in model.modules() if isinstance(m, Backbone)]


# --------------------------------------------------------------------------- building
def build(
    in_shape: tuple[int, ...],
    arch: str,
    weights: str | None,
    freeze: str,
    unfreeze_after: int | None,
    pretrained: bool = True,
) -> Backbone:
    """The :class:`Backbone` for one node (see :func:`dltoolkit.graph.layers.backbone`)."""
    from dltoolkit._extras import require
    from dltoolkit._vision import torchvision

    fam = family(arch)
    _check_input(arch, fam, in_shape)
    count = isinstance(unfreeze_after, int) and not isinstance(unfreeze_after, bool) and unfreeze_after >= 0
    if unfreeze_after is not None and (not count or freeze == "none"):
        raise SpecError(
            message(
                "unfreeze_after of a backbone needs frozen stages and a count of epochs",
                {"freeze": freeze, "unfreeze_after": unfreeze_after},
                "freeze: all (or a stage) with unfreeze_after: 0 or more epochs",
                "Set freeze, or remove unfreeze_after.",
            )
        )
    require("vision", f"the backbone op ({arch})")
    tv = torchvision()
    # the graph's size check (on the meta device) and a model whose trained weights are loaded
    # next (a bundle) need no weights file
    needed = pretrained and torch.get_default_device().type != "meta"
    source = resolve_weights(arch, weights, tv, needed) if weights else None
    state = load_weights(source[0]) if source and needed else None
    body = _body(tv, arch, fam, state, str(source[0]) if source else "")
    label = source[1].split(".")[-1] if source and source[1] else weights
    preprocess = weights_preprocessing(source[1]) if source and source[1] else None
    if state is not None and preprocess:
        assert label is not None  # weights loaded: weights (and so label) was given
        _warn_small(arch, label, in_shape, preprocess)
    return Backbone(arch, body, freeze, unfreeze_after, label, preprocess)


def _check_input(arch: str, fam: Family, shape: tuple[int, ...]) -> None:
    from dltoolkit.graph.layers import ShapeMismatch

    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ShapeMismatch(
            f"expects images of shape (3, height, width) (or (1, height, width), repeated to 3 "
            f"channels); received {tuple(shape)}. Set preprocess.shape, e.g. [3, 32, 32]"
        )
    if min(shape[1:]) < fam.min_side:
        raise ShapeMismatch(
            f"{arch} needs images of at least {fam.min_side}x{fam.min_side}; received "
            f"{shape[1]}x{shape[2]}. Resize the images up (its pretrained weights saw 224x224)"
        )


def _body(tv, arch: str, fam: Family, state: dict[str, torch.Tensor] | None, file: str) -> nn.Module:
    """The torchvision model without its last classifier layer, holding ``state`` when given."""
    builder = tv.models.get_model_builder(arch)
    if state is None:
        body = builder(weights=None)
        _drop_classifier(body, fam)
        return body
    with torch.device("meta"):  # no random initialisation: every value comes from the file
        body = builder(weights=None)
    _drop_classifier(body, fam)
    body.to_empty(device="cpu")
    _load_into(body, state, arch, file)
    return body


def _drop_classifier(body: nn.Module, fam: Family) -> None:
    parent, _, leaf = fam.classifier.rpartition(".")
    setattr(body.get_submodule(parent) if parent else body, leaf, nn.Identity())


# --------------------------------------------------------------------------- weights
def resolve_weights(arch: str, weights: str, tv=None, need_file: bool = True) -> tuple[Path, str | None]:
    """``(file, weights enum name or None)`` for a backbone's ``weights`` attribute.

    A value that names a file (a path separator or a weights suffix) is that file;
    ``recipe:<name>`` is the backbone of a bundled recipe, trained on first use
    (:mod:`dltoolkit.recipes.pretrained`); otherwise it is a torchvision weights name of ``arch``
    looked up in the torch hub cache. Nothing is downloaded.

    Raises:
        WeightsError: the file is missing (when ``need_file``), or the name is not a weights name
            of ``arch``.
    """
    tv = tv or _tv()
    text = str(weights)
    if text.startswith("recipe:"):  # weights the package makes: see dltoolkit.recipes.pretrained
        from dltoolkit.recipes.pretrained import weights_file

        name = text.removeprefix("recipe:")
        return (weights_file(name) if need_file else Path(f"{name}.pt")), None
    if os.sep in text or "/" in text or text.endswith(WEIGHT_SUFFIXES) or Path(text).expanduser().is_file():
        path = Path(text).expanduser()
        if need_file and not path.is_file():
            raise WeightsError(
                message(
                    f"Backbone weights file not found for {arch}",
                    str(path),
                    "an existing file holding a state dict of the architecture (torch.save(model.state_dict()))",
                    "Check the path (a relative path is taken from the working directory: prefer an absolute one).",
                )
            )
        return path, _enum_of_file(tv, arch, path.name)
    enum = _weights_enum(tv, arch, text)
    file = cache_path(enum)
    if need_file and not file.is_file():
        raise WeightsError(
            message(
                f"The pretrained weights {enum!r} are not in the local torch cache (dltoolkit never downloads)",
                str(file),
                f"the file {file.name} in {file.parent}",
                f"Put it there: download {enum.url} on a machine with network access and copy it to "
                f"{file} (or set TORCH_HOME to a folder holding hub/checkpoints/{file.name}), "
                "or set weights: to the path of a local file.",
            )
        )
    return file, f"{type(enum).__name__}.{enum.name}"


def cache_path(enum) -> Path:
    """Where torchvision keeps the file of a weights enum: ``torch.hub.get_dir()/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(enum.url).path)


def _weights_enum(tv, arch: str, name: str):
    enum_cls = tv.models.get_model_weights(arch)
    prefix, _, value = name.rpartition(".")
    choices = [f"{enum_cls.__name__}.{w.name}" for w in enum_cls] + [f"{enum_cls.__name__}.DEFAULT"]
    if prefix and prefix != enum_cls.__name__:
        raise WeightsError(
            message(
                f"The weights {name!r} are not weights of {arch}",
                name,
                f"one of {choices} (or the part after the dot), or a local file path",
                f"Use {arch}'s own weights, or change arch to the architecture of {prefix}.",
            )
        )
    try:
        return enum_cls[value]
    except KeyError:
        raise WeightsError(
            message(
                f"Unknown weights name for {arch}",
                name,
                f"one of {choices}, or a local file path (a state dict of {arch})",
            )
        ) from None


def _enum_of_file(tv, arch: str, filename: str):
    """The weights enum name whose torchvision file is called ``filename`` (None when none is)."""
    for enum in tv.models.get_model_weights(arch):
        if cache_path(enum).name == filename:
            return f"{type(enum).__name__}.{enum.name}"
    return None


def weights_preprocessing(name: str) -> dict[str, Any]:
    """The preprocessing torchvision's weights ``name`` expect (their ``transforms()``).

    Example:
        >>> weights_preprocessing("ResNet18_Weights.IMAGENET1K_V1")["crop"]   # doctest: +SKIP
        224
    """
    tv = _tv()
    preset = tv.models.get_weight(name).transforms()
    return {
        "resize": int(preset.resize_size[0]),
        "crop": int(preset.crop_size[0]),
        "mean": [float(v) for v in preset.mean],
        "std": [float(v) for v in preset.std],
        "interpolation": str(preset.interpolation.value),
    }


def _tv():
    from dltoolkit._vision import torchvision

    return torchvision()


_warned: set[tuple] = set()


def _warn_small(arch: str, label: str, shape: tuple[int, ...], pre: dict[str, Any]) -> None:
    key = (arch, label, tuple(shape))
    if min(shape[1:]) * 2 > pre["crop"] or key in _warned:
        return
    _warned.add(key)
    warnings.warn(
        f"The {arch} backbone with {label} weights gets {shape[1]}x{shape[2]} images; its weights were "
        f"trained on {pre['crop']}x{pre['crop']} crops (resize {pre['resize']}, {pre['interpolation']}; "
        f"mean {pre['mean']}, std {pre['std']}). Pretrained features of much smaller images are weaker: "
        "resize the images up and normalise them with that mean and std to match.",
        BackboneWarning,
        stacklevel=2,
    )


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated file, a pickled model (not a state dict), not a torch file...
        first = str(e).splitlines()[0] if str(e) else ""
        raise WeightsError(
            message(
                "Cannot read the backbone weights file",
                f"{path}: {type(e).__name__}: {first}"[:400],
                "a state dict saved with torch.save(model.state_dict(), path)",
                "Save the state dict, not the model object, and check the file is complete.",
            )
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # a Lightning checkpoint
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(
            message(
                "The backbone weights file holds no state dict",
                f"{path}: {type(obj).__name__}",
                "a mapping of parameter names to tensors (torch.save(model.state_dict(), path))",
            )
        )
    return obj


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (cached per file version; callers copy, never modify it)."""
    stat = Path(path).stat()
    return _read(str(path), stat.st_mtime_ns, stat.st_size)


def _load_into(body: nn.Module, state: dict[str, torch.Tensor], arch: str, file: str) -> None:
    """Copy ``state`` into ``body`` (the classifier's last layer ignored); anything else is an error."""
    want = body.state_dict()
    prefix = _prefix(state, want)
    head = ARCHS[arch].classifier + "."
    got = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    got = {k: v for k, v in got.items() if not k.startswith(head)}
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    shapes = [k for k in want if k in got and got[k].shape != want[k].shape]
    if missing or extra or shapes:
        raise WeightsError(
            message(
                f"The weights file does not hold a {arch} state dict",
                f"{file}: {_difference(missing, extra, shapes, got, want)}",
                f"the state dict of torchvision's {arch} (its classifier's last layer may differ)",
                f"{_guess(state, arch)}Use a file saved from {arch}, or set arch to the file's architecture.",
            )
        )
    body.load_state_dict(got, strict=True)


def _prefix(state: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> str:
    """The prefix the file nests the architecture's keys under ('' for a plain state dict)."""
    first = next(iter(want))
    if first in state:
        return ""
    nested = [k[: -len(first)] for k in state if k.endswith("." + first)]
    return min(nested, key=len) if nested else ""


def _difference(missing: list, extra: list, shapes: list, got: dict, want: dict) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} keys missing (e.g. {missing[:2]})")
    if extra:
        parts.append(f"{len(extra)} unexpected keys (e.g. {extra[:2]})")
    if shapes:
        k = shapes[0]
        parts.append(
            f"{len(shapes)} with another shape (e.g. {k}: {tuple(got[k].shape)} in the file, "
            f"{tuple(want[k].shape)} in {k.split('.')[0]})"
        )
    return "; ".join(parts)


def _guess(state: dict[str, torch.Tensor], arch: str) -> str:
    """'It looks like a <arch> state dict. ' when another supported architecture fits the file."""
    tv = _tv()
    for other, fam in ARCHS.items():
        if other == arch:
            continue
        with torch.device("meta"):
            body = tv.models.get_model_builder(other)(weights=None)
        _drop_classifier(body, fam)
        want = body.state_dict()
        prefix = _prefix(state, want)
        head = fam.classifier + "."
        keys = {
            k[len(prefix) :] for k in state if k.startswith(prefix) and not k[len(prefix) :].startswith(head)
        }
        if keys == set(want) and all(state[prefix + k].shape == want[k].shape for k in keys):
            return f"It looks like a {other} state dict. "
    return ""
