"""The studio in a real JupyterLab, through the page: graph edits, training, evaluation, a sweep.

The tests run in file order on one page (the notebook's state carries over).
"""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.browser


def _shot(page, folder, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _shots(page, folder, name: str) -> None:
    """The page at 1400 px (``name``.png) and at 1024 px (``name``-1024.png): the layout must hold."""
    _shot(page, folder, name)
    size = page.viewport_size
    page.set_viewport_size({"width": 1024, "height": size["height"]})
    page.wait_for_timeout(500)  # JupyterLab lays the notebook out again
    _shot(page, folder, f"{name}-1024")
    page.set_viewport_size(size)
    page.wait_for_timeout(300)


def _run_cell(page, index: int, timeout: float = 60_000) -> None:
    """Run the code cell ``index`` in place and wait until the kernel has executed it."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    before = _prompt_number(cell)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        """([i, n]) => { const cell = document.querySelectorAll('.jp-Notebook .jp-CodeCell')[i];
                         const m = cell.querySelector('.jp-InputPrompt').textContent.match(/\\[(\\d+)\\]/);
                         return m !== null && Number(m[1]) > n; }""",
        arg=[index, before],
        timeout=timeout,
    )


def _tab(page, title: str) -> None:
    page.locator(".dlt-studio .lm-TabBar-tab", has_text=title).first.click()


def _prompt_number(cell) -> int:
    found = re.search(r"\[(\d+)\]", cell.locator(".jp-InputPrompt").inner_text())
    return int(found.group(1)) if found else 0


def test_run_all_cells_shows_the_studio(page, screenshots):
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
    page.locator("[data-command='notebook:restart-run-all']").first.click()
    page.locator(".jp-Dialog .jp-mod-accept").click()  # "Restart" the fresh kernel and run every cell
    page.wait_for_selector(".dlt-studio", timeout=60_000)
    last = page.locator(".jp-Notebook .jp-CodeCell").nth(2)
    last.locator(".jp-OutputArea-output", has_text="2").wait_for(timeout=180_000)
    assert page.locator(".dlt-data-panel .dlt-columns-table").count() == 1
    _shots(page, screenshots, "1-data-panel")


def test_graph_width_edit_changes_the_parameter_count(page, screenshots):
    _tab(page, "Graph")
    total = page.locator(".dlt-graph-panel .dlt-total-params")
    assert total.inner_text() == "9,610"  # 64*128+128 + 128*10+10 (hidden width 128)
    page.locator(".dlt-node-select", has_text="hidden").click()
    units = page.locator(".dlt-graph-panel .dlt-attr-units input")
    units.fill("16")
    units.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.dlt-graph-panel .dlt-total-params').textContent !== '9,610'"
    )
    assert total.inner_text() == "1,210"  # 64*16+16 + 16*10+10
    nodes = page.locator(".dlt-graph-canvas .dlt-canvas-node")
    assert nodes.count() == 5  # input, hidden, act, drop, head: the canvas is the main view
    assert "(16,)" in page.locator(".dlt-graph-canvas").inner_text()  # edges carry the new shape
    page.locator(".dlt-graph-canvas .dlt-canvas-node[data-name='act']").click()  # select by the picture
    page.wait_for_function(
        "() => document.querySelector('.dlt-graph-panel .dlt-node-name input').value === 'act'"
    )
    assert page.locator(".dlt-canvas-selected[data-name='act']").count() == 1
    _shots(page, screenshots, "2-graph-builder")


def test_graph_editor_fields_keep_up_with_typing(page, screenshots):
    """Name and Inputs commit on Enter, not per keystroke: typed at human speed, every letter lands
    in the field (a commit per key lost the focus after one letter and sent the rest to the page)."""
    cells = page.locator(".jp-Notebook .jp-Cell").count()
    page.locator(".dlt-node-select", has_text="drop").click()
    name = page.locator(".dlt-graph-panel .dlt-node-name input")
    page.wait_for_function(  # as a user would: once the editor shows the node clicked
        "() => document.querySelector('.dlt-graph-panel .dlt-node-name input').value === 'drop'"
    )
    name.click()
    name.press("Control+a")
    page.keyboard.type("skip", delay=120)
    assert name.evaluate("el => el === document.activeElement")  # still typing into the field
    page.keyboard.press("Enter")
    page.locator(".dlt-node-select", has_text="skip").wait_for(timeout=30_000)
    assert page.locator(".dlt-graph-panel .dlt-message .dlt-error").count() == 0
    inputs = page.locator(".dlt-graph-panel .dlt-node-inputs input")
    inputs.click()
    page.keyboard.type("hidden", delay=120)
    assert inputs.input_value() == "hidden" and inputs.evaluate("el => el === document.activeElement")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.dlt-graph-panel .dlt-node-inputs input').value === 'hidden'"
    )
    page.wait_for_timeout(1000)  # a rebuild after the commit would show here
    assert page.locator(".dlt-graph-panel .dlt-message .dlt-error").count() == 0
    assert page.locator(".dlt-graph-panel .dlt-node-name input").input_value() == "skip"
    assert page.locator(".jp-Notebook .jp-Cell").count() == cells  # no key reached the notebook
    _shots(page, screenshots, "2-graph-editor-typed")
    # back as it was, for the tests after this one (inputs cleared: the previous node)
    inputs.click()
    inputs.press("Control+a")
    inputs.press("Backspace")
    inputs.press("Enter")
    name = page.locator(".dlt-graph-panel .dlt-node-name input")
    name.click()
    name.press("Control+a")
    page.keyboard.type("drop", delay=50)
    page.keyboard.press("Enter")
    page.locator(".dlt-node-select", has_text="drop").wait_for(timeout=30_000)


def test_training_then_evaluation_plots_appear_as_images(page, screenshots):
    _tab(page, "Training")
    page.locator(".dlt-train-button").click()
    page.wait_for_selector(".dlt-status-done", timeout=180_000)
    assert page.locator("img.dlt-train-curves").count() == 1
    _shots(page, screenshots, "3-training")
    _tab(page, "Evaluation")
    plots = page.locator("img.dlt-eval-plot")
    plots.nth(3).wait_for(timeout=120_000)
    assert plots.count() == 4  # learning curves, confusion matrix, ROC, precision-recall
    widths = [plots.nth(i).evaluate("img => img.naturalWidth") for i in range(4)]
    assert all(w > 100 for w in widths)
    assert page.locator(".dlt-metrics-table").count() == 1
    _shots(page, screenshots, "4-evaluation")
    page.locator(".dlt-eval-explain-button").first.click()
    explained = page.locator("img.dlt-eval-explain-plot")
    explained.nth(1).wait_for(timeout=120_000)
    assert explained.count() == 2  # permutation importance, then the chosen test row's attributions
    assert all(explained.nth(i).evaluate("img => img.naturalWidth") > 100 for i in range(2))
    page.locator(".dlt-eval-explain-row").first.scroll_into_view_if_needed()
    _shots(page, screenshots, "9-explain")
    _tab(page, "Spec")
    page.locator(".dlt-spec-yaml").wait_for()
    assert "units: 16" in page.locator(".dlt-spec-yaml").inner_text()  # the graph edit, among the changes
    _shots(page, screenshots, "8-spec")


def test_suggest_finds_a_learning_rate_and_fills_the_field(page, screenshots):
    _tab(page, "Training")
    field = page.locator(".dlt-train-optimizer-lr input")
    before = field.input_value()
    page.locator(".dlt-suggest-lr-button").click()
    plot = page.locator("img.dlt-lr-find-plot")
    page.locator(".dlt-train-panel .dlt-message", has_text="Learning rate set to").wait_for(timeout=180_000)
    page.wait_for_function(  # the field follows the spec
        "([v]) => document.querySelector('.dlt-train-optimizer-lr input').value !== v", arg=[before]
    )
    after = field.input_value()
    assert (
        float(after) != float(before)
        and f"{float(after):.2g}" in page.locator(".dlt-train-panel .dlt-message").inner_text()
    )
    assert plot.evaluate("img => img.naturalWidth") > 100
    plot.scroll_into_view_if_needed()
    _shots(page, screenshots, "10-lr-find")
    _tab(page, "Spec")
    page.locator(".dlt-spec-yaml").wait_for()
    assert f"lr: {float(after)}" in page.locator(".dlt-spec-yaml").inner_text()  # the shared spec has it


def test_sweep_fills_the_trial_table_and_the_kernel_stays_responsive(page, screenshots):
    _tab(page, "Tuning")
    page.locator(".dlt-launch-button").click()
    page.locator(".dlt-trials-table tbody tr").first.wait_for(timeout=300_000)
    assert page.locator(".dlt-tune-status-running").count() == 1  # measured while the sweep runs
    last = page.locator(".jp-Notebook .jp-CodeCell").nth(2)  # the `1 + 1` cell
    started = time.monotonic()
    _run_cell(page, 2, timeout=30_000)
    print(f"1 + 1 completed in {time.monotonic() - started:.2f} s while the sweep ran")
    assert "2" in last.locator(".jp-OutputArea-output").inner_text()
    _tab(page, "Tuning")
    assert page.locator(".dlt-tune-status-running").count() == 1  # the cell ended before the sweep
    rows = page.locator(".dlt-trials-table tbody tr").count()
    assert rows >= 1
    _shots(page, screenshots, "5-tuning-running")
    page.locator(".dlt-tune-stop-button").click()
    page.wait_for_selector(".dlt-tune-status-stopped", timeout=180_000)
    _shots(page, screenshots, "6-tuning-stopped")


def test_resume_after_stop_continues_the_same_sweep(page, screenshots):
    _tab(page, "Tuning")
    folder = page.locator(".dlt-sweep-folder-path").inner_text()
    assert "runs/digits-mlp-sweep-" in folder
    resume = page.locator(".dlt-tune-resume-button")
    assert resume.is_enabled() and page.locator(".dlt-launch-button").is_enabled()
    resume.click()
    page.wait_for_selector(".dlt-tune-status-done", timeout=600_000)
    assert page.locator(".dlt-sweep-folder-path").inner_text() == folder  # the same sweep went on
    page.locator(".dlt-best-config").wait_for(timeout=120_000)  # drawn once the sweep has ended
    statuses = page.locator(".dlt-trials-table tbody tr td:nth-child(2)").all_inner_texts()
    assert statuses and set(statuses) == {"TERMINATED"}, statuses
    assert "None" not in page.locator(".dlt-trials-table").inner_text()
    assert resume.is_disabled() and page.locator(".dlt-tune-stop-button").is_disabled()
    _shots(page, screenshots, "5-tuning-done")


def _set_field(page, cls: str, value: str) -> None:
    field = page.locator(f".{cls} input")
    field.fill(value)
    field.press("Enter")


def test_the_kernel_is_alive_90_s_after_a_ray_sweep_from_the_panel(page, screenshots):
    """Ray started from the panel's launch thread must outlive it: Ray's gcs_server and raylet died
    with that thread and the kernel exited about 60 s after the sweep. 90 s on: a cell, a sweep."""
    _tab(page, "Tuning")
    page.locator(".dlt-tune-engine select").select_option("ray")
    _set_field(page, "dlt-tune-samples", "2")
    _set_field(page, "dlt-tune-max-epochs", "3")
    page.locator(".dlt-launch-button").click()
    page.locator(".dlt-sweep-engine", has_text="ray engine").wait_for(timeout=300_000)
    page.wait_for_selector(".dlt-tune-status-done", timeout=600_000)
    assert page.locator(".dlt-trials-table tbody tr").count() == 2
    page.wait_for_timeout(95_000)  # the kernel died about 60 s after such a sweep
    _run_cell(page, 2, timeout=60_000)
    assert (
        "2" in page.locator(".jp-Notebook .jp-CodeCell").nth(2).locator(".jp-OutputArea-output").inner_text()
    )
    _tab(page, "Tuning")
    folder = page.locator(".dlt-sweep-folder-path").inner_text()
    page.locator(".dlt-launch-button").click()
    page.wait_for_function(  # a new sweep (a new folder), then its end
        "([f]) => { const e = document.querySelector('.dlt-sweep-folder-path'); return e && e.textContent !== f; }",
        arg=[folder],
        timeout=300_000,
    )
    page.wait_for_selector(".dlt-tune-status-done", timeout=600_000)
    assert page.locator(".dlt-trials-table tbody tr").count() == 2
    page.locator(".dlt-use-best").click()
    page.locator(".dlt-tune-panel .dlt-message", has_text="best configuration").wait_for(timeout=30_000)


def test_dlt_tune_shows_the_live_sweep_in_its_own_cell(page, screenshots):
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    last = cells.count() - 1
    cells.nth(last).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a new cell below, as a user adds one
    page.keyboard.press("Enter")
    page.keyboard.type(
        "sw = %dlt_tune wine --samples 2 --epochs 2 --max-concurrent 1 --set search.scheduler=fifo --out runs/magic",
        delay=5,
    )
    page.keyboard.press("Enter")
    page.keyboard.type("sw", delay=5)
    page.keyboard.press("Shift+Enter")
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(last + 1)
    cell.locator(".dlt-sweep-view").wait_for(timeout=120_000)  # shown while the sweep runs
    cell.locator(".dlt-tune-status-done").wait_for(timeout=600_000)
    assert cell.locator(".dlt-trials-table tbody tr").count() == 2
    cell.locator(".dlt-best-config").wait_for(timeout=120_000)
    _shots(page, screenshots, "7-dlt-tune-cell")
    _run_cell(page, 2, timeout=60_000)  # Ray's lines do not land under an unrelated cell
    assert (
        page.locator(".jp-Notebook .jp-CodeCell").nth(2).locator(".jp-OutputArea-output").inner_text().strip()
        == "2"
    )
