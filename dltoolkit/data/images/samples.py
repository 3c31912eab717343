"""A small labelled image folder written from scikit-learn's 8x8 digits (offline, deterministic).

Example:
    >>> root = write_digits_folder("data/digits-folder", per_class=20)   # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())[:3]                       # doctest: +SKIP
    ['0', '1', '2']
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("png", "jpeg", "webp")


def digit_images(per_class: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 ``(n, 8, 8)`` digits (0-255) and their labels 0-9, up to ``per_class`` each."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(images))
    if per_class is not None:
        order = np.concatenate([order[bunch.target[order] == c][:per_class] for c in range(10)])
    return images[order], bunch.target[order]


def write_digits_folder(
    root: str | os.PathLike,
    per_class: int | None = 30,
    *,
    sizes: tuple[int, ...] = (16, 24, 32),
    formats: tuple[str, ...] = FORMATS,
    rgb_share: float = 0.5,
    seed: int = 0,
    manifest: bool = False,
) -> Path:
    """Write digits as image files in the ImageFolder layout ``root/<digit>/<n>.<format>``.

    The images vary as real folders do: each is upscaled to one of ``sizes`` (square), saved in one
    of ``formats``, as grayscale or (a ``rgb_share`` of them) as a tinted RGB image.

    Args:
        root: The folder to create (files already there are replaced).
        per_class: Images per digit (None: all 1797).
        manifest: Also write ``root/manifest.csv`` with columns ``path`` (relative), ``target``
            (the digit) and ``value`` (the digit as a number plus noise, for regression).

    Returns:
        ``root`` as a Path.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    images, labels = digit_images(per_class, seed)
    rows = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        size, fmt = int(rng.choice(sizes)), str(rng.choice(formats))
        picture = Image.fromarray(image, "L").resize((size, size), Image.Resampling.BILINEAR)
        if rng.random() < rgb_share:
            tint = rng.uniform(0.6, 1.0, 3)
            rgb = np.asarray(picture, dtype=np.float64)[..., None] * tint
            picture = Image.fromarray(rgb.astype(np.uint8), "RGB")
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{i:05d}.{'jpg' if fmt == 'jpeg' else fmt}"
        picture.save(folder / name, format=fmt.upper(), **({"quality": 95} if fmt == "jpeg" else {}))
        rows.append({"path": f"{label}/{name}", "target": int(label), "value": label + rng.normal(0, 0.1)})
    if manifest:
        pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root
