"""Figures of the markov study (docs/THEORY.md section 9.4): measured n* against Bayes n* per
alpha, and the path split of xi_o - xi_g against the count n.

Every function takes results, never a model, and returns a ``matplotlib.figure.Figure``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from induction_bigram.intervals import mean_interval
from induction_bigram.markov.study import MarkovResult

PART_LABELS = {
    "logit": "xi_o - xi_g (logits)",
    "in_context": "induction head's paths",
    "global": "current token's paths",
}


def _panels(n: int, title: str) -> tuple[Figure, list]:
    fig = Figure(figsize=(3.6 * n, 3.6), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    fig.suptitle(title)
    return fig, list(axes)


def _no_head(ax, alpha: float) -> None:
    ax.text(0.5, 0.5, "no statistical\ninduction head", ha="center", va="center", transform=ax.transAxes)
    ax.set(title=f"alpha = {alpha:g}", xticks=[], yticks=[])


def plot_n_star_over_seeds(results: Sequence[MarkovResult]) -> Figure:
    """Per alpha, each of its own pairs: the model's n* (capped at max_count + 1, mean over the
    prompt lengths) against Bayes n*, mean and 95% t-interval over the seeds whose model has a
    statistical induction head (docs/THEORY.md section 8); the diagonal is Bayes, the band +-1."""
    first = results[0]
    cap = first.config.markov.max_count + 1
    alphas = [a.alpha for a in first.alphas.values()]
    fig, axes = _panels(len(alphas), f"hijack threshold n*: model against Bayes ({len(results)} seed(s))")
    for ax, alpha in zip(axes, alphas):
        key = f"{alpha:g}"
        with_head = [r for r in results if r.alphas[key].has_head]
        if not with_head:
            _no_head(ax, alpha)
            continue
        own, bayes = first.own_pairs(alpha), first.bayes(alpha)
        xs, means, lows, highs = [], [], [], []
        for i in own:
            per_seed = [float(np.mean([r.capped(t[i]) for t in r.alphas[key].thresholds.values()])) for r in with_head]
            mean, low, high = mean_interval(per_seed, bounds=(0.0, float(cap)))
            xs.append(bayes[i])
            means.append(mean)
            lows.append(mean - low)
            highs.append(high - mean)
        top = max([cap, *xs]) + 1
        ax.fill_between([0, top], [-1, top - 1], [1, top + 1], color="grey", alpha=0.15, label="Bayes +- 1")
        ax.plot([0, top], [0, top], color="grey", linewidth=0.8)
        ax.errorbar(xs, means, yerr=[lows, highs], fmt="o", capsize=3, label=f"model ({len(with_head)} seed(s))")
        ax.axhline(cap, color="C3", linestyle=":", linewidth=0.8, label="no switch by max_count")
        ax.set(title=f"alpha = {alpha:g}", xlabel="n* Bayes", ylabel="n* model", xlim=(0, top), ylim=(0, top + 0.5))
        ax.legend(fontsize=7)
    return fig


def plot_path_split(result: MarkovResult) -> Figure:
    """Per alpha with a head: xi_o - xi_g and its two path totals (the induction head's and the
    current token's), mean over the alpha's own pairs at the longest prompt length, against n;
    the dotted line is the mean n*_Bayes of those pairs."""
    alphas = list(result.alphas.values())
    longest = str(result.config.markov.lengths[-1])
    fig, axes = _panels(len(alphas), f"path split of xi_o - xi_g at T = {longest} (one seed)")
    for ax, a in zip(axes, alphas):
        own = result.own_pairs(a.alpha)
        if not a.has_head or not own:
            _no_head(ax, a.alpha)
            continue
        cells = a.cells[longest]
        for part, label in PART_LABELS.items():
            curve = np.mean([cells[part][i] for i in own], axis=0)
            ax.plot(range(len(curve)), curve, "-o", markersize=3, label=label)
        bayes = np.mean([result.bayes(a.alpha)[i] for i in own])
        ax.axvline(bayes, color="grey", linestyle=":", label="mean n* Bayes")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=f"alpha = {a.alpha:g}", xlabel="n (q -> o in the prompt)", ylabel="logit difference")
        ax.legend(fontsize=7)
    return fig


def figures(result: MarkovResult) -> dict[str, Figure]:
    """The study's figures from one seed's result."""
    return {"n_star_vs_bayes.png": plot_n_star_over_seeds([result]), "path_split.png": plot_path_split(result)}


def seed_figures(results: Sequence[MarkovResult]) -> dict[str, Figure]:
    """The figure over seeds: n* against Bayes with intervals."""
    return {"n_star_vs_bayes_over_seeds.png": plot_n_star_over_seeds(results)}
