"""One experiment trained data-parallel on Ray Train: Lightning's DDP on gloo, one shard per worker.

The driver checks the spec and prepares the data (as ``run`` does) and starts a ``TorchTrainer``
with ``workers`` workers of one CPU each. In-memory splits go into Ray's object store once and each
worker slices its shard; streamed splits (a Parquet/CSV table over ``data.in_memory_mb``, an image
source streamed from its files) are read with Ray Data on the cluster (:mod:`dltoolkit.tune.ray_data`)
and Ray Train streams each worker its shard of the training rows, so the driver never loads the
training split (each worker reads the whole validation split from the files itself). Every
worker builds the same model from the spec, trains on its shard of the training split, and the
gradients are averaged across workers by DDP's reducer at every optimizer step. Rank 0 reports
each epoch's metrics to Ray Train and returns the best weights; the driver then evaluates them on
the test split (streamed as on one machine) and writes the same outputs as ``dltoolkit.api.run``
(a model bundle that ``dltoolkit.load`` opens).

Example:
    >>> result = run_distributed("digits-mlp", out="runs/ddp", workers=2)  # doctest: +SKIP
    >>> result.metrics["accuracy"], [w["node_id"] for w in result.workers]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping

from dltoolkit._quiet import quiet_ray
from dltoolkit.api import Run, _write_outputs, check, resolve_spec, test_metrics
from dltoolkit.bundle import Predictor, graph_for, preprocessor_from_state
from dltoolkit.data import make_augment
from dltoolkit.errors import DataError, DLToolkitError, SpecError, TrainingError, message
from dltoolkit.spec import Spec
from dltoolkit.train.finetune import finetune_callbacks
from dltoolkit.train.fit import (
    FitResult,
    History,
    TensorBatches,
    device_settings,
    make_trainer,
    module_options,
)
from dltoolkit.train.module import TaskModule, task_model
from dltoolkit.tune._ray import start_ray


@dataclass
class DistributedRun(Run):
    """A :class:`~dltoolkit.api.Run` plus what each data-parallel worker did.

    ``workers`` holds one dict per rank: ``rank``, ``node_id``, ``hostname``, ``rows`` (its shard
    size), ``shard`` (a digest of its shard) and ``params`` (a digest of its final weights). For a
    streamed split (read with Ray Data) ``rows`` and ``shard`` describe the rows the worker got in
    its first epoch, ``shard`` being :func:`~dltoolkit.tune.ray_data.index_digest` of their
    positions in the split (the shards' digests add up to the split's with
    :func:`~dltoolkit.tune.ray_data.add_digests`), and ``streamed`` is True.
    """

    workers: list[dict[str, Any]] = field(default_factory=list)


def run_distributed(
    spec: Spec | str | dict,
    *,
    out: str | os.PathLike,
    address: str | None = None,
    workers: int = 1,
    data: Any = None,
    plots: bool = True,
) -> DistributedRun:
    """Train one experiment data-parallel on Ray Train and write the outputs of ``dltoolkit.api.run``.

    Args:
        spec: a Spec, a dict, a spec file path or a bundled recipe name.
        out: the output directory (``spec.yaml``, ``metrics.json``, ``history.csv``, ``model/``...).
        address: a Ray cluster address (``host:port``); None starts a local Ray for this call.
        workers: data-parallel workers, one CPU each; each trains on 1/workers of the training rows.
        data: a DataFrame or ``(X, y)`` arrays when the spec's source is ``frame``.
        plots: write the plots and the report.

    Raises:
        SpecError: ``workers`` is not a positive integer or exceeds the training rows.
        TrainingError: a worker failed (its error is in the message).
    """

    spec = resolve_spec(spec)
    checked = check(spec, data)
    x_train = checked.data.X_train
    rows = len(x_train) if isinstance(x_train, torch.Tensor) else _check_streamed(spec, checked.data)
    _check_workers(workers, rows)
    _check_unfreeze(checked, workers)
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    if not spec.track.enabled:
        try:
            return _train_and_write(checked, out, address, workers, plots)
        except SpecError:  # the cluster cannot run the spec's accelerator: nothing was written
            if created and not any(out.iterdir()):
                out.rmdir()
            raise
    from dltoolkit.track import RunTracking

    tracking = RunTracking(spec, out)  # the epochs are logged at the end, from the history
    try:
        result = _train_and_write(checked, out, address, workers, plots)
    except BaseException as e:
        tracking.fail(e)
        raise
    result.tracking = tracking.finish(result)
    return result


def _check_streamed(spec: Spec, data: Any) -> int:
    """Streamed splits are read with Ray Data on the cluster; a clear error for any that cannot be.
    Returns the training rows."""
    from dltoolkit.tune import ray_data

    for role, split in (("training", data.X_train), ("validation", data.X_val)):
        if not ray_data.supported(split):
            raise DataError(
                message(
                    f"The {role} split cannot be read with Ray Data for data-parallel training",
                    type(split).__name__,
                    "in-memory tensors, a streamed Parquet/CSV table or streamed image files",
                    f"Raise data.in_memory_mb (now {spec.data.in_memory_mb}) so the split is "
                    "loaded, or run without --address/--workers.",
                )
            )
    return len(data.X_train)


def _train_and_write(
    checked: Any, out: Path, address: str | None, workers: int, plots: bool
) -> DistributedRun:
    spec = checked.spec
    started = time.perf_counter()
    with _ray_session(address):
        trained = _train(checked, workers, (out / ".work").resolve())
    d = checked.data
    model = checked.graph.compile()
    model.load_state_dict({k: torch.tensor(v) for k, v in trained["state"].items()})
    predictor = Predictor(spec, d.preprocessor, d.target, model, examples=d.raw_test)
    metrics, y_true, shown = test_metrics(predictor, d)
    seconds = time.perf_counter() - started
    history = _history_frame(trained["history"])
    fitted = FitResult(
        model, history, trained["best_score"], trained["best_epoch"], None, trained["monitor"],
        epochs=len(history), max_epochs=spec.train.epochs, stopped_early=trained["stopped_early"],
    )  # fmt: skip
    metrics["warnings"] = [*metrics["warnings"], *d.preprocessor.warnings_, *fitted.warnings()]
    info = {
        "seconds": round(seconds, 2),
        "best_epoch": trained["best_epoch"],
        "monitor": trained["monitor"],
        "best_score": trained["best_score"],
        **fitted.info(),
        "workers": workers,
        "address": address,
    }
    files = _write_outputs(
        out, spec, predictor, history, metrics, y_true, shown, d.classes, plots, None, info
    )
    shutil.rmtree(out / ".work", ignore_errors=True)
    return DistributedRun(spec, metrics, history, predictor, out, seconds, files, trained["workers"])


def _check_unfreeze(checked, workers: int) -> None:
    """A backbone unfrozen mid-run would train unsynchronised: DDP registers, once, only the
    parameters that train when it wraps the model."""
    late = [
        n.name
        for n in checked.graph.nodes
        if n.op == "backbone" and n.attrs.get("unfreeze_after") is not None
    ]
    if late and workers > 1:
        raise SpecError(
            message(
                "A backbone with unfreeze_after cannot train data-parallel",
                f"node {late[0]!r} with {workers} workers",
                "backbones whose frozen stages stay as they are (freeze without unfreeze_after) on several workers",
                "Train on one worker, or drop unfreeze_after and set freeze: none with a low "
                "train.optimizer.backbone_lr.",
            )
        )


def _check_workers(workers: Any, rows: int) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= rows:
        raise SpecError(
            message(
                "Invalid number of data-parallel workers",
                workers,
                f"an integer from 1 to the number of training rows ({rows})",
                "Pass workers=2 (or --workers 2) for two one-CPU workers.",
            )
        )


def _history_frame(rows: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(rows)


@contextlib.contextmanager
def _ray_session(address: str | None) -> Iterator[None]:
    """Use the Ray this process is connected to, else connect to ``address`` or start a local one.

    A Ray started or connected here is shut down on the way out; one that was already
    initialised (a notebook's) is left running.
    """
    import ray

    if ray.is_initialized():
        _check_same_cluster(address)
        yield
        return
    quiet_ray()
    start_ray(address)
    try:
        yield
    finally:
        ray.shutdown()


def _check_same_cluster(address: str | None) -> None:
    import ray

    current = ray.get_runtime_context().gcs_address
    # Ray rewrites 127.0.0.1/localhost to the node's IP, so the port is what can be compared
    if address is not None and address != "auto" and address.rsplit(":", 1)[-1] != current.rsplit(":", 1)[-1]:
        raise DLToolkitError(
            message(
                "This process is already connected to another Ray cluster",
                address,
                f"the address of the connected cluster ({current}) or None",
                "Call ray.shutdown() first to train on another cluster.",
            )
        )


def _train(checked, workers: int, storage: Path) -> dict[str, Any]:
    """Start the TorchTrainer and return rank 0's result (best weights, history, worker info)."""
    import ray
    from ray.train import DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    accelerator = _worker_accelerator(checked.spec, workers)
    gpu = accelerator == "gpu"
    d = checked.data
    datasets: dict[str, Any] = {}
    if isinstance(d.X_train, torch.Tensor):
        tensors = ray.put({"x": d.X_train, "y": d.y_train, "x_val": d.X_val, "y_val": d.y_val})
        streamed = None
    else:  # read with Ray Data on the cluster: the driver lists the read units only
        from dltoolkit.tune.ray_data import split_dataset

        tensors = None
        datasets = {"train": split_dataset(d.X_train, seed=checked.spec.train.seed, concurrency=2 * workers)}
        # every worker validates on the whole validation split, read from the files in its own
        # process (a Ray Data execution per worker and epoch costs more than the reading itself)
        streamed = {"train": len(d.X_train), "val": d.X_val}
    config = {
        "spec": checked.spec.to_yaml(),
        "preprocessor": d.preprocessor.to_state(),
        "n_outputs": d.n_outputs,
        "module": module_options(d),
        "data": tensors,
        "streamed": streamed,
        "accelerator": accelerator,
    }
    # Ray Train V2 (Ray's default) runs here; mypy follows ray.train.torch's V1 branch, whose loop returns None
    # and whose Result has no return_value: the two ignores below are for that
    trainer = TorchTrainer(
        _worker_loop,  # type: ignore[arg-type]
        train_loop_config=config,
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=gpu, resources_per_worker={"CPU": 1} | ({"GPU": 1} if gpu else {})
        ),
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        datasets=datasets or None,
        # one shard of the training rows per worker
        dataset_config=DataConfig(datasets_to_split=["train"]) if datasets else None,
        run_config=RunConfig(
            name=f"{checked.spec.name}-ddp",
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    try:
        result = trainer.fit()
    except Exception as e:
        raise TrainingError(
            f"Data-parallel training of {checked.spec.name!r} on {workers} workers failed: {e}"
        ) from e
    returned = result.return_value  # type: ignore[attr-defined]
    if returned is None:
        raise TrainingError(f"Data-parallel training of {checked.spec.name!r} returned no model.")
    return returned


def _worker_accelerator(spec: Spec, workers: int) -> str:
    """The workers' Lightning accelerator: gpu when the spec asks for one (or auto, and the Ray
    cluster has a GPU for every worker), else cpu; a SpecError when gpu or 16-mixed cannot run."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0.0)
    where = f"the Ray cluster has {gpus:g} GPU(s) for {workers} worker(s), one GPU each"
    accelerator, _ = device_settings(spec, cuda=gpus >= workers, where=where)
    return accelerator


# ---------------------------------------------------------------------------- on each worker
class _KeepBest(Callback):
    """Keeps a copy of the weights of the best epoch by the monitored metric (in memory)."""

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.score: float | None = None
        self.epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        better = self.score is None or (
            float(value) < self.score if self.mode == "min" else float(value) > self.score
        )
        if better:
            self.score, self.epoch = float(value), trainer.current_epoch + 1
            self.state = copy.deepcopy(task_model(module).state_dict())


class _ReportEpoch(Callback):
    """Reports each epoch's row to Ray Train (every rank calls it; Ray keeps rank 0's metrics)."""

    def __init__(self, history: History) -> None:
        self.history = history

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        import ray.train

        ray.train.report(dict(self.history.rows[-1]))


def _shard(x: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rows rank, rank+world, ...; every shard has the same length so all ranks step together."""
    per = len(x) // world
    return x[rank::world][:per]


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _worker_loop(config: dict[str, Any]) -> dict[str, Any] | None:
    """The training function each Ray Train worker runs."""
    import ray
    import ray.train
    from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, prepare_trainer

    torch.set_num_threads(1)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    spec = Spec.from_yaml(config["spec"])
    train, val, rows = _worker_batches(spec, config, rank, world)
    graph = graph_for(spec, preprocessor_from_state(config["preprocessor"]), config["n_outputs"])
    pl.seed_everything(spec.train.seed, workers=False, verbose=False)
    # TaskModule's manual_backward arms DDP's gradient reducer before every optimizer step's
    # backward (Lightning's DDP strategy does it in manual optimisation), so each step averages
    # the gradients across workers
    module = TaskModule(
        spec,
        graph.compile(),
        graph.n_outputs or 1,
        math.ceil(rows / spec.train.batch_size),
        make_augment(spec.preprocess.augment, graph.input_shape),
        **config["module"],
    )
    monitor, mode = spec.task.monitor_metric()
    history, best = History(), _KeepBest(monitor, mode)
    callbacks: list[Callback] = [history, _ReportEpoch(history), best, *finetune_callbacks(module.model)]
    early = None
    if spec.train.early_stopping:
        early = EarlyStopping(monitor=monitor, mode=mode, patience=spec.train.early_stopping)
        callbacks.append(early)
    workdir = Path(tempfile.mkdtemp(prefix="dltoolkit-ddp-"))
    try:
        trainer = make_trainer(
            spec,
            workdir,
            callbacks,
            accelerator=config["accelerator"],  # the precision is the spec's (make_trainer)
            devices="auto",
            strategy=RayDDPStrategy(),
            plugins=[RayLightningEnvironment()],
            use_distributed_sampler=False,
            enable_checkpointing=False,
        )
        trainer = prepare_trainer(trainer)
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*(does not have many workers|sync_dist|smaller than).*"
            )
            trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = _gather(module, best, history, rank, _shard_facts(train), monitor)
    if result is not None:
        result["stopped_early"] = early is not None and early.stopped_epoch > 0
    return result


def _worker_batches(spec: Spec, config: dict[str, Any], rank: int, world: int) -> tuple[Any, Any, int]:
    """This worker's training and validation batches and its training rows: sliced from the
    tensors in the object store, or its Ray Data shard of a streamed split."""
    import ray
    import ray.train

    if config["streamed"] is None:
        tensors = ray.get(config["data"])
        x, y = _shard(tensors["x"], rank, world), _shard(tensors["y"], rank, world)
        chunk = spec.train.batch_size * spec.train.steps_per_execution
        train = TensorBatches(x, y, chunk, shuffle=True, seed=spec.train.seed)
        val = TensorBatches(tensors["x_val"], tensors["y_val"], max(1, len(tensors["x_val"])))
        return train, val, len(x)
    from dltoolkit.tune.ray_data import ShardBatches, in_process_batches, shard_rows

    rows = shard_rows(config["streamed"]["train"], world)
    size = spec.train.batch_size
    seed = spec.train.seed * 1_000 + rank
    shard = ShardBatches(ray.train.get_dataset_shard("train"), size, rows, shuffle_seed=seed)
    return shard, in_process_batches(config["streamed"]["val"], size), rows


def _shard_facts(train: Any) -> dict[str, Any]:
    """The size and digest of the shard a worker trained on (a streamed one: its first epoch)."""
    if isinstance(train, TensorBatches):
        return {"rows": len(train.x), "shard": _digest(train.x, train.y)}
    return {"rows": train.rows_seen, "shard": train.digest, "streamed": True}


def _gather(
    module, best: _KeepBest, history: History, rank: int, shard: dict[str, Any], monitor: str
) -> dict | None:
    """Collect every rank's facts on rank 0 (over gloo) and return rank 0's result."""
    import ray

    me = {
        "rank": rank,
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        **shard,
        "params": _digest(*module.model.state_dict().values()),
    }
    everyone: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(everyone, me)
    if rank != 0:
        return None
    state = best.state if best.state is not None else module.model.state_dict()
    return {
        "state": {k: v.detach().cpu().numpy().copy() for k, v in state.items()},  # no tensors
        "history": history.rows,
        "best_score": best.score,
        "best_epoch": best.epoch,
        "monitor": monitor,
        "workers": sorted(everyone, key=lambda w: w["rank"]),
    }
