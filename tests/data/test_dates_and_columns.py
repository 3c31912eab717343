"""Date columns become calendar features; ID-like and high-cardinality columns warn; data.exclude."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from dltoolkit import api
from dltoolkit.bundle import load
from dltoolkit.data import Preprocessor, prepare
from dltoolkit.deploy import ExportError, export
from dltoolkit.errors import DataError, DataWarning
from dltoolkit.spec import PreprocessSpec, Spec


def _weather(tmp_path, n: int = 400) -> str:
    """A CSV like Seattle weather: a daily date column, two numbers, a seasonal 3-class target."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2012-01-01", periods=n, freq="D")
    season = np.cos(2 * np.pi * (days.dayofyear.to_numpy() - 15) / 365.25)  # 1 in winter
    rain = np.clip(rng.normal(3 + 4 * season, 2), 0, None)
    temp = 12 - 8 * season + rng.normal(0, 2, n)
    weather = np.where(rain > 5, "rain", np.where(temp > 14, "sun", "fog"))
    path = tmp_path / "weather.csv"
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "rain": rain, "temp": temp, "weather": weather})
    frame.to_csv(path, index=False)
    return str(path)


def _spec(source: str, **data) -> Spec:
    return Spec.from_dict(
        {
            "task": {"kind": "multiclass", "target": "weather"},
            "data": {"source": source} | data,
            "graph": {"nodes": [{"name": "h", "op": "linear", "units": 8}, {"name": "r", "op": "relu"}]},
            "train": {"epochs": 3, "early_stopping": None},
        }
    )


def test_a_date_column_becomes_calendar_features_not_one_hot_codes(tmp_path):
    prepared = prepare(_spec(_weather(tmp_path)))
    names = prepared.preprocessor.output_names_
    assert names == [
        "date.year",
        "date.month_sin",
        "date.month_cos",
        "date.weekday_sin",
        "date.weekday_cos",
        "date.yearday_sin",
        "date.yearday_cos",
        "rain",
        "temp",
    ]
    assert prepared.input_shape == (9,)  # one-hot codes of the dates would be ~270 inputs


def test_calendar_features_of_a_known_date():
    train = pd.DataFrame({"d": ["2020-01-01", "2022-12-31", "2021-03-04"]})
    pre = Preprocessor(PreprocessSpec(scale="none")).fit(train)
    row = pre.transform(pd.DataFrame({"d": ["2021-03-04"]}))[0]  # a Thursday, day 63 of the year
    angles = [2 * math.pi * 2 / 12, 2 * math.pi * 3 / 7, 2 * math.pi * 62 / 365.25]
    expected = [2021.0] + [f(a) for a in angles for f in (math.sin, math.cos)]
    assert row.tolist() == pytest.approx(expected, abs=1e-6)


def test_times_of_day_gaps_zones_and_datetime_dtypes():
    stamps = ["2021-03-04 06:00:00", "2021-03-05 18:00:00", None, "2021-03-07 00:00:00"]
    pre = Preprocessor().fit(pd.DataFrame({"t": stamps}))
    assert pre.output_names_[-2:] == ["t.time_sin", "t.time_cos"]
    out = pre.transform(pd.DataFrame({"t": ["2021-03-04 06:00:00", None]}))
    assert out[0, -2:].tolist() == pytest.approx([1.0, 0.0], abs=1e-6)  # 6 am: a quarter day
    assert np.isfinite(out).all()  # the missing date is imputed with the median training date
    parsed = pd.DataFrame({"t": pd.to_datetime(["2021-03-04", "2021-06-01", "2021-09-01"])})
    pre = Preprocessor().fit(parsed)
    assert pre.output_names_[0] == "t.year" and len(pre.output_names_) == 7
    from_text = pre.transform(pd.DataFrame({"t": ["2021-06-01"]}))
    assert from_text[0].tolist() == pytest.approx(pre.transform(parsed.iloc[[1]])[0].tolist())
    zoned = Preprocessor().fit(
        pd.DataFrame({"t": ["2021-03-04T10:00:00+02:00", "2021-03-05T10:00:00+02:00"]})
    )
    utc = zoned.transform(pd.DataFrame({"t": ["2021-03-04T08:00:00+00:00"]}))[0]
    assert utc.tolist() == pytest.approx(
        zoned.transform(pd.DataFrame({"t": ["2021-03-04T10:00:00+02:00"]}))[0].tolist()
    )


def test_an_unreadable_date_names_the_row_and_the_format():
    pre = Preprocessor().fit(pd.DataFrame({"d": ["2021-03-04", "2021-03-05"]}))
    with pytest.raises(DataError, match=r"Unreadable date in date column 'd' at row 1.*'soon'.*%Y-%m-%d"):
        pre.transform(pd.DataFrame({"d": ["2021-03-06", "soon"]}))


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["10-12", "13-15", "16-18"], "categorical"),  # ranges, not month-day dates
        (["Mon", "Tue", "Wed"], "categorical"),  # weekday names: no year
        (["May", "June", "July"], "categorical"),
        (["2019", "2020", "2021"], "numeric"),
        (["red", "2021-01-01", "blue"], "categorical"),  # mostly not dates
    ],
    ids=["ranges", "weekdays", "months", "years", "mixed"],
)
def test_columns_that_are_not_dates_stay_what_they_were(values, kind):
    pre = Preprocessor().fit(pd.DataFrame({"c": values}))
    assert pre.columns_[0]["kind"] == kind


def test_date_state_round_trips_through_a_bundle_and_predicts_from_raw_rows(tmp_path):
    source = _weather(tmp_path)
    result = api.run(_spec(source), out=tmp_path / "run", plots=False)
    state = json.loads((tmp_path / "run" / "model" / "preprocess.json").read_text())["preprocessor"]
    assert state["version"] == 2 and state["columns"][0]["kind"] == "date"
    rows = pd.read_csv(source).drop(columns=["weather"]).iloc[:5]
    loaded = load(result.bundle)
    assert loaded.predict_proba(rows) == pytest.approx(result.predictor.predict_proba(rows))
    with pytest.raises(ExportError, match=r"does not support date columns.*'date'"):
        export(result.bundle, "torchscript", out=tmp_path / "m.pt")


def test_id_like_and_high_cardinality_columns_warn(tmp_path):
    n = 200
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "row_id": np.arange(1000, 1000 + n),  # whole numbers in one run
            "user": [f"user-{i}" for i in range(n)],
            "city": [f"city-{i % 90}" for i in range(n)],
            "x": rng.normal(size=n),  # unique floats: a measurement, no warning
            "colour": rng.choice(["red", "blue"], n),
        }
    )
    with pytest.warns(DataWarning) as caught:
        pre = Preprocessor().fit(frame)
    texts = [str(w.message) for w in caught]
    assert len(texts) == 3 and texts == pre.warnings_
    assert "'row_id'" in texts[0] and "looks like an ID" in texts[0] and "data.exclude: [row_id]" in texts[0]
    assert "'user'" in texts[1] and "looks like an ID" in texts[1]
    assert "'city' has 90 categories" in texts[2]


def test_run_reports_the_column_warnings(tmp_path):
    source = _weather(tmp_path)
    frame = pd.read_csv(source).assign(station=lambda f: [f"s{i}" for i in range(len(f))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        result = api.run(_spec("frame"), frame, out=tmp_path / "run")
    assert any("'station'" in w for w in result.metrics["warnings"])
    assert "looks like an ID" in (tmp_path / "run" / "report.html").read_text()


def test_exclude_leaves_columns_out_and_unknown_names_list_the_columns(tmp_path):
    source = _weather(tmp_path)
    prepared = prepare(_spec(source, exclude=["date"]))
    assert prepared.preprocessor.feature_columns_ == ["rain", "temp"]
    with pytest.raises(
        DataError,
        match=r"Column in data.exclude not in the data.*'dates'.*\['date', 'rain', 'temp', 'weather'\].*'date'",
    ):
        prepare(_spec(source, exclude=["dates"]))
    with pytest.raises(DataError, match=r"No feature columns"):
        prepare(_spec(source, exclude=["date", "rain", "temp"]))
