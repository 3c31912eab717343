"""Image sources: folders and manifests, the split on files, fitted statistics, transforms, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from dltoolkit.data import prepare
from dltoolkit.data.images.predictor import read_images
from dltoolkit.data.images.samples import write_digits_folder
from dltoolkit.data.images.source import image_files, source_format
from dltoolkit.data.images.stream import ImageFiles
from dltoolkit.data.images.transform import as_image, load_image, vision
from dltoolkit.errors import DataError, SpecError
from dltoolkit.spec import AugmentSpec, ImageSpec, Spec


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """80 digits in 10 class folders: PNG, JPEG and WebP; grayscale and RGB; 10 or 14 pixels wide."""
    return write_digits_folder(tmp_path_factory.mktemp("images") / "digits", per_class=8, sizes=(10, 14),
                               manifest=True)  # fmt: skip


def image_spec(source, **values) -> Spec:
    spec = Spec.from_dict(
        {
            "task": {"kind": "multiclass"},
            "data": {"source": str(source), "workers": 1, "split": {"test": 0.2, "val": 0.2}},
            "preprocess": {"image": {"channels": 1, "size": 8}},
            "graph": {"nodes": []},
        }
    )
    return spec.with_values(values) if values else spec


def direct_images(paths, channels: int, size: int) -> torch.Tensor:
    """The training images decoded one by one here, resized, in [0, 1]: the reference for the pass."""
    v2 = vision()
    resize = v2.Resize([size, size], antialias=True)
    mode = "L" if channels == 1 else "RGB"
    out = []
    for p in paths:
        array = np.array(Image.open(p).convert(mode))
        x = torch.from_numpy(array)[None] if channels == 1 else torch.from_numpy(array).permute(2, 0, 1)
        out.append(resize(x).float() / 255)
    return torch.stack(out)


# ---------------------------------------------------------------------- sources
def test_folder_and_manifest_are_recognised_and_listed(folder):
    files = image_files(image_spec(folder))
    assert source_format(image_spec(folder)) == "image_folder"
    assert len(files) == 80 and sorted(files["target"].unique()) == [str(d) for d in range(10)]
    assert files["target"].value_counts().eq(8).all()
    assert all(p.startswith(str(folder)) for p in files["path"])
    assert {p.rsplit(".", 1)[1] for p in files["path"]} == {"png", "jpg", "webp"}
    manifest = image_spec(folder / "manifest.csv")
    assert source_format(manifest) == "image_manifest"
    listed = image_files(manifest)
    assert sorted(listed["path"]) == sorted(files["path"])  # relative paths made absolute
    assert source_format(image_spec("iris")) == "table"


def test_split_is_drawn_on_files_and_stratified(folder):
    data = prepare(image_spec(folder, **{"data.in_memory_mb": 0}))
    train, val, test = (set(d.paths) for d in (data.X_train, data.X_val, data.X_test))
    assert not (train & val or train & test or val & test)
    assert len(train | val | test) == 80
    assert set(data.raw_test["path"]) == test
    counts = np.bincount(data.y_test.numpy(), minlength=10)  # 16 test files, stratified: 1 or 2 per class
    assert counts.sum() == 16 and counts.min() >= 1 and counts.max() <= 2
    assert data.input_shape == (1, 8, 8) and data.n_outputs == 10


# ---------------------------------------------------------------------- statistics and the two paths
def test_fitted_statistics_equal_a_direct_computation(folder):
    streamed = prepare(image_spec(folder, **{"data.in_memory_mb": 0}))
    pre = streamed.preprocessor
    direct = direct_images(streamed.X_train.paths, 1, 8)
    assert pre.fitted_on_ == len(direct) == 80 - 16 - 13  # the training files only
    np.testing.assert_allclose(pre.mean_, direct.mean(dim=(0, 2, 3)).numpy(), atol=1e-6)
    np.testing.assert_allclose(pre.std_, direct.std(dim=(0, 2, 3), unbiased=False).numpy(), atol=1e-6)
    kept = prepare(image_spec(folder))  # the in-memory path: the same statistics and inputs
    assert isinstance(kept.X_train, torch.Tensor)
    assert kept.preprocessor.mean_ == pytest.approx(pre.mean_) and kept.preprocessor.std_ == pytest.approx(
        pre.std_
    )
    items = torch.stack([streamed.X_test[i][0] for i in range(len(streamed.X_test))])
    torch.testing.assert_close(kept.X_test, items)
    assert "modes (L: " in kept.preprocessor.warnings_[0]  # mixed modes converted, and said


def test_given_statistics_are_used_as_given(folder):
    data = prepare(image_spec(folder, **{"preprocess.image": {"channels": 3, "size": 8, "mean": [0.5] * 3,
                                                              "std": [0.25] * 3}}))  # fmt: skip
    assert data.preprocessor.mean_ == [0.5] * 3 and data.preprocessor.fitted_on_ == 0
    direct = direct_images(data.raw_test["path"], 3, 8)
    torch.testing.assert_close(data.X_test, (direct - 0.5) / 0.25)


def test_per_image_augmentation_streams_and_changes_only_training_inputs(folder):
    spec = image_spec(folder, **{"preprocess.augment": {"rotation": 30, "crop_scale": [0.5, 1.0],
                                                        "color_jitter": 0.3, "policy": "trivial", "vflip": True}})  # fmt: skip
    data = prepare(spec)
    assert isinstance(data.X_train, ImageFiles) and data.X_train.augment is not None
    assert data.X_val.augment is None and data.X_test.augment is None
    torch.manual_seed(0)
    draws = torch.stack([data.X_train[0][0] for _ in range(4)])
    assert draws.shape == (4, 1, 8, 8) and draws.dtype == torch.float32
    assert not torch.equal(draws[0], draws[1])  # random per draw
    torch.testing.assert_close(data.X_val[0][0], data.X_val[0][0])  # deterministic


def test_rand_augment_policy_builds_for_rgb(folder):
    pre = prepare(image_spec(folder, **{"preprocess.image.channels": 3})).preprocessor
    step = pre.train_transform(AugmentSpec(policy="rand", color_jitter=0.2))
    image = load_image(image_files(image_spec(folder))["path"][0], 3)
    assert step(image).shape == (3, 8, 8)


# ---------------------------------------------------------------------- bad input
def _copy(folder, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(folder, root)
    return root


def test_a_corrupt_file_is_named_before_training(folder, tmp_path):
    root = _copy(folder, tmp_path)
    (root / "3" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"1 of 81 image file\(s\) cannot be decoded.*broken\.png"):
        prepare(image_spec(root))


@pytest.mark.parametrize(
    "damage, match",
    [
        ("empty class", r"Class folder\(s\) without image files.*'7'"),
        ("no subfolders", r"no class subfolders.*1 image file"),
        ("missing", r"Image folder not found"),
    ],
    ids=["empty-class", "flat", "missing"],
)
def test_bad_folders_get_clear_errors(folder, tmp_path, damage, match):
    root = _copy(folder, tmp_path)
    if damage == "empty class":
        for file in (root / "7").iterdir():
            file.unlink()
        (root / "7" / "notes.txt").write_text("not an image")
    elif damage == "no subfolders":
        root = tmp_path / "flat"
        root.mkdir()
        shutil.copy(next((folder / "1").iterdir()), root / "a.png")
    else:
        root = tmp_path / "nowhere"
    with pytest.raises(DataError, match=match):
        image_files(image_spec(root, **{"data.format": "image_folder"}))


def test_bad_manifests_get_clear_errors(folder, tmp_path):
    rows = pd.read_csv(folder / "manifest.csv")
    rows.loc[3, "path"] = "3/nope.png"
    rows.to_csv(folder / "broken.csv", index=False)
    try:
        with pytest.raises(
            DataError, match=r"1 image file\(s\) named in the manifest 'broken.csv' do not exist.*nope"
        ):
            image_files(image_spec(folder / "broken.csv"))
    finally:
        (folder / "broken.csv").unlink()
    rows.rename(columns={"path": "where"}).to_csv(tmp_path / "nopath.csv", index=False)
    with pytest.raises(DataError, match="No column of image paths"):
        image_files(image_spec(tmp_path / "nopath.csv", **{"data.format": "image_manifest"}))
    with pytest.raises(DataError, match="Target column not in the manifest.*'label'"):
        image_files(image_spec(folder / "manifest.csv", **{"task.target": "label"}))
    with pytest.raises(DataError, match=r"Column options set for an image source.*data\.exclude"):
        image_files(image_spec(folder, **{"data.exclude": ["x"]}))


def test_image_spec_is_validated():
    assert ImageSpec(size=12).size == (12, 12)
    with pytest.raises(SpecError, match="give mean and std together"):
        Spec.from_dict({"task": {"kind": "binary"}, "data": {"source": "x"}, "graph": {},
                        "preprocess": {"image": {"mean": [0.5, 0.5, 0.5]}}})  # fmt: skip
    with pytest.raises(SpecError, match="one value per channel"):
        Spec.from_dict({"task": {"kind": "binary"}, "data": {"source": "x"}, "graph": {},
                        "preprocess": {"image": {"channels": 1, "mean": [0.5, 0.5], "std": [1, 1]}}})  # fmt: skip
    with pytest.raises(SpecError, match="crop_scale"):
        Spec.from_dict({"task": {"kind": "binary"}, "data": {"source": "x"}, "graph": {},
                        "preprocess": {"augment": {"crop_scale": [0.8, 0.2]}}})  # fmt: skip


# ---------------------------------------------------------------------- predict inputs
def test_decoded_arrays_of_any_layout_become_images():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    images = read_images([rgb, rgb[..., 0], torch.from_numpy(rgb).permute(2, 0, 1), Image.fromarray(rgb)], 3)
    assert [tuple(x.shape) for x in images] == [(3, 5, 7)] * 4
    assert all(torch.equal(images[0], x) for x in images[2:]) and torch.equal(images[1][0], images[1][2])
    gray = as_image(rgb, 1)[0].numpy()
    np.testing.assert_allclose(gray, np.array(Image.fromarray(rgb).convert("L")), atol=1)  # Pillow's weights
    assert len(read_images(np.zeros((4, 6, 6, 3), np.uint8), 1)) == 4
    assert float(as_image(np.ones((2, 2)), 1).max()) == 255  # floats are [0, 1]
    with pytest.raises(DataError, match="Not an image array"):
        read_images(np.zeros((2, 3, 4, 5, 6)), 3)
    with pytest.raises(DataError, match="not found"):
        read_images(["/nonexistent/a.png"], 3)


def test_a_bundled_dataset_name_wins_over_a_folder_of_that_name(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(folder, tmp_path / "iris")
    assert source_format(image_spec("iris")) == "table"
    assert source_format(image_spec("./iris")) == "image_folder"


def test_an_image_folder_is_told_apart_and_listed_in_one_walk_over_its_files(folder, monkeypatch):
    """Auto-detection stops at the first image; only the listing sees every file (once)."""
    import os

    from dltoolkit.data.images.source import is_image_file

    seen: list[str] = []
    walk = os.walk

    def counting_walk(top, *args, **kwargs):
        for here, dirs, names in walk(top, *args, **kwargs):
            seen.extend(os.path.join(here, n) for n in names)
            yield here, dirs, names

    monkeypatch.setattr(os, "walk", counting_walk)
    spec = image_spec(folder)
    assert source_format(spec) == "image_folder"
    files = image_files(spec)
    images = [p for p in seen if is_image_file(p)]  # PNG, JPEG and WebP here
    assert len(files) > 20 and len(images) <= len(files) + 20  # the listing, plus at most one per probe
    assert sorted(set(images)) == sorted(files["path"])
