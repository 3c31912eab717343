"""Sweep overhead: dltoolkit's two sweep engines against the scripts a user would write instead.

The trials: 8 of the digits MLP, lr loguniform 1e-4..1e-1, hidden width in {32, 64, 128, 256},
ASHA with at most 10 epochs and grace 2, 2 trials at a time (the ``digits-mlp`` recipe's search
section). Measured in the same run:

0. the local engine (``search.engine: local``, what ``auto`` picks here) against Optuna
   in-process over a plain PyTorch loop (``study.optimize(objective, n_trials=8, n_jobs=2)``,
   the same random sampler seeded 0, ``SuccessiveHalvingPruner``, the same split and scaling):
   each in a fresh process, 3 times interleaved (medians); the sweep alone (dltoolkit imported,
   and torch, scikit-learn and Optuna, which the Optuna script imports before its clock starts;
   target <= 1.5x). ``import dltoolkit`` does not import Lightning (it stays light for the CLI,
   Ray's trial actors and serving), so that first sweep also imports Lightning; a second fresh
   process is set up as a fresh notebook kernel is, ``%load_ext dltoolkit`` in an IPython shell,
   which imports the training libraries (every library the sweep trains with, as the Optuna
   script's clock excludes its own), and the first process runs the sweep again (everything warm). The sweep's result does not wait for its three PNGs (drawn in a background
   thread); the time until they are written is printed too. Then
   ``dltoolkit tune digits-mlp --samples 8 --scheduler asha`` against the whole Optuna script as
   processes (target <= 2x), and the best validation accuracy of each (target: within 0.5 points).

The Ray engine (``search.engine: ray``) against a hand-written Ray Tune + Lightning sweep: a plain
``tune.Tuner`` around a ``pl.Trainer`` fed by a ``DataLoader``, with Ray's default settings:

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

    python benchmarks/sweep_overhead.py [--skip-processes] [--skip-ray] [--repeats 3]
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
    result = sweep("digits-mlp", samples=8, scheduler="asha", out=out, engine="ray")
    seconds = time.perf_counter() - start
    best = result.trials()["best_val_acc"].max()
    return {"seconds": seconds, "best_val_acc": float(best), "first_result_s": result.first_result_s}


def optuna_script() -> dict:
    """The baseline of the local engine: Optuna in-process over a plain PyTorch loop."""
    import numpy as np
    import optuna
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from torch import nn

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    rest, _ = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
    train, val = train_test_split(rest, test_size=0.15, random_state=0, stratify=y[rest])
    scaler = StandardScaler().fit(X[train])
    xt, xv = (torch.tensor(scaler.transform(X[rows]), dtype=torch.float32) for rows in (train, val))
    yt, yv = torch.tensor(y[train]), torch.tensor(y[val])

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        units = trial.suggest_categorical("units", [32, 64, 128, 256])
        model = nn.Sequential(nn.Linear(64, units), nn.ReLU(), nn.Dropout(0.1), nn.Linear(units, 10))
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
        best = 0.0
        for epoch in range(1, 11):
            model.train()
            for rows in torch.randperm(len(xt)).split(32):
                opt.zero_grad()
                nn.functional.cross_entropy(model(xt[rows]), yt[rows]).backward()
                opt.step()
            schedule.step()
            model.eval()
            with torch.no_grad():
                acc = (model(xv).argmax(1) == yv).float().mean().item()
            best = max(best, acc)
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=4),
    )
    start = time.perf_counter()
    study.optimize(objective, n_trials=8, n_jobs=2)
    seconds = time.perf_counter() - start
    best = max(max(t.intermediate_values.values(), default=0.0) for t in study.trials)
    return {"seconds": seconds, "best_val_acc": float(best)}


def local_sweep(out: str, lightning: bool = False) -> dict:
    """The local engine's sweep in this (fresh) process, dltoolkit imported first, and the libraries
    the Optuna script imports before its clock starts (torch, scikit-learn, Optuna); with
    ``lightning``, as in a fresh notebook kernel: ``%load_ext dltoolkit`` (which imports Lightning
    and dltoolkit's training modules)."""
    import optuna  # noqa: F401
    import sklearn.datasets  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import torch  # noqa: F401

    import dltoolkit  # noqa: F401
    from dltoolkit.tune import sweep

    if lightning:
        from IPython.core.interactiveshell import InteractiveShell

        InteractiveShell.instance().run_line_magic("load_ext", "dltoolkit")
        assert "pytorch_lightning" in sys.modules, "%load_ext dltoolkit should import the training libraries"
    start = time.perf_counter()
    result = sweep("digits-mlp", samples=8, scheduler="asha", out=out, engine="local")
    seconds = time.perf_counter() - start
    result.wait(plots=True)
    plots = time.perf_counter() - start
    best = result.trials()["best_val_acc"].max()
    if lightning:
        return {"seconds": seconds, "best_val_acc": float(best), "plots_s": plots}
    start = time.perf_counter()  # again in the same process: Lightning (and torch._dynamo) imported
    sweep("digits-mlp", samples=8, scheduler="asha", out=f"{out}-again", engine="local")
    again = time.perf_counter() - start
    return {
        "seconds": seconds,
        "best_val_acc": float(best),
        "first_result_s": result.first_result_s,
        "again_s": again,
        "plots_s": plots,
    }


def fresh(mode: list[str]) -> tuple[dict, float]:
    """Run this script in ``mode`` as a new process: (its JSON result, the whole process's seconds)."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, __file__, *mode], check=True, capture_output=True, text=True)
    return json.loads(run.stdout.strip().splitlines()[-1]), time.perf_counter() - start


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def local_figures(tmp: str, processes: bool, repeats: int) -> None:
    """Section 0: the local engine against the Optuna script, ``repeats`` times interleaved (medians:
    on a shared machine one pair of runs says little)."""
    runs: dict[str, list] = {"opt": [], "opt_process": [], "mine": [], "warm": [], "cli": []}
    for i in range(repeats):
        opt, opt_process = fresh(["--optuna"])
        runs["opt"].append(opt)
        runs["opt_process"].append(opt_process)
        runs["mine"].append(fresh(["--local", os.path.join(tmp, f"local-{i}")])[0])
        runs["warm"].append(fresh(["--local", os.path.join(tmp, f"warm-{i}"), "--lightning"])[0])
        if processes:
            runs["cli"].append(timed(_cli(os.path.join(tmp, f"cli-local-{i}"))))
    opt_s = _median([r["seconds"] for r in runs["opt"]])
    mine_s = _median([r["seconds"] for r in runs["mine"]])
    opt_acc = max(r["best_val_acc"] for r in runs["opt"])
    mine_acc = max(r["best_val_acc"] for r in runs["mine"])
    shown = ", ".join(f"{r['seconds']:.1f}" for r in runs["opt"])
    print(
        f"0. the local engine against Optuna in-process over plain PyTorch ({repeats} fresh processes each)"
    )
    print(f"   Optuna script, study.optimize():  median {opt_s:5.1f} s ({shown})  best val_acc {opt_acc:.4f}")
    shown = ", ".join(f"{r['seconds']:.1f}" for r in runs["mine"])
    first = _median([r["first_result_s"] for r in runs["mine"]])
    print(
        f"   dltoolkit sweep(), local engine:  median {mine_s:5.1f} s ({shown})  best val_acc {mine_acc:.4f}"
        f"  first result after {first:.1f} s"
    )
    plots = _median([r["plots_s"] for r in runs["mine"]])
    print(f"      (its plots/ written {plots:.1f} s after the start, in the background)")
    warm_s = _median([r["seconds"] for r in runs["warm"]])
    shown = ", ".join(f"{r['seconds']:.1f}" for r in runs["warm"])
    print(f"   the same in a fresh kernel after %load_ext dltoolkit:  median {warm_s:5.1f} s ({shown})")
    again = _median([r["again_s"] for r in runs["mine"]])
    print(f"   the same sweep again in that process (Lightning imported): median {again:5.1f} s")
    print(
        f"   ratio local / Optuna sweep: {warm_s / opt_s:.2f}x in a fresh kernel after %load_ext dltoolkit"
        f" (target <= 1.5x), {mine_s / opt_s:.2f}x after a bare import dltoolkit (importing Lightning"
        f" included), {again / opt_s:.2f}x for a later sweep; accuracy difference"
        f" {100 * (mine_acc - opt_acc):+.1f} points (target within 0.5)"
    )
    if not processes:
        return
    whole, cli = _median(runs["opt_process"]), _median(runs["cli"])
    print(f"   whole Optuna script:            median {whole:5.1f} s")
    print(f"   dltoolkit tune (auto -> local): median {cli:5.1f} s")
    print(f"   ratio: {cli / whole:.2f}x (target <= 2x)")


def _cli(out: str, *extra: str) -> list[str]:
    args = ["tune", "digits-mlp", "--samples", "8", "--scheduler", "asha", "--quiet", "--out", out]
    return [sys.executable, "-m", "dltoolkit.cli", *args, *extra]


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
    parser.add_argument("--optuna", action="store_true", help="(internal) run only the Optuna script")
    parser.add_argument("--local", metavar="DIR", help="(internal) run only the local engine's sweep")
    parser.add_argument("--lightning", action="store_true", help="(internal) --local, Lightning imported")
    parser.add_argument("--skip-processes", action="store_true", help="no whole-process comparisons")
    parser.add_argument("--skip-ray", action="store_true", help="only the local engine's figures")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side of section 0")
    args = parser.parse_args()
    if args.optuna or args.local:
        print(json.dumps(optuna_script() if args.optuna else local_sweep(args.local, args.lightning)))
        return
    if args.handwritten:
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        print(json.dumps(handwritten(args.handwritten)))
        ray.shutdown()
        return
    with tempfile.TemporaryDirectory() as tmp:
        local_figures(tmp, not args.skip_processes, args.repeats)
        if args.skip_ray:
            return
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
        cli = timed(_cli(os.path.join(tmp, "cli"), "--engine", "ray"))
        print("2. whole processes (each starts and stops its own local Ray)")
        print(f"   hand-written script: {hw:6.1f} s")
        print(f"   dltoolkit tune:      {cli:6.1f} s")
        print(f"   ratio: {cli / hw:.2f}x (target <= 0.6x)")


if __name__ == "__main__":
    main()
