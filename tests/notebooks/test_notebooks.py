"""Every notebook runs top to bottom in smoke mode, in a fresh kernel, and is committed without outputs.

Smoke mode (``DLTOOLKIT_SMOKE=1``, read by ``dltoolkit.api.resolve_spec``) caps every experiment at 2 epochs and
every sweep at 2 trials; the notebooks shrink what else they do from the same variable. Each notebook runs in
its own scratch folder (its ``runs/`` and files land there) and fails the test on any error.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dltoolkit.api import SMOKE_ENV

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED = [
    "01-quickstart",
    "02-data-and-preprocessing",
    "03-graph-builder",
    "04-training-and-optimizers",
    "05-tuning-with-ray",
    "06-evaluation-and-ensembles",
    "07-deploy",
    "08-from-first-principles",
    "09-images-and-transfer-learning",
    "10-understand-your-model",
]
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # one cell
NOTEBOOK_TIMEOUT_S = 600  # one whole notebook (pytest-timeout), kernel start and shutdown included


def test_the_notebooks_are_the_ten_of_the_tour():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert dirty == [], f"cells {dirty} carry outputs: clear them before committing"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv(SMOKE_ENV, "1")  # the kernel inherits the environment
    notebook = tmp_path / path.name
    shutil.copy(path, notebook)
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error

    printed = json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])
    assert "smoke mode" in printed, "the kernel did not see DLTOOLKIT_SMOKE"
    assert '"output_type": "error"' not in printed
    assert (tmp_path / "runs").is_dir(), "every notebook trains something into runs/"
