import subprocess
import sys

import pytest

from dltoolkit.errors import SpecError
from dltoolkit.spec import Spec
from dltoolkit.widgets import Studio, studio


def test_studio_panels_share_one_live_spec(tmp_path):
    s = studio("digits-mlp", overrides={"train.epochs": 2}, out=tmp_path)
    assert isinstance(s, Studio) and s.titles == ("Data", "Graph", "Training", "Tuning", "Evaluation", "Spec")
    s.train_panel.fields["optimizer.lr"].value = 0.02
    s.graph_panel.select("hidden")
    s.graph_panel.attr_control("units").value = 32
    s.data_panel.test.value = 0.25
    s.tune_panel.fields["samples"].value = 3
    spec = s.spec
    assert spec is s.state.spec and spec.train.optimizer.lr == 0.02
    assert spec.graph.nodes[0].units == 32 and spec.data.split.test == 0.25 and spec.search.samples == 3
    shown = s.spec_panel.text()
    assert "units: 32" in shown and "lr: 0.02" in shown
    assert "weight_decay" not in shown and "early_stopping" not in shown  # defaults: only in the full spec
    assert "<span" in s.spec_panel.yaml.value  # highlighted
    s.spec_panel.show.value = "full spec"
    assert "weight_decay" in s.spec_panel.text() and "units: 32" in s.spec_panel.text()
    s.spec_panel.path.value = str(tmp_path / "mine.yaml")
    s.spec_panel.save_button.click()
    assert Spec.load(tmp_path / "mine.yaml") == spec  # runs from the command line as is
    s.graph_panel.undo_button.click()  # undo applies to the shared spec: the search edit goes first
    assert s.spec.search.samples == 8 and s.spec.graph.nodes[0].units == 32


def test_training_in_the_studio_lands_on_the_dashboard(tmp_path):
    s = studio("wine", overrides={"train.epochs": 2}, out=tmp_path)
    s.train_panel.train_button.click()
    assert s.train_panel.controller.wait(120)
    assert s.eval_panel.controller.names() and len(s.eval_panel.columns.children) == 1


def test_studio_rejects_bad_specs():
    with pytest.raises(SpecError, match="Did you mean .epochs.?"):
        studio("wine", overrides={"train.epoch": 2})


def test_import_dltoolkit_stays_light():
    code = (
        "import sys, dltoolkit, dltoolkit.extension, dltoolkit.spec;"
        "heavy = [m for m in ('ipywidgets', 'matplotlib', 'ray', 'jupyterlab') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_spec_panel_rounds_floats_for_reading_but_saves_them_exactly(tmp_path):
    s = studio("wine", overrides={"train.optimizer.lr": 0.1 + 0.2}, out=tmp_path)
    assert "{lr: 0.3}" in s.spec_panel.text() and "0.30000000000000004" not in s.spec_panel.text()
    s.spec_panel.path.value = str(tmp_path / "wine.yaml")
    s.spec_panel.save_button.click()
    assert Spec.load(tmp_path / "wine.yaml").train.optimizer.lr == 0.1 + 0.2
