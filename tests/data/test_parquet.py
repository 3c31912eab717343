"""Table files: Parquet/CSV sources, the streamed path against the in-memory one, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dltoolkit.data.images.source import source_format
from dltoolkit.data.prepare import prepare, prepare_frame
from dltoolkit.data.tables import fit as table_fit
from dltoolkit.data.tables.stream import TableRows
from dltoolkit.errors import DataError
from dltoolkit.spec import Spec


def _table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Two numeric columns (one with gaps, one of repeated whole numbers), a categorical one with gaps."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(-2.0, 3.0, n),
            "b": rng.integers(-20, 20, n).astype(float),
            "color": rng.choice(["red", "green", "blue", "cyan"], n),
            "target": rng.integers(0, 3, n),
        }
    )
    frame["a"] += frame["target"] * 2.0  # learnable
    frame.loc[rng.random(n) < 0.1, "a"] = np.nan
    frame.loc[rng.random(n) < 0.05, "b"] = np.nan
    frame.loc[rng.random(n) < 0.1, "color"] = None
    return frame


def _write_shards(frame: pd.DataFrame, folder, shards: int = 3, row_group: int = 250, csv: bool = False):
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), shards)):
        rows = frame.iloc[part]
        if csv:
            rows.to_csv(folder / f"part-{i}.csv", index=False)
        else:
            rows.to_parquet(folder / f"part-{i}.parquet", row_group_size=row_group, index=False)
    return folder


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _table()


@pytest.fixture(scope="module")
def shards(table, tmp_path_factory):
    return _write_shards(table, tmp_path_factory.mktemp("shards") / "table")


def _spec(source, preprocess=None, **data):
    data = {"source": str(source), "in_memory_mb": 0, "workers": 0, **data}
    return Spec.from_dict(
        {"task": {"kind": "multiclass"}, "data": data, "preprocess": preprocess or {}, "graph": {"nodes": []}}
    )


def test_table_sources_are_recognised(shards, tmp_path):
    images = tmp_path / "images" / "cat"
    images.mkdir(parents=True)
    (images / "a.png").write_bytes(b"")
    assert source_format(_spec(shards)) == "table_files"  # a folder of shards
    assert source_format(_spec(shards / "part-0.parquet")) == "table_files"
    assert source_format(_spec(f"{shards}/part-*.parquet")) == "table_files"
    assert source_format(_spec(tmp_path / "images")) == "image_folder"


@pytest.mark.parametrize("impute", ["median", "mean", "most_frequent"])
@pytest.mark.parametrize("scale", ["standard", "minmax"])
def test_streamed_statistics_equal_the_in_memory_fit(shards, table, impute, scale):
    spec = _spec(shards, preprocess={"impute": impute, "scale": scale})
    streamed, loaded = prepare(spec), prepare_frame(spec, table)
    assert isinstance(streamed.X_train, TableRows) and isinstance(loaded.X_train, torch.Tensor)
    got, want = streamed.preprocessor.to_state(), loaded.preprocessor.to_state()
    assert got["output_names"] == want["output_names"] and got["feature_columns"] == want["feature_columns"]
    for mine, theirs in zip(got["columns"], want["columns"], strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            if key == "fill" and impute != "mean" or not isinstance(value, float):
                assert value == theirs[key], (key, mine, theirs)  # exact: medians, modes, categories
            else:
                assert value == pytest.approx(theirs[key], rel=1e-12), (key, mine, theirs)
    for role in ("train", "val", "test"):  # the same rows, the same targets, the same inputs
        assert torch.equal(getattr(streamed, f"y_{role}"), getattr(loaded, f"y_{role}"))
    x = torch.cat([x for x, _ in streamed.X_test.loader(10_000, workers=0)])
    assert torch.allclose(x, loaded.X_test, rtol=1e-5, atol=1e-6)


def test_csv_shards_stream_like_parquet(table, tmp_path):
    folder = _write_shards(table, tmp_path / "csv", csv=True)
    spec = _spec(folder, preprocess={"impute": "median"})
    streamed = prepare(spec)
    in_memory = prepare(spec.with_values({"data.in_memory_mb": 512.0}))
    assert isinstance(streamed.X_train, TableRows) and isinstance(in_memory.X_train, torch.Tensor)
    assert [c["fill"] for c in streamed.preprocessor.columns_] == [
        c["fill"] for c in in_memory.preprocessor.columns_
    ]
    assert torch.equal(streamed.y_test, in_memory.y_test)


def test_exact_median_over_several_radix_passes(monkeypatch):
    monkeypatch.setattr(table_fit, "CANDIDATES", 4)  # force passes that narrow 16 bits at a time
    rng = np.random.default_rng(1)
    for values in (
        rng.normal(0, 1e6, 1001),
        np.repeat([-3.5, 0.0, 2.25], [300, 1, 300]),
        rng.normal(0, 1, 1000),
    ):
        median = table_fit._Median()
        for chunk in np.array_split(values, 7):
            median.add(chunk)
        median.next_pass()
        passes = 0
        while not median.done:
            for chunk in np.array_split(values, 5):
                median.add(chunk)
            median.next_pass()
            passes += 1
        assert median.median() == np.median(values) and passes >= 1


def test_workers_share_the_units_and_every_row_comes_once(shards):
    data = prepare(_spec(shards))
    rows = data.X_train
    seen = torch.cat([index for _, index in rows.loader(64, workers=2, indices=True)])
    assert sorted(seen.tolist()) == list(range(len(rows)))
    loader = rows.loader(64, workers=2, shuffle=True, seed=3)
    assert len(loader) == sum(1 for _ in loader)  # the exact batch count Lightning is told
    first = [y for _, y in rows.loader(64, workers=0, shuffle=True, seed=3)]
    again = [y for _, y in rows.loader(64, workers=0, shuffle=True, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(torch.cat(first), data.y_train)  # shuffled
    assert torch.equal(torch.sort(torch.cat(first)).values, torch.sort(data.y_train).values)


def test_a_model_trains_on_a_streamed_table_and_is_tested_on_its_streamed_test_split(shards, table, tmp_path):
    from dltoolkit.api import run

    spec = _spec(shards, workers=1).with_values(
        {
            "graph.nodes": [{"name": "h", "op": "linear", "units": 16}, {"name": "r", "op": "relu"}],
            "train.epochs": 3,
            "train.batch_size": 128,
            "train.optimizer.lr": 0.03,
        }  # fmt: skip
    )
    result = run(spec, out=tmp_path / "out", plots=False)
    losses = result.history["train_loss"].tolist()
    assert len(losses) == 3 and losses[-1] < losses[0] and result.metrics["accuracy"] > 0.45  # chance: 1/3
    data = prepare_frame(spec, table)  # the same test rows, in memory: the same accuracy
    test_rows = table.drop(columns="target").iloc[_positions(spec, table)]
    predicted = result.predictor.predict(test_rows)
    accuracy = float(np.mean(predicted == data.y_test_raw))
    assert result.metrics["accuracy"] == pytest.approx(accuracy)
    from dltoolkit.widgets.evaluation import _predictions  # the Evaluation panel: every streamed test row

    y_true, output, _ = _predictions(result.predictor, None)
    assert len(y_true) == len(output) == len(test_rows)
    assert float(np.mean(output.argmax(1) == y_true)) == pytest.approx(result.metrics["accuracy"])
    streamed = result.predictor.predict(f"{shards}/part-*.parquet")  # over in_memory_mb: streamed
    assert np.array_equal(streamed, result.predictor.predict(table.drop(columns="target")))


def _positions(spec, table):
    from dltoolkit.data.prepare import split_positions
    from dltoolkit.data.target import check_target

    return split_positions(spec, check_target(table["target"], spec.task))[2]


def test_a_small_table_is_loaded_at_once(shards):
    data = prepare(_spec(shards, in_memory_mb=64))
    assert isinstance(data.X_train, torch.Tensor)


def _corrupt(folder):
    (folder / "part-1.parquet").write_bytes(b"PAR1 not really parquet")


def _other_schema(folder):
    pd.DataFrame({"a": [1.0], "colour": ["red"], "target": [0]}).to_parquet(folder / "part-1.parquet")


@pytest.mark.parametrize(
    "source, damage, match",
    [
        ("part-*.parquet", None, "Did you mean|target"),
        ("nothing-*.parquet", None, "No Parquet or CSV file matches the glob"),
        ("", _corrupt, "Not a readable Parquet file.*part-1.parquet"),
        (
            "",
            _other_schema,
            "Shard 'part-1.parquet' has another schema.*missing \\['b', 'color'\\].*extra \\['colour'\\]",
        ),
    ],
    ids=["missing-target", "empty-glob", "corrupt", "schemas-differ"],
)
def test_bad_table_files_fail_before_training_and_write_nothing(table, tmp_path, source, damage, match):
    from dltoolkit.api import run

    folder = _write_shards(table, tmp_path / "t")
    if damage is not None:
        damage(folder)
    spec = _spec(f"{folder}/{source}" if source else folder)
    if source == "part-*.parquet":
        spec = spec.with_values({"task.target": "label"})
        match = (
            r"Target column not in the table files.*'label'.*columns found: \['a', 'b', 'color', 'target'\]"
        )
    with pytest.raises(DataError, match=match):
        run(spec, out=tmp_path / "out", plots=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_sample_table_is_written_once_as_parquet_shards_and_streamed(tmp_path, monkeypatch):
    from dltoolkit.data.tables.samples import credit_table, sample_path
    from dltoolkit.data.tables.source import TableFiles

    monkeypatch.setenv("DLTOOLKIT_CACHE", str(tmp_path))
    assert source_format(_spec("credit_shards")) == "table_files"
    files = TableFiles.open("credit_shards")
    assert files.rows == 60_000 and len(files.files) == 8 and len(files.units) == 24
    written = (tmp_path / "data" / "credit_shards" / "part-00000.parquet").stat().st_mtime_ns
    assert (
        sample_path("credit_shards").joinpath("part-00000.parquet").stat().st_mtime_ns == written
    )  # not rewritten
    head = files.read_unit(0, files.columns)
    pd.testing.assert_frame_equal(head, credit_table(60_000).iloc[:2_500])
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "credit_shards"
    ]  # no temporary folder left


def test_a_preview_of_a_streamed_table_reads_its_first_rows_only(shards, table):
    from dltoolkit.data.tables.prepare import preview

    head = preview(_spec(shards), rows=600)
    pd.testing.assert_frame_equal(head, table.iloc[:600][["a", "b", "color", "target"]])


def test_a_relative_glob_in_a_spec_file_is_taken_beside_it(table, tmp_path, monkeypatch):
    from dltoolkit.spec import Spec

    _write_shards(table, tmp_path / "project" / "data")
    _spec("data/part-*.parquet").save(tmp_path / "project" / "spec.yaml")
    monkeypatch.chdir(tmp_path)
    spec = Spec.load(tmp_path / "project" / "spec.yaml")
    assert spec.data.source == str(tmp_path / "project" / "data" / "part-*.parquet")
    data = prepare(spec)
    assert len(data.X_train) + len(data.X_val) + len(data.X_test) == len(table)


def test_a_column_empty_in_the_first_row_group_gets_its_kind_from_later_rows(tmp_path):
    frame = _table(600)
    frame["note"] = pd.Series([None] * 300 + ["x", "y"] * 150, dtype=object)  # text only after row 300
    folder = _write_shards(frame, tmp_path / "t", shards=1, row_group=250)
    spec = _spec(folder)
    streamed, loaded = prepare(spec), prepare_frame(spec, frame)
    assert (
        streamed.preprocessor.columns_[-1]["kind"]
        == loaded.preprocessor.columns_[-1]["kind"]
        == "categorical"
    )


def _dated(n: int = 2000, seed: int = 1, timestamps: bool = False) -> pd.DataFrame:
    """``_table`` plus a date column over six years (a time of day on some rows, gaps on others)."""
    rng = np.random.default_rng(seed)
    frame = _table(n, seed)
    seconds = rng.integers(0, 6 * 365 * 86_400, n) // 3600 * 3600  # whole hours...
    midnight = rng.random(n) < 0.5
    seconds[midnight] = seconds[midnight] // 86_400 * 86_400  # ...and midnight on about half the rows
    when = pd.Timestamp("2019-01-01") + pd.to_timedelta(seconds, unit="s")
    dated = pd.Series(when, name="when")
    dated[rng.random(n) < 0.08] = pd.NaT
    frame.insert(2, "when", dated if timestamps else dated.dt.strftime("%Y-%m-%d %H:%M:%S"))
    return frame


@pytest.mark.parametrize("timestamps", [False, True], ids=["date-strings", "parquet-timestamps"])
@pytest.mark.parametrize(("impute", "scale"), [("median", "standard"), ("mean", "minmax")])
def test_a_date_column_streams_to_the_in_memory_fit(tmp_path, timestamps, impute, scale):
    table = _dated(timestamps=timestamps)
    folder = _write_shards(table, tmp_path / "dated", shards=4, row_group=200)
    spec = _spec(folder, preprocess={"impute": impute, "scale": scale})
    streamed, loaded = prepare(spec), prepare_frame(spec, table)
    assert isinstance(streamed.X_train, TableRows)
    got, want = streamed.preprocessor.to_state(), loaded.preprocessor.to_state()
    assert got["output_names"] == want["output_names"] and any(
        n.startswith("when.") for n in got["output_names"]
    )
    (mine,) = [c for c in got["columns"] if c["name"] == "when"]
    (theirs,) = [c for c in want["columns"] if c["name"] == "when"]
    assert mine["kind"] == theirs["kind"] == "date"
    assert {k: mine[k] for k in ("format", "fill", "time")} == {
        k: theirs[k] for k in ("format", "fill", "time")
    }
    assert mine["scale"] == pytest.approx(theirs["scale"], rel=1e-12)
    assert mine["offset"] == pytest.approx(theirs["offset"], rel=1e-12, abs=1e-12)
    x = torch.cat([x for x, _ in streamed.X_test.loader(10_000, workers=0)])
    assert torch.allclose(x, loaded.X_test, rtol=1e-5, atol=1e-6)  # the calendar features too


def _reviews(n: int = 1500, seed: int = 2) -> pd.DataFrame:
    """Short generated reviews (a few with no text) and their label."""
    rng = np.random.default_rng(seed)
    good, bad = ["great", "lovely", "superb", "works"], ["broken", "awful", "refund", "slow"]
    filler = ["the", "item", "arrived", "today", "and", "it", "is", "quite", "unbelievably", "packaging"]
    label = rng.integers(0, 2, n)
    texts = [
        " ".join(rng.choice(filler, 6).tolist() + rng.choice(good if y else bad, 2).tolist()) for y in label
    ]
    frame = pd.DataFrame({"review": texts, "target": label})
    frame.loc[rng.random(n) < 0.03, "review"] = None
    return frame


@pytest.mark.parametrize("tokenizer", ["word", "bpe"])
def test_a_text_column_streams_to_the_in_memory_vocabulary(tmp_path, tokenizer):
    table = _reviews()
    folder = _write_shards(table, tmp_path / "reviews", shards=3, row_group=200)
    text = {"column": "review", "tokenizer": tokenizer, "vocab_size": 60, "max_len": 12}
    spec = _spec(folder, preprocess={"text": text}).with_values({"task.kind": "binary"})
    streamed, loaded = prepare(spec), prepare_frame(spec, table)
    assert isinstance(streamed.X_train, TableRows)
    got, want = streamed.preprocessor.to_state(), loaded.preprocessor.to_state()
    assert got["vocab"] == want["vocab"] and len(got["vocab"]) > 10
    assert got.get("tokenizer") == want.get("tokenizer")  # the same BPE merges (None for words)
    x = torch.cat([x for x, _ in streamed.X_test.loader(10_000, workers=0)])
    assert x.dtype == torch.int64 and torch.equal(x, loaded.X_test)


def test_threads_read_the_units_of_one_table_at_once(shards):
    # a local sweep's trials read the same streamed split from their own threads
    import threading

    from dltoolkit.data.tables.source import TableFiles

    files = TableFiles.open(str(shards))
    errors: list[BaseException] = []

    def read(offset: int) -> None:
        try:
            for i in range(120):
                unit = (i + offset) % len(files.units)
                assert len(files.read_unit(unit, ["a", "color"])) == files.units[unit][2]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=read, args=(k * 3,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
