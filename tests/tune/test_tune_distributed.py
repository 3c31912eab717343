"""Data-parallel training on Ray Train (Lightning DDP on gloo) with a local Ray and 2 workers.

The weights are checked against plain PyTorch: the same initial model trained with, at every
step, the mean of the two workers' mini-batch gradients (the shards and batch order rebuilt).
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import dltoolkit.bundle
from dltoolkit.api import check, resolve_spec
from dltoolkit.errors import SpecError
from dltoolkit.train.fit import TensorBatches
from dltoolkit.tune.distributed import run_distributed

WORKERS = 2


@pytest.fixture(scope="module")
def spec():
    # wine: 120 training rows, 60 per worker; batch 16 with 8 steps per Lightning step, so each
    # Lightning step runs several optimizer steps (where DDP's own hook would stop syncing)
    return resolve_spec("wine", {"train.epochs": 2})


@pytest.fixture(scope="module")
def result(ray_session, spec, tmp_path_factory):
    return run_distributed(spec, out=tmp_path_factory.mktemp("ddp"), workers=WORKERS)


def shards(x: torch.Tensor, world: int) -> list[torch.Tensor]:
    per = len(x) // world
    return [x[rank::world][:per] for rank in range(world)]


def reference_weights(spec, epochs: int, ranks: list[int]) -> dict[str, torch.Tensor]:
    """Plain PyTorch: Adam on the mean over ``ranks`` of each rank's mini-batch gradient."""
    checked = check(spec)
    d, t = checked.data, spec.train
    torch.manual_seed(t.seed)
    model = checked.graph.compile()
    opt = torch.optim.Adam(model.parameters(), lr=t.optimizer.lr)
    chunk = t.batch_size * t.steps_per_execution
    batches = [
        TensorBatches(x, y, chunk, shuffle=True, seed=t.seed)
        for x, y in zip(shards(d.X_train, WORKERS), shards(d.y_train, WORKERS), strict=True)
    ]
    for _ in range(epochs):
        chunks = [list(b) for b in batches]
        for step in zip(*(chunks[r] for r in ranks), strict=True):
            minis = [zip(x.split(t.batch_size), y.split(t.batch_size), strict=True) for x, y in step]
            for pairs in zip(*minis, strict=True):
                opt.zero_grad()
                for x, y in pairs:
                    (F.cross_entropy(model(x), y) / len(ranks)).backward()
                opt.step()
    return model.state_dict()


def test_the_run_writes_a_bundle_that_loads_and_predicts(result, spec):
    out = result.out
    for name in ("spec.yaml", "metrics.json", "history.csv", "report.html", "model/weights.pt"):
        assert (out / name).is_file(), name
    assert list(result.history["epoch"]) == [1, 2]
    assert {"train_loss", "val_loss", "val_acc"} <= set(result.history.columns)
    assert result.metrics["accuracy"] > 0.5  # 3 classes: chance is about 0.33
    model = dltoolkit.bundle.load(out / "model")
    assert model.predict(model.example_input(3)).shape == (3,)
    assert model.metrics["accuracy"] == result.metrics["accuracy"]
    info = json.loads((out / "model" / "bundle.json").read_text())
    assert info["workers"] == WORKERS and info["best_epoch"] in (1, 2)
    assert info["epochs"] == 2 and info["stopped_early"] is False
    noted = any("still improving" in w for w in result.metrics["warnings"])
    assert info["still_improving"] == (info["best_epoch"] == 2) == noted
    assert {"val_f1", "val_precision", "val_recall", "val_roc_auc"} <= set(result.history.columns)


def test_each_worker_trains_its_own_shard_and_gradients_are_averaged(result, spec):
    rows = len(check(spec).data.X_train) // WORKERS
    assert [w["rank"] for w in result.workers] == [0, 1]
    assert [w["rows"] for w in result.workers] == [rows, rows]
    assert result.workers[0]["shard"] != result.workers[1]["shard"]
    assert result.workers[0]["pid"] != result.workers[1]["pid"]
    assert result.workers[0]["params"] == result.workers[1]["params"]


def test_the_weights_match_plain_pytorch_with_averaged_gradients(result, spec):
    best_epoch = json.loads((result.out / "model" / "bundle.json").read_text())["best_epoch"]
    got = result.predictor.model.state_dict()
    averaged = reference_weights(spec, best_epoch, ranks=[0, 1])
    torch.testing.assert_close(got, averaged, rtol=1e-4, atol=1e-5)
    alone = reference_weights(spec, best_epoch, ranks=[0])  # what rank 0 would reach unsynced
    assert not all(torch.allclose(got[k], alone[k], atol=1e-4) for k in got)


@pytest.mark.parametrize("workers", [0, -1, 1.5, 10_000], ids=["zero", "negative", "float", "too-many"])
def test_a_bad_worker_count_fails_before_ray_starts(spec, tmp_path, workers):
    with pytest.raises(SpecError, match="Invalid number of data-parallel workers"):
        run_distributed(spec, out=tmp_path, workers=workers)
