"""Every notebook in ``notebooks/`` runs top to bottom, so that none of them can rot.

The notebooks read ``INDUCTION_BIGRAM_NOTEBOOK_SMALL=1`` and then train tiny models (or load the
shipped ones) and use few prompts: seconds per notebook on a CPU, no network. They run in a
kernel of this very interpreter: a kernel spec written for ``sys.executable`` into a temporary
folder, so that neither a user-level ``python3`` kernel nor the PATH can pick another Python.

The notebooks share one kernel, each starting after ``%reset -f`` (every name an earlier notebook
defined is gone, so a notebook that forgot an import or a variable fails as it would alone) and
with matplotlib's figures closed. What stays is what was imported: importing torch,
TransformerLens and matplotlib was most of each notebook's time in a kernel of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernel_spec
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNEL = "induction-bigram-tests"
DISPLAYED = {"image/png", "text/html"}  # a matplotlib figure, a circuitsvis view
CELL_TIMEOUT_S = 300
FRESH_START = "%reset -f\nimport matplotlib.pyplot\nmatplotlib.pyplot.close('all')\ndel matplotlib"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """One kernel of ``sys.executable`` (its spec in a temporary JUPYTER_PATH entry), started in
    ``notebooks/`` with the small settings and one torch thread (tiny models gain nothing from
    several, and lose a lot when the cores are shared)."""
    prefix = tmp_path_factory.mktemp("jupyter")
    install_kernel_spec(user=False, prefix=str(prefix), kernel_name=KERNEL, display_name="induction-bigram tests")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(
            "JUPYTER_PATH",
            os.pathsep.join(filter(None, [str(prefix / "share" / "jupyter"), os.environ.get("JUPYTER_PATH")])),
        )
        env.setenv("INDUCTION_BIGRAM_NOTEBOOK_SMALL", "1")
        env.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
        manager = KernelManager(kernel_name=KERNEL)
        manager.start_kernel(cwd=str(REPO / "notebooks"))
    try:
        yield manager
    finally:
        manager.shutdown_kernel(now=True)


def run_fresh(nb: nbformat.NotebookNode, kernel: KernelManager) -> None:
    """Run ``nb`` in the shared kernel after FRESH_START (its outputs land in ``nb``); raises
    CellExecutionError, with the cell's traceback, if a cell fails."""
    nb.cells.insert(0, nbformat.v4.new_code_cell(FRESH_START))
    NotebookClient(nb, km=kernel, timeout=CELL_TIMEOUT_S).execute()


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
def test_notebook_runs_and_shows_plots(path, kernel):
    nb = nbformat.read(path, as_version=4)
    run_fresh(nb, kernel)

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


@pytest.mark.notebook
def test_a_notebook_sees_no_name_an_earlier_one_defined(kernel):
    """The shared kernel would let a notebook lean on an earlier one's variables but for FRESH_START."""
    from nbclient.exceptions import CellExecutionError

    def run(source: str) -> None:
        run_fresh(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), kernel)

    run("import torch\nleft_over = torch.zeros(1)")
    with pytest.raises(CellExecutionError, match="NameError"):
        run("left_over")
    with pytest.raises(CellExecutionError, match="NameError"):
        run("torch.zeros(1)")
