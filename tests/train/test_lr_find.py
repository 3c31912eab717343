import math

import numpy as np
import pytest
import torch

import dltoolkit
from dltoolkit.api import check, run
from dltoolkit.cli import main
from dltoolkit.errors import SpecError, TrainingError
from dltoolkit.spec import Spec
from dltoolkit.train.fit import build_module
from dltoolkit.train.lr_find import LRFind, _batches, lr_find, range_test, suggest


@pytest.fixture
def tiny(tiny_frame, tiny_spec_dict):
    return Spec.from_dict(tiny_spec_dict), tiny_frame


def test_ramp_is_exponential_and_the_suggestion_lies_on_it(tiny):
    spec, frame = tiny
    found = dltoolkit.lr_find(spec, frame, min_lr=1e-5, max_lr=10, steps=40)
    assert isinstance(found, LRFind)
    lrs = np.array(found.lrs)
    assert lrs[0] == pytest.approx(1e-5)
    ratios = lrs[1:] / lrs[:-1]
    assert np.allclose(ratios, (10 / 1e-5) ** (1 / 39))  # a constant factor per step
    assert len(found.losses) == len(found.smoothed) == len(found.lrs)
    assert 1e-5 <= found.suggestion <= 10
    assert min(found.smoothed) < found.smoothed[0]  # the loss fell somewhere on the ramp
    assert found.spec.train.optimizer.lr == found.suggestion
    assert spec.train.optimizer.lr == 0.01  # the caller's spec is untouched
    assert found.spec.with_values({"train.optimizer.lr": 0.01}) == spec  # only the lr differs


def test_weights_are_restored_after_the_test(tiny):
    spec, frame = tiny
    checked = check(spec, frame)
    torch.manual_seed(0)
    module = build_module(spec, checked.graph, 5, data=checked.data)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    rng = torch.get_rng_state()
    lrs, losses, _, _ = range_test(module, _batches(spec, checked.data), 1e-4, 1.0, 30)
    assert len(lrs) > 10 and losses[0] != losses[-1]  # the weights did move during the test
    after = module.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(torch.get_rng_state(), rng)
    assert module.training  # TaskModule starts in train mode and is left so


def test_a_too_large_max_lr_diverges_and_stops_early(tiny):
    spec, frame = tiny
    spec = spec.with_values({"train.optimizer.name": "sgd", "train.optimizer.momentum": 0.9})
    found = lr_find(spec, frame, min_lr=1e-4, max_lr=1e6, steps=100)
    assert found.diverged
    assert len(found.lrs) < 100 and found.lrs[-1] < 1e6
    assert found.suggestion < found.lrs[-1]  # suggested before the blow-up


def test_a_gentle_range_does_not_diverge(tiny):
    spec, frame = tiny
    found = lr_find(spec, frame, min_lr=1e-6, max_lr=1e-2, steps=20)
    assert not found.diverged and len(found.lrs) == 20 and found.lrs[-1] == pytest.approx(1e-2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_lr": 1.0, "max_lr": 1.0}, r"max_lr must be above min_lr.*min_lr < max_lr"),
        ({"min_lr": 0.1, "max_lr": 0.01}, r"max_lr must be above min_lr"),
        ({"min_lr": 0.0}, r"min_lr must be positive.*received 0.0"),
        ({"steps": 5}, r"steps is too small.*received 5.*>= 10"),
        ({"steps": 20.5}, r"steps must be an integer"),
        ({"smoothing": 1.0}, r"smoothing is out of range"),
        ({"diverge": 1.0}, r"diverge must be above 1"),
    ],
    ids=["equal", "reversed", "zero-min", "few-steps", "float-steps", "smoothing", "diverge"],
)
def test_bad_arguments_are_clear_errors_before_any_work(kwargs, match):
    with pytest.raises(SpecError, match=match):
        lr_find("no-such-recipe-is-read-before-the-arguments-are-checked", **kwargs)


def test_suggest_picks_the_steepest_fall_before_the_minimum():
    lrs = [10.0**e for e in np.linspace(-6, 0, 25)]
    x = np.log10(lrs)
    smoothed = list(2.0 - 1.5 / (1 + np.exp(-4 * (x + 3))) + np.where(x > -1, 10 * (x + 1) ** 2, 0))
    assert math.log10(suggest(lrs, smoothed)) == pytest.approx(-3, abs=0.26)  # the sigmoid's centre


def test_suggest_says_when_the_loss_never_fell():
    with pytest.raises(TrainingError, match="Lower min_lr"):
        suggest([1e-3, 1e-2, 1e-1], [1.0, 5.0, 50.0])


def test_plot_has_a_log_axis_and_marks_the_suggestion(tiny, tmp_path):
    spec, frame = tiny
    found = lr_find(spec, frame, min_lr=1e-5, max_lr=10, steps=30)
    fig = found.plot()
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate"
    assert any(f"{found.suggestion:.2g}" in t.get_text() for t in ax.get_legend().get_texts())
    assert any(tuple(line.get_xdata()) == (found.suggestion, found.suggestion) for line in ax.lines)
    path = found.save_plot(tmp_path / "lr.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_cli_prints_the_suggestion_and_writes_plot_and_spec(tiny, tmp_path, capsys):
    spec, frame = tiny
    data = tmp_path / "tiny.csv"
    frame.to_csv(data, index=False)
    path = spec.with_values({"data.source": str(data)}).save(tmp_path / "tiny.yaml")
    out = tmp_path / "found"
    code = main(["lr-find", str(path), "--set", "train.batch_size=8", "--steps", "30", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "suggested learning rate:" in printed and "(the spec had 0.01)" in printed
    saved = Spec.load(out / "spec.yaml")
    assert f"{saved.train.optimizer.lr:.2g}" in printed and saved.train.batch_size == 8
    assert (out / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.iterdir()) == ["lr_find.png", "spec.yaml"]  # no temporaries left


def test_cli_refuses_bad_arguments_and_a_full_out_before_work(tmp_path, capsys):
    assert main(["lr-find", "digits-mlp", "--min-lr", "1", "--max-lr", "0.1"]) == 2
    assert "max_lr must be above min_lr" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("keep")
    assert main(["lr-find", "digits-mlp", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "x.txt").read_text() == "keep"


def test_the_suggested_lr_trains_as_well_as_the_recipe_default(tmp_path):
    """The issue's test: on digits-mlp, the suggestion reaches at least the default's accuracy."""
    short = {"train.epochs": 3}
    default = run("digits-mlp", out=tmp_path / "default", overrides=short, plots=False)
    found = lr_find("digits-mlp", overrides=short)
    assert found.suggestion != default.spec.train.optimizer.lr
    suggested = run(found.spec, out=tmp_path / "suggested", plots=False)
    assert suggested.spec.train.epochs == default.spec.train.epochs == 3
    assert suggested.metrics["accuracy"] >= default.metrics["accuracy"], (
        found.suggestion,
        suggested.metrics["accuracy"],
        default.metrics["accuracy"],
    )
