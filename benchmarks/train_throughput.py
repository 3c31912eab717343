"""Training steps per second: dltoolkit (Lightning) against a hand-written PyTorch loop.

Same model (the compiled graph of the recipe), same data (the recipe's prepared training and
validation split), same batch size, same torch thread count, same epochs with a validation pass
per epoch, measured in the same run. Prints the ratio dltoolkit / plain for each recipe.

    python benchmarks/train_throughput.py [--epochs 15] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from dltoolkit.data import prepare
from dltoolkit.graph import Graph
from dltoolkit.recipes import load_recipe
from dltoolkit.train.fit import TensorBatches, fit
from dltoolkit.train.module import TaskModule
from dltoolkit.train.optim import make_optimizer

TARGETS = {"digits-mlp": 0.6, "digits-cnn": 0.85}


def plain_loop(spec, graph, data, epochs: int) -> float:
    """The baseline: a textbook loop over shuffled tensor batches, with a validation pass per epoch."""
    torch.manual_seed(spec.train.seed)
    model = graph.compile()
    helper = TaskModule(spec, model, graph.n_outputs or 1, 1)  # only for its loss function
    opt = make_optimizer(spec.train.optimizer, model.parameters())
    batches = TensorBatches(data.X_train, data.y_train, spec.train.batch_size, shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for x, y in batches:
            opt.zero_grad(set_to_none=True)
            loss = helper.loss(model(x), y)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            helper.loss(model(data.X_val), data.y_val).item()
    return epochs * len(batches) / (time.perf_counter() - start)


def dltoolkit_fit(spec, graph, data, epochs: int) -> float:
    spec = spec.with_values({"train.epochs": epochs, "train.early_stopping": None})
    steps = epochs * len(TensorBatches(data.X_train, data.y_train, spec.train.batch_size))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fit(spec, graph, data, tmp)
        return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for recipe, target in TARGETS.items():
        spec = load_recipe(recipe)
        torch.set_num_threads(spec.train.threads or 1)
        data = prepare(spec)
        graph = Graph(
            spec.graph,
            data.input_shape,
            data.input_dtype,
            data.n_outputs,
            {"vocab_size": getattr(data.preprocessor, "vocab_size_", None)},
        )
        # interleaved pairs: on a shared machine the speed drifts by 10-20% within seconds, and a
        # side measured in one block would meet a different machine than the other
        pairs = [
            (plain_loop(spec, graph, data, args.epochs), dltoolkit_fit(spec, graph, data, args.epochs))
            for _ in range(args.repeats)
        ]
        plain, ours = max(p for p, _ in pairs), max(o for _, o in pairs)
        ratios = sorted(o / p for p, o in pairs)
        print(
            f"{recipe}: batch {spec.train.batch_size}, {torch.get_num_threads()} thread(s): "
            f"plain {plain:.0f} steps/s, dltoolkit {ours:.0f} steps/s (best of {args.repeats}), "
            f"ratio {ours / plain:.2f}x; median of the {args.repeats} interleaved pairs "
            f"{statistics.median(ratios):.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}) (target >= {target}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
