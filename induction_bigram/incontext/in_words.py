"""The in-context study's findings in words, generated from its claims and numbers over seeds
(docs/THEORY.md sections 4.1-4.2), for REPORT.md and docs/results.md: no number here is typed."""

from __future__ import annotations

from typing import Any

from induction_bigram.claims import ClaimOverSeeds

PATHS_CLAIM = "4.1"
"""The in-context study's reported claim whose value is the share of layer 2's effect through W_F."""


def paths_in_words(claims: list[ClaimOverSeeds]) -> str:
    """Which mechanism carries the in-context signal, in words, from the in-context study's
    claim 4.1 over seeds (docs/THEORY.md section 4.1); ``""`` without it."""
    found = [c for c in claims if c.section == PATHS_CLAIM]
    if not found or found[0].mean is None:
        return ""
    c = found[0]
    where = "mostly through the FFN W_F" if c.mean > 0.5 else "mostly directly, not through the FFN"
    interval = "" if c.n_values < 2 else f" [{c.low:.0%}, {c.high:.0%}]"
    return (
        f"**Which mechanism carries the in-context signal** (docs/THEORY.md section 4.1): layer 2's induction head "
        f"moves xi_o - xi_g {where}: {c.mean:.0%}{interval} of its effect reaches the logits through W_F, the rest "
        f"directly (mean and 95% interval over {c.n_values} seeds). The component split, which books W_F's output "
        "as global, would call most of the in-context evidence global; the claims 'at path level' judge the whole "
        "in-context term, the others of sections 5-5.7 the head's direct part only."
    )


def idealised_in_words(numbers: dict[str, Any]) -> str:
    """The trained model against its idealised twin (docs/THEORY.md section 4.2), from the
    in-context study's means over seeds: the share through W_F and n* at the longest prompt
    length; ``""`` where the twin was not trained."""
    seeds = numbers.get("incontext", {}).get("seeds") or [{}]
    row = seeds[0]
    key = "idealised.paths.in_context_share_through_ffn"
    if f"{key}.mean" not in row:
        return ""
    lengths = sorted({int(k.split(".")[2]) for k in row if k.startswith("idealised.hijack_thresholds.")})
    T = lengths[-1]

    def interval(name: str, form: str) -> str:
        mean, low, high = (row.get(f"{name}.{part}") for part in ("mean", "low", "high"))
        if mean is None:
            return "none"
        return f"{mean:{form}}" + ("" if row["n"] < 2 else f" [{low:{form}}, {high:{form}}]")

    return (
        f"**The idealised model beside it** (docs/THEORY.md section 4.2): trained with the same recipe and seeds, "
        f"but with an FFN that reads only w_E(z_t), the twin sends "
        f"{interval(key, '.0%')} of layer 2's effect through W_F, against "
        f"{interval('paths.in_context_share_through_ffn', '.0%')} for the trained model; its hijack threshold n* "
        f"at T = {T} is "
        f"{interval(f'idealised.hijack_thresholds.{T}.measured', '.2f')}, the trained model's "
        f"{interval(f'hijack_thresholds.{T}.measured', '.2f')} (means and 95% intervals over {row['n']} seeds)."
    )
