"""Every notebook in ``notebooks/`` runs top to bottom, so that none of them can rot.

The notebooks read ``INDUCTION_BIGRAM_NOTEBOOK_SMALL=1`` and then train tiny models (or load the
shipped ones) and use few prompts: seconds per notebook on a CPU, no network. They run in a
kernel of this very interpreter: a kernel spec written for ``sys.executable`` into a temporary
folder, so that neither a user-level ``python3`` kernel nor the PATH can pick another Python.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernel_spec
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNEL = "induction-bigram-tests"
DISPLAYED = {"image/png", "text/html"}  # a matplotlib figure, a circuitsvis view
CELL_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def kernel_path(tmp_path_factory) -> str:
    """A JUPYTER_PATH entry holding a kernel spec that runs ``sys.executable``."""
    prefix = tmp_path_factory.mktemp("jupyter")
    install_kernel_spec(user=False, prefix=str(prefix), kernel_name=KERNEL, display_name="induction-bigram tests")
    return str(prefix / "share" / "jupyter")


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {
        "quickstart.ipynb",
        "memories.ipynb",
        "in_context_vs_bigram.ipynb",
        "positional_encodings.ipynb",
        "your_own_model.ipynb",
        "statistical_induction.ipynb",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before saving"


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_plots(path, kernel_path, monkeypatch):
    monkeypatch.setenv("INDUCTION_BIGRAM_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [kernel_path, os.environ.get("JUPYTER_PATH")])))
    # tiny models gain nothing from several threads, and lose a lot when the cores are shared
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=120,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell's traceback, if a cell fails

    shown = {
        kind
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        for kind in output.get("data", {})
    }
    assert shown & DISPLAYED, f"{path.name} displayed no figure nor view (outputs: {sorted(shown)})"
    errors = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
