"""Real sweeps on the session's local Ray: searchers, schedulers, live results, faults, the bundle."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import dltoolkit.bundle
from dltoolkit.tune import sweep

COMBOS = [
    ("random", "fifo", {}),
    ("grid", "asha", {}),
    ("optuna", "hyperband", {"max_concurrent": 1}),
    ("random", "median", {"grace_period": 1}),
    ("random", "pbt", {"grace_period": 1, "space": {"train.optimizer.lr": {"loguniform": [1e-3, 1e-1]}}}),
]


@pytest.mark.parametrize("search, scheduler, extra", COMBOS, ids=[f"{a}-{b}" for a, b, _ in COMBOS])
def test_searchers_and_schedulers_run_a_tiny_sweep(
    ray_session, make_spec, tmp_path, search, scheduler, extra
):
    extra = dict(extra)
    spec = make_spec(extra.pop("space", None), **extra)
    result = sweep(
        spec, search=search, scheduler=scheduler, samples=2 if search != "grid" else 1, out=tmp_path
    )
    table = result.trials()
    assert len(table) == 2
    assert set(table["status"]) == {"TERMINATED"}
    assert (table["epochs"] >= 1).all() and table["best_val_acc"].notna().all()
    assert result.best["score"] == table["best_val_acc"].max()
    assert (tmp_path / "trials.csv").is_file() and (tmp_path / "best" / "weights.pt").is_file()
    if search == "grid":
        assert sorted(table["graph.nodes.hidden.units"]) == [4, 8]


def test_results_stream_live_and_the_best_bundle_predicts(ray_session, make_spec, tmp_path):
    spec = make_spec(train={"epochs": 3})
    rows, first = [], threading.Event()

    def listen(row):
        rows.append(row)
        first.set()

    running = sweep(spec, out=tmp_path, background=True)
    running.subscribe(listen)
    assert first.wait(300), "no result streamed"
    assert not running.done or rows  # rows arrive while trials run, before wait() returns
    result = running.wait(300)
    assert result.done and len(rows) == 6
    assert {r["epoch"] for r in rows} == {1, 2, 3}
    assert set(rows[0]) == {"trial_id", "config", "epoch", "metrics"} and "val_acc" in rows[0]["metrics"]
    assert result.first_result_s is not None and result.first_result_s > 0
    model = dltoolkit.bundle.load(result.best_bundle)
    assert model.predict(model.example_input(4)).shape == (4,)
    assert model.spec.graph.nodes[0].attrs["units"] == result.best["config"]["graph.nodes.hidden.units"]
    assert 0.0 <= model.metrics["accuracy"] <= 1.0
    assert (tmp_path / "spec.yaml").read_text().count("graph.nodes.hidden.units") == 1
    assert result.wait(300, plots=True) is result  # the plots follow the sweep's end
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "curves.png",
        "importance.png",
        "parallel.png",
    ]
    assert "<b>Sweep</b>" in result._repr_html_()
    assert len(result.top(1)) == 1
    # the top trials as models (their best weights), and an ensemble of them with the same metrics
    models = result.top_models(2)
    assert len(models) == 2 and models[0].metrics["accuracy"] == pytest.approx(model.metrics["accuracy"])
    ensemble = result.ensemble(2)
    proba = ensemble.predict_proba(model.example_input(3))
    assert proba.shape[0] == 3 and np.allclose(proba.sum(1), 1)


def test_a_trial_that_raises_or_goes_nan_is_recorded_and_the_sweep_goes_on(ray_session, make_spec, tmp_path):
    space = {
        "train.optimizer.lr": {"grid": [0.01, 1.0e30]},  # 1e30: the loss overflows to inf/NaN
        "train.accelerator": {"grid": ["cpu", "cuda"]},  # no GPU here: Lightning raises
    }
    result = sweep(make_spec(space), samples=1, out=tmp_path)
    table = result.trials().set_index(["train.optimizer.lr", "train.accelerator"])
    assert len(table) == 4
    ok = table.loc[(0.01, "cpu")]
    assert ok["status"] == "TERMINATED" and ok["epochs"] == 2
    assert table.loc[(1.0e30, "cpu"), "status"] == "ERROR"
    assert "loss became" in table.loc[(1.0e30, "cpu"), "error"]
    assert table.loc[(0.01, "cuda"), "status"] == "ERROR"
    assert "gpu" in table.loc[(0.01, "cuda"), "error"].lower()
    assert result.best["config"] == {"train.optimizer.lr": 0.01, "train.accelerator": "cpu"}


def test_a_stopped_sweep_resumes_its_unfinished_trials(ray_session, make_spec, trace_dir, tmp_path):
    from dltoolkit.tune import resume

    def trace() -> list[tuple[str, int]]:
        lines = (trace_dir / "trace.txt").read_text().splitlines()
        return [(t, int(e)) for t, e in (line.split() for line in lines)]

    epochs = 40
    spec = make_spec(train={"epochs": epochs}, samples=3, max_concurrent=1)
    third = threading.Event()
    s = sweep(spec, out=tmp_path, background=True)
    s.subscribe(lambda row: row["epoch"] >= 3 and third.set())
    assert third.wait(300)
    s.stop()
    assert s.done and s.stopped
    stopped = s.trials()
    assert "STOPPED" in set(stopped["status"]), stopped
    assert (stopped["epochs"] < epochs).all()
    ids = set(stopped["trial_id"])
    at_stop = [(t, e) for t, e in trace() if t in ids]
    cut = {t for t, _ in at_stop}
    assert cut

    resumed = resume(tmp_path).wait()
    table = resumed.trials()
    assert len(table) == 3 and set(table["status"]) == {"TERMINATED"}
    assert (table["epochs"] == epochs).all()
    after = [(t, e) for t, e in trace() if t in set(table["trial_id"])][len(at_stop) :]
    for trial in cut:  # went on from its last checkpoint, not from the start
        assert min(e for t, e in after if t == trial) > 1, sorted(e for t, e in after if t == trial)
