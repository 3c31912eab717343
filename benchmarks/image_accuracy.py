"""Test accuracy of the image recipes against a plain torchvision loop on the same splits.

    python benchmarks/image_accuracy.py [--per-class 150] [--seeds 5] [--epochs N] [--pretrain-per-class 300]

Writes the digits image folder (``write_image_folder``, 32x32 RGB) and a shapes folder, pretrains
the ``shapes-resnet18`` recipe on the shapes once and saves its backbone as a state-dict file, then
for each split seed ``0 .. seeds-1`` (seed 0 is the recipes' default split) trains:

* ``digits-folder`` (a small CNN, rotation and crop augmentation) and ``digits-resnet18`` (that
  resnet18 fine-tuned: frozen, unfrozen after 3 epochs, backbone_lr) with ``dltoolkit.run``;
* the same models written out in plain PyTorch (an ``nn.Sequential`` CNN; torchvision's resnet18
  loading the same file, a dropout + linear head) trained by a hand-written loop over
  ``torchvision.datasets.ImageFolder`` + ``DataLoader`` on the same train/val/test files, with the
  same transforms (``transforms.v2``: rotation, random resized crop, normalisation by the training
  split's mean/std), optimizer, schedule, batch size, epochs, freezing schedule and the weights of
  the best validation-loss epoch, as dltoolkit keeps them.

Prints the test accuracy on the default split and the mean ± sd over the split seeds, per recipe.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import dltoolkit  # before torchvision (see dltoolkit._vision)
from dltoolkit.api import resolve_spec
from dltoolkit.data.images.prepare import split_files
from dltoolkit.datasets import write_image_folder
from dltoolkit.graph.backbones import backbones


def recipe_spec(name: str, root: Path, seed: int, epochs: int | None, weights: Path | None):
    values = {"data.source": str(root), "data.options": {}, "data.split.seed": seed}
    if epochs:
        values["train.epochs"] = epochs
    if weights is not None:
        values["graph.nodes.features.weights"] = str(weights)
    return resolve_spec(name, values)


def pretrain(root: Path, epochs: int | None, out: Path) -> Path:
    spec = resolve_spec("shapes-resnet18", {"data.source": str(root), "data.options": {}} | (
        {"train.epochs": epochs} if epochs else {}))  # fmt: skip
    result = dltoolkit.run(spec, out=out / "runs" / "shapes", plots=False)
    path = out / "shapes-resnet18.pt"
    torch.save(backbones(result.predictor.model)[0].body.state_dict(), path)
    print(f"pretrained resnet18 on shapes: test accuracy {result.metrics['accuracy']:.4f}", flush=True)
    return path


# ------------------------------------------------------------------ the plain torchvision loop
def plain_cnn(n_classes: int) -> nn.Module:
    def block(cin, cout, pool=True):
        layers = [nn.Conv2d(cin, cout, 3, padding="same"), nn.BatchNorm2d(cout), nn.ReLU()]
        return layers + ([nn.MaxPool2d(2)] if pool else [])

    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128, pool=False),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, n_classes))  # fmt: skip


def plain_resnet18(n_classes: int, weights: Path) -> tuple[nn.Module, nn.Module]:
    from torchvision.models import resnet18

    body = resnet18(weights=None)
    body.fc = nn.Identity()
    body.load_state_dict(torch.load(weights, weights_only=True))
    return nn.Sequential(body, nn.Dropout(0.2), nn.Linear(512, n_classes)), body


def plain_run(spec, files: dict, weights: Path | None) -> float:
    from torchvision import datasets
    from torchvision.transforms import v2

    torch.manual_seed(spec.train.seed)
    root, aug, opt_spec = Path(spec.data.source), spec.preprocess.augment, spec.train.optimizer
    roles = {role: set(map(str, paths)) for role, paths in files.items()}
    to_float = [
        v2.PILToTensor(),
        v2.RGB(),
        v2.Resize([32, 32], antialias=True),
        v2.ToDtype(torch.float32, scale=True),
    ]
    raw = datasets.ImageFolder(root, v2.Compose(to_float), is_valid_file=lambda p: p in roles["train"])
    stack = torch.stack([x for x, _ in raw])
    norm = v2.Normalize(stack.mean((0, 2, 3)).tolist(), stack.std((0, 2, 3)).tolist())
    train_tf = v2.Compose([v2.PILToTensor(), v2.RGB(), v2.RandomRotation(aug.rotation),
                           v2.RandomResizedCrop([32, 32], scale=tuple(aug.crop_scale), antialias=True),
                           v2.ToDtype(torch.float32, scale=True), norm])  # fmt: skip
    eval_tf = v2.Compose([*to_float, norm])
    sets = {role: datasets.ImageFolder(root, train_tf if role == "train" else eval_tf,
                                       is_valid_file=lambda p, r=role: p in roles[r]) for role in roles}  # fmt: skip
    workers = 1
    loaders = {role: torch.utils.data.DataLoader(s, spec.train.batch_size, shuffle=role == "train",
                                                 num_workers=workers, persistent_workers=True)
               for role, s in sets.items()}  # fmt: skip
    n_classes, epochs = len(raw.classes), spec.train.epochs
    if weights is None:
        model, body = plain_cnn(n_classes), None
        opt = torch.optim.AdamW(model.parameters(), lr=opt_spec.lr, weight_decay=opt_spec.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=opt_spec.lr, total_steps=epochs * len(loaders["train"])
        )
        per_step = True
    else:
        model, body = plain_resnet18(n_classes, weights)
        head = [p for n, p in model.named_parameters() if not n.startswith("0.")]
        opt = torch.optim.AdamW([{"params": head, "lr": opt_spec.lr},
                                 {"params": body.parameters(), "lr": opt_spec.backbone_lr}],
                                weight_decay=opt_spec.weight_decay)  # fmt: skip
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        per_step = False
    unfreeze = spec.graph.nodes[0].attrs.get("unfreeze_after") if body is not None else None
    best, best_loss = None, float("inf")
    for epoch in range(epochs):
        frozen = body is not None and (unfreeze is None or epoch < unfreeze)
        model.train()
        if body is not None:
            body.requires_grad_(not frozen)
            body.train(not frozen)  # a frozen backbone runs in eval mode (batch norm statistics fixed)
        for x, y in loaders["train"]:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            if per_step:
                sched.step()
        if not per_step:
            sched.step()
        loss = evaluate(model, loaders["val"])[0]
        if loss < best_loss:
            best, best_loss = copy.deepcopy(model.state_dict()), loss
    model.load_state_dict(best)
    return evaluate(model, loaders["test"])[1]


@torch.no_grad()
def evaluate(model: nn.Module, loader) -> tuple[float, float]:
    model.eval()
    losses, right, n = 0.0, 0, 0
    for x, y in loader:
        out = model(x)
        losses += float(nn.functional.cross_entropy(out, y, reduction="sum"))
        right += int((out.argmax(1) == y).sum())
        n += len(y)
    return losses / n, right / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=150, help="digits per class")
    parser.add_argument("--pretrain-per-class", type=int, default=300, help="shapes per class")
    parser.add_argument(
        "--seeds", type=int, default=5, help="split seeds 0 .. seeds-1 (0: the default split)"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="train.epochs of both recipes (default: theirs)"
    )
    parser.add_argument("--pretrain-epochs", type=int, default=None)
    parser.add_argument("--recipes", default="digits-folder,digits-resnet18", help="comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scores: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        digits = write_image_folder(out / "digits", "digits", per_class=args.per_class, seed=0)
        shapes = write_image_folder(out / "shapes", "shapes", per_class=args.pretrain_per_class, seed=1)
        recipes = args.recipes.split(",")
        weights = pretrain(shapes, args.pretrain_epochs, out) if "digits-resnet18" in recipes else None
        for seed in range(args.seeds):
            for name in recipes:
                w = weights if name == "digits-resnet18" else None
                spec = recipe_spec(name, digits, seed, args.epochs, w)
                start = time.perf_counter()
                ours = dltoolkit.run(spec, out=out / "runs" / f"{name}-{seed}", plots=False).metrics[
                    "accuracy"
                ]
                middle = time.perf_counter()
                base = plain_run(spec, split_files(spec), w)
                scores.setdefault((name, "dltoolkit"), []).append(ours)
                scores.setdefault((name, "torchvision loop"), []).append(base)
                print(f"{name} split seed {seed}: dltoolkit {ours:.4f} ({middle - start:.0f} s), "
                      f"torchvision loop {base:.4f} ({time.perf_counter() - middle:.0f} s)", flush=True)  # fmt: skip
    print(
        f"\ntest accuracy, {args.per_class} digits per class (32x32 RGB), epochs {args.epochs or 'as in the recipes'}:"
    )
    print(f"{'recipe':<17}{'':<18}{'default split':>14}{f'mean ± sd over {args.seeds} split seeds':>34}")
    for (name, who), values in scores.items():
        v = np.array(values)
        print(
            f"{name:<17}{who:<18}{v[0]:>14.4f}{f'{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}':>34}"
        )


if __name__ == "__main__":
    main()
