import threading

import pytest

from dltoolkit.errors import DLToolkitError
from dltoolkit.widgets import TrainController, TrainPanel


def test_negative_learning_rate_is_a_message_and_blocks_training(wine_state, tmp_path):
    panel = TrainPanel(TrainController(wine_state, out=tmp_path))
    panel.fields["optimizer.lr"].value = -0.1
    assert panel.message.is_error and "greater than 0" in panel.message.text
    assert wine_state.spec.train.optimizer.lr == 0.003
    panel.train_button.click()
    assert not panel.controller.running and "Fix this value" in panel.message.text


def test_train_button_trains_in_background_with_live_curves(wine_state, tmp_path):
    panel = TrainPanel(TrainController(wine_state, out=tmp_path))
    panel.fields["optimizer.name"].value = "sgd"
    panel.fields["epochs"].value = 3
    assert wine_state.spec.train.optimizer.name == "sgd" and wine_state.spec.train.epochs == 3
    epochs_seen = []
    panel.controller.on_epoch.append(
        lambda row: epochs_seen.append((row["epoch"], threading.current_thread().name))
    )
    assert panel.stop_button.disabled and not panel.train_button.disabled  # nothing to stop yet
    during = []
    panel.controller.on_epoch.append(
        lambda row: during.append((panel.train_button.disabled, panel.stop_button.disabled))
    )
    panel.train_button.click()
    assert panel.controller.wait(120)
    c = panel.controller
    assert c.status == "done", c.error
    assert [e for e, _ in epochs_seen] == [1, 2, 3]
    assert all(name == "dltoolkit-train" for _, name in epochs_seen)  # not the kernel's thread
    assert c.result.metrics["accuracy"] > 0 and (c.result.out / "model" / "weights.pt").is_file()
    assert panel.curves.value[:4] == b"\x89PNG" and "dlt-status-done" in panel.status.value
    assert set(during) == {(True, False)}  # while training: Train disabled, Stop enabled
    assert not panel.train_button.disabled and panel.stop_button.disabled  # and back after it
    assert panel.progress.value == panel.progress.max == 3 and panel.progress.bar_style == "success"
    table = panel.epoch_table.value
    assert (
        "dlt-epochs-table" in table
        and table.count("<tr>") == 3
        and "seconds" in table
        and "val_loss" in table
    )
    assert len(c.seconds) == 3 and all(t > 0 for t in c.seconds) and c.eta() is None


def test_stop_ends_training_early_and_keeps_the_best_model(wine_state, tmp_path):
    c = TrainController(wine_state, out=tmp_path)
    c.set("epochs", 500)
    started = threading.Event()
    c.on_epoch.append(lambda row: started.set())
    c.start()
    with pytest.raises(DLToolkitError, match="already running"):
        c.start()
    assert started.wait(120)
    c.stop()
    assert c.wait(120)
    assert c.status == "stopped" and 1 <= len(c.rows) < 500
    assert c.result is not None and (c.result.out / "metrics.json").is_file()


def test_a_failing_training_reports_its_error(wine_state, tmp_path):
    wine_state.update({"graph.nodes.hidden.op": "conv2d"})  # missing channels, wrong input rank
    c = TrainController(wine_state, out=tmp_path)
    c.start()
    assert c.wait(120)
    assert c.status == "failed" and "hidden" in c.error
    panel = TrainPanel(c)
    panel._draw()
    assert panel.message.is_error
    wine_state.update({"graph.nodes.hidden.op": "linear"})
    panel.train_button.click()  # the next training clears the message that no longer holds
    assert not panel.message.is_error
    assert c.wait(120) and c.status == "done", c.error


def test_suggest_button_finds_a_learning_rate_and_writes_it_into_the_shared_spec(wine_state, tmp_path):
    panel = TrainPanel(TrainController(wine_state, out=tmp_path))
    other = TrainPanel(TrainController(wine_state, out=tmp_path))  # another view of the same spec
    before = wine_state.spec.train.optimizer.lr
    during = []
    panel.controller.on_found.insert(0, lambda c: during.append(panel.train_button.disabled))
    panel.suggest_button.click()
    assert panel.suggest_button.disabled and panel.train_button.disabled  # nothing else while it runs
    assert "finding a learning rate" in panel.status.value
    assert panel.controller.wait(120)
    c = panel.controller
    assert c.found is not None, c.error
    assert not c.finding and not panel.suggest_button.disabled and not panel.train_button.disabled
    assert during == [True]
    suggestion = c.found.suggestion
    assert suggestion != before
    assert wine_state.spec.train.optimizer.lr == suggestion  # in the shared spec...
    assert panel.fields["optimizer.lr"].value == suggestion  # ...in this panel's field...
    assert other.fields["optimizer.lr"].value == suggestion  # ...and in every other view of it
    assert panel.lr_plot.value[:4] == b"\x89PNG" and panel.lr_plot.layout.display is None
    assert not panel.message.is_error and f"Learning rate set to {suggestion:.2g}" in panel.message.text
    assert wine_state.can_undo and wine_state.undo().train.optimizer.lr == before  # one undoable edit


def test_suggest_failure_is_a_message_and_the_spec_is_unchanged(wine_state, tmp_path):
    state = wine_state
    state.update({"data.source": str(tmp_path / "missing.csv")})
    panel = TrainPanel(TrainController(state, out=tmp_path))
    panel.suggest_button.click()
    assert panel.controller.wait(60)
    assert panel.controller.found is None and panel.message.is_error
    assert "missing.csv" in panel.message.text
    assert state.spec.train.optimizer.lr == 0.003 and not panel.suggest_button.disabled
