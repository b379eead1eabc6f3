"""Figures of the memory, capacity and formation studies: coefficient heatmaps, recall during
training, the attention view, capacity across d, formation every step (docs/THEORY.md section 3).

Every function takes results (projections, metrics records, capacity rows, a study result),
never a model. :func:`memory_figures`, :func:`capacity_figures` and :func:`formation_figures` map
file names to the figures of a :class:`~induction_bigram.memories.study.MemoriesResult`, a
:class:`~induction_bigram.memories.capacity.CapacityResult` and a
:class:`~induction_bigram.memories.formation.FormationResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from circuitsvis.utils.render import RenderedHTML
from matplotlib.figure import Figure

from induction_bigram.anymodel.memory_scores import FIRST_POSITIONS, Projection
from induction_bigram.figures.views import patterns_view
from induction_bigram.memories.formation import NAMES, SERIES

if TYPE_CHECKING:
    from induction_bigram.memories.capacity import CapacityResult, CapacityRow
    from induction_bigram.memories.formation import FormationResult
    from induction_bigram.memories.study import MemoriesResult

MEMORY_TITLES = {
    "W_O2": "W_O^2: w_U(i)^T W_O^2 W_V^2 w_E(k)",
    "W_K2": "W_K^2: w_E(q)^T W_K^2 Phi_1 w_E(j)",
    "W_K1": "W_K^1: p_t^T W_K^1 p_s",
}


def plot_memory_coefficients(
    projections: dict[str, Projection],
    labels: dict[str, tuple[Sequence[str], Sequence[str]]] | None = None,
    max_positions: int = FIRST_POSITIONS,
) -> Figure:
    """Heatmaps of C[i, j] = u_i^T W v_j, one panel per memory, intended entries circled.

    Args:
        projections: ``{"W_O2": project_W_O2(m), ...}``.
        labels: optional (row labels, column labels) per memory, e.g. characters.
        max_positions: W_K1 shows only the first this-many positions (it is n x n).
    """
    fig = Figure(figsize=(6 * len(projections), 5.5), layout="constrained")
    for ax, (name, proj) in zip(fig.subplots(1, len(projections), squeeze=False)[0], projections.items()):
        C = proj.coefficients.detach().cpu().float().numpy()
        items = np.arange(len(proj.targets))
        targets = proj.targets.cpu().numpy()
        rows, cols = (items, targets) if proj.by_row else (targets, items)
        if name == "W_K1":
            C = C[: max_positions - 1, :max_positions]
            keep = (rows < C.shape[0]) & (cols < C.shape[1])
            rows, cols = rows[keep], cols[keep]
        limit = np.abs(C).max() or 1.0
        image = ax.imshow(C, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        ax.scatter(cols, rows, s=14, facecolors="none", edgecolors="black", linewidths=0.6, label="intended entry")
        ax.set_title(MEMORY_TITLES.get(name, name), fontsize=10)
        ax.set_xlabel({"W_O2": "input token k", "W_K2": "key token j", "W_K1": "key position s"}.get(name, "input"))
        ax.set_ylabel(
            {"W_O2": "output token i", "W_K2": "query trigger q", "W_K1": "query position t"}.get(name, "output")
        )
        if labels and name in labels:
            row_labels, col_labels = labels[name]
            ax.set_yticks(range(len(row_labels)), [repr(c)[1:-1] for c in row_labels], fontsize=6)
            ax.set_xticks(range(len(col_labels)), [repr(c)[1:-1] for c in col_labels], fontsize=5, rotation=90)
        if name == "W_K1":
            ax.set_yticks(range(0, C.shape[0], 8), range(1, C.shape[0] + 1, 8))
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.legend(loc="upper right", fontsize=7)
    return fig


def plot_memory_training(metrics: Sequence[dict[str, Any]], first_positions: int = FIRST_POSITIONS) -> Figure:
    """Recall@1 and margin of each memory against the training step (from metrics.jsonl).

    The order in which they rise is the theory's prediction: W_O^2, then W_K^2, then W_K^1,
    and W_K^1's first ``first_positions`` positions before the rest.
    """
    records = [r for r in metrics if "memories" in r]
    if not records:
        raise ValueError("these metrics hold no memory scores (the model is not a 2-layer model?)")
    steps = [r["step"] for r in records]
    series = {
        "W_O2": ("W_O2", "recall"),
        "W_K2": ("W_K2", "recall"),
        "W_K1 (causal, all positions)": ("W_K1", "recall"),
        f"W_K1 (first {first_positions} positions)": ("W_K1", f"recall_first{first_positions}"),
    }
    fig = Figure(figsize=(11, 4), layout="constrained")
    recall_ax, margin_ax = fig.subplots(1, 2)
    for label, (name, key) in series.items():
        if key not in records[0]["memories"].get(name, {}):
            continue
        recall_ax.plot(steps, [r["memories"][name][key] for r in records], marker=".", label=label)
        if key == "recall":
            margin_ax.plot(steps, [r["memories"][name]["margin"] for r in records], marker=".", label=name)
    icl = [r["in_context_accuracy"] for r in records]
    recall_ax.plot(steps, icl, color="black", linestyle="--", label="in-context accuracy")
    recall_ax.set(xlabel="training step", ylabel="recall@1", title="memory recall during training", ylim=(-0.02, 1.02))
    margin_ax.axhline(0, color="grey", linewidth=0.8)
    margin_ax.set(xlabel="training step", ylabel="margin (off-target std)", title="memory margin")
    recall_ax.legend(fontsize=8)
    margin_ax.legend(fontsize=8)
    return fig


def plot_capacity(rows: Sequence[CapacityRow]) -> Figure:
    """Trained (solid) against theory-built (dashed) models across d: accuracy, recall, cosine.

    ``rows`` are :class:`~induction_bigram.memories.capacity.CapacityRow` s.
    """
    d = [r.d_model for r in rows]
    fig = Figure(figsize=(15, 4), layout="constrained")
    acc_ax, recall_ax, cos_ax = fig.subplots(1, 3)
    acc_ax.plot(d, [r.trained_accuracy for r in rows], marker="o", label="trained")
    acc_ax.plot(d, [r.theory_accuracy for r in rows], marker="s", linestyle="--", label="theory-built")
    acc_ax.set(xscale="log", xlabel="d", ylabel="in-context accuracy", title="in-context accuracy")
    for i, name in enumerate(rows[0].trained):
        color = f"C{i}"
        for source, style in (("trained", "-"), ("theory", "--")):
            values = [getattr(r, source)[name] for r in rows]
            recall_ax.plot(d, [v["recall"] for v in values], style, marker=".", color=color, label=f"{name} {source}")
            cos_ax.plot(d, [v["cosine"] for v in values], style, marker=".", color=color, label=f"{name} {source}")
    recall_ax.set(xscale="log", xlabel="d", ylabel="recall@1", title="memory recall")
    cos_ax.set(
        xscale="log", xlabel="d", ylabel="cosine to the ideal form", title="cosine to the ideal outer-product form"
    )
    for ax in (acc_ax, recall_ax, cos_ax):
        ax.minorticks_off()
        ax.set_xticks(d, [str(x) for x in d])
        ax.legend(fontsize=7)
    return fig


def memory_figures(result: MemoriesResult) -> dict[str, Figure | RenderedHTML]:
    """``memories_coefficients.png`` (characters on the token axes), ``memories_training.png``
    when the run recorded memory scores, and ``attention.html`` (both heads on the prompt)."""
    vocab, projections = list(result.vocab), result.projections
    labels = {"W_O2": (vocab, vocab), "W_K2": ([vocab[i] for i in projections["W_K2"].targets], vocab)}
    first = result.config.memories.first_positions
    out: dict[str, Figure | RenderedHTML] = {
        "memories_coefficients.png": plot_memory_coefficients(projections, labels, max_positions=first)
    }
    if result.history:
        out["memories_training.png"] = plot_memory_training(result.history, first)
    out["attention.html"] = patterns_view(result.attention, result.prompt)
    return out


def capacity_figures(result: CapacityResult) -> dict[str, Figure]:
    """``capacity.png``: trained against theory-built across d."""
    return {"capacity.png": plot_capacity(result.rows)}


def formation_figures(result: FormationResult) -> dict[str, Figure]:
    """``formation.png``: per optimizer (columns), the chance-normalised recall (top: the level
    and each formation step dotted) and the margin (bottom) of every memory against the step,
    linear to step 10 and logarithmic after, so that the first steps stay visible."""
    columns = len(result.runs)
    fig = Figure(figsize=(5.5 * columns, 7), layout="constrained")
    axes = np.asarray(fig.subplots(2, columns, sharex="col", squeeze=False))
    level = result.config.formation.level
    for column, run in enumerate(result.runs):
        recall_ax, margin_ax = axes[:, column]
        for name in SERIES:
            color, style = f"C{SERIES.index(name.split()[0])}", "--" if "vocabulary" in name else "-"
            formed = run.formation[name]
            label = f"{name} (formed at {formed})" if formed is not None else f"{name} (not formed)"
            recall_ax.plot(run.steps, run.normalised[name], style, color=color, label=label)
            margin_ax.plot(run.steps, run.margin[name], style, color=color)
            if formed is not None and style == "-":
                recall_ax.axvline(formed, color=color, linestyle=":", linewidth=1)
        recall_ax.plot(run.steps, run.in_context_accuracy, color="black", linewidth=0.8, label="in-context accuracy")
        recall_ax.axhline(level, color="grey", linestyle=":", linewidth=1)
        recall_ax.set(
            title=f"{NAMES[run.optimizer]}, lr {run.lr:g}",
            ylabel="(recall - chance) / (1 - chance)",
            ylim=(-0.1, 1.05),
        )
        margin_ax.axhline(0, color="grey", linewidth=0.8)
        margin_ax.set(xlabel="training step", ylabel="margin (off-target std)")
        margin_ax.set_xscale("symlog", linthresh=10)
        margin_ax.set_xlim(0, run.steps[-1])
        # the bottom right is empty once the memories have formed; the top has no free corner
        margin_ax.legend(*recall_ax.get_legend_handles_labels(), fontsize=7, loc="lower right")
    return {"formation.png": fig}
