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


# ------------------------------------------------------------------ write_image_folder
KINDS = ("digits", "shapes")
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")


def write_image_folder(
    root: str | os.PathLike,
    kind: str = "digits",
    size: int = 32,
    per_class: int | None = 100,
    seed: int = 0,
    mode: str = "RGB",
) -> Path:
    """Write a small labelled image set as PNG files in the ImageFolder layout ``root/<class>/<n>.png``.

    Atomic: the files are written into a temporary folder beside ``root`` that then replaces it
    whole, so ``root`` is never half-written (an existing ``root`` is replaced).

    Args:
        root: The folder to create.
        kind: ``"digits"``: scikit-learn's 8x8 handwritten digits (classes ``0``..``9``, at most
            174 per class) upscaled to ``size`` x ``size``, drawn in a random colour on a random
            darker background in RGB mode; ``"shapes"``: a filled or outlined shape (one class each
            of :data:`SHAPES`) at a random position, size and colour on a random background, with
            Gaussian noise.
        size: Side of the square images in pixels (at least 8).
        per_class: Images per class (None: every digit; shapes need a number).
        seed: Seed of every random choice: the same arguments write the same files.
        mode: ``"RGB"`` or ``"L"`` (grayscale).

    Returns:
        ``root`` as a Path.

    Example:
        >>> import tempfile
        >>> root = write_image_folder(tempfile.mkdtemp() + "/shapes", "shapes", per_class=2)
        >>> sorted(p.name for p in root.iterdir())
        ['circle', 'cross', 'diamond', 'ring', 'square', 'triangle']
    """
    from dltoolkit._files import atomic_dir

    _check_args(kind, size, per_class, mode)
    images, labels, classes = _render(kind, size, per_class, seed, mode)
    with atomic_dir(root) as tmp:
        _save_pngs(tmp, images, labels, classes, mode)
    return Path(root)


def _check_args(kind: str, size: int, per_class: int | None, mode: str) -> None:
    from dltoolkit.errors import DataError, message

    problems = [
        (kind not in KINDS, "kind", kind, f"one of {list(KINDS)}"),
        (not isinstance(size, int) or size < 8, "size", size, "a whole number of pixels, at least 8"),
        (mode not in ("RGB", "L"), "mode", mode, "'RGB' or 'L'"),
        (
            per_class is not None and (not isinstance(per_class, int) or per_class < 1),
            "per_class",
            per_class,
            "a positive whole number (or None: every digit)",
        ),
        (kind == "shapes" and per_class is None, "per_class", per_class, "a number of images for shapes"),
    ]
    for bad, name, value, expected in problems:
        if bad:
            raise DataError(message(f"Invalid {name} for write_image_folder", value, expected))


def _render(kind: str, size: int, per_class: int | None, seed: int, mode: str):
    """``(images, labels, class names)``: uint8 ``(n, size, size, 3)`` RGB images and class indices."""
    rng = np.random.default_rng(seed)
    if kind == "shapes":
        assert per_class is not None  # _check_args requires a number for shapes
        labels = np.repeat(np.arange(len(SHAPES)), per_class)
        return np.stack([_shape(int(c), size, rng) for c in labels]), labels, SHAPES
    from PIL import Image

    digits, labels = digit_images(per_class, seed)
    out = []
    for image in digits:
        gray = np.asarray(Image.fromarray(image, "L").resize((size, size), Image.Resampling.BICUBIC))
        ink = gray[..., None].astype(np.float64) / 255
        if mode == "RGB":
            fg, bg = rng.uniform(0.5, 1.0, 3), rng.uniform(0.0, 0.35, 3)
            out.append(np.round(255 * (ink * fg + (1 - ink) * bg)).astype(np.uint8))
        else:
            out.append(np.repeat(gray[..., None], 3, axis=2))
    return np.stack(out), labels, tuple(str(d) for d in range(10))


def _shape(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One shape image: drawn at 4x with Pillow, downsampled (anti-aliased), Gaussian noise added."""
    from PIL import Image, ImageDraw

    big = 4 * size
    background = tuple(int(v) for v in rng.integers(0, 120, 3))
    colour = tuple(int(v) for v in rng.integers(130, 256, 3))
    picture = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(picture)
    radius = rng.uniform(0.18, 0.38) * big
    cx, cy = rng.uniform(radius + 2, big - radius - 2, 2)
    width = max(2, round(radius / 4))
    box = [cx - radius, cy - radius, cx + radius, cy + radius]
    name = SHAPES[label]
    if name == "circle":
        draw.ellipse(box, fill=colour)
    elif name == "ring":
        draw.ellipse(box, outline=colour, width=width)
    elif name == "square":
        draw.rectangle(box, fill=colour)
    elif name == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    elif name == "diamond":
        draw.polygon(
            [(cx, cy - radius), (cx + radius, cy), (cx, cy + radius), (cx - radius, cy)], fill=colour
        )
    else:  # cross
        draw.rectangle([cx - radius, cy - width, cx + radius, cy + width], fill=colour)
        draw.rectangle([cx - width, cy - radius, cx + width, cy + radius], fill=colour)
    small = np.asarray(picture.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)
    return np.clip(small + rng.normal(0, 12, small.shape), 0, 255).astype(np.uint8)


def _save_pngs(folder: Path, images: np.ndarray, labels: np.ndarray, classes, mode: str) -> None:
    from PIL import Image

    for name in classes:
        (folder / name).mkdir()
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        picture = Image.fromarray(image, "RGB")
        picture = picture.convert("L") if mode == "L" else picture
        picture.save(folder / classes[label] / f"{i:05d}.png", format="PNG")


# ------------------------------------------------------------------ cached sets for data.source
IMAGE_SETS = {"digits_folder": "digits", "shapes_folder": "shapes"}  # data.source name -> kind
SET_DEFAULTS = {"size": 32, "per_class": 100, "seed": 0, "mode": "RGB"}
CACHE_ENV = "DLTOOLKIT_CACHE"  # the cache folder; default: $XDG_CACHE_HOME/dltoolkit or ~/.cache/dltoolkit


def cache_dir() -> Path:
    """The folder where dltoolkit keeps what it writes on first use (image sets, made weights)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "dltoolkit"


def image_set(name: str, options: dict | None = None) -> Path:
    """The folder of the image set ``name`` (a key of :data:`IMAGE_SETS`), written on first use.

    The folder is ``cache_dir()/images/<name>-<size>-<mode>-<per_class>-<seed>``: the same options
    always give the same files, written once (atomically: a temporary folder renamed into place; a
    process that loses the race to write it uses the winner's folder).

    Raises:
        UnknownNameError: ``name`` is not an image set.
        DataError: an unknown or invalid option.
    """
    from dltoolkit.data.datasets import _options
    from dltoolkit.errors import unknown

    if name not in IMAGE_SETS:
        raise unknown("image set", name, list(IMAGE_SETS))
    opts = _options(name, dict(options or {}), SET_DEFAULTS)
    kind = IMAGE_SETS[name]
    _check_args(kind, opts["size"], opts["per_class"], opts["mode"])
    root = cache_dir() / "images" / f"{name}-{opts['size']}-{opts['mode']}-{opts['per_class']}-{opts['seed']}"
    if not root.is_dir():
        _write_once(root, kind, opts)
    return root


def _write_once(root: Path, kind: str, opts: dict) -> None:
    import shutil
    import tempfile

    from dltoolkit._files import _publish

    root.parent.mkdir(parents=True, exist_ok=True)
    images, labels, classes = _render(kind, opts["size"], opts["per_class"], opts["seed"], opts["mode"])
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-"))
    try:
        _save_pngs(tmp, images, labels, classes, opts["mode"])
        _publish(tmp, directory=True)
        os.rename(tmp, root)  # fails when another process wrote it first: then use theirs
    except OSError:
        if not root.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
