"""Training images/s from an image folder, streamed: dltoolkit against a hand-written torchvision loop.

    python benchmarks/image_throughput.py [--per-class 200] [--epochs 4] [--workers 1] [--models cnn,resnet18]

Writes digits as 32x32 RGB files (PNG/JPEG/WebP) into class folders, then trains each model (a
small CNN; resnet18 as a ``backbone`` node, randomly initialised, every stage training) for
``--epochs`` epochs twice, with the same batch size, workers, transform (decode with
Pillow, resize to 32x32, normalise) and split (dltoolkit's):

* dltoolkit: ``dltoolkit.run`` with ``data.in_memory_mb: 0`` (the images are decoded in DataLoader
  workers every epoch), validation on the validation split each epoch;
* baseline: ``torchvision.datasets.ImageFolder`` over the same training (and validation) files,
  ``DataLoader``, a plain PyTorch loop with the same optimizer, validating each epoch too.

Prints images/s over the epochs after the first (workers warm) and the ratio dltoolkit / baseline.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import dltoolkit
from dltoolkit.api import resolve_spec
from dltoolkit.data.images.prepare import split_files
from dltoolkit.data.images.samples import write_digits_folder

CNN = [
    {"name": "conv1", "op": "conv2d", "channels": 16, "kernel_size": 3},
    {"name": "act1", "op": "relu"},
    {"name": "pool1", "op": "maxpool2d", "kernel_size": 2},
    {"name": "conv2", "op": "conv2d", "channels": 32, "kernel_size": 3},
    {"name": "act2", "op": "relu"},
    {"name": "pool2", "op": "maxpool2d", "kernel_size": 2},
    {"name": "flat", "op": "flatten"},
]
GRAPHS = {"cnn": CNN, "resnet18": [{"name": "features", "op": "backbone", "arch": "resnet18"}]}


def dltoolkit_rate(spec, n_train: int, out: Path) -> float:
    stamps: list[float] = []
    dltoolkit.run(spec, out=out, plots=False, listeners=[lambda _row: stamps.append(time.perf_counter())])
    return n_train * (len(stamps) - 1) / (stamps[-1] - stamps[0])


def baseline_rate(spec, files: dict, epochs: int) -> float:
    from dltoolkit._vision import torchvision
    from dltoolkit.bundle import graph_for
    from dltoolkit.data import prepare

    tv = torchvision()
    from torchvision.transforms import v2

    data = prepare(spec)  # for the same normalisation and graph only
    pre = data.preprocessor
    transform = v2.Compose([v2.PILToTensor(), v2.Resize([32, 32], antialias=True),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(pre.mean_, pre.std_)])  # fmt: skip
    root = Path(spec.data.source)
    train_set, val_set = set(map(str, files["train"])), set(map(str, files["val"]))
    train = tv.datasets.ImageFolder(root, transform, is_valid_file=lambda p: p in train_set)
    val = tv.datasets.ImageFolder(root, transform, is_valid_file=lambda p: p in val_set)
    size, workers = spec.train.batch_size, spec.data.workers
    train_loader = torch.utils.data.DataLoader(
        train, size, shuffle=True, num_workers=workers, persistent_workers=True
    )
    val_loader = torch.utils.data.DataLoader(val, size, num_workers=workers, persistent_workers=True)
    model = graph_for(spec, pre, data.n_outputs).compile()
    opt = torch.optim.Adam(model.parameters(), lr=spec.train.optimizer.lr)
    stamps = []
    for _ in range(epochs):
        model.train()
        for x, y in train_loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for x, _y in val_loader:
                model(x)
        stamps.append(time.perf_counter())
    return len(train) * (len(stamps) - 1) / (stamps[-1] - stamps[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--models", default="cnn,resnet18", help=f"comma-separated, of {list(GRAPHS)}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        root = write_digits_folder(Path(tmp) / "digits", args.per_class, sizes=(32,), rgb_share=1.0)
        for model in args.models.split(","):
            spec = resolve_spec({
                "name": "throughput", "task": {"kind": "multiclass"},
                "data": {"source": str(root), "in_memory_mb": 0, "workers": args.workers},
                "preprocess": {"image": {"channels": 3, "size": 32}}, "graph": {"nodes": GRAPHS[model]},
                "train": {"epochs": args.epochs, "batch_size": 64, "early_stopping": None, "threads": 1},
            })  # fmt: skip
            files = split_files(spec)
            ours = dltoolkit_rate(spec, len(files["train"]), Path(tmp) / f"run-{model}")
            base = baseline_rate(spec, files, args.epochs)
            lines.append(
                f"{model}: dltoolkit {ours:.0f}, ImageFolder + DataLoader loop {base:.0f}, ratio {ours / base:.2f}"
            )
            print(lines[-1], flush=True)
    print(f"training images/s (epochs 2-{args.epochs}, {len(files['train'])} training images, "
          f"{args.workers} worker(s), batch 64, 1 thread):")  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
