"""Figures. Every function takes results (projections, metrics, study outputs), never a
model, and returns a ``matplotlib.figure.Figure`` (Jupyter shows it inline after
``%matplotlib inline``); :func:`save_figure` writes one as PNG atomically. circuitsvis views
live in :mod:`induction_bigram.views`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from induction_bigram.files import atomic_write_with
from induction_bigram.hijack import HijackStudy
from induction_bigram.memory import Projection

MEMORY_TITLES = {
    "W_O2": "W_O^2: w_U(i)^T W_O^2 W_V^2 w_E(k)",
    "W_K2": "W_K^2: w_E(q)^T W_K^2 Phi_1 w_E(j)",
    "W_K1": "W_K^1: p_t^T W_K^1 p_s",
}


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Write ``fig`` as a PNG; an interrupted write leaves no partial file."""
    atomic_write_with(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight"))


def plot_memory_coefficients(
    projections: dict[str, Projection],
    labels: dict[str, tuple[Sequence[str], Sequence[str]]] | None = None,
    max_positions: int = 64,
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
        ax.scatter(cols, rows, s=14, facecolors="none", edgecolors="black", linewidths=0.6,
                   label="intended entry")
        ax.set_title(MEMORY_TITLES.get(name, name), fontsize=10)
        ax.set_xlabel({"W_O2": "input token k", "W_K2": "key token j", "W_K1": "key position s"}.get(name, "input"))
        ax.set_ylabel({"W_O2": "output token i", "W_K2": "query trigger q", "W_K1": "query position t"}.get(name, "output"))
        if labels and name in labels:
            row_labels, col_labels = labels[name]
            ax.set_yticks(range(len(row_labels)), [repr(c)[1:-1] for c in row_labels], fontsize=6)
            ax.set_xticks(range(len(col_labels)), [repr(c)[1:-1] for c in col_labels], fontsize=5, rotation=90)
        if name == "W_K1":
            ax.set_yticks(range(0, C.shape[0], 8), range(1, C.shape[0] + 1, 8))
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.legend(loc="upper right", fontsize=7)
    return fig


def plot_memory_training(metrics: Sequence[dict[str, Any]]) -> Figure:
    """Recall@1 and margin of each memory against the training step (from metrics.jsonl).

    The order in which they rise is the theory's prediction: W_O^2, then W_K^2, then W_K^1,
    and W_K^1's first 64 positions before the rest.
    """
    records = [r for r in metrics if "memories" in r]
    if not records:
        raise ValueError("these metrics hold no memory scores (the model is not a 2-layer model?)")
    steps = [r["step"] for r in records]
    series = {
        "W_O2": ("W_O2", "recall"),
        "W_K2": ("W_K2", "recall"),
        "W_K1 (causal, all positions)": ("W_K1", "recall"),
        "W_K1 (first 64 positions)": ("W_K1", "recall_first64"),
    }
    fig = Figure(figsize=(11, 4), layout="constrained")
    recall_ax, margin_ax = fig.subplots(1, 2)
    for label, (name, key) in series.items():
        if name not in records[0]["memories"]:
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


def plot_capacity(rows: Sequence[Any]) -> Figure:
    """Trained (solid) against theory-built (dashed) models across d: accuracy, recall, cosine.

    ``rows`` are :class:`~induction_bigram.capacity.CapacityRow` s.
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
    cos_ax.set(xscale="log", xlabel="d", ylabel="cosine to the ideal form", title="cosine to the ideal outer-product form")
    for ax in (acc_ax, recall_ax, cos_ax):
        ax.set_xticks(d, [str(x) for x in d])
        ax.legend(fontsize=7)
    return fig


# -- in-context against bigram (THEORY.md sections 5 and 6) -------------------------------------


def plot_hijack_curves(curves: dict[str, dict[str, list[float]]]) -> Figure:
    """P(o) and P(g) (left) and xi_o - xi_g (right, measured dots, predicted lines) against the
    count n of "q o" in the prompt, one colour per prompt length T. Where xi_o - xi_g crosses
    0 the context hijacks the global bigram."""
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    prob_ax, diff_ax = fig.subplots(1, 2)
    for i, (T, c) in enumerate(sorted(curves.items(), key=lambda kv: int(kv[0]))):
        color = f"C{i}"
        prob_ax.plot(c["n"], c["prob_output"], "-o", color=color, markersize=3, label=f"P(o), T={T}")
        prob_ax.plot(c["n"], c["prob_favourite"], "--s", color=color, markersize=3, label=f"P(g), T={T}")
        diff_ax.plot(c["n"], c["difference"], "o", color=color, label=f"measured, T={T}")
        diff_ax.plot(c["n"], c["difference_predicted"], "-", color=color, label=f"predicted, T={T}")
    prob_ax.set(xlabel="n (uses of q -> o in the prompt)", ylabel="probability at the last q",
                title="in-context output o against global favourite g")
    diff_ax.axhline(0, color="grey", linewidth=0.8)
    diff_ax.set(xlabel="n (uses of q -> o in the prompt)", ylabel="xi_o - xi_g",
                title="logit difference: hijack where it crosses 0")
    prob_ax.legend(fontsize=7, ncol=2)
    diff_ax.legend(fontsize=7, ncol=2)
    return fig


def plot_theory_fit(
    measured: Sequence[float] | Any, predicted: Sequence[float] | Any, lengths: Sequence[int] | Any,
    counts: Sequence[int] | Any, title: str,
) -> Figure:
    """Measured against predicted xi_o^IC: one dot per prompt, one large marker per (T, n) cell."""
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    lengths, counts = np.asarray(lengths), np.asarray(counts)
    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.subplots()
    for i, T in enumerate(sorted(set(lengths.tolist()))):
        rows = lengths == T
        ax.scatter(predicted[rows], measured[rows], s=6, alpha=0.35, color=f"C{i}")
        cells = sorted(set(counts[rows].tolist()))
        ax.scatter([predicted[rows & (counts == n)].mean() for n in cells],
                   [measured[rows & (counts == n)].mean() for n in cells],
                   s=50, color=f"C{i}", edgecolors="black", label=f"T={T} (cell means)")
    low, high = min(measured.min(), predicted.min()), max(measured.max(), predicted.max())
    ax.plot([low, high], [low, high], color="grey", linewidth=0.8, label="y = x")
    ax.set(xlabel="predicted xi_o^IC", ylabel="measured xi_o^IC (layer-2 head)", title=title)
    ax.legend(fontsize=7)
    return fig


def plot_patching(results: dict[str, Any]) -> Figure:
    """Restoration (0 = corrupted, 1 = clean) by layer and position, for the residual stream and
    the head outputs, one row per corruption; the positions after each q are marked."""
    fig = Figure(figsize=(13, 3.2 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), 2, squeeze=False)
    for row, (mode, result) in zip(axes, results.items()):
        for ax, (what, grid) in zip(row, (("residual stream (resid_pre)", result.resid_pre),
                                          ("head output", result.head_out))):
            data = grid.detach().cpu().float().numpy()
            image = ax.imshow(data, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
            ax.set(xlabel="position", ylabel="layer", title=f"{mode}: patch {what}")
            ax.set_yticks(range(data.shape[0]), [str(i + 1) for i in range(data.shape[0])])
            for t in result.positions_after_trigger or []:
                ax.axvline(t, color="black", linewidth=0.5, linestyle=":")
            fig.colorbar(image, ax=ax, shrink=0.8, label="restored fraction")
    return fig


def plot_logit_parts(parts_names: Sequence[str], output_parts: Sequence[float], favourite_parts: Sequence[float],
                     output_label: str, favourite_label: str) -> Figure:
    """Each part's contribution to the logits of o and of g at the last position."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(parts_names))
    ax.bar(x - 0.2, output_parts, width=0.4, label=f"o = {output_label}")
    ax.bar(x + 0.2, favourite_parts, width=0.4, label=f"g = {favourite_label}")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, parts_names)
    ax.set(ylabel="logit contribution", title="logit decomposition at the last position")
    ax.legend()
    return fig


# -- figure sets written by the CLI and the reproduction report ----------------------------------


def memory_figures(
    projections: dict[str, Projection], vocab: Sequence[str], metrics: Sequence[dict[str, Any]] = ()
) -> dict[str, Figure]:
    """``memories_coefficients.png`` (characters on the token axes) and, when the metrics hold
    memory scores, ``memories_training.png``."""
    labels = {"W_O2": (vocab, vocab), "W_K2": ([vocab[i] for i in projections["W_K2"].targets], vocab)}
    figures = {"memories_coefficients.png": plot_memory_coefficients(projections, labels)}
    if any("memories" in r for r in metrics):
        figures["memories_training.png"] = plot_memory_training(metrics)
    return figures


def hijack_figures(study: HijackStudy, vocab: Sequence[str]) -> dict[str, Figure]:
    """The figures of the in-context against bigram study."""
    meas = study.measurements
    best = next(r for r in study.check.rungs if r.name == study.check.best)
    last = study.example.parts[:, 0, -1]
    return {
        "hijack_curves.png": plot_hijack_curves(study.curves),
        "theory_fit.png": plot_theory_fit(
            meas.ic_output, study.prediction, meas.length, meas.n_output,
            f"{best.name}: held-out R^2 {best.r2:.2f} per prompt, {best.r2_cells:.2f} per cell"),
        "patching.png": plot_patching(study.patching),
        "logit_parts.png": plot_logit_parts(
            study.example.names, last[:, study.example_output].tolist(), last[:, study.example_favourite].tolist(),
            repr(vocab[study.example_output]), repr(vocab[study.example_favourite])),
    }


def save_figures(figures: dict[str, Figure], folder: str | os.PathLike[str]) -> list[str]:
    """Save each figure under its name in ``folder``; returns the paths written."""
    paths = [os.path.join(folder, name) for name in figures]
    for path, fig in zip(paths, figures.values()):
        save_figure(fig, path)
    return paths
