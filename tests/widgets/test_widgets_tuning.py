import re
import threading

import pytest

from dltoolkit.errors import DLToolkitError, SpecError
from dltoolkit.widgets import TuneController, TunePanel


def test_space_editing_and_bad_input_messages(wine_state, tmp_path):
    panel = TunePanel(TuneController(wine_state, out=tmp_path))
    assert "train.optimizer.lr" in panel.space.value
    panel.path.value, panel.range.value = "train.batch_size", "{choice: [8, 16]}"
    panel.set_button.click()
    assert wine_state.spec.search.space["train.batch_size"] == {"choice": [8, 16]}
    assert "train.batch_size" in panel.space.value
    panel.path.value, panel.range.value = "train.optimizer.learning_rate", "{loguniform: [0.001, 0.1]}"
    panel.set_button.click()
    assert panel.message.is_error and "Unknown key 'learning_rate'" in panel.message.text
    panel.path.value, panel.range.value = "train.optimizer.lr", "{loguniform: [-1, 0.1]}"
    panel.set_button.click()
    assert "positive low" in panel.message.text
    panel.range.value = "0.1"
    panel.set_button.click()
    assert "Unreadable range" in panel.message.text
    panel.path.value = "train.batch_size"
    panel.remove_button.click()
    assert "train.batch_size" not in wine_state.spec.search.space
    panel.fields["samples"].value = 0
    assert panel.message.is_error and "search.samples" in panel.message.text
    panel.fields["scheduler"].value = "asha"
    panel.fields["max_concurrent"].value = 0
    assert wine_state.spec.search.scheduler == "asha" and wine_state.spec.search.max_concurrent is None
    with pytest.raises(SpecError, match="Not in the search space"):
        panel.controller.remove_space("train.seed")
    with pytest.raises(DLToolkitError, match="No trial"):
        panel.controller.apply_best()


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray for this module's sweeps (an earlier sweep's Ray is reused), shut down after."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_sweep_in_background_fills_the_trial_table(wine_state, tmp_path, ray_local):
    wine_state.update({"search.max_epochs": 2, "search.samples": 2, "search.max_concurrent": 1})
    panel = TunePanel(TuneController(wine_state, out=tmp_path), interval=0.2)
    panel.launch_button.click()
    assert panel.controller.running  # the click returned while the sweep goes on
    assert panel.controller.wait(300)
    c = panel.controller
    assert c.status == "done", c.error
    panel._watch()  # the panel's redraw loop ends after a last refresh
    assert panel.trials.value.count("<tr>") == 2  # one body row per trial (the header row is styled)
    assert c.rows == 4 and panel.curves.value[:4] == b"\x89PNG"
    assert "dlt-best-config" in panel.best.value
    best = c.sweep.best["config"]
    panel.best_button.click()
    assert wine_state.spec.get_value("train.optimizer.lr") == pytest.approx(best["train.optimizer.lr"])
    assert wine_state.spec.graph.nodes[0].units == best["graph.nodes.hidden.units"]


def test_stop_ends_a_sweep_cleanly(wine_state, tmp_path, ray_local):
    wine_state.update({"search.max_epochs": 300, "search.samples": 3, "search.max_concurrent": 1})
    c = TuneController(wine_state, out=tmp_path)
    first = threading.Event()
    c.on_change.append(lambda: first.set() if c.rows else None)
    c.launch()
    assert first.wait(300)
    c.stop()
    assert c.wait(300)
    assert c.status == "stopped" and c.sweep.done
    assert 1 <= len(c.trials()) < 3 or (c.trials()["epochs"] < 300).all()


def test_stop_then_resume_from_the_panel_continues_the_same_sweep(wine_state, tmp_path, ray_local):
    wine_state.update(
        {
            "search.max_epochs": 30,
            "search.samples": 2,
            "search.max_concurrent": 1,
            "search.scheduler": "fifo",
            "train.early_stopping": None,  # every trial trains its 30 epochs
        }
    )
    panel = TunePanel(TuneController(wine_state, out=tmp_path), interval=0.1)
    c = panel.controller
    phases, first = [], threading.Event()
    c.on_change.append(lambda: phases.append(c.phase) if c.status == "starting" else None)
    c.on_change.append(lambda: first.set() if c.rows else None)
    assert panel.resume_button.disabled and panel.stop_button.disabled and not panel.launch_button.disabled
    panel.launch_button.click()
    assert panel.launch_button.disabled and not panel.stop_button.disabled  # while it runs
    assert any(p.startswith("checking the spec") for p in phases), phases
    assert first.wait(300)
    panel.stop_button.click()
    assert c.wait(300) and c.status == "stopped", c.error
    panel._watch()
    folder = c.folder
    assert str(folder) in panel.view.folder.value and "stopped" in panel.status.value
    assert not panel.resume_button.disabled and not panel.launch_button.disabled
    stopped = c.trials()
    assert "STOPPED" in set(stopped["status"]) or len(stopped) < 2
    panel.resume_button.click()
    assert panel.resume_button.disabled and c.folder == folder
    assert c.wait(300) and c.status == "done", c.error
    panel._watch()
    table = c.trials()
    assert len(table) == 2 and set(table["status"]) == {"TERMINATED"} and (table["epochs"] == 30).all()
    assert "dlt-best-config" in panel.best.value and str(folder) in panel.view.folder.value
    best = c.sweep.best["config"]  # "Use best config" takes the resumed sweep's result
    panel.best_button.click()
    assert wine_state.spec.get_value("train.optimizer.lr") == pytest.approx(best["train.optimizer.lr"])
    assert "None" not in panel.trials.value  # empty columns (no error) are left out, not shown as None

    def first_row() -> str:  # the first cell of the table's body: a trial id
        return re.search(r"<tbody>\s*<tr>\s*<td>([^<]*)</td>", panel.trials.value).group(1)

    assert first_row() == c.sweep.best["trial_id"]  # best first by default
    assert "seconds" in panel.view.sort.options and "error" not in panel.view.sort.options
    panel.view.sort.value = "seconds"
    assert first_row() == table.sort_values("seconds").iloc[0]["trial_id"]


def test_resume_is_refused_before_any_sweep(wine_state, tmp_path):
    c = TuneController(wine_state, out=tmp_path)
    with pytest.raises(DLToolkitError, match="Nothing to resume"):
        c.resume()
