"""A sweep on the Ray engine is tracked from the driver, off the results stream: its trials need no
MLflow access. (The MLflow tests proper, both stores and the local engine: tests/track.)"""

from __future__ import annotations

from dltoolkit.tune import sweep


def test_a_ray_sweep_nests_its_trials_and_records_a_failed_one(ray_session, make_spec, tmp_path):
    from mlflow import MlflowClient

    space = {"train.optimizer.lr": {"grid": [0.01, 1.0e30]}}  # 1e30: the loss overflows, the trial fails
    spec = make_spec(space).with_values({"track.mlflow": str(tmp_path / "store")})  # a folder: SQLite there
    result = sweep(spec, samples=1, out=tmp_path / "sweep")
    assert result.engine == "ray"
    client = MlflowClient(result.tracking["mlflow_uri"])
    parent = client.get_run(result.tracking["mlflow_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.params["sweep.engine"] == "ray"
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    by_lr = {float(c.data.params["train.optimizer.lr"]): c for c in children}
    assert sorted(by_lr) == [0.01, 1.0e30]
    ok, failed = by_lr[0.01], by_lr[1.0e30]
    assert ok.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(ok.info.run_id, "val_acc")] == [1, 2]
    assert failed.info.status == "FAILED" and "loss became" in failed.data.tags["dltoolkit.error"]
    assert parent.data.tags["dltoolkit.best_trial"] == ok.info.run_name
