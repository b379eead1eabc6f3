"""The markov study's section of ``REPORT.md``: per alpha, over the seeds, whether the model has a
statistical induction head and its n* against Bayes n* (docs/THEORY.md section 9.4)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from induction_bigram.claims import ClaimOverSeeds
from induction_bigram.intervals import mean_interval
from induction_bigram.markov.study import MarkovResult


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def markov_section(results: Sequence[MarkovResult], claims: list[ClaimOverSeeds]) -> list[str]:
    """The section's lines: per alpha, over the seeds, how many models have a statistical
    induction head and the step its heads formed (over the seeds where they did), the excess-loss
    ratio, and (over the seeds with a head) the mean n* of the model against Bayes on the alpha's
    own pairs and their mean gap; 95% t-intervals of per-seed means (docs/THEORY.md section 8)."""
    first = results[0]
    cap = first.config.markov.max_count + 1

    def interval(values: list[float], bounds: tuple[float, float] | None = None) -> str:
        if not values:
            return "-"
        mean, low, high = mean_interval(values, bounds=bounds)
        return f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} [{low:.2f}, {high:.2f}]"

    rows = []
    for key, a in first.alphas.items():
        own = first.own_pairs(a.alpha)
        headed = [r for r in results if r.alphas[key].has_head]
        model = [
            sum(r.capped(t[i]) for t in r.alphas[key].thresholds.values() for i in own)
            / (len(own) * len(r.alphas[key].thresholds))
            for r in headed
            if own
        ]
        bayes = [min(first.bayes(a.alpha)[i], cap) for i in own]
        ratios = [r.alphas[key].dynamics.excess_ratio for r in results]
        gaps = [g for r in headed if (g := r.gap(a.alpha)) is not None]
        formed = [float(s) for r in results if (s := r.alphas[key].head_step) is not None]
        counts = (0.0, float(cap))
        rows.append(
            f"| {key} | {len(headed)} of {len(results)} | {interval(formed, (0.0, math.inf))} | "
            f"{interval([x for x in ratios if _finite(x)])} | "
            f"{len(own)} | {sum(bayes) / len(bayes) if bayes else float('nan'):.2f} | {interval(model, counts)} | "
            f"{interval(gaps, counts)} |"
        )
    lengths = ", ".join(map(str, first.config.markov.lengths))
    return [
        f"One model per alpha (T = {first.config.task.seq_len}, d_model {first.config.model.d_model}, "
        f"{first.config.train.steps} steps); designed prompts of {lengths} tokens, n = 0..{cap - 1}, "
        f"{first.config.markov.prompts_per_cell} per cell; n* of a model that never switches counts {cap}. "
        "Means and 95% t-intervals over seeds; the n* columns over the seeds whose model has a statistical "
        "induction head; the heads' step (the first evaluation where the best previous-token and statistical "
        "induction heads both clear the head finder's floor) over the seeds where they formed.",
        "",
        "| alpha | head | heads' step | excess ratio | pairs | n* Bayes | n* model | mean abs(gap) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
