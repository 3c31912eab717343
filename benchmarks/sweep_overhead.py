"""Sweep overhead: dltoolkit's sweep against a hand-written Ray Tune + Lightning sweep of the same trials.

The trials: 8 of the digits MLP, lr loguniform 1e-4..1e-1, hidden width in {32, 64, 128, 256},
ASHA with at most 10 epochs and grace 2, 2 trials at a time (the ``digits-mlp`` recipe's search
section). The hand-written side is a plain ``tune.Tuner`` around a ``pl.Trainer`` fed by a
``DataLoader``, with Ray's default settings. Measured in the same run:

1. the sweep itself with Ray already running (as in a notebook, where Ray starts once per kernel):
   ``dltoolkit.tune.sweep`` against the hand-written ``Tuner.fit()`` (target <= 0.25x). dltoolkit
   keeps warm trial workers (torch and Lightning imported) in the kernel's Ray session, so a
   notebook's sweeps after its first start training at once; the first sweep in the session
   starts them. Both are measured: the first sweep, then the hand-written one, then a second
   dltoolkit sweep (the same seeded trials), whose time is the one the target is about;
2. whole processes, each starting its own local Ray: ``dltoolkit tune digits-mlp --samples 8
   --scheduler asha`` against this script's ``--handwritten`` mode (target <= 0.6x).

It also prints the best validation accuracy of each side and the time from launch to the first
reported result.

    python benchmarks/sweep_overhead.py [--skip-processes]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def handwritten(storage: str) -> dict:
    """The baseline: a textbook Tuner + pl.Trainer + DataLoader sweep; returns seconds, best, first."""
    import pytorch_lightning as pl
    import torch
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from dltoolkit.data import prepare
    from dltoolkit.recipes import load_recipe

    d = prepare(load_recipe("digits-mlp"))
    data = (d.X_train, d.y_train, d.X_val, d.y_val)

    class MLP(pl.LightningModule):
        def __init__(self, units: int, lr: float):
            super().__init__()
            self.lr = lr
            self.net = nn.Sequential(nn.Linear(64, units), nn.ReLU(), nn.Dropout(0.1), nn.Linear(units, 10))

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            out = self.net(x)
            self.log("val_loss", nn.functional.cross_entropy(out, y))
            self.log("val_acc", (out.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            opt = torch.optim.Adam(self.parameters(), lr=self.lr)
            return [opt], [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)]

    class Report(pl.Callback):
        def on_validation_epoch_end(self, trainer, module):
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            tune.report(metrics | {"epoch": trainer.current_epoch + 1})

    def train_fn(config, data):
        x, y, xv, yv = data
        trainer = pl.Trainer(
            max_epochs=10,
            logger=False,
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[Report()],
        )
        trainer.fit(
            MLP(config["units"], config["lr"]),
            DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True),
            DataLoader(TensorDataset(xv, yv), batch_size=512),
        )

    first: list[float] = []

    class First(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if not first:
                first.append(time.perf_counter())

    start = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_parameters(train_fn, data=data),
        param_space={"lr": tune.loguniform(1e-4, 1e-1), "units": tune.choice([32, 64, 128, 256])},
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            scheduler=ASHAScheduler(max_t=10, grace_period=2),
            num_samples=8,
            max_concurrent_trials=2,
        ),
        run_config=tune.RunConfig(storage_path=storage, name="handwritten", callbacks=[First()], verbose=0),
    )
    grid = tuner.fit()
    seconds = time.perf_counter() - start
    best = max(r.metrics_dataframe["val_acc"].max() for r in grid if r.metrics_dataframe is not None)
    return {"seconds": seconds, "best_val_acc": float(best), "first_result_s": first[0] - start}


def ours(out: str) -> dict:
    from dltoolkit.tune import sweep

    start = time.perf_counter()
    result = sweep("digits-mlp", samples=8, scheduler="asha", out=out)
    seconds = time.perf_counter() - start
    best = result.trials()["best_val_acc"].max()
    return {"seconds": seconds, "best_val_acc": float(best), "first_result_s": result.first_result_s}


def in_process(tmp: str) -> tuple[dict, dict, dict]:
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        first = ours(os.path.join(tmp, "ours-first"))
        base = handwritten(os.path.join(tmp, "hw"))
        mine = ours(os.path.join(tmp, "ours"))
    finally:
        ray.shutdown()
    return base, first, mine


def line(label: str, r: dict) -> str:
    return (
        f"   {label:<44} {r['seconds']:6.1f} s  best val_acc {r['best_val_acc']:.4f}"
        f"  first result after {r['first_result_s']:.1f} s"
    )


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handwritten", metavar="DIR", help="(internal) run only the hand-written sweep")
    parser.add_argument("--skip-processes", action="store_true", help="only the with-Ray-running comparison")
    args = parser.parse_args()
    if args.handwritten:
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        print(json.dumps(handwritten(args.handwritten)))
        ray.shutdown()
        return
    with tempfile.TemporaryDirectory() as tmp:
        base, first, mine = in_process(tmp)
        print("1. the sweep with Ray already running")
        print(line("dltoolkit sweep(), first in the session:", first))
        print(line("hand-written Tuner.fit():", base))
        print(line("dltoolkit sweep(), warm workers:", mine))
        print(
            f"   ratio dltoolkit / hand-written: {mine['seconds'] / base['seconds']:.2f}x (target <= 0.25x);"
            f" first sweep in a session {first['seconds'] / base['seconds']:.2f}x;"
            f" accuracy difference {100 * (mine['best_val_acc'] - base['best_val_acc']):+.1f} points"
            " (target >= -0.5)"
        )
        if args.skip_processes:
            return
        hw = timed([sys.executable, __file__, "--handwritten", os.path.join(tmp, "hw2")])
        cli = timed(
            [
                sys.executable,
                "-m",
                "dltoolkit.cli",
                "tune",
                "digits-mlp",
                "--samples",
                "8",
                "--scheduler",
                "asha",
                "--quiet",
                "--out",
                os.path.join(tmp, "cli"),
            ]
        )
        print("2. whole processes (each starts and stops its own local Ray)")
        print(f"   hand-written script: {hw:6.1f} s")
        print(f"   dltoolkit tune:      {cli:6.1f} s")
        print(f"   ratio: {cli / hw:.2f}x (target <= 0.6x)")


if __name__ == "__main__":
    main()
