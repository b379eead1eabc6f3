"""Figures of the positional-encoding study (docs/THEORY.md section 5.6): accuracy, the
previous-token head and layer 1's offset profile against position, and a circuitsvis view of
every variant's attention on one prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from circuitsvis.utils.render import RenderedHTML
from matplotlib.figure import Figure

from induction_bigram.errors import ConfigError
from induction_bigram.figures.views import VISIBLE, heads_view
from induction_bigram.lengths.config import PROTOCOLS
from induction_bigram.lengths.results import LengthsResult, ProtocolResult

_COLOURS = {
    "ape": "C0",
    "rpe": "C1",
    "rope": "C2",
    "nope": "C3",
    "rope-nobias": "C4",
    "rpe-clipped": "C5",
    "rpe-logn": "C6",
}


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
    T, L = result.config.task.seq_len, result.config.max_length
    width = bin_width or max(T // 8, 1)
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    for ax, protocol in zip(fig.subplots(1, 2, sharey=True), PROTOCOLS):
        for name, r in result.variants.items():
            pr: ProtocolResult = getattr(r, protocol)
            x, y = _binned(pr.accuracy_by_position, pr.count_by_position, width)
            ax.plot(x, y, color=_COLOURS.get(name), label=name)
            ks = result.config.lengths.multiples
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
    T, L = result.config.task.seq_len, result.config.max_length
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
    axes[2].axvline(result.config.task.seq_len - 0.5, color="black", linestyle=":", linewidth=1)
    axes[2].set(title="layer-1 offset profile (score units)", xlabel="offset t - s")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


def lengths_attention_view(result: LengthsResult, layers: Sequence[int] | None = None) -> RenderedHTML:
    """A circuitsvis view of the same oversight prompt (length 2 T_train) in every variant:
    one "head" per (variant, layer), named ``"<variant> L<layer>"``. Jupyter renders it;
    :func:`induction_bigram.figures.save_figures` writes it as an offline HTML page."""
    if not result.vocab:
        raise ConfigError("this result holds no vocabulary to label the tokens with")
    first = next(iter(result.variants.values()))
    tokens = [VISIBLE.get(result.vocab[i], result.vocab[i]) for i in first.example_tokens]
    patterns, names = [], []
    for name, r in result.variants.items():
        if r.example_tokens != first.example_tokens:
            raise ConfigError(f"variant {name} was shown another prompt than {first.variant}")
        for layer in layers if layers is not None else range(r.example_patterns.shape[0]):
            if layer < r.example_patterns.shape[0]:
                patterns.append(r.example_patterns[layer])
                names.append(f"{name} L{layer + 1}")
    attention = torch.stack(patterns).double().round(decimals=3)  # 3 digits (in float64): a third of the page
    return heads_view(attention, tokens, names)


def figures(result: LengthsResult) -> dict[str, Figure | RenderedHTML]:
    """The figures of the positional-encoding study and the circuitsvis view of every
    variant's attention, by file name (:func:`induction_bigram.figures.save_figures` writes them)."""
    return {
        "lengths_accuracy.png": plot_accuracy_by_position(result),
        "lengths_previous_token.png": plot_previous_token(result),
        "lengths_layer1_offsets.png": plot_layer1_offsets(result),
        "lengths_attention.html": lengths_attention_view(result),
    }
