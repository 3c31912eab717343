"""Data the package writes itself: labelled image folders for examples, recipes and tests.

* :func:`write_image_folder` writes digits (upscaled) or generated shapes as PNG files in the
  ImageFolder layout, atomically, deterministically from a seed;
* the image sets ``digits_folder`` and ``shapes_folder`` can be named as ``data.source``: their
  folder is written on first use into :func:`cache_dir` (``$DLTOOLKIT_CACHE``, else
  ``~/.cache/dltoolkit``) with ``data.options`` (``size``, ``per_class``, ``seed``, ``mode``),
  and :func:`image_set` returns it.

Example:
    >>> import tempfile
    >>> from dltoolkit.datasets import write_image_folder
    >>> root = write_image_folder(tempfile.mkdtemp() + "/digits", "digits", per_class=3)
    >>> len(list(root.glob("*/*.png")))
    30
"""

from __future__ import annotations

from dltoolkit.data.images.samples import (
    CACHE_ENV,
    IMAGE_SETS,
    SHAPES,
    cache_dir,
    image_set,
    write_image_folder,
)

__all__ = ["CACHE_ENV", "IMAGE_SETS", "SHAPES", "cache_dir", "image_set", "write_image_folder"]
