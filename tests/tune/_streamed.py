"""Small streamed sources for the data-parallel tests: a Parquet table and an image folder, with specs
whose data.in_memory_mb (0) makes them stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dltoolkit.spec import Spec


def write_parquet_table(folder: Path, rows: int = 2400) -> Path:
    """Two Parquet shards of ``rows`` rows in row groups of 300: two numbers (one with gaps), a
    category and a learnable binary ``target``."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(0.0, 1.0, rows),
            "b": rng.integers(-5, 5, rows).astype(float),
            "color": rng.choice(["red", "green", "blue"], rows),
            "target": rng.integers(0, 2, rows),
        }
    )
    frame["a"] += frame["target"] * 2.0
    frame.loc[rng.random(rows) < 0.1, "b"] = np.nan
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(rows), 2)):
        frame.iloc[part].to_parquet(folder / f"part-{i}.parquet", row_group_size=300, index=False)
    return folder


def parquet_spec(folder: Path) -> Spec:
    return Spec.from_dict(
        {
            "name": "parquet-ddp",
            "task": {"kind": "binary", "target": "target"},
            "data": {
                "source": str(folder),
                "format": "table_files",
                "in_memory_mb": 0,  # below the table's size: streamed
                "workers": 0,
                "split": {"test": 0.2, "val": 0.15, "seed": 0},
            },
            "preprocess": {"scale": "standard", "impute": "median"},
            "graph": {"nodes": [{"name": "h", "op": "linear", "units": 8}, {"name": "act", "op": "relu"}]},
            "train": {"epochs": 1, "batch_size": 64, "seed": 0, "early_stopping": None},
        }
    )


def image_spec(folder: Path, augment: dict | None = None) -> Spec:
    return Spec.from_dict(
        {
            "name": "images-ddp",
            "task": {"kind": "multiclass"},
            "data": {
                "source": str(folder),
                "in_memory_mb": 0,  # streamed from the files
                "workers": 0,
                "split": {"test": 0.2, "val": 0.2, "seed": 0, "stratify": True},
            },
            "preprocess": {"image": {"channels": 3, "size": 16}, "augment": augment or {}},
            "graph": {
                "nodes": [
                    {"name": "conv", "op": "conv2d", "channels": 8, "kernel_size": 3},
                    {"name": "act", "op": "relu"},
                    {"name": "gap", "op": "global_avg_pool"},
                ]
            },
            "train": {"epochs": 1, "batch_size": 16, "seed": 0, "early_stopping": None},
        }
    )
