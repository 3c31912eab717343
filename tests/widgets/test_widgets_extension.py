import time

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from ipywidgets import Widget

from dltoolkit import extension
from dltoolkit.recipes import load_recipe


@pytest.fixture(scope="module")
def shell():
    ip = InteractiveShell.instance()
    extension.load_ipython_extension(ip)
    return ip


def test_dlt_run_returns_a_run_rendered_as_html(shell, tmp_path):
    run = shell.run_line_magic("dlt_run", f"seed-linear --epochs 2 --out {tmp_path / 'r'} --set train.seed=1")
    assert run.spec.train.epochs == 2 and run.spec.train.seed == 1 and (tmp_path / "r" / "model").is_dir()
    html = shell.display_formatter.format(run)[0]["text/html"]
    assert "<b>Run</b>" in html and 'class="dlt-figure"' in html


def test_dlt_run_takes_a_spec_variable(shell, tmp_path):
    shell.user_ns["my_spec"] = load_recipe("seed-linear").with_values({"name": "mine"})
    run = shell.run_line_magic("dlt_run", f"my_spec --epochs 1 --out {tmp_path / 'm'}")
    assert run.spec.name == "mine"


def test_dlt_run_refuses_a_used_out_unless_overwrite(shell, tmp_path):
    line = f"seed-linear --epochs 1 --out {tmp_path}"
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(UsageError, match="not empty.*--overwrite"):
        shell.run_line_magic("dlt_run", line)
    run = shell.run_line_magic("dlt_run", f"{line} --overwrite")
    assert (run.out / "model").is_dir() and not (tmp_path / "old.txt").exists()


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("nope-recipe", "Unknown recipe"),
        ("seed-linear --epochz 2", "Unknown option '--epochz'"),
        ("seed-linear --set train.epochs", "PATH=VALUE"),
        ("seed-linear --set train.optimizer.lr=-1", "greater than 0"),
        ("", "Name a recipe"),
    ],
    ids=["recipe", "option", "set-form", "negative-lr", "empty"],
)
def test_bad_magic_input_is_a_usage_error(shell, line, match):
    with pytest.raises(UsageError, match=match):
        shell.run_line_magic("dlt_run", line)


def test_spec_and_graph_render_as_html(shell):
    spec = load_recipe("wine")
    html = shell.display_formatter.format(spec)[0]["text/html"]
    assert "<b>Spec</b>" in html and "hidden (linear)" in html and 'class="dlt-figure"' in html
    from dltoolkit.widgets._prepared import build_graph

    graph_html = shell.display_formatter.format(build_graph(spec))[0]["text/html"]
    assert "parameters" in graph_html and "dlt-figure" in graph_html
    broken = spec.with_values({"graph.nodes.hidden.op": "conv2d"})
    assert "dlt-error" in shell.display_formatter.format(broken)[0]["text/html"]


def test_dlt_sweeps_lists_this_kernels_sweeps(shell):
    table = shell.run_line_magic("dlt_sweeps", "")
    assert list(table.columns) == ["name", "state", "trials", "best", "folder"]
    assert table.index.name == "sweep"  # the index is the sweep's number: no second column for it
    with pytest.raises(UsageError, match="no search space"):
        shell.run_line_magic("dlt_tune", "seed-linear --samples 2")


def test_dlt_tune_shows_a_live_view_that_follows_the_sweep_to_its_end(shell, tmp_path):
    import ray

    line = (
        f"wine --samples 2 --epochs 2 --max-concurrent 1 --out {tmp_path / 's'} --set search.scheduler=fifo"
    )
    try:
        sweep = shell.run_line_magic("dlt_tune", line)
        bundle = shell.display_formatter.format(sweep)[0]
        assert "application/vnd.jupyter.widget-view+json" in bundle  # the live view, in this cell
        assert "text/html" in bundle  # and the static table for frontends without widgets
        view = Widget.widgets[bundle["application/vnd.jupyter.widget-view+json"]["model_id"]]
        sweep.wait(300)
        for _ in range(100):  # the view's own thread draws the end once more
            if "dlt-best-config" in view.best.value:
                break
            time.sleep(0.1)
        assert "dlt-tune-status-done" in view.status.value and "dlt-best-config" in view.best.value
        assert view.trials.value.count("<tr>") == 2 and str(tmp_path / "s") in view.folder.value
        table = shell.run_line_magic("dlt_sweeps", "")
        row = table.iloc[-1]
        assert row["state"] == "done" and row["trials"] == 2 and row["best"].startswith("val_")
        assert "None" not in table.to_string()
    finally:
        ray.shutdown()
