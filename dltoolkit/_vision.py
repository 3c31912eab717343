"""Import torchvision beside a CPU-only torch.

PyPI's torchvision wheels for x86_64 are built against CUDA torch: their C extension (``_C.so``) links
``libc10_cuda.so`` and fails to load beside a CPU build of torch. torchvision then runs without its
compiled ops (``nms``, ``roi_align``, ``deform_conv2d``: detection only, none used here) except for
one thing: ``torchvision._meta_registrations`` registers fake kernels for ``torchvision::nms`` and
``torchvision::qnms`` without checking that the ops exist, so ``import torchvision`` raises
``RuntimeError: operator torchvision::nms does not exist``.

:func:`prepare` defines those two schemas (no kernels) when, and only when, the extension cannot
load. torchmetrics and Lightning import torchvision themselves whenever it is installed, so
``import dltoolkit`` puts :class:`_Finder` first on ``sys.meta_path``: the first import of torchvision
in the process, by anyone, runs :func:`prepare` before it (without importing torch any earlier).
Calling ``torchvision.ops.nms`` in that state raises torch's "no kernel registered" error; models,
transforms and datasets work (``torchvision.io``'s decoders need the same extension: decode with Pillow).

Example:
    >>> tv = torchvision()   # doctest: +SKIP
    >>> tv.models.resnet18(weights=None)   # doctest: +SKIP
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
from pathlib import Path

from dltoolkit.errors import DLToolkitError, message

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_shim = None  # the torch.library.Library holding the schemas, kept alive for the process


class VisionUnavailableError(DLToolkitError, ImportError):
    """torchvision is missing or cannot be imported."""


def torchvision() -> types.ModuleType:
    """The ``torchvision`` module, imported so that it works beside a CPU-only torch."""
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "models"):
        return sys.modules["torchvision"]
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise VisionUnavailableError(
            message(
                "torchvision is not installed",
                "no module named torchvision",
                "torchvision, the release that pairs with the installed torch",
                "Install it beside torch 2.13: pip install torchvision==0.28.0",
            )
        )
    prepare()
    import torchvision as tv

    return tv


def prepare() -> None:
    """Define the schemas torchvision's import needs if its compiled extension cannot load."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    import torch

    if not _extension_loads(Path(next(iter(spec.submodule_search_locations)))):
        _define_schemas(torch)


class _Finder(importlib.abc.MetaPathFinder):
    """Runs :func:`prepare` at the first import of torchvision, then steps aside."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision":
            uninstall()
            try:
                prepare()
            except Exception:  # never break an import: torchvision then fails as it would have
                pass
        return None


_finder = _Finder()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` unless torchvision is already imported."""
    if "torchvision" not in sys.modules and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def _extension_loads(folder: Path) -> bool:
    import torch

    found = sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd"))
    if not found:
        return False
    try:
        torch.ops.load_library(str(found[0]))
    except (OSError, RuntimeError):
        return False
    return True


def _define_schemas(torch) -> None:
    global _shim
    if _shim is not None:
        return
    missing = [s for s in _SCHEMAS if not _has_op(torch, s.split("(")[0])]
    if not missing:
        return
    _shim = torch.library.Library("torchvision", "FRAGMENT")
    for schema in missing:
        _shim.define(schema)


def _has_op(torch, name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True
