"""Test scores of the bundled recipes: the default split, then mean and spread over five split seeds.

    python benchmarks/recipe_scores.py [recipe ...]

No seed picking: the default split uses each recipe's own seed (0); the spread uses split seeds 0-4
with the training seed left as it is.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

from dltoolkit.api import run
from dltoolkit.recipes import load_recipe, recipe_names

SCORE = {"regression": "r2"}


def score(recipe: str, seed: int | None = None) -> tuple[float, float]:
    spec = load_recipe(recipe)
    key = SCORE.get(spec.task.kind, "accuracy")
    overrides = {"data.split.seed": seed} if seed is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run(spec, out=tmp, overrides=overrides, plots=False)
        return result.metrics[key], time.perf_counter() - start


def main(names: list[str]) -> None:
    for name in names or recipe_names():
        spec = load_recipe(name)
        key = SCORE.get(spec.task.kind, "accuracy")
        value, seconds = score(name)
        line = f"{name:<22} {key} {value:.4f} (default split, {seconds:.1f} s)"
        if spec.data.split.test > 0:
            values = [score(name, seed)[0] for seed in range(5)]
            line += (
                f"; split seeds 0-4: mean {statistics.mean(values):.4f} sd {statistics.stdev(values):.4f} "
                f"min {min(values):.4f}"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
