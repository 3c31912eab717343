"""Sample table files the package writes itself: a generated credit-scoring table as Parquet shards.

A name of :data:`SAMPLE_TABLES` in ``data.source`` (e.g. ``credit_shards``, the ``credit-parquet``
recipe's source) stands for a folder of Parquet shards under :func:`data_home`, written on first
use (atomically: a folder is complete or absent) and read from there afterwards.

Example:
    >>> folder = write_credit_shards("data/credit", rows=10_000, shards=4)   # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())[:2]                        # doctest: +SKIP
    ['part-00000.parquet', 'part-00001.parquet']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from dltoolkit._files import atomic_dir
from dltoolkit.registry import Registry

SAMPLE_TABLES: Registry[Callable[[Path], Path]] = Registry("sample table")


def data_home() -> Path:
    """Where sample files are written: ``data/`` in dltoolkit's cache folder (``$DLTOOLKIT_CACHE``, else
    ``~/.cache/dltoolkit``; see :func:`dltoolkit.datasets.cache_dir`)."""
    from dltoolkit.data.images.samples import cache_dir

    return cache_dir() / "data"


def sample_path(name: str) -> Path:
    """The folder of sample table ``name``, written on first use."""
    folder = data_home() / name
    if not folder.is_dir():
        SAMPLE_TABLES.get(name)(folder)
    return folder


def credit_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """A generated credit-scoring table: applicants' numbers and categories, ``default`` 0/1.

    The default probability is a fixed nonlinear function of the columns plus noise, so a model can
    learn it; about 10% of ``income`` and 5% of ``employment`` are missing.
    """
    rng = np.random.default_rng(seed)
    age = rng.integers(19, 75, rows).astype(np.float64)
    income = np.round(rng.lognormal(10.3, 0.5, rows), -1)
    debt = np.round(income * rng.beta(2, 5, rows) * 1.5, -1)
    months = rng.integers(0, 240, rows).astype(np.float64)
    late = rng.poisson(0.4, rows).astype(np.float64)
    amount = np.round(rng.lognormal(9.0, 0.7, rows), -1)
    purpose = rng.choice(
        ["car", "home", "education", "business", "other"], rows, p=[0.3, 0.25, 0.15, 0.1, 0.2]
    )
    employment = rng.choice(
        ["salaried", "self-employed", "unemployed", "retired"], rows, p=[0.6, 0.2, 0.1, 0.1]
    )
    region = rng.choice([f"r{i}" for i in range(8)], rows)
    logit = (
        -1.0
        + 3.0 * (debt / income)
        + 0.8 * late
        - 0.004 * months
        + 0.35 * np.log(amount / income * 10)
        + np.where(employment == "unemployed", 1.2, 0.0)
        + np.where(purpose == "business", 0.6, 0.0)
        - 0.02 * np.abs(age - 45)
    )
    default = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "debt": debt,
            "months_employed": months,
            "late_payments": late,
            "amount": amount,
            "purpose": purpose,
            "employment": employment,
            "region": region,
            "default": default,
        }  # fmt: skip
    )
    frame.loc[rng.random(rows) < 0.10, "income"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "employment"] = None
    return frame


def write_credit_shards(
    root: str | os.PathLike, rows: int = 60_000, shards: int = 8, row_group: int = 2_500, seed: int = 0
) -> Path:
    """Write :func:`credit_table` as ``shards`` Parquet files of row groups of ``row_group`` rows.

    The folder is written beside ``root`` and renamed into place: it is complete or absent.
    """
    root = Path(root)
    frame = credit_table(rows, seed)
    with atomic_dir(root) as tmp:
        for i, part in enumerate(np.array_split(np.arange(rows), shards)):
            frame.iloc[part].to_parquet(tmp / f"part-{i:05d}.parquet", row_group_size=row_group, index=False)
    return root


@SAMPLE_TABLES.register("credit_shards")
def _credit_shards(folder: Path) -> Path:
    """60 000 generated credit applications in 8 Parquet shards (see :func:`credit_table`)."""
    return write_credit_shards(folder)
