"""A trial's state (what a checkpoint holds) is plain data, loaded with ``weights_only=True``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from dltoolkit.errors import TrainingError
from dltoolkit.spec import OptimizerSpec, ScheduleSpec
from dltoolkit.train.optim import make_optimizer, make_schedule
from dltoolkit.tune.training import dump_state, load_state


class _Payload:
    """Unpickling this object would create a file: what a hostile checkpoint could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_checkpoint_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"epoch": 1, "x": _Payload(marker)}, buffer)
    with pytest.raises(TrainingError, match="not loaded.*Resume only sweep folders you trust"):
        load_state(buffer.getvalue())
    assert not marker.exists()


@pytest.mark.parametrize("warmup", [0, 2], ids=["plain", "warmup"])
@pytest.mark.parametrize("schedule", ["none", "step", "cosine", "onecycle", "plateau"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_every_optimizer_and_schedule_state_round_trips(optimizer, schedule, warmup):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = make_optimizer(OptimizerSpec(name=optimizer, lr=0.1, momentum=0.9), model.parameters())
    sched, _ = make_schedule(ScheduleSpec(name=schedule, warmup_epochs=warmup), opt, 10, 3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    if sched is not None:
        sched.step(1.0) if schedule == "plateau" else sched.step()
    state = {
        "epoch": 1,
        "base_lr": 0.1,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "schedule": sched.state_dict() if sched else None,
        "best": {"score": 0.5, "epoch": 1, "weights": model.state_dict()},
    }
    back = load_state(dump_state(state))
    assert back["epoch"] == 1 and torch.equal(back["model"]["weight"], model.weight)
    assert back["optimizer"]["param_groups"][0]["lr"] == opt.param_groups[0]["lr"]
    assert back["schedule"] == (sched.state_dict() if sched else None)


def test_a_lazy_state_is_the_epochs_state_not_a_later_one(make_spec):
    """The local engine's per-epoch state (copied, serialized later) equals the bytes a Ray trial
    reports for the same epoch, after training has gone on."""
    from dltoolkit.api import check
    from dltoolkit.tune.training import train

    spec = make_spec(train={"epochs": 3, "seed": 1}).with_values({"train.threads": 1})
    data = check(spec).data
    runs: dict[bool, list] = {False: [], True: []}
    for lazy in (False, True):
        train(spec, data, None, lambda m, e, s, lazy=lazy: runs[lazy].append((m, e, s)), lazy=lazy)
    assert [e for _, e, _ in runs[True]] == [1, 2, 3]
    for (metrics, _, blob), (lazy_metrics, _, lazy_state) in zip(runs[False], runs[True], strict=True):
        assert metrics == lazy_metrics  # the same training
        eager, late = load_state(blob), load_state(lazy_state())  # serialized after epoch 3
        assert late["epoch"] == eager["epoch"] and late["best"]["epoch"] == eager["best"]["epoch"]
        for key in ("model", "best"):
            first = eager[key] if key == "model" else eager[key]["weights"]
            second = late[key] if key == "model" else late[key]["weights"]
            assert all(torch.equal(first[k], second[k]) for k in first)
        moments = [(v, late["optimizer"]["state"][i][k]) for i, s in eager["optimizer"]["state"].items()
                   for k, v in s.items() if isinstance(v, torch.Tensor)]  # fmt: skip
        assert moments and all(torch.equal(a, b) for a, b in moments)


def test_a_state_cut_short_is_replaced_by_the_one_kept_before_it_and_without_one_is_a_clear_error(tmp_path):
    """A driver killed while Tune wrote (or uploaded) its experiment state leaves it cut short; the
    state kept before it (dltoolkit.tune._ray.keep_previous_state) is put back before a resume."""
    from dltoolkit.errors import DLToolkitError
    from dltoolkit.tune._ray import PREVIOUS, repair_state

    good = tmp_path / "experiment_state-2026-01-01_00-00-00.json"
    good.write_text(json.dumps({"trial_data": [1]}))
    cut = tmp_path / "experiment_state-2026-01-02_00-00-00.json"
    cut.write_text('{"trial_data": [1, 2')
    (tmp_path / (cut.name + PREVIOUS)).write_text(json.dumps({"trial_data": [1]}))
    assert repair_state(tmp_path) == [cut.name]
    assert json.loads(cut.read_text()) == {"trial_data": [1]} and json.loads(good.read_text())
    assert not (tmp_path / (cut.name + PREVIOUS)).exists()
    cut.write_text("")  # cut short again, and nothing kept
    with pytest.raises(DLToolkitError, match="saved state is cut short and no earlier one was kept"):
        repair_state(tmp_path)


def test_tune_keeps_the_previous_experiment_state_beside_the_one_it_writes(ray_session, make_spec, tmp_path):
    from dltoolkit.tune import sweep
    from dltoolkit.tune._ray import PREVIOUS

    result = sweep(
        make_spec(train={"epochs": 3}), samples=1, out=tmp_path, overrides={"search.engine": "ray"}
    )
    states = sorted(result.experiment.glob("experiment_state-*.json"))
    assert len(states) == 1
    kept = states[0].with_name(states[0].name + PREVIOUS)
    assert kept.is_file() and json.loads(kept.read_text())["trial_data"]  # a complete earlier state
