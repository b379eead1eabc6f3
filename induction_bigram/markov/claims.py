"""The claims of the markov study (docs/THEORY.md sections 8, 9.3 and 9.4): claims 46-55 of the
registry, registered on 2026-12-07 before the study's first run. A claim whose alpha the config
does not train is left out; an alpha without a statistical induction head leaves its n* claims
undefined in that seed (undecided), never a guess."""

from __future__ import annotations

import torch

from induction_bigram.claims import Claim
from induction_bigram.incontext.measure import spearman
from induction_bigram.markov.study import MarkovResult

REGISTERED_ALPHAS = (1.0, 4.0, 16.0, 64.0)  # the alphas claims 46-49 and 52-55 name
N_STAR_GAP_MAX = 1.0
RANK_MIN = 0.8
EXCESS_RATIO_MAX = 0.1
RANK = (-1.0, 1.0)
N_STAR_STATISTIC = (
    "mean |n*_model - n*_Bayes| over the designed (q, o) pairs of this alpha and the prompt lengths "
    "(a model that does not switch by max_count counts max_count + 1; undefined without a statistical induction head)"
)


def claims(result: MarkovResult) -> list[Claim]:
    """Claims 46-55 for the alphas ``result`` trained (module doc)."""
    alphas = [a for a in REGISTERED_ALPHAS if f"{a:g}" in result.alphas]
    return [
        *(_agreement(result, a) for a in alphas),
        *([_growth_with_alpha(result)] if len(result.alphas) > 1 else []),
        _in_context_growth(result),
        *(_excess(result, a) for a in alphas),
    ]


def _agreement(result: MarkovResult, alpha: float) -> Claim:
    gap = result.gap(alpha)
    a = result.alphas[f"{alpha:g}"]
    if gap is None:
        measured = "no statistical induction head" if not a.has_head else "no designed pair"
    else:
        bayes = result.bayes(alpha)
        per_length = "; ".join(
            f"T = {T}: " + ", ".join(f"{result.capped(t[i])}/{bayes[i]}" for i in result.own_pairs(alpha))
            for T, t in a.thresholds.items()
        )
        measured = f"mean |gap| {gap:.2f}; n* model/Bayes per pair, {per_length}"
    return Claim(
        "9.4",
        f"at alpha = {alpha:g}, the model's hijack threshold n* is within one count of Bayes n*",
        measured,
        value=gap,
        threshold=N_STAR_GAP_MAX,
        direction="<=",
        statistic=N_STAR_STATISTIC,
        bounds=(0.0, float(result.config.markov.max_count + 1)),
    )


def _growth_with_alpha(result: MarkovResult) -> Claim:
    alphas = [a.alpha for a in result.alphas.values()]
    means = [result.mean_threshold(alpha) for alpha in alphas]
    defined = all(m is not None for m in means)
    value = spearman(torch.tensor(alphas), torch.tensor(means)) if defined else None
    shown = ", ".join(f"alpha {a:g}: {'no head' if m is None else f'{m:.2f}'}" for a, m in zip(alphas, means))
    return Claim(
        "9.4",
        "on the same (q, o) pairs, the model's hijack threshold n* increases with alpha, as Bayes n* does",
        f"mean n* {shown}",
        value=value,
        threshold=RANK_MIN,
        direction=">=",
        statistic="rank correlation between alpha and the model's mean n* over every alpha's designed pairs and the "
        "prompt lengths (undefined unless every alpha has a statistical induction head)",
        bounds=RANK,
    )


def _in_context_growth(result: MarkovResult) -> Claim:
    """Per alpha with a head, pair and length: the rank correlation of the in-context part's cell
    means with n; their mean."""
    ranks = []
    for a in result.alphas.values():
        for parts in a.cells.values():
            for row in parts["in_context"]:
                ranks.append(spearman(torch.arange(len(row), dtype=torch.float64), torch.tensor(row)))
    value = sum(ranks) / len(ranks) if ranks else None
    return Claim(
        "9.4",
        "in the path split, the induction head's in-context part of xi_o - xi_g grows with the count n",
        "no statistical induction head at any alpha"
        if value is None
        else f"mean rank correlation {value:.3f} over {len(ranks)} (alpha, pair, length) curves",
        value=value,
        threshold=RANK_MIN,
        direction=">=",
        statistic="rank correlation of the induction head's part of xi_o - xi_g (every path from its output) with n, "
        "mean over the alphas with a statistical induction head, their designed pairs and the prompt lengths",
        bounds=RANK,
    )


def _excess(result: MarkovResult, alpha: float) -> Claim:
    point = result.alphas[f"{alpha:g}"].dynamics
    ratio = point.excess_ratio
    return Claim(
        "9.3",
        f"at alpha = {alpha:g}, the held-out excess loss over Bayes is at most a tenth of the global bigram's",
        "undefined" if ratio is None else f"excess {point.excess_loss:.4f} nats, ratio {ratio:.3f}",
        value=ratio,
        threshold=EXCESS_RATIO_MAX,
        direction="<=",
        statistic="held-out excess loss over Bayes / the global bigram's excess loss over Bayes, "
        "at the end of training",
    )
