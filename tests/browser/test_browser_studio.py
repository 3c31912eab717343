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
    _shot(page, screenshots, "1-data-panel")


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
    assert page.locator(".dlt-graph-picture img, img.dlt-graph-picture").count() >= 1
    _shot(page, screenshots, "2-graph-builder")


def test_training_then_evaluation_plots_appear_as_images(page, screenshots):
    _tab(page, "Training")
    page.locator(".dlt-train-button").click()
    page.wait_for_selector(".dlt-status-done", timeout=180_000)
    assert page.locator("img.dlt-train-curves").count() == 1
    _shot(page, screenshots, "3-training")
    _tab(page, "Evaluation")
    plots = page.locator("img.dlt-eval-plot")
    plots.nth(3).wait_for(timeout=120_000)
    assert plots.count() == 4  # learning curves, confusion matrix, ROC, precision-recall
    widths = [plots.nth(i).evaluate("img => img.naturalWidth") for i in range(4)]
    assert all(w > 100 for w in widths)
    assert page.locator(".dlt-metrics-table").count() == 1
    _shot(page, screenshots, "4-evaluation")


def test_sweep_fills_the_trial_table_and_the_kernel_stays_responsive(page, screenshots):
    _tab(page, "Tuning")
    page.locator(".dlt-launch-button").click()
    page.locator(".dlt-trials-table tbody tr").first.wait_for(timeout=300_000)
    assert page.locator(".dlt-tune-status-running").count() == 1  # measured while the sweep runs
    last = page.locator(".jp-Notebook .jp-CodeCell").nth(2)  # the `1 + 1` cell
    before = _prompt_number(last)
    last.locator(".jp-InputArea-editor").click()
    started = time.monotonic()
    page.keyboard.press("Control+Enter")  # run it in place
    page.wait_for_function(
        """([n]) => { const cell = document.querySelectorAll('.jp-Notebook .jp-CodeCell')[2];
                      const m = cell.querySelector('.jp-InputPrompt').textContent.match(/\\[(\\d+)\\]/);
                      return m !== null && Number(m[1]) > n; }""",
        arg=[before],
        timeout=30_000,
    )
    seconds = time.monotonic() - started
    assert "2" in last.locator(".jp-OutputArea-output").inner_text()
    print(f"1 + 1 completed in {seconds:.2f} s while the sweep ran")
    assert seconds < 2.0, f"the kernel took {seconds:.2f} s to answer 1 + 1 during a sweep"
    _tab(page, "Tuning")
    assert page.locator(".dlt-tune-status-running").count() == 1
    rows = page.locator(".dlt-trials-table tbody tr").count()
    assert rows >= 1
    _shot(page, screenshots, "5-tuning-running")
    page.locator(".dlt-tune-stop-button").click()
    page.wait_for_selector(".dlt-tune-status-stopped", timeout=180_000)
    _shot(page, screenshots, "6-tuning-stopped")
