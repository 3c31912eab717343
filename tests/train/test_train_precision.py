"""train.precision and train.accelerator: bf16-mixed trains on CPU in bfloat16 autocast with float32
weights, its bundle predicts in float32, and a GPU or 16-mixed where there is no CUDA GPU is a
clear SpecError before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import Callback

import dltoolkit
from dltoolkit.api import check
from dltoolkit.errors import SpecError
from dltoolkit.spec import Spec
from dltoolkit.train.fit import device_settings, fit


class _LinearOutputs:
    """Records (training?, output dtype) of every nn.Linear call of a model while attached."""

    def __init__(self) -> None:
        self.seen: list[tuple[bool, torch.dtype]] = []
        self.handles: list = []

    def attach(self, model: torch.nn.Module) -> None:
        for layer in model.modules():
            if isinstance(layer, torch.nn.Linear):
                self.handles.append(
                    layer.register_forward_hook(lambda m, i, out: self.seen.append((m.training, out.dtype)))
                )

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


class _RecordForward(Callback):
    def __init__(self) -> None:
        self.outputs = _LinearOutputs()
        self.param_dtypes: set[torch.dtype] = set()

    def on_train_start(self, trainer, module):
        self.outputs.attach(module.model)

    def on_train_epoch_end(self, trainer, module):
        self.param_dtypes |= {p.dtype for p in module.model.parameters()}

    def on_train_end(self, trainer, module):
        self.outputs.detach()


@pytest.fixture
def checked(tiny_frame, tiny_spec_dict):
    return check(
        Spec.from_dict(tiny_spec_dict | {"train": tiny_spec_dict["train"] | {"epochs": 8}}), tiny_frame
    )


@pytest.mark.parametrize(("precision", "dtype"), [("bf16-mixed", torch.bfloat16), ("32", torch.float32)])
def test_the_forward_runs_in_the_precision_asked_for_and_the_weights_stay_float32(
    checked, tmp_path, precision, dtype
):
    spec = checked.spec.with_values({"train.precision": precision, "train.accelerator": "cpu"})
    record = _RecordForward()
    result = fit(spec, checked.graph, checked.data, tmp_path, extra_callbacks=[record])
    train = {d for training, d in record.outputs.seen if training}
    evaluation = {d for training, d in record.outputs.seen if not training}
    assert train == {dtype}  # every training forward, in autocast for bf16-mixed
    assert evaluation == {dtype}  # validation runs under the same precision
    assert record.param_dtypes == {torch.float32}  # mixed precision keeps float32 master weights
    assert {p.dtype for p in result.model.parameters()} == {torch.float32}
    h = result.history
    assert h["train_loss"].iloc[-1] < 0.8 * h["train_loss"].iloc[0]  # it learned
    assert h["val_acc"].max() > 0.6


class _CountBackward(Callback):
    def __init__(self) -> None:
        self.before = self.after = self.steps = 0

    def on_before_backward(self, trainer, module, loss):
        self.before += 1

    def on_after_backward(self, trainer, module):
        self.after += 1

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.steps += 1


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_backward_hooks_run_once_per_optimizer_step_when_a_callback_has_them(checked, tmp_path, precision):
    # a 32-bit single-device step calls loss.backward() itself when nothing hooks the backward pass
    # (TaskModule._backward_is_plain); a callback that does must still see every backward
    spec = checked.spec.with_values({"train.precision": precision, "train.accelerator": "cpu"})
    count = _CountBackward()
    result = fit(spec, checked.graph, checked.data, tmp_path, extra_callbacks=[count])
    steps = result.epochs * -(-len(checked.data.X_train) // spec.train.batch_size)
    assert count.before == count.after == count.steps == steps > 0
    h = result.history
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]


def test_a_32_bit_step_without_hooks_counts_every_step_and_checkpoints_the_best_epoch(checked, tmp_path):
    # the lean step (no hook to dispatch to): global_step must still count every optimizer step, or
    # ModelCheckpoint (which skips saving when global_step has not moved) keeps the first epoch only
    seen: dict[str, object] = {}

    class Watch(Callback):  # no step or backward hook: the lean path stays on
        def on_train_end(self, trainer, module):
            seen["global_step"] = trainer.global_step
            seen["lean"] = module._lean is not None

    spec = checked.spec.with_values({"train.grad_clip": 0.5})
    result = fit(spec, checked.graph, checked.data, tmp_path, extra_callbacks=[Watch()])
    steps = result.epochs * -(-len(checked.data.X_train) // spec.train.batch_size)
    assert seen == {"global_step": steps, "lean": True}
    best = int(
        result.history[result.monitor].idxmax()
        if "acc" in result.monitor
        else result.history[result.monitor].idxmin()
    )
    assert result.best_epoch == best + 1 > 1  # the checkpoint followed the best epoch past the first
    assert result.best_score == pytest.approx(float(result.history[result.monitor].iloc[best]))


def test_the_history_has_every_metric_while_lightning_logs_only_what_its_callbacks_read(checked, tmp_path):
    seen: list[set[str]] = []

    class Logged(Callback):
        def on_train_epoch_end(self, trainer, module):
            seen.append(set(trainer.callback_metrics))

    result = fit(checked.spec, checked.graph, checked.data, tmp_path, extra_callbacks=[Logged()])
    monitor, _ = checked.spec.task.monitor_metric()
    assert seen and all(names == {monitor, "val_loss"} for names in seen)
    columns = set(result.history.columns)
    assert {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr"} <= columns
    assert result.best_score == pytest.approx(
        result.history[monitor].agg("max" if "acc" in monitor else "min")
    )


def test_a_bf16_bundle_loads_and_predicts_in_float32(tiny_frame, tiny_spec_dict, tmp_path):
    spec = tiny_spec_dict | {"train": tiny_spec_dict["train"] | {"epochs": 8, "precision": "bf16-mixed"}}
    run = dltoolkit.run(spec, data=tiny_frame, out=tmp_path / "run", plots=False)
    assert run.metrics["accuracy"] > 0.6
    bundle = dltoolkit.load(tmp_path / "run" / "model")
    assert bundle.spec.train.precision == "bf16-mixed"
    assert {p.dtype for p in bundle.model.parameters()} == {torch.float32}
    outputs = _LinearOutputs()
    outputs.attach(bundle.model)
    rows = tiny_frame.drop(columns="label").head(10)
    proba = bundle.predict_proba(rows)
    outputs.detach()
    assert {d for _, d in outputs.seen} == {torch.float32}
    assert proba.dtype == np.float32 and np.allclose(proba.sum(1), 1, atol=1e-6)
    expected = torch.softmax(bundle.model(bundle.transform(rows)), -1).detach().numpy()
    np.testing.assert_allclose(proba, expected, rtol=1e-6, atol=1e-7)


def test_precision_and_accelerator_in_the_spec():
    base = {"task": {"kind": "binary"}, "data": {"source": "iris"}, "graph": {"nodes": []}}
    assert Spec.from_dict(base | {"train": {"precision": 32}}).train.precision == "32"
    assert Spec.from_yaml(
        Spec.from_dict(base | {"train": {"precision": "bf16-mixed"}}).to_yaml()
    ).train.precision == ("bf16-mixed")
    with pytest.raises(SpecError, match=r"train.precision"):
        Spec.from_dict(base | {"train": {"precision": "8-bit"}})
    with pytest.raises(SpecError, match=r"train.accelerator"):
        Spec.from_dict(base | {"train": {"accelerator": "tpu"}})
    spec = Spec.from_dict(base)
    assert (spec.train.accelerator, spec.train.precision) == ("cpu", "32")


@pytest.mark.parametrize(
    ("train", "cuda", "expected"),
    [
        ({}, False, ("cpu", "32-true")),
        ({"accelerator": "auto"}, False, ("cpu", "32-true")),
        ({"accelerator": "auto"}, True, ("gpu", "32-true")),
        ({"accelerator": "gpu", "precision": "16-mixed"}, True, ("gpu", "16-mixed")),
        ({"accelerator": "cpu", "precision": "bf16-mixed"}, False, ("cpu", "bf16-mixed")),
    ],
)
def test_device_settings(train, cuda, expected):
    spec = Spec.from_dict(
        {"task": {"kind": "binary"}, "data": {"source": "iris"}, "graph": {"nodes": []}, "train": train}
    )
    assert device_settings(spec, cuda=cuda) == expected


@pytest.mark.parametrize(
    ("train", "cuda", "error"),
    [
        ({"accelerator": "gpu"}, False, r"asks for a GPU but PyTorch sees no CUDA GPU.*auto"),
        ({"accelerator": "cuda"}, False, r"asks for a GPU"),
        ({"accelerator": "auto", "precision": "16-mixed"}, False, r"16-mixed needs a CUDA GPU.*bf16-mixed"),
        (
            {"accelerator": "cpu", "precision": "16-mixed"},
            True,
            r"16-mixed needs a CUDA GPU.*accelerator: gpu",
        ),
    ],
)
def test_a_gpu_or_16_mixed_without_cuda_is_a_spec_error(train, cuda, error):
    spec = Spec.from_dict(
        {"task": {"kind": "binary"}, "data": {"source": "iris"}, "graph": {"nodes": []}, "train": train}
    )
    with pytest.raises(SpecError, match=error):
        device_settings(spec, cuda=cuda)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where there is no CUDA GPU")
@pytest.mark.parametrize("train", [{"accelerator": "gpu"}, {"accelerator": "auto", "precision": "16-mixed"}])
def test_run_refuses_a_gpu_spec_without_cuda_before_writing(tiny_frame, tiny_spec_dict, tmp_path, train):
    spec = tiny_spec_dict | {"train": tiny_spec_dict["train"] | train}
    with pytest.raises(SpecError, match="CUDA GPU"):
        dltoolkit.run(spec, data=tiny_frame, out=tmp_path / "run", plots=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
