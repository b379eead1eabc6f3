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
from induction_bigram.lengths import PROTOCOLS, LengthsResult, ProtocolResult
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
    cos_ax.set(
        xscale="log", xlabel="d", ylabel="cosine to the ideal form", title="cosine to the ideal outer-product form"
    )
    for ax in (acc_ax, recall_ax, cos_ax):
        ax.minorticks_off()
        ax.set_xticks(d, [str(x) for x in d])
        ax.legend(fontsize=7)
    return fig


# -- in-context against bigram (docs/THEORY.md sections 5 and 6) -------------------------------------


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
    prob_ax.set(
        xlabel="n (uses of q -> o in the prompt)",
        ylabel="probability at the last q",
        title="in-context output o against global favourite g",
    )
    diff_ax.axhline(0, color="grey", linewidth=0.8)
    diff_ax.set(
        xlabel="n (uses of q -> o in the prompt)",
        ylabel="xi_o - xi_g",
        title="logit difference: hijack where it crosses 0",
    )
    prob_ax.legend(fontsize=7, ncol=2)
    diff_ax.legend(fontsize=7, ncol=2)
    return fig


def plot_theory_fit(
    measured: Sequence[float] | Any,
    predicted: Sequence[float] | Any,
    lengths: Sequence[int] | Any,
    counts: Sequence[int] | Any,
    title: str,
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
        ax.scatter(
            [predicted[rows & (counts == n)].mean() for n in cells],
            [measured[rows & (counts == n)].mean() for n in cells],
            s=50,
            color=f"C{i}",
            edgecolors="black",
            label=f"T={T} (cell means)",
        )
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
        for ax, (what, grid) in zip(
            row, (("residual stream (resid_pre)", result.resid_pre), ("head output", result.head_out))
        ):
            data = grid.detach().cpu().float().numpy()
            image = ax.imshow(data, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
            ax.set(xlabel="position", ylabel="layer", title=f"{mode}: patch {what}")
            ax.set_yticks(range(data.shape[0]), [str(i + 1) for i in range(data.shape[0])])
            for t in result.positions_after_trigger or []:
                ax.axvline(t, color="black", linewidth=0.5, linestyle=":")
            fig.colorbar(image, ax=ax, shrink=0.8, label="restored fraction")
    return fig


def plot_logit_parts(
    parts_names: Sequence[str],
    output_parts: Sequence[float],
    favourite_parts: Sequence[float],
    output_label: str,
    favourite_label: str,
) -> Figure:
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


# -- positional encodings and long prompts (docs/THEORY.md section 5.6) -------------------------

_COLOURS = {"ape": "C0", "rpe": "C1", "rope": "C2", "nope": "C3", "rope-nobias": "C4", "rpe-clipped": "C5"}


def _binned(values: Sequence[float], counts: Sequence[int] | None, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` (weighted by ``counts`` when given) over bins of ``width`` positions."""
    v = np.asarray(values, dtype=float)
    w = np.ones_like(v) if counts is None else np.asarray(counts, dtype=float)
    w = np.where(np.isnan(v), 0.0, w)
    v = np.nan_to_num(v)
    n = len(v) // width * width
    sums = (v[:n] * w[:n]).reshape(-1, width).sum(1)
    weights = w[:n].reshape(-1, width).sum(1)
    centres = np.arange(0, n, width) + (width - 1) / 2
    return centres, np.where(weights > 0, sums / np.maximum(weights, 1e-12), np.nan)


def _mark_training_length(ax, train_length: int, max_length: int) -> None:
    ax.axvline(train_length - 0.5, color="black", linestyle=":", linewidth=1)
    ax.text(train_length, 0.02, " T_train", fontsize=8, va="bottom")
    for boundary in range(2 * train_length, max_length, train_length):
        ax.axvline(boundary - 0.5, color="grey", linestyle=":", linewidth=0.6)


def plot_accuracy_by_position(result: LengthsResult, bin_width: int | None = None) -> Figure:
    """In-context accuracy against position, every variant, for both protocols.

    Oversight (left): position p is scored on prompts of length k T_train whose first
    (k - 1) T_train inputs hold no trigger, where k is p's window. Ordinary (right): the trigger
    process over the whole longest prompt. Markers: the window accuracy ("kx") per k.
    """
    T, L = result.study.train_length, result.study.max_length
    width = bin_width or max(T // 8, 1)
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    for ax, protocol in zip(fig.subplots(1, 2, sharey=True), PROTOCOLS):
        for name, r in result.variants.items():
            pr: ProtocolResult = getattr(r, protocol)
            x, y = _binned(pr.accuracy_by_position, pr.count_by_position, width)
            ax.plot(x, y, color=_COLOURS.get(name), label=name)
            ks = result.study.multiples
            ax.plot(
                [(k - 0.5) * T for k in ks],
                [pr.accuracy_by_length[f"{k}x"] for k in ks],
                "o",
                color=_COLOURS.get(name),
                markersize=5,
            )
        _mark_training_length(ax, T, L)
        title = (
            "oversight protocol: trigger-free prefix, evidence only in the last window"
            if protocol == "oversight"
            else "ordinary protocol: triggers over the whole prompt"
        )
        ax.set(xlabel="position", title=title, ylim=(-0.02, 1.02), xlim=(0, L))
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8, loc="lower left")
    fig.axes[0].set_ylabel(f"in-context accuracy (bins of {width}; dots: window accuracy)")
    return fig


def plot_previous_token(result: LengthsResult, bin_width: int | None = None) -> Figure:
    """Layer 1's previous-token head against position: accuracy (argmax of its attention at
    query t is t - 1, every t >= 1) and mean attention on t - 1 (NoPE also its layer 2,
    dashed); and APE's W_K^1 recall by position."""
    T, L = result.study.train_length, result.study.max_length
    width = bin_width or max(T // 16, 1)
    fig = Figure(figsize=(18, 4.2), layout="constrained")
    prev_ax, mass_ax, recall_ax = fig.subplots(1, 3, sharey=True)
    for name, r in result.variants.items():
        panels = ((prev_ax, r.previous_token_by_position), (mass_ax, r.previous_token_mass_by_position))
        for ax, series in panels:
            for layer, values in enumerate(series):
                x, y = _binned(values, None, width)
                ax.plot(
                    x,
                    y,
                    color=_COLOURS.get(name),
                    linestyle="-" if layer == 0 else "--",
                    label=name if layer == 0 else f"{name} layer {layer + 1}",
                )
        if r.W_K1_recall_by_position is not None:
            x, y = _binned(r.W_K1_recall_by_position, None, width)
            recall_ax.plot(x, y, color=_COLOURS.get(name), label=f"{name}: argmax_s<t p_t^T W_K^1 p_s = t-1")
    for ax in (prev_ax, mass_ax, recall_ax):
        _mark_training_length(ax, T, L)
        ax.set(xlabel="query position t", ylim=(-0.02, 1.02), xlim=(0, L))
        ax.legend(fontsize=8, loc="center right")
    prev_ax.set(ylabel="accuracy / attention", title="previous-token head: argmax_s attention(t, s) = t - 1")
    mass_ax.set(title="previous-token head: mean attention(t, t - 1)")
    recall_ax.set(title="W_K^1 recall by position (APE)")
    return fig


def plot_layer1_offsets(result: LengthsResult, max_offset: int = 16) -> Figure:
    """What plays the role of W_K^1: layer 1's attention at a query inside T_train and at the
    last position (mean over prompts) against the offset t - s, and the offset profile
    (rpe: b_(t-s); rope: b_Q^T R_(s-t) b_K / sqrt(d); others: mean score beyond T_train)."""
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    offsets = np.arange(max_offset + 1)
    for name, r in result.variants.items():
        for ax, (label, row) in zip(axes[:2], r.late_attention.items()):
            query = int(label.split("_")[1])
            weights = np.asarray(row[: query + 1])[::-1][: max_offset + 1]  # offset o = query - s
            ax.plot(offsets[: len(weights)], weights, marker=".", color=_COLOURS.get(name), label=name)
            ax.set(title=f"layer-1 attention at query t = {query}", xlabel="offset t - s", ylabel="mean attention")
        profile = r.offset_bias if r.offset_bias is not None else r.score_by_offset["beyond"]
        kind = (
            "b_(t-s)"
            if r.offset_bias is not None and r.variant.startswith("rpe")
            else ("b_Q^T R b_K / sqrt d" if r.offset_bias is not None else "mean score, t >= T_train")
        )
        values = np.asarray([np.nan if v is None else v for v in profile], dtype=float)
        axes[2].plot(np.arange(len(values)), values, color=_COLOURS.get(name), label=f"{name}: {kind}")
    axes[2].axvline(result.study.train_length - 0.5, color="black", linestyle=":", linewidth=1)
    axes[2].set(title="layer-1 offset profile (score units)", xlabel="offset t - s")
    for ax in axes:
        ax.legend(fontsize=7)
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
            meas.ic_output,
            study.prediction,
            meas.length,
            meas.n_output,
            f"{best.name}: every prompt, fitted on half of them\n"
            f"held-out R^2 {best.r2:.2f} per prompt, {best.r2_cells:.2f} per cell",
        ),
        "patching.png": plot_patching(study.patching),
        "logit_parts.png": plot_logit_parts(
            study.example.names,
            last[:, study.example_output].tolist(),
            last[:, study.example_favourite].tolist(),
            repr(vocab[study.example_output]),
            repr(vocab[study.example_favourite]),
        ),
    }


def lengths_figures(result: LengthsResult) -> dict[str, Figure]:
    """The figures of the positional-encoding study."""
    return {
        "lengths_accuracy.png": plot_accuracy_by_position(result),
        "lengths_previous_token.png": plot_previous_token(result),
        "lengths_layer1_offsets.png": plot_layer1_offsets(result),
    }


def save_figures(figures: dict[str, Figure], folder: str | os.PathLike[str]) -> list[str]:
    """Save each figure under its name in ``folder``; returns the paths written."""
    paths = [os.path.join(folder, name) for name in figures]
    for path, fig in zip(paths, figures.values()):
        save_figure(fig, path)
    return paths
