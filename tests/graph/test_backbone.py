"""The backbone op: weights from a file or the hub cache (never the network), freezing, the unfreeze
schedule, the backbone's learning rate, shapes, parameters and FLOPs, and bundles that need no
weights file. Weights are torchvision's architectures randomly initialised and saved to a file."""

from __future__ import annotations

import copy
import socket

import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import Callback
from torch.utils.flop_counter import FlopCounterMode

import dltoolkit
from dltoolkit._vision import torchvision
from dltoolkit.api import check
from dltoolkit.errors import GraphError, SpecError, UnknownNameError
from dltoolkit.graph import Graph
from dltoolkit.graph.backbones import ARCHS, Backbone, BackboneWarning, WeightsError, backbones, build
from dltoolkit.spec import GraphSpec, Spec
from dltoolkit.train.finetune import BackboneUnfreeze
from dltoolkit.train.fit import build_module, fit
from dltoolkit.train.optim import make_optimizer

SIDE = 16
HUB_FILE = "resnet18-f37072fd.pth"  # where torchvision keeps ResNet18_Weights.IMAGENET1K_V1


def _resnet18_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return torchvision().models.resnet18(weights=None).state_dict()


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple:
    """A randomly initialised resnet18 state dict, in a file."""
    state = _resnet18_state()
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach the network (a download of weights) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the backbone op tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    """48 learnable 3x16x16 images, flattened: two classes told apart by the first channel's mean."""
    rng = np.random.default_rng(0)
    y = np.arange(48) % 2
    x = rng.normal(size=(48, 3, SIDE, SIDE)).astype(np.float32)
    x[:, 0] += np.where(y == 1, 0.8, -0.8)[:, None, None]
    return x.reshape(48, -1), y


def _spec(node: dict, **train) -> Spec:
    return Spec.from_dict(
        {
            "name": "backbone",
            "task": {"kind": "binary"},
            "data": {"source": "frame", "split": {"test": 0.25, "val": 0.25}},
            "preprocess": {"scale": "none", "shape": [3, SIDE, SIDE]},
            "graph": {"nodes": [{"name": "features", "op": "backbone", "arch": "resnet18"} | node]},
            "train": {"epochs": 1, "batch_size": 8, "early_stopping": None, "optimizer": {"lr": 0.01}}
            | train,
        }
    )


def _graph(node: dict, shape=(3, SIDE, SIDE), n_outputs=2) -> Graph:
    spec = GraphSpec.model_validate(
        {"nodes": [{"name": "features", "op": "backbone", "arch": "resnet18"} | node]}
    )
    return Graph(spec, input_shape=shape, n_outputs=n_outputs)


def _body_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    (bb,) = backbones(model)
    return {k: v.detach().clone() for k, v in bb.body.state_dict().items()}


def _same(a: dict, b: dict, prefix: str = "") -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    return bool(keys) and all(torch.equal(a[k], b[k]) for k in keys)


# --------------------------------------------------------------------------- weights
def test_a_weights_file_loads_exactly_and_the_classifier_is_removed(weights):
    path, state = weights
    model = _graph({"weights": str(path)}).compile()
    loaded = _body_state(model)
    assert "fc.weight" not in loaded and set(loaded) == {k for k in state if not k.startswith("fc.")}
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)


def test_a_weights_name_is_read_from_the_hub_cache_with_its_preprocessing(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    state = _resnet18_state(seed=1)
    torch.save(state, tmp_path / "hub" / "checkpoints" / HUB_FILE)
    with pytest.warns(BackboneWarning, match=r"16x16 images; .* 224x224 crops .*mean \[0.485"):
        g = _graph({"weights": "ResNet18_Weights.IMAGENET1K_V1", "freeze": "all"})
    loaded = _body_state(g.compile())
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    assert g.nodes[0].details["preprocess"] == {
        "resize": 256,
        "crop": 224,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "interpolation": "bilinear",
    }
    assert g.nodes[0].note == "resnet18 · IMAGENET1K_V1 · frozen: all"
    assert _graph({"weights": "DEFAULT"})._layers["features"].weights == "IMAGENET1K_V1"


def test_a_missing_hub_file_names_the_file_and_folder_and_downloads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    with pytest.raises(
        WeightsError, match=rf"Node 'features' \(backbone\).*never downloads.*{HUB_FILE} in {folder}"
    ):
        _graph({"weights": "IMAGENET1K_V1"})
    with pytest.raises(WeightsError, match=r"not weights of resnet18.*ResNet18_Weights.IMAGENET1K_V1"):
        _graph({"weights": "ResNet34_Weights.IMAGENET1K_V1"})


def test_a_missing_file_or_another_architecture_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match=r"weights file not found for resnet18: received '.*nope.pth'"):
        _graph({"weights": str(tmp_path / "nope.pth")})
    torch.save(torchvision().models.mobilenet_v3_small(weights=None).state_dict(), tmp_path / "m.pth")
    with pytest.raises(
        WeightsError,
        match=r"does not hold a resnet18 state dict: .*keys missing .* It looks like a mobilenet_v3_small state dict",
    ):
        _graph({"weights": str(tmp_path / "m.pth")})
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pth")  # a pickled module, not a state dict
    with pytest.raises(WeightsError, match="Cannot read the backbone weights file.*state dict"):
        _graph({"weights": str(tmp_path / "model.pth")})


def test_weights_nested_under_a_prefix_load(weights, tmp_path):
    """A bundle's weights.pt or a Lightning checkpoint holds the architecture under a prefix."""
    _, state = weights
    torch.save({"state_dict": {f"model.layers.x.body.{k}": v for k, v in state.items()}}, tmp_path / "c.ckpt")
    loaded = _body_state(_graph({"weights": str(tmp_path / "c.ckpt")}).compile())
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)


# --------------------------------------------------------------------------- shapes, costs, stages
def test_shapes_params_flops_and_the_picture():
    g = _graph({"freeze": "layer3"})
    ref = torchvision().models.resnet18(weights=None)
    ref.fc = torch.nn.Identity()
    with FlopCounterMode(display=False) as counter:
        ref.eval()(torch.zeros(2, 3, SIDE, SIDE))
    node, head = g.nodes
    assert node.out_shape == (512,) and g.output_shape == (2,)
    assert node.params == sum(p.numel() for p in ref.parameters())
    assert node.flops == counter.get_total_flops() // 2
    layer4 = sum(p.numel() for p in ref.layer4.parameters())
    assert node.trainable == layer4 and g.trainable_params == layer4 + head.params
    summary = g.summary().set_index("node")
    assert summary.loc["features", "note"] == "resnet18 · random init · frozen: stem..layer3"
    assert summary.loc["total", "trainable"] == g.trainable_params < summary.loc["total", "params"]
    fig = g.draw()
    texts = [t.get_text() for t in fig.axes[0].texts] + [fig.axes[0].get_title()]
    assert any("resnet18" in t and "frozen: stem..layer3" in t for t in texts)
    assert any(f"({g.trainable_params:,} trainable)" in t for t in texts)
    gray = _graph({}, shape=(1, SIDE, SIDE))  # one channel, repeated to three
    assert gray.nodes[0].out_shape == (512,) and gray.nodes[0].params == node.params


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_parameter_belongs_to_exactly_one_stage(arch):
    with torch.device("meta"):
        bb = build((3, 32, 32), arch, None, "none", None)
    owners = {}
    for stage, modules in bb.stages():
        for module in modules:
            for p in module.parameters():
                assert id(p) not in owners, f"{arch}: a parameter is in {owners.get(id(p))} and {stage}"
                owners[id(p)] = stage
    assert len(owners) == len(list(bb.parameters()))
    assert {k for k, _ in bb.body.named_buffers()} <= set(bb.body.state_dict())  # nothing left empty


def test_bad_attributes_are_clear_errors():
    with pytest.raises(UnknownNameError, match="Unknown backbone architecture.*Did you mean 'resnet18'"):
        _graph({"arch": "resnt18"})
    with pytest.raises(SpecError, match=r"Unknown freeze value .*'layer5'.*\['stem', 'layer1', 'layer2'"):
        _graph({"freeze": "layer5"})
    with pytest.raises(SpecError, match="unfreeze_after of a backbone needs frozen stages"):
        _graph({"unfreeze_after": 2})
    with pytest.raises(SpecError, match="needs frozen stages and a count of epochs.*'unfreeze_after': 1.5"):
        _graph({"freeze": "all", "unfreeze_after": 1.5})
    with pytest.raises(GraphError, match=r"convnext_tiny needs images of at least 32x32; received 16x16"):
        _graph({"arch": "convnext_tiny"})
    with pytest.raises(GraphError, match=r"expects images of shape \(3, height, width\).*received \(48,\)"):
        _graph({}, shape=(48,))


# --------------------------------------------------------------------------- training
class _Snapshots(Callback):
    """The backbone's state and the head's weights at the start and after each epoch."""

    def __init__(self) -> None:
        self.body, self.head, self.trainable = [], [], []

    def _take(self, module) -> None:
        (bb,) = backbones(module.model)
        self.body.append(_body_state(module.model))
        self.head.append(module.model.head.weight.detach().clone())
        self.trainable.append(bb.trainable_params)
        self.total = sum(p.numel() for p in bb.parameters())

    def on_train_start(self, trainer, module) -> None:
        self._take(module)

    def on_train_epoch_end(self, trainer, module) -> None:
        self._take(module)


@pytest.mark.parametrize(
    ("freeze", "fixed", "trained"), [("all", "", None), ("layer3", "layer3", "layer4")], ids=["all", "layer3"]
)
def test_frozen_stages_stay_fixed_while_the_rest_trains(images, weights, tmp_path, freeze, fixed, trained):
    path, state = weights
    checked = check(_spec({"weights": str(path), "freeze": freeze}), images)
    snaps = _Snapshots()
    fit(checked.spec, checked.graph, checked.data, tmp_path, extra_callbacks=[snaps])
    before, after = snaps.body
    assert _same(before, after, fixed)  # batch norm running statistics included
    assert all(torch.equal(after[k], state[k]) for k in after if k.startswith(fixed))
    if trained:
        assert not _same(before, after, trained)
    assert not torch.equal(*snaps.head)


def test_unfreeze_after_one_epoch_and_the_backbone_learning_rate(images, weights, tmp_path):
    path, _ = weights
    spec = _spec({"weights": str(path), "freeze": "all", "unfreeze_after": 1}, epochs=2)
    spec = spec.with_values({"train.optimizer.backbone_lr": 0.001})
    run = dltoolkit.run(spec, images, out=tmp_path / "run", plots=False, callbacks=[snaps := _Snapshots()])
    start, first, second = snaps.body
    assert _same(start, first) and not _same(first, second)
    assert snaps.trainable == [0, 0, snaps.total]
    # a bundle predicts without the weights file: its own weights.pt holds everything
    path.rename(path.with_suffix(".moved"))
    try:
        loaded = dltoolkit.load(run.bundle)
    finally:
        path.with_suffix(".moved").rename(path)
    x = images[0][:5]
    np.testing.assert_array_equal(loaded.predict_proba(x), run.predictor.predict_proba(x))


def test_the_backbone_gets_its_own_learning_rate(images, weights):
    path, _ = weights
    checked = check(_spec({"weights": str(path)}, optimizer={"lr": 0.01, "backbone_lr": 0.0005}), images)
    module = build_module(checked.spec, checked.graph, 4, data=checked.data)
    opt = module.configure_optimizers()
    head, body = opt.param_groups
    assert (head["name"], head["lr"], body["name"], body["lr"]) == ("head", 0.01, "backbone", 0.0005)
    bb = backbones(module.model)[0]
    assert {id(p) for p in body["params"]} == {id(p) for p in bb.parameters()}
    assert {id(p) for p in head["params"]} == {id(p) for p in module.model.head.parameters()}
    plain = check(_spec({"weights": str(path)}), images)
    module = build_module(plain.spec, plain.graph, 4)
    opt = module.configure_optimizers()
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01]  # default: train.optimizer.lr
    copied = make_optimizer(plain.spec.train.optimizer, copy.deepcopy(module.model).parameters())
    assert [len(g["params"]) for g in copied.param_groups] == [len(g["params"]) for g in opt.param_groups]


def test_backbone_lr_without_a_backbone_is_refused(images):
    spec = _spec({}).with_values(
        {"graph.nodes": [{"name": "flat", "op": "flatten"}], "train.optimizer.backbone_lr": 0.001}
    )
    with pytest.raises(SpecError, match="backbone_lr is set but the graph has no backbone node"):
        check(spec, images)


def test_the_schedule_callback_unfreezes_at_its_epoch():
    bb = _graph({"freeze": "layer2", "unfreeze_after": 3})._layers["features"]
    assert isinstance(bb, Backbone) and bb.frozen == ["stem", "layer1", "layer2"]
    callback = BackboneUnfreeze([bb])
    for epoch in range(3):
        callback.finetune_function(None, epoch, None)
        assert bb.frozen and not bb.body.layer1[0].conv1.weight.requires_grad
        assert not bb.body.layer1[0].bn1.training and bb.body.layer4[0].bn1.training
    callback.finetune_function(None, 3, None)
    assert bb.frozen == [] and all(p.requires_grad for p in bb.parameters())
    assert callback.unfrozen_at == {id(bb): 3}
    callback.freeze_before_training(None)  # a new fit starts frozen again
    assert bb.frozen == ["stem", "layer1", "layer2"]


def test_unfreeze_after_is_refused_data_parallel_before_ray_starts(images, weights, tmp_path):
    """DDP registers the trainable parameters once: a backbone unfrozen later would train unsynchronised."""
    from dltoolkit.tune.distributed import run_distributed

    spec = _spec({"weights": str(weights[0]), "freeze": "all", "unfreeze_after": 1})
    with pytest.raises(
        SpecError, match=r"unfreeze_after cannot train data-parallel.*node 'features' with 2 workers"
    ):
        run_distributed(spec, out=tmp_path / "ddp", workers=2, data=images)
    assert not (tmp_path / "ddp").exists()
