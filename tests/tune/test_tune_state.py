"""A trial's state (what a checkpoint holds) is plain data, loaded with ``weights_only=True``."""

from __future__ import annotations

import io
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
