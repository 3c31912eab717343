"""The local sweep engine (Optuna, trials in threads): the engine choice, parity with Ray, faults,
stop and resume, the CLI, the panel, and a notebook kernel that stays responsive."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from _cli import sigint_cli_tune

import dltoolkit.bundle
import dltoolkit.tune.training
from dltoolkit.cli import main
from dltoolkit.errors import DLToolkitError, SpecError
from dltoolkit.spec import Spec
from dltoolkit.tune import resume, sweep
from dltoolkit.tune.engines import PRUNERS, SAMPLERS, SCHEDULERS, SEARCHERS, choose_engine, cores
from dltoolkit.tune.sweep import plan_for

CHOICES = [
    ({}, {}, "local", "auto: one machine"),
    ({}, {"address": "127.0.0.1:6379"}, "ray", "address"),
    ({"scheduler": "pbt"}, {}, "ray", "search.scheduler='pbt'"),
    ({"gpus_per_trial": 0.5}, {}, "ray", "search.gpus_per_trial"),
    ({"max_concurrent": cores() + 1}, {}, "ray", "search.max_concurrent"),
    ({"max_concurrent": cores()}, {}, "local", "auto"),
    ({}, {"workers": True}, "ray", "workers"),
    ({"engine": "ray"}, {}, "ray", "search.engine: ray"),
    ({"engine": "local"}, {}, "local", "search.engine: local"),
]


@pytest.mark.parametrize(
    "search, call, engine, reason",
    CHOICES,
    ids=["default", "address", "pbt", "gpu", "too-concurrent", "concurrent-ok", "workers", "ray", "local"],
)
def test_auto_picks_local_unless_ray_is_needed_and_says_why(make_spec, search, call, engine, reason):
    spec = make_spec(**({"engine": "auto"} | search))
    choice = choose_engine(plan_for(spec), spec.search.engine, **call)
    assert choice.name == engine
    assert reason in choice.reason and str(choice).startswith(f"engine: {engine} (")


@pytest.mark.parametrize(
    "search, call, match",
    [
        ({"scheduler": "pbt"}, {}, r"cannot run search.scheduler: received 'pbt'"),
        ({"gpus_per_trial": 1.0}, {}, r"cannot run search.gpus_per_trial"),
        ({"max_concurrent": cores() + 1}, {}, r"cannot run search.max_concurrent.*cores"),
        ({}, {"address": "127.0.0.1:6379"}, r"cannot run address"),
    ],
    ids=["pbt", "gpu", "concurrent", "address"],
)
def test_the_local_engine_refuses_what_needs_ray(make_spec, search, call, match):
    spec = make_spec(**({"engine": "local"} | search))
    with pytest.raises(SpecError, match=match) as caught:
        choose_engine(plan_for(spec), "local", **call)
    assert "search.engine: ray" in str(caught.value)


def test_local_grid_search_needs_finite_domains_and_names_match_ray(make_spec, tmp_path):
    spec = make_spec({"train.optimizer.lr": {"loguniform": [1e-3, 1e-1]}}, search="grid", engine="local")
    with pytest.raises(SpecError, match=r"finite grid.*train.optimizer.lr.*search.engine: ray"):
        sweep(spec, out=tmp_path)
    assert not (tmp_path / "study.log").exists()  # refused before any trial
    assert SAMPLERS.names() == SEARCHERS.names() and PRUNERS.names() == SCHEDULERS.names()


def test_a_new_local_sweep_will_not_write_over_an_earlier_one(make_spec, tmp_path):
    (tmp_path / "study.log").write_text("")  # an earlier sweep's study
    (tmp_path / "spec.yaml").write_text("earlier")
    with pytest.raises(DLToolkitError, match=r"holds an earlier sweep.*resume"):
        sweep(make_spec(engine="local"), out=tmp_path)
    assert (tmp_path / "spec.yaml").read_text() == "earlier"


@pytest.fixture
def local_spec(make_spec):
    def make(space=None, train=None, **search):
        return make_spec(space, train, **({"engine": "local"} | search))

    return make


def test_parity_with_ray_same_columns_same_best(ray_session, make_spec, tmp_path):
    """The same seeded trials (a grid, one at a time) on both engines: the same table and best."""
    tables, bests = {}, {}
    space = {"train.optimizer.lr": {"choice": [0.0001, 0.05]}}  # far apart: no tie for the best
    for engine in ("ray", "local"):
        spec = make_spec(space, {"epochs": 3}, search="grid", samples=1, max_concurrent=1, engine=engine)
        result = sweep(spec, out=tmp_path / engine)
        assert result.engine == engine
        tables[engine] = result.trials().set_index("train.optimizer.lr").sort_index()
        bests[engine] = result.best
    ray_table, local_table = tables["ray"], tables["local"]
    assert list(ray_table.columns) == list(local_table.columns)
    assert list(local_table.index) == [0.0001, 0.05] and set(local_table["status"]) == {"TERMINATED"}
    assert local_table["best_val_acc"].nunique() == 2
    for column in ("best_val_acc", "last_val_acc", "best_epoch", "epochs"):
        assert np.allclose(ray_table[column], local_table[column]), column  # same training code
    assert bests["ray"]["config"] == bests["local"]["config"]
    assert bests["ray"]["score"] == pytest.approx(bests["local"]["score"])
    assert bests["local"]["score"] == local_table["best_val_acc"].max()


def test_local_results_stream_and_give_the_best_bundle_top_models_and_plots(local_spec, tmp_path):
    rows = []
    running = sweep(local_spec(train={"epochs": 3}, max_concurrent=2), out=tmp_path, background=True)
    running.subscribe(rows.append)
    result = running.wait(300)
    assert result.done and not result.stopped and result.engine == "local"
    assert {r["epoch"] for r in rows} <= {1, 2, 3} and len(result.trials()) == 2
    assert set(rows[0]) == {"trial_id", "config", "epoch", "metrics"} and "val_acc" in rows[0]["metrics"]
    model = dltoolkit.bundle.load(result.best_bundle)
    assert model.spec.graph.nodes[0].attrs["units"] == result.best["config"]["graph.nodes.hidden.units"]
    models = result.top_models(2)
    assert len(models) == 2 and models[0].metrics["accuracy"] == pytest.approx(model.metrics["accuracy"])
    proba = result.ensemble(2).predict_proba(model.example_input(3))
    assert proba.shape[0] == 3 and np.allclose(proba.sum(1), 1)
    assert (tmp_path / "trials.csv").is_file() and result.wait(300, plots=True) is result
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "curves.png",
        "importance.png",
        "parallel.png",
    ]
    saved = pd.read_csv(tmp_path / "trials.csv")
    assert list(saved.columns) == list(result.trials().columns)
    assert "local engine" in result._repr_html_()


def test_a_trial_that_raises_or_goes_nan_is_recorded_and_the_sweep_goes_on(local_spec, tmp_path):
    space = {
        "train.optimizer.lr": {"grid": [0.01, 1.0e30]},  # 1e30: the loss overflows to inf/NaN
        "train.accelerator": {"grid": ["cpu", "cuda"]},  # no GPU here: Lightning raises
    }
    result = sweep(local_spec(space, search="grid"), samples=1, out=tmp_path)
    table = result.trials().set_index(["train.optimizer.lr", "train.accelerator"])
    assert len(table) == 4
    ok = table.loc[(0.01, "cpu")]
    assert ok["status"] == "TERMINATED" and ok["epochs"] == 2
    assert table.loc[(1.0e30, "cpu"), "status"] == "ERROR"
    assert "loss became" in table.loc[(1.0e30, "cpu"), "error"]
    assert table.loc[(0.01, "cuda"), "status"] == "ERROR"
    assert "gpu" in table.loc[(0.01, "cuda"), "error"].lower()
    assert result.best["config"] == {"train.optimizer.lr": 0.01, "train.accelerator": "cpu"}


def test_local_grid_search_repeats_the_whole_grid_samples_times(local_spec, tmp_path):
    result = sweep(local_spec(search="grid", samples=2, scheduler="hyperband"), out=tmp_path)
    table = result.trials()
    assert len(table) == 4 and set(table["status"]) == {"TERMINATED"}, table
    assert sorted(table["graph.nodes.hidden.units"]) == [4, 4, 8, 8]


def test_a_stopped_local_sweep_resumes_its_unfinished_trials_from_their_last_epoch(
    local_spec, tmp_path, monkeypatch
):
    starts: list[int] = []  # the epoch each trained trial started from
    real_train = dltoolkit.tune.training.train

    def spy(trial, data, state, emit, **options):
        start = dltoolkit.tune.training.load_state(state)
        starts.append(start["epoch"] if start else 0)
        return real_train(trial, data, state, emit, **options)

    monkeypatch.setattr(dltoolkit.tune.training, "train", spy)
    epochs = 40
    third = threading.Event()
    s = sweep(
        local_spec(train={"epochs": epochs}, samples=3, max_concurrent=1), out=tmp_path, background=True
    )
    s.subscribe(lambda row: row["epoch"] >= 3 and third.set())
    assert third.wait(300)
    stopper = threading.Thread(target=s.stop)  # from another thread, as a panel's button does
    stopper.start()
    stopper.join(300)
    assert s.done and s.stopped
    stopped = s.trials()
    assert list(stopped["status"]) == ["STOPPED"], stopped  # one at a time: the second never began
    cut = int(stopped["epochs"].iloc[0])
    assert 3 <= cut < epochs and (tmp_path / "trials.csv").is_file()
    assert starts == [0]

    resumed = resume(tmp_path).wait()
    table = resumed.trials()
    assert len(table) == 3 and set(table["status"]) == {"TERMINATED"}
    assert (table["epochs"] == epochs).all()
    assert table["trial_id"].iloc[0] == stopped["trial_id"].iloc[0]  # the same trial, continued
    assert starts == [0, cut, 0, 0]  # ... from its last saved epoch, not from the start
    assert resumed.best_bundle is not None and (resumed.best_bundle / "weights.pt").is_file()


def test_a_subscriber_can_stop_the_sweep_from_its_callback(local_spec, tmp_path):
    # the callback runs in a trial's thread: stop() there must not wait for the sweep's end
    s = sweep(local_spec(train={"epochs": 40}, max_concurrent=1), out=tmp_path, background=True)
    returned = []
    s.subscribe(lambda row: row["epoch"] == 2 and returned.append(s.stop(timeout=600).done))
    assert s.wait(600).done and s.stopped
    assert returned == [False]  # stop() returned at once, inside the sweep
    assert list(s.trials()["status"]) == ["STOPPED"] and s.trials()["epochs"].iloc[0] == 2


def test_cli_tune_runs_locally_through_auto_and_says_so(make_spec, tmp_path, capsys):
    spec_path = make_spec(engine="auto").save(tmp_path / "tiny.yaml")
    out = tmp_path / "sweep"
    args = ["tune", str(spec_path), "--samples", "2", "--scheduler", "asha", "--search", "optuna"]
    code = main([*args, "--max-concurrent", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "engine: local (auto: one machine" in printed and "best: trial" in printed
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 and set(trials["status"]) == {"TERMINATED"}
    assert (out / "study.log").is_file() and not (out / "tune").exists()  # no Ray experiment
    model = dltoolkit.bundle.load(out / "best")
    assert len(model.predict(model.example_input(2))) == 2


EXIT_AT_ONCE = """
import sys
from dltoolkit.spec import Spec
from dltoolkit.tune import sweep
sweep(Spec.load(sys.argv[1]), out=sys.argv[2], background=True).wait()  # not waiting for the plots
"""


def test_a_script_that_ends_right_after_a_background_sweep_exits_cleanly_with_its_plots(make_spec, tmp_path):
    # The plots are drawn in a thread started from the sweep's daemon thread; a thread inherits that
    # flag, and a daemon thread still in matplotlib's C++ font code at interpreter exit aborted the
    # process (SIGABRT, "terminate called without an active exception") or lost the plots.
    import subprocess
    import sys

    spec = make_spec(samples=2, max_concurrent=2, engine="local").save(tmp_path / "s.yaml")
    out = tmp_path / "sweep"
    run = subprocess.run(
        [sys.executable, "-c", EXIT_AT_ONCE, str(spec), str(out)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "terminate called" not in run.stderr
    assert {p.name for p in (out / "plots").iterdir()} == {"curves.png", "parallel.png", "importance.png"}


def test_ctrl_c_stops_the_local_cli_sweep_and_resume_finishes_it(make_spec, tmp_path, capsys):

    epochs = 200
    spec = make_spec(train={"epochs": epochs}, samples=2, max_concurrent=1, engine="local")
    out = tmp_path / "sweep"
    stderr = sigint_cli_tune([str(spec.save(tmp_path / "s.yaml")), "--out", str(out)])
    assert f"dltoolkit tune --resume {out}" in stderr, stderr[-2000:]
    stopped = pd.read_csv(out / "trials.csv")
    assert list(stopped["status"]) == ["STOPPED"] and (stopped["epochs"] < epochs).all()

    capsys.readouterr()
    assert main(["tune", "--resume", str(out)]) == 0
    assert "engine: local" in capsys.readouterr().out
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"} and (table["epochs"] == epochs).all()


def test_a_local_sweep_over_a_streamed_table_runs_its_trials_side_by_side(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=2400), "b": rng.normal(size=2400)})
    frame["target"] = (frame["a"] + frame["b"] > 0).astype(int)
    (tmp_path / "table").mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[part].to_parquet(tmp_path / "table" / f"p{i}.parquet", row_group_size=100, index=False)
    spec = Spec.from_dict(
        {
            "name": "streamed",
            "task": {"kind": "binary"},
            "data": {"source": str(tmp_path / "table"), "in_memory_mb": 0, "workers": 0},
            "graph": {"nodes": [{"name": "h", "op": "linear", "units": 8}, {"name": "r", "op": "relu"}]},
            "train": {"epochs": 2, "early_stopping": None},
            "search": {
                "space": {"graph.nodes.h.units": {"choice": [4, 8]}},
                "samples": 4,
                "max_concurrent": 2,
                "metric": "val_acc",
                "mode": "max",
                "engine": "local",
            },
        }
    )
    table = sweep(spec, out=tmp_path / "sweep").trials()
    assert list(table["status"]) == ["TERMINATED"] * 4, table["error"].tolist()


def test_the_panel_drives_a_local_sweep(tmp_path):
    from dltoolkit.recipes import load_recipe
    from dltoolkit.widgets import SpecState, TuneController, TunePanel

    state = SpecState(load_recipe("wine").with_values({"train.epochs": 2}))
    state.update({"search.max_epochs": 2, "search.samples": 2, "search.max_concurrent": 1})
    panel = TunePanel(TuneController(state, out=tmp_path), interval=0.2)
    panel.launch_button.click()
    c = panel.controller
    assert c.wait(300) and c.status == "done", c.error
    assert c.sweep.engine == "local" and c.rows == 4
    panel._watch()
    assert panel.trials.value.count("<tr>") == 2 and panel.curves.value[:4] == b"\x89PNG"


def test_the_kernel_answers_another_cell_while_a_local_sweep_runs(tmp_path):
    from IPython.core.interactiveshell import InteractiveShell

    from dltoolkit import extension

    shell = InteractiveShell.instance()
    extension.load_ipython_extension(shell)
    out = tmp_path / "s"
    line = f"digits-mlp --samples 2 --epochs 200 --out {out} --set search.max_epochs=200"
    line += " --set search.scheduler=fifo --set search.max_concurrent=1"
    running = shell.run_line_magic("dlt_tune", line)
    try:
        assert running.engine == "local"
        answered = shell.run_cell("answer = 6 * 7")
        assert answered.success and shell.user_ns["answer"] == 42
        assert not running.done  # the cell completed while the sweep still ran
    finally:
        running.stop()
    assert running.done and running.stopped


def test_space_entries_on_unused_nodes_are_left_out_with_a_warning(local_spec, tmp_path):
    spec = local_spec(
        {"graph.nodes.side.units": {"choice": [4, 8]}, "train.optimizer.lr": {"choice": [0.01, 0.02]}},
        max_concurrent=1,
    )
    nodes = [n.model_dump(exclude_defaults=True) | {"op": n.op} for n in spec.graph.nodes]
    side = {"name": "side", "op": "linear", "units": 4, "inputs": ["input"]}  # feeds nothing
    spec = spec.with_values({"graph.nodes": [nodes[0], side, nodes[1] | {"inputs": ["hidden"]}]})
    with pytest.warns(UserWarning, match=r"Left out of the search: graph.nodes.side.units"):
        result = sweep(spec, out=tmp_path / "a")
    assert list(result.plan.space) == ["train.optimizer.lr"]
    assert "graph.nodes.side.units" not in result.trials().columns
    assert "left out (unused nodes): graph.nodes.side.units" in str(result.preflight)
    data = spec.to_dict()
    data["search"]["space"] = {"graph.nodes.side.units": {"choice": [4, 8]}}
    only_dead = Spec.from_dict(data)
    with pytest.raises(
        DLToolkitError, match="Every search-space entry addresses a node that feeds no output"
    ):
        sweep(only_dead, out=tmp_path / "b")
