"""dltoolkit.datasets: image folders the package writes (digits, shapes), atomically and
deterministically, and the image sets named as data.source, written once into the cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dltoolkit.api import SMOKE_ENV, smoke
from dltoolkit.data.images import samples
from dltoolkit.data.images.source import image_files, source_format
from dltoolkit.datasets import CACHE_ENV, SHAPES, image_set, write_image_folder
from dltoolkit.errors import DataError, UnknownNameError
from dltoolkit.spec import Spec


def _pixels(root) -> dict[str, np.ndarray]:
    return {str(p.relative_to(root)): np.asarray(Image.open(p)) for p in sorted(root.glob("*/*.png"))}


def test_digits_are_32x32_rgb_pngs_in_class_folders(tmp_path):
    root = write_image_folder(tmp_path / "digits", "digits", size=32, per_class=4, seed=0)
    assert sorted(p.name for p in root.iterdir()) == [str(d) for d in range(10)]
    files = sorted(root.glob("*/*"))
    assert len(files) == 40 and all(p.suffix == ".png" for p in files)
    with Image.open(files[0]) as picture:
        assert picture.size == (32, 32) and picture.mode == "RGB"
    ink = np.stack(list(_pixels(root).values())).astype(float)
    assert ink.std() > 30, "the digits are drawn, not blank"


def test_shapes_in_grayscale_have_one_folder_per_shape(tmp_path):
    root = write_image_folder(tmp_path / "shapes", "shapes", size=24, per_class=5, mode="L")
    assert sorted(p.name for p in root.iterdir()) == sorted(SHAPES)
    with Image.open(next((root / "ring").iterdir())) as picture:
        assert picture.size == (24, 24) and picture.mode == "L"


def test_a_filled_shape_covers_more_than_its_outline(tmp_path):
    root = write_image_folder(tmp_path / "shapes", "shapes", size=32, per_class=20, seed=3)

    def contrast(name):  # share of pixels far from the image's median (the background)
        images = [np.asarray(Image.open(p).convert("L"), float) for p in (root / name).iterdir()]
        return np.mean([(np.abs(im - np.median(im)) > 50).mean() for im in images])

    assert contrast("circle") > 1.5 * contrast("ring")


def test_the_same_seed_writes_the_same_files(tmp_path):
    a = _pixels(write_image_folder(tmp_path / "a", "shapes", per_class=3, seed=7))
    b = _pixels(write_image_folder(tmp_path / "b", "shapes", per_class=3, seed=7))
    c = _pixels(write_image_folder(tmp_path / "c", "shapes", per_class=3, seed=8))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_a_failed_write_leaves_the_old_folder_and_no_temporary_one(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "set", "digits", per_class=2)
    before = _pixels(root)

    def half_then_fail(folder, *args):
        (folder / "0").mkdir()
        (folder / "0" / "half.png").write_bytes(b"")
        raise OSError("disk full")

    monkeypatch.setattr(samples, "_save_pngs", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_image_folder(root, "shapes", per_class=2)
    assert _pixels(root).keys() == before.keys()
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "faces"}, "kind.*faces.*digits"),
        ({"size": 4}, "size.*at least 8"),
        ({"mode": "CMYK"}, "mode.*'RGB' or 'L'"),
        ({"per_class": 0}, "per_class"),
        ({"kind": "shapes", "per_class": None}, "per_class.*shapes"),
    ],
    ids=["kind", "size", "mode", "per-class", "shapes-need-a-count"],
)
def test_bad_arguments_are_clear_errors_and_write_nothing(tmp_path, kwargs, match):
    with pytest.raises(DataError, match=match):
        write_image_folder(tmp_path / "x", **kwargs)
    assert list(tmp_path.iterdir()) == []


def _spec(source: str, **options) -> Spec:
    return Spec.from_dict(
        {
            "task": {"kind": "multiclass"},
            "data": {"source": source, "options": options},
            "graph": {"nodes": []},
        }
    )


def test_an_image_set_source_is_written_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    spec = _spec("shapes_folder", per_class=3, size=16)
    assert source_format(spec) == "image_folder"
    files = image_files(spec)
    assert len(files) == 18 and sorted(files["target"].unique()) == sorted(SHAPES)
    root = image_set("shapes_folder", {"per_class": 3, "size": 16})
    assert root.parent == tmp_path / "cache" / "images"
    stamps = {p: p.stat().st_mtime_ns for p in root.glob("*/*")}
    assert image_set("shapes_folder", {"per_class": 3, "size": 16}) == root
    assert {p: p.stat().st_mtime_ns for p in root.glob("*/*")} == stamps, "written again"


def test_a_second_writer_of_the_same_set_uses_the_first_ones_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    root = image_set("digits_folder", {"per_class": 2})
    samples._write_once(root, "digits", {**samples.SET_DEFAULTS, "per_class": 2})  # lost the race
    assert len(list(root.glob("*/*.png"))) == 20
    assert sorted(p.name for p in root.parent.iterdir()) == [root.name]  # no temporary folder left


def test_image_set_options_are_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with pytest.raises(DataError, match="Unknown option.*per_clas.*Did you mean 'per_class'"):
        image_set("digits_folder", {"per_clas": 3})
    with pytest.raises(UnknownNameError, match="digits_folder"):
        image_set("digit_folder")
    assert list(tmp_path.iterdir()) == []


def test_smoke_mode_shrinks_an_image_set(monkeypatch):
    monkeypatch.delenv(SMOKE_ENV, raising=False)
    assert smoke(_spec("digits_folder", per_class=150, size=32)).data.options == {"per_class": 30, "size": 32}
    assert smoke(_spec("digits_folder")).data.options == {"per_class": 30}
