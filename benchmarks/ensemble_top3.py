"""The digits-mlp sweep's top-3 ensemble against its best single trial, on the test split.

    python benchmarks/ensemble_top3.py [--samples 8]

Runs the recipe's own sweep (ASHA, at most 10 epochs per trial) on a local Ray, then averages
the probabilities of the three best trials (each at its best epoch) and, as a second ensemble,
greedy selection on the validation split; prints test accuracy and macro F1 of each.
"""

from __future__ import annotations

import argparse
import tempfile

from dltoolkit.deploy import evaluate_ensemble, greedy_selection, raw_split
from dltoolkit.tune import sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = sweep("digits-mlp", samples=args.samples, scheduler="asha", out=tmp)
        models = result.top_models(3)
        spec = models[0].spec
        X_test, y_test = raw_split(spec, "test")
        X_val, y_val = raw_split(spec, "val")
        rows = {f"trial #{i + 1}": m.metrics for i, m in enumerate(models)}
        rows["top-3 average"] = evaluate_ensemble(result.ensemble(3), X_test, y_test)
        rows["greedy (top 3)"] = evaluate_ensemble(
            greedy_selection(models, X_val, y_val, rounds=10), X_test, y_test
        )
    for name, metrics in rows.items():
        print(f"{name:<16} accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}")


if __name__ == "__main__":
    main()
