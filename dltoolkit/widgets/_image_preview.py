"""What the data panel shows for an image source: thumbnails per class with counts, and augmentations.

Plain functions over the file list (``path`` and the target, from
:func:`dltoolkit.data.images.source.image_files`), returning escaped HTML with inline PNG
thumbnails; no widget logic, so tests call them directly.

Example:
    >>> html = thumbnails_html(files, "target", per_class=6)   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import torch

from dltoolkit._html import esc
from dltoolkit.data.images.source import PATH
from dltoolkit.spec import Spec

THUMB = 64  # largest side of a thumbnail, in pixels


def _png(image: np.ndarray | str, title: str = "") -> str:
    """An ``<img>`` of a file (shrunk to THUMB) or a uint8 ``(H, W)``/``(H, W, 3)`` array (scaled up)."""
    from PIL import Image

    if isinstance(image, str):
        with Image.open(image) as opened:
            picture = opened.convert("RGB")
            picture.thumbnail((THUMB, THUMB))
    else:
        picture = Image.fromarray(image)
        scale = max(1, THUMB // max(picture.size))
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}" title="{esc(title)}" style="margin:1px;image-rendering:pixelated">'


def thumbnails_html(files: pd.DataFrame, target: str, per_class: int = 8, classes: int = 20) -> str:
    """One row per class (up to ``classes``): its name, its image count, its first ``per_class`` images.

    A regression manifest has no classes: its first images are shown with their target values.
    """
    rows = []
    if pd.api.types.is_float_dtype(files[target]):
        cells = "".join(
            _png(p, f"{target} = {v:.4g}") for p, v in files[[PATH, target]].head(per_class * 2).to_numpy()
        )
        return f'<div class="dlt-thumbnails">{cells}</div>'
    counts = files[target].astype(str).value_counts().sort_index()
    for label, count in list(counts.items())[:classes]:
        paths = files.loc[files[target].astype(str) == label, PATH].head(per_class)
        images = "".join(_png(p, p) for p in paths)
        rows.append(
            f'<div class="dlt-thumb-row"><b>{esc(label)}</b> ({count:,} images) <div>{images}</div></div>'
        )
    if len(counts) > classes:
        rows.append(f"<div>... and {len(counts) - classes} more classes</div>")
    return f'<div class="dlt-thumbnails">{"".join(rows)}</div>'


def augmented_html(spec: Spec, files: pd.DataFrame, images: int = 3, draws: int = 4, seed: int = 0) -> str:
    """A few images as decoded and resized, then ``draws`` random training versions of each.

    Shown before normalisation, so the pictures look like images; without per-image augmentation
    the deterministic input is all there is to show (and the text says so).
    """
    from dltoolkit.data.images.transform import ImagePreprocessor, load_image

    pre = ImagePreprocessor.from_spec(spec)
    channels = pre.config.channels
    pre.fit_statistics([0.0] * channels, [1.0] * channels)  # identity normalisation: [0, 1] pictures
    augment = spec.preprocess.augment
    random = augment.per_image()
    step = pre.train_transform(augment) if random else pre.scaled()
    torch.manual_seed(seed)
    rows = []
    for path in files[PATH].head(images):
        image = load_image(path, channels)
        shown = [pre.scaled()(image)] + ([step(image) for _ in range(draws)] if random else [])
        cells = "".join(
            _png(_to_uint8(x), "model input" if i == 0 else "augmented") for i, x in enumerate(shown)
        )
        rows.append(f"<div>{cells}</div>")
    note = "" if random else "<div>No per-image augmentation set (preprocess.augment).</div>"
    return f'<div class="dlt-augmented">{note}{"".join(rows)}</div>'


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    array = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return array[0].numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()


def summary(files: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """What the source holds: images, classes, file formats, and the model's input shape."""
    from dltoolkit.data.images.transform import ImagePreprocessor

    formats = files[PATH].str.rsplit(".", n=1).str[-1].str.lower().value_counts()
    target = files[spec.task.target]
    rows = [
        ("images", f"{len(files):,}"),
        ("classes", "(regression)" if not spec.task.is_classification else f"{target.nunique():,}"),
        ("formats", ", ".join(f"{k} {v:,}" for k, v in formats.items())),
        ("model input", " x ".join(str(n) for n in ImagePreprocessor.from_spec(spec).input_shape)),
    ]
    return pd.DataFrame(rows, columns=["", "value"])
