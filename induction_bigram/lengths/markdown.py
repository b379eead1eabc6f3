"""The positional-encoding study's section of ``REPORT.md``: in-context accuracy on the last
window of long prompts, per variant, under both protocols."""

from __future__ import annotations

from collections.abc import Sequence

from induction_bigram.claims import ClaimOverSeeds
from induction_bigram.figures.markdown import markdown_table, recipe
from induction_bigram.lengths.results import LengthsResult


def lengths_section(results: Sequence[LengthsResult], claims: list[ClaimOverSeeds]) -> list[str]:
    result = results[0]  # the first seed's details; the claims cover every seed

    def accuracies(by_length: dict[str, float]) -> str:
        return " / ".join(f"{v:.2f}" for v in by_length.values())

    variants = result.summary()["variants"]
    ks = " / ".join(f"{k}x" for k in result.config.lengths.multiples)
    rows = [
        [name, accuracies(v["accuracy_by_length"]), accuracies(v["ordinary_accuracy_by_length"])]
        for name, v in variants.items()
    ]
    return [
        f"Trained at T_train = {result.config.task.seq_len} ({recipe(result.config)}); in-context accuracy on "
        "the last window of prompts of length k T_train whose first (k - 1) T_train positions hold no trigger "
        "(oversight) or the trigger process throughout (ordinary).",
        "",
        *markdown_table(["variant", f"oversight {ks}", f"ordinary {ks}"], rows),
    ]
