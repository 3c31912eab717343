import pytest
import torch

from dltoolkit.api import check
from dltoolkit.errors import SpecError, UnknownNameError
from dltoolkit.spec import OptimizerSpec, ScheduleSpec, Spec
from dltoolkit.train.fit import fit
from dltoolkit.train.losses import loss_name
from dltoolkit.train.optim import make_optimizer, make_schedule


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", torch.optim.SGD),
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("rmsprop", torch.optim.RMSprop),
    ],
    ids=["sgd", "adam", "adamw", "rmsprop"],
)
def test_optimizers(name, cls):
    opt = make_optimizer(
        OptimizerSpec(name=name, lr=0.1, weight_decay=0.01), [torch.nn.Parameter(torch.zeros(2))]
    )
    assert isinstance(opt, cls)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["weight_decay"] == 0.01


def test_sgd_momentum_and_nesterov():
    opt = make_optimizer(
        OptimizerSpec(name="sgd", momentum=0.8, nesterov=True), [torch.nn.Parameter(torch.zeros(1))]
    )
    assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["nesterov"] is True


def test_unknown_optimizer_and_schedule_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'adamw'"):
        make_optimizer(OptimizerSpec(name="adamww"), [torch.nn.Parameter(torch.zeros(1))])
    opt = make_optimizer(OptimizerSpec(), [torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(UnknownNameError, match="Did you mean 'cosine'"):
        make_schedule(ScheduleSpec(name="cosin"), opt, 5, 10)


def _lrs(checked, tmp_path, **schedule):
    spec = checked.spec.with_values({"train.epochs": 6, "train.schedule": schedule})
    return fit(spec, checked.graph, checked.data, tmp_path).history["lr"].tolist()


@pytest.fixture
def checked(tiny_frame, tiny_spec_dict):
    return check(Spec.from_dict(tiny_spec_dict), tiny_frame)


def test_step_schedule(checked, tmp_path):
    lrs = _lrs(checked, tmp_path, name="step", step_size=2, gamma=0.5)
    assert lrs[0] == pytest.approx(0.01) and lrs == pytest.approx(
        [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    )  # lr used in each epoch


def test_cosine_schedule_decreases(checked, tmp_path):
    lrs = _lrs(checked, tmp_path, name="cosine")
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))


def test_warmup_rises_first(checked, tmp_path):
    lrs = _lrs(checked, tmp_path, name="cosine", warmup_epochs=3)
    assert lrs[0] < lrs[1] < lrs[2]


def test_onecycle_steps_per_batch(checked, tmp_path):
    lrs = _lrs(checked, tmp_path, name="onecycle")
    assert max(lrs) > lrs[0] and lrs[-1] < lrs[0]


def test_plateau_reduces_without_improvement(checked, tmp_path):
    spec = checked.spec.with_values(
        {
            "train.epochs": 6,
            "train.optimizer.lr": 1e-7,
            "train.schedule": {"name": "plateau", "patience": 0, "factor": 0.5},
        }
    )
    lrs = fit(spec, checked.graph, checked.data, tmp_path).history["lr"].tolist()
    assert lrs[-1] < lrs[0]


def test_loss_must_fit_the_task(tiny_spec_dict):
    spec = Spec.from_dict({**tiny_spec_dict, "train": {"loss": "mse"}})
    with pytest.raises(SpecError, match="Loss 'mse' does not fit a multiclass task"):
        loss_name(spec)
