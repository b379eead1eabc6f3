"""What every figure of the package shares: matplotlib ``Figure`` objects (no pyplot state, so
Jupyter shows them inline after ``%matplotlib inline`` and nothing leaks between figures) and
atomic PNG writing. Each study's own figures live in its folder (``memories/figures.py``,
``incontext/figures.py``, ``lengths/figures.py``); circuitsvis views in :mod:`.views`.
"""

from __future__ import annotations

import os
from pathlib import Path

from circuitsvis.utils.render import RenderedHTML
from matplotlib.figure import Figure

from induction_bigram.figures.views import save_view
from induction_bigram.files import atomic_write_with, claim_folder, claim_names


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Write ``fig`` as a PNG; an interrupted write leaves no partial file."""
    atomic_write_with(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight"))


def save_figures(figures: dict[str, Figure | RenderedHTML], folder: str | os.PathLike[str]) -> list[str]:
    """Save each figure under its name in ``folder``: a matplotlib figure as PNG, a circuitsvis
    view as an offline HTML page (:func:`~induction_bigram.figures.views.save_view`). Returns
    the paths written.

    ``folder`` is a figure folder (:func:`~induction_bigram.files.claim_folder`): missing, empty
    or ours; a file there of a figure's name that the package did not write is refused
    (:class:`~induction_bigram.errors.RunFolderError`), never replaced."""
    with claim_folder(folder, "figures", existing="resume"):
        claim_names(folder, "figures", list(figures))
        paths = [os.path.join(folder, name) for name in figures]
        for path, fig in zip(paths, figures.values()):
            if isinstance(fig, RenderedHTML):
                save_view(fig, path, title=Path(path).stem.replace("_", " "))
            else:
                save_figure(fig, path)
    return paths
