"""``dltoolkit explain``: the files it writes (atomically: all or nothing) and its errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dltoolkit.cli import main


def test_explain_writes_figures_importances_and_a_report(planted, tmp_path, capsys):
    bundle, frame = planted
    frame.to_csv(tmp_path / "planted.csv", index=False)  # the spec's source is 'frame': DATA names it
    out = tmp_path / "explained"
    assert (
        main(["explain", str(bundle), str(tmp_path / "planted.csv"), "--out", str(out), "--rows", "2"]) == 0
    )
    printed = capsys.readouterr().out
    assert "x0: " in printed.splitlines()[1] and f"wrote {out}/" in printed  # x0 first
    assert sorted(p.name for p in out.iterdir()) == [
        "attributions.csv",
        "attributions_row0.png",
        "attributions_row1.png",
        "explanation.json",
        "importance.csv",
        "permutation_importance.png",
        "report.html",
    ]
    saved = json.loads((out / "explanation.json").read_text())
    assert saved["kind"] == "tabular" and saved["permutation_importance"][0]["feature"] == "x0"
    assert [len(r["attributions"]["integrated_gradients"]) for r in saved["rows"]] == [6, 6]
    importance = pd.read_csv(out / "importance.csv")
    assert (
        list(importance.columns[:3]) == ["feature", "importance", "std"] and importance["feature"][0] == "x0"
    )
    assert len(pd.read_csv(out / "attributions.csv")) == 2 * 6
    report = (out / "report.html").read_text()
    assert "Understand the model" in report and '<img src="permutation_importance.png"' in report
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_explain_leaves_nothing_behind_when_it_fails(planted, tmp_path, monkeypatch, capsys):
    bundle, frame = planted
    out = tmp_path / "explained"
    assert main(["explain", str(bundle), "--out", str(out)]) == 2  # the source is 'frame': no data
    assert "No data passed for source 'frame'" in capsys.readouterr().err
    frame.to_csv(tmp_path / "planted.csv", index=False)
    args = ["explain", str(bundle), str(tmp_path / "planted.csv"), "--out", str(out)]
    assert main([*args, "--method", "gradcam"]) == 2
    assert "Grad-CAM does not fit this model" in capsys.readouterr().err
    from dltoolkit.interpret import Explanation

    def broken(self):
        raise OSError("disk full")

    monkeypatch.setattr(Explanation, "figures", broken)  # fails halfway through writing
    with pytest.raises(OSError, match="disk full"):
        main(args)
    assert list(tmp_path.iterdir()) == [tmp_path / "planted.csv"]  # no out, no half-written temp folder


def test_dltoolkit_explain_is_the_function_even_once_the_package_is_imported():
    import dltoolkit
    import dltoolkit.interpret.plots  # noqa: F401  (a submodule import sets dltoolkit.interpret, not .explain)
    from dltoolkit.interpret._explain import explain

    assert dltoolkit.explain is explain and "explain" in dltoolkit.__all__


def test_a_run_asked_to_explain_puts_the_explanation_in_its_own_report(planted, tmp_path):
    import dltoolkit
    from dltoolkit.api import run

    bundle, frame = planted
    spec = dltoolkit.load(bundle).spec
    out = tmp_path / "run"
    result = run(spec, frame, out=out, explain=True)
    assert result.explanation is not None and result.explanation.importance.index[0] == "x0"
    assert result.files["explain"] == out / "explain"
    assert {"explanation.json", "importance.csv", "permutation_importance.png"} <= {
        p.name for p in (out / "explain").iterdir()
    }
    report = (out / "report.html").read_text()
    assert "Understand the model" in report and '<img src="explain/permutation_importance.png"' in report
    assert "Test metrics" in report and "Training history" in report  # the run's own report, with it
    plain = run(spec, frame, out=tmp_path / "plain")
    assert plain.explanation is None and not (tmp_path / "plain" / "explain").exists()
    assert "Understand the model" not in (tmp_path / "plain" / "report.html").read_text()


def test_cli_run_explain_on_a_recipe_and_its_refusal_with_workers(tmp_path, capsys):
    out = tmp_path / "wine"
    assert main(["run", "wine", "--set", "train.epochs=2", "--quiet", "--explain", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"explained: {out / 'explain'}/" in printed
    saved = json.loads((out / "explain" / "explanation.json").read_text())
    assert saved["kind"] == "tabular" and len(saved["permutation_importance"]) == 13  # wine's columns
    assert "Understand the model" in (out / "report.html").read_text()
    args = ["run", "wine", "--workers", "2", "--explain", "--out", str(tmp_path / "ddp")]
    assert main(args) == 2
    assert "--explain does not go with a data-parallel run" in capsys.readouterr().err
    assert not (tmp_path / "ddp").exists()
