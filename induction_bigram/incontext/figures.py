"""Figures of the in-context against bigram study (docs/THEORY.md sections 5 and 6).

Every function takes results, never a model, and returns a ``matplotlib.figure.Figure``;
:func:`figures` draws them all from an :class:`~induction_bigram.incontext.study.InContextResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from induction_bigram.anymodel.heads import head_name
from induction_bigram.incontext.measure import INDUCTION_HEAD
from induction_bigram.incontext.study import InContextResult


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
    held_out_panel: tuple[str, Sequence[float] | Any, Sequence[bool] | Any] | None = None,
) -> Figure:
    """Measured against predicted xi_o^IC: one dot per prompt, one large marker per (T, n) cell
    mean. ``held_out_panel`` = (title, prediction, held-out mask) adds a second panel in which
    the held-out lengths are drawn solid and those fitted on faint and hollow."""
    measured, lengths, counts = np.asarray(measured, float), np.asarray(lengths), np.asarray(counts)
    panels = [(title, predicted, None), *([held_out_panel] if held_out_panel else [])]
    fig = Figure(figsize=(6.5 * len(panels), 5.5), layout="constrained")
    for ax, (panel_title, panel_prediction, held_out) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        predicted = np.asarray(panel_prediction, float)
        for i, T in enumerate(sorted(set(lengths.tolist()))):
            rows = lengths == T
            held = held_out is None or bool(np.asarray(held_out, bool)[rows].all())
            marked = held_out is not None and held
            ax.scatter(predicted[rows], measured[rows], s=6, alpha=0.35 if held else 0.12, color=f"C{i}")
            cells = sorted(set(counts[rows].tolist()))
            ax.scatter(
                [predicted[rows & (counts == n)].mean() for n in cells],
                [measured[rows & (counts == n)].mean() for n in cells],
                s=50,
                color=f"C{i}" if held else "none",
                edgecolors="black" if held else f"C{i}",
                label=f"T={T} (cell means{', held out' if marked else ''})",
            )
        low, high = np.nanmin([measured.min(), predicted.min()]), np.nanmax([measured.max(), predicted.max()])
        ax.plot([low, high], [low, high], color="grey", linewidth=0.8, label="y = x")
        ax.set(xlabel="predicted xi_o^IC", ylabel="measured xi_o^IC (every path from layer 2's head)")
        ax.set_title(panel_title, fontsize=10)
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
    ax.set(ylabel="logit contribution", title="component view at the last position (one prompt)")
    ax.legend()
    return fig


def plot_paths(rows: Sequence[dict[str, Any]], n_prompts: int) -> Figure:
    """Each path's mean contribution to xi_o - xi_g (bars: direct, and through the FFN) with
    its 95% interval over the prompts: which mechanism carries the in-context signal
    (docs/THEORY.md section 4.1)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    sources = list(dict.fromkeys(row["source"] for row in rows))
    x = np.arange(len(sources))
    for offset, route, label in ((-0.2, "direct", "direct"), (0.2, "mlp", "through the FFN")):
        picked = [next(r for r in rows if r["source"] == s and r["route"] == route) for s in sources]
        means = np.array([r["mean"] for r in picked])
        errors = np.array([[r["mean"] - r["low"] for r in picked], [r["high"] - r["mean"] for r in picked]])
        ax.bar(x + offset, means, width=0.4, yerr=errors, capsize=3, label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, sources)
    ax.set(
        ylabel="mean contribution to xi_o - xi_g",
        title=f"paths to the logits ({n_prompts} prompts with n >= 1; 95% intervals over prompts)",
    )
    ax.legend()
    return fig


_CARRIERS = (("head", "direct"), ("head", "mlp"), ("token", "direct"), ("token", "mlp"))


def plot_idealised(
    models: dict[str, tuple[dict[str, dict[str, float]], dict[str, dict[str, list[float]]]]], head: str
) -> Figure:
    """The trained model beside its idealised twin (docs/THEORY.md section 4.2): left, what
    carries xi_o - xi_g (the induction head's and the current token's paths, directly and
    through W_F; mean over the prompts with n >= 1); right, the measured xi_o - xi_g against n
    at the longest prompt length, where it crosses 0 is n*. ``models`` maps a label to its
    ``(by_path, curves)``."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    bars, lines = fig.subplots(1, 2)
    x = np.arange(len(_CARRIERS))
    width = 0.8 / len(models)
    for i, (label, (by_path, curves)) in enumerate(models.items()):
        means = [by_path[head if source == "head" else source][route] for source, route in _CARRIERS]
        bars.bar(x + (i - (len(models) - 1) / 2) * width, means, width=width, label=label)
        longest = max(curves, key=int)
        lines.plot(curves[longest]["n"], curves[longest]["difference"], "o-", label=f"{label} (T = {longest})")
    names = {"direct": "direct", "mlp": "via W_F"}
    bars.set_xticks(x, [f"{head if s == 'head' else s}\n{names[r]}" for s, r in _CARRIERS])
    bars.axhline(0, color="grey", linewidth=0.8)
    bars.set(ylabel="mean contribution to xi_o - xi_g", title="what carries the logit difference")
    lines.axhline(0, color="grey", linewidth=0.8)
    lines.set(
        xlabel="count n of 'q o' in the prompt", ylabel="measured xi_o - xi_g", title="hijack: n* where it crosses 0"
    )
    for ax in (bars, lines):
        ax.legend()
    return fig


def figures(result: InContextResult) -> dict[str, Figure]:
    """The figures of the in-context against bigram study, by file name."""
    meas, best, example = result.measurements.path_view(), result.best, result.example
    paths = result.paths()
    long = result.check.splits["long_prompts"]
    weights = long.rung("weights_only")
    last = example.parts[:, 0, -1]
    o, g = result.example_output, result.example_favourite
    return {
        "hijack_curves.png": plot_hijack_curves(result.curves),
        "theory_fit.png": plot_theory_fit(
            meas.ic_output,
            result.prediction,
            meas.length,
            meas.n_output,
            f"{best.name}, fitted on a random half, picked on a quarter; all prompts shown\n"
            f"R^2 on the other quarter (test): {best.r2:.2f} per prompt, {best.r2_cells:.2f} per cell",
            (
                f"weights only, nothing fitted; all prompts shown\nR^2 on {long.scored} (solid): "
                f"{weights.r2:.2f} per prompt, {weights.r2_cells:.2f} per cell",
                meas.weights_ic_output,
                meas.length > result.config.task.seq_len / 2,
            ),
        ),
        "patching.png": plot_patching(result.patching),
        "paths.png": plot_paths(paths["rows"], paths["n_prompts"]),
        "logit_parts.png": plot_logit_parts(
            example.names, last[:, o].tolist(), last[:, g].tolist(), repr(result.vocab[o]), repr(result.vocab[g])
        ),
    } | ({} if result.idealised is None else {"idealised.png": _idealised_figure(result)})


def _idealised_figure(result: InContextResult) -> Figure:
    models = {"trained (FFN reads the stream)": result, "idealised (FFN reads w_E(z_t))": result.idealised}
    shown = {label: (r.path_summary()["by_path"], r.curves) for label, r in models.items()}
    return plot_idealised(shown, head_name(INDUCTION_HEAD))
