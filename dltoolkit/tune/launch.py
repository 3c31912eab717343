"""Starting, resuming and finishing a sweep: ``sweep()``, ``resume()``, the engine choice, the Ray
Tuner, the outputs.

Example:
    >>> s = sweep("digits-mlp", samples=8, scheduler="asha", out="runs/s")  # doctest: +SKIP
    >>> resume("runs/s")                                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from dltoolkit._extras import require
from dltoolkit._files import check_out, claim_out
from dltoolkit.errors import DLToolkitError, message
from dltoolkit.spec import Spec, atomic_write_text
from dltoolkit.tune._phase import phase
from dltoolkit.tune.engines import SCHEDULERS, SEARCHERS, Plan, choose_engine
from dltoolkit.tune.results import TrialRecord, ranked
from dltoolkit.tune.sweep import EXPERIMENT, Sweep, plan_for

log = logging.getLogger("dltoolkit.tune")


def sweep(
    spec: Spec | str | dict,
    *,
    samples: int | None = None,
    search: str | None = None,
    scheduler: str | None = None,
    address: str | None = None,
    max_concurrent: int | None = None,
    out: str | os.PathLike | None = None,
    background: bool = False,
    data: Any = None,
    resources: dict[str, float] | None = None,
    resume: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    workers: bool | None = None,
    overwrite: bool = False,
    engine: str | None = None,
) -> Sweep:
    """Run a hyperparameter sweep of ``spec`` over its ``search.space``, locally or on Ray Tune.

    Everything is checked before any trial starts (the spec, the data, every configuration of
    the space); the arguments given here replace the spec's ``search`` settings and are recorded
    in ``out/spec.yaml``. ``search.engine`` (default ``auto``) picks the engine: the local one
    (Optuna, trials in threads of this process) unless an address is given or an option needs Ray
    (PBT, GPUs per trial, more trials at once than cores); the choice and why are logged and kept
    in ``engine`` and ``engine_reason`` of the returned Sweep.

    Args:
        spec: a Spec, a dict, a spec file or a recipe name (``"digits-mlp"``).
        samples: overrides ``spec.search.samples`` (the number of trials).
        search: overrides ``spec.search.search``: random, grid or optuna.
        scheduler: overrides ``spec.search.scheduler``: fifo, asha, hyperband, median or pbt.
        max_concurrent: overrides ``spec.search.max_concurrent`` (trials running at once).
        address: an existing Ray cluster (``"127.0.0.1:6379"``); default: a local Ray (started
            if none is running in this process).
        out: output folder (default a new ``runs/<name>-sweep-<time>-<suffix>``). A non-empty
            one is refused unless ``overwrite`` (whose old contents are then removed); continue
            an earlier sweep with ``resume`` instead.
        background: return at once and run in a thread (``wait()``, ``stop()``, ``subscribe()``).
        data: a DataFrame or (X, y) when the spec's data source is ``frame``.
        resources: per trial, e.g. ``{"cpu": 1, "gpu": 0.5}``.
        resume: an earlier sweep's ``out`` folder to continue instead (see :func:`resume`).
        overrides: dotted-path values applied to the spec first.
        workers: (Ray engine) train on warm trial workers that stay in this Ray session for the
            next sweep (:mod:`dltoolkit.tune.workers`); default: on a local Ray if it has the
            memory for them (or as ``DLTOOLKIT_WARM_WORKERS`` says), off with ``address``.
        engine: overrides ``search.engine``: auto, local or ray.
        overwrite: replace the contents of a non-empty ``out``.

    Raises:
        OutputExistsError: ``out`` is not empty and ``overwrite`` is false.

    Example:
        >>> s = sweep("digits-mlp", samples=4, background=True)  # doctest: +SKIP
        >>> s.subscribe(print); s.wait().best                    # doctest: +SKIP
    """
    require("tune", "A sweep (dltoolkit.sweep, dltoolkit tune)")
    if resume is not None:
        return resume_sweep(resume, data=data, address=address, background=background, workers=workers)
    launched = time.perf_counter()
    from dltoolkit.api import SMOKE_ENV, default_out, resolve_spec, smoke

    spec = resolve_spec(spec, overrides)
    given = {"samples": samples, "search": search, "scheduler": scheduler, "max_concurrent": max_concurrent}
    given["engine"] = engine
    changes: dict[str, Any] = {f"search.{k}": v for k, v in given.items() if v is not None}
    for key, field in (("cpu", "cpus_per_trial"), ("gpu", "gpus_per_trial")):
        if resources and key in resources:
            changes[f"search.{field}"] = resources[key]
    spec = spec.with_values(changes) if changes else spec
    if os.environ.get(SMOKE_ENV):  # smoke mode wins over explicit sizes too
        spec = smoke(spec)
    if out is not None:
        check_out(out, overwrite, sweep=True)  # before any work
    fresh = out is None
    out = Path(out) if out is not None else default_out(spec, "sweep")
    phase("checking the spec, the data and every configuration of the space")
    try:
        runner = _checked(spec, data, out, launched, workers, address)
    except BaseException:
        if fresh:  # the new default folder, still empty: a refused sweep leaves nothing behind
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    claim_out(out, overwrite, sweep=True)
    spec.save(out / "spec.yaml")
    return runner._start(address, background, restore=False)


def resume_sweep(
    out: str | os.PathLike,
    *,
    data: Any = None,
    address: str | None = None,
    background: bool = True,
    workers: bool | None = None,
) -> Sweep:
    """Continue the sweep in ``out`` whose driver stopped: unfinished trials go on from their last
    checkpoint; finished (and errored) trials are kept, not run again. The engine is the one that
    ran it (its state in ``out``: ``study.log`` local, ``tune/`` Ray).

    It runs in the background (a notebook cell returns at once): ``.wait()`` on the result, or
    ``background=False``, blocks until it ends.
    """
    require("tune", "Resuming a sweep (dltoolkit tune --resume)")
    from dltoolkit.tune.local import STUDY_FILE

    out = Path(out)
    if (out / "spec.yaml").is_file() and (out / STUDY_FILE).is_file():
        phase("checking the spec and the data")
        spec = Spec.load(out / "spec.yaml").with_values({"search.engine": "local"})
        runner = _checked(spec, data, out, time.perf_counter(), workers, address)
        return runner._start(address, background, restore=True)
    from ray import tune

    if not (out / "spec.yaml").is_file() or not tune.Tuner.can_restore(str((out / EXPERIMENT).resolve())):
        raise DLToolkitError(
            message(
                "Nothing to resume here",
                str(out),
                f"a sweep folder with spec.yaml and {STUDY_FILE} (local engine) or {EXPERIMENT}/ (Ray's)",
                "Start the sweep again: it had not started any trial.",
            )
        )
    phase("checking the spec and the data")
    spec = Spec.load(out / "spec.yaml").with_values({"search.engine": "ray"})
    runner = _checked(spec, data, out, time.perf_counter(), workers, address)
    return runner._start(address, background, restore=True)


def _workers_choice(workers: bool | None, address: str | None) -> bool | None:
    """Warm workers: as asked; by default (None: if there is the memory) on a local Ray, off on a cluster."""
    return workers if workers is not None else (None if address is None else False)


def _checked(
    spec: Spec,
    data: Any,
    out: Path,
    launched: float,
    workers: bool | None,
    address: str | None,
) -> Sweep:
    """Plan, engine, data and pre-flight: every error surfaces here, before any trial starts.

    Where Ray already runs (a notebook's session) and a Ray sweep uses warm workers, missing
    workers start as soon as the plan is known, importing torch while the driver checks.
    """
    from dltoolkit.api import check
    from dltoolkit.tune.preflight import preflight

    plan = plan_for(spec)
    choice = choose_engine(plan, spec.search.engine, address, workers)
    log.info("dltoolkit sweep %s", choice)
    if choice.name == "local":
        from dltoolkit.tune.local import LocalSweep

        runner: Sweep = LocalSweep(spec, plan, None, out, launched)
    else:
        from dltoolkit.tune.ray_sweep import RaySweep

        workers = _workers_choice(workers, address)
        ray = sys.modules.get("ray")  # never imported here just to ask
        if workers is not False and ray is not None and ray.is_initialized():
            trial_workers(plan, workers)
        runner = RaySweep(spec, plan, None, out, launched)
        runner.use_workers = workers
    runner.engine_reason = choice.reason
    checked = check(runner.trial_spec, data)
    runner.data = checked.data
    if plan.read_with == "ray_data":
        from dltoolkit.tune.ray_data import check_trial_data

        check_trial_data(checked.data)  # a clear error for data Ray Data cannot read, before Ray starts
    report = preflight(runner.trial_spec, checked.data, plan.space, seed=plan.seed or 0)
    runner.preflight = report
    _leave_out_unused(plan, report.unused)
    out.mkdir(parents=True, exist_ok=True)
    return runner


def _leave_out_unused(plan: Plan, paths: list[str]) -> None:
    """Search-space entries on unused nodes cannot change a trial: they are left out, with a warning
    (and an error when nothing would be left to search)."""
    if not paths:
        return
    import warnings

    if len(paths) == len(plan.space):
        raise DLToolkitError(
            message(
                "Every search-space entry addresses a node that feeds no output",
                paths,
                "at least one entry that can change a trial",
                "Connect those nodes to the output (their inputs) or search other fields.",
            )
        )
    text = (
        f"Left out of the search: {', '.join(paths)} (their nodes feed no output, so the values "
        "could not change a trial). Connect the nodes or remove the entries."
    )
    warnings.warn(text, UserWarning, stacklevel=3)
    log.warning(text)
    for path in paths:
        plan.space.pop(path)


def reads_with_ray_data(plan: Plan, data: Any, address: str | None) -> bool:
    """Whether a Ray sweep's trials read their training rows with Ray Data (``search.read_with``):
    asked for, or ``auto`` on a cluster by address with a streamed source."""
    from dltoolkit.tune.ray_data import supported

    if plan.read_with == "auto":
        return address is not None and supported(data.X_train)
    return plan.read_with == "ray_data"


def build_tuner(runner: Any, restore: bool) -> Any:
    """The Ray Tuner of a sweep (or the restored one): data once by reference, actors reused."""
    import ray
    from ray import tune

    from dltoolkit.tune._ray import StopFlag, Stream
    from dltoolkit.tune.trainable import TrialInputs, train_trial

    plan, key = runner.plan, str(runner.experiment)
    # per-epoch checkpoints force an experiment snapshot each time (cheap here, and what resume needs)
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    ray_data = reads_with_ray_data(runner.plan, runner.data, runner.address)
    use_workers = False if ray_data else runner.use_workers  # warm workers read files
    if use_workers is not False:
        phase("starting trial workers")
    workers = trial_workers(runner.plan, use_workers)
    # a fresh sweep's first wave of trial actors all start (a resumed one may have fewer trials left)
    together = 0 if restore else len(workers)
    inputs = TrialInputs(ray.put(runner.data), workers, uuid.uuid4().hex, together, ray_data=ray_data)
    runner._inputs = inputs  # the data stay in the object store while the sweep runs
    trainable = tune.with_parameters(train_trial, spec=runner.trial_spec, inputs=inputs)
    trainable = tune.with_resources(trainable, dict(plan.resources))
    if restore:
        from dltoolkit.tune._ray import repair_state

        for name in repair_state(Path(key)):
            log.warning(
                "The sweep's last saved state (%s) was cut short; resuming from the one before.", name
            )
        return tune.Tuner.restore(key, trainable, resume_unfinished=True, resume_errored=False)
    tune_config = tune.TuneConfig(
        metric=plan.metric,
        mode=plan.mode,
        search_alg=SEARCHERS.get(plan.search)(plan),
        scheduler=SCHEDULERS.get(plan.scheduler)(plan),
        num_samples=plan.samples,
        max_concurrent_trials=None,  # each searcher applies plan.max_concurrent itself
        reuse_actors=runner.spec.search.reuse_actors,
    )
    run_config = tune.RunConfig(
        name=EXPERIMENT,
        storage_path=str(runner.experiment.parent),
        callbacks=[Stream(key, list(plan.space))],
        stop=StopFlag(key),
        failure_config=tune.FailureConfig(max_failures=plan.retries),
        # more than one kept: a driver killed between Ray deleting an old checkpoint and saving its
        # experiment state would otherwise leave the state pointing at a checkpoint that is gone
        checkpoint_config=tune.CheckpointConfig(num_to_keep=4 if plan.scheduler == "pbt" else 3),
        verbose=0,
    )
    return tune.Tuner(
        trainable, param_space=plan.param_space(), tune_config=tune_config, run_config=run_config
    )


def trial_workers(plan: Plan, use: bool | None) -> list[Any]:
    """Warm workers for the trials of a sweep: one per trial that can run at once (``use`` None:
    if Ray has the memory for them, see :func:`dltoolkit.tune.workers.wanted`). GPU trials train
    in their own trial actors, which hold the GPU."""
    import ray

    from dltoolkit.tune.workers import wanted, warm_workers

    if use is False or plan.resources.get("gpu"):
        return []
    resources = ray.cluster_resources()
    if use is None and not wanted(resources.get("memory", 0)):
        return []
    cpus = resources.get("CPU", 1.0)
    count = int(cpus // max(plan.resources.get("cpu", 1.0), 1e-9))
    if plan.max_concurrent:
        count = min(count, plan.max_concurrent)
    return warm_workers(max(1, min(count, plan.samples)))


def load_records(runner: Any) -> tuple[dict[str, TrialRecord], dict[str, Any]]:
    """Every trial of the experiment folder (earlier runs of a resumed sweep too) and its checkpoint."""
    from ray.tune import ExperimentAnalysis

    from dltoolkit.tune._ray import error_text, user_config

    analysis = ExperimentAnalysis(str(runner.experiment))
    frames = analysis.trial_dataframes
    records, checkpoints = {}, {}
    for trial in analysis.trials:
        frame = frames.get(trial.trial_id)
        rows = []
        if frame is not None and len(frame):
            keep = [c for c in frame.columns if c.startswith(("train_", "val_")) or c in ("epoch", "lr")]
            rows = frame[keep].drop_duplicates("epoch", keep="last").to_dict("records")
        last = trial.last_result or {}
        status = str(trial.status)
        if runner.stopped and status in ("PENDING", "RUNNING", "PAUSED"):
            status = "STOPPED"  # unfinished: resume() continues it
        records[trial.trial_id] = TrialRecord(
            trial.trial_id,
            user_config(trial.config, list(runner.plan.space)),
            status,
            error_text(trial.error_file),
            rows,
            float(last.get("time_total_s", 0.0)),
        )
        checkpoints[trial.trial_id] = trial.checkpoint
    return records, checkpoints


def top_predictors(runner: Sweep, k: int) -> list[tuple[Any, dict, Any]]:
    """The k best trials (by their best reported metric) as (record, best-state, Predictor) triples.

    Each predictor carries the trial's best weights (not its last) and its test metrics. Trials
    without a saved state (errored before their first epoch) are passed over. Engine-blind: the
    states come from ``runner.trial_state``.
    """
    from dltoolkit.api import test_metrics
    from dltoolkit.bundle import Predictor, graph_for

    plan, out = runner.plan, []
    for rec in ranked(runner.records(), plan.metric, plan.mode):
        state = runner.trial_state(rec.trial_id)
        if state is None or state.get("best") is None:
            continue
        d, spec = runner.data, runner.trial_spec.with_values(rec.config)
        model = graph_for(spec, d.preprocessor, d.n_outputs, pretrained=False).compile()
        model.load_state_dict(state["best"]["weights"])
        predictor = Predictor(spec, d.preprocessor, d.target, model, examples=d.raw_test)
        test_metrics(predictor, d)
        out.append((rec, state["best"], predictor))
        if len(out) == k:
            break
    return out


def save_best(runner: Sweep) -> Path | None:
    """The best trial's best weights as a model bundle in ``out/best`` with its test metrics."""
    from dltoolkit.bundle import save_bundle

    for rec, best, predictor in top_predictors(runner, 1):
        info = {"trial_id": rec.trial_id, "config": rec.config, "monitor": runner.plan.metric}
        info |= {"best_score": best["score"], "best_epoch": best["epoch"]}
        return save_bundle(runner.out / "best", predictor, info)
    return None


def save_table(runner: Sweep) -> None:
    """``trials.csv``: the trial table."""
    atomic_write_text(runner.out / "trials.csv", runner.trials().to_csv(index=False))


def save_plots(runner: Sweep) -> None:
    """The three plots in ``plots/``: curves, parallel coordinates, importance."""
    from dltoolkit.evaluate._figures import save_png

    plots = runner.out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    save_png(runner.plot_curves(), plots / "curves.png")
    save_png(runner.plot_parallel(), plots / "parallel.png")
    save_png(runner.plot_importance(), plots / "importance.png")
