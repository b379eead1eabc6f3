"""The in-context study's section of ``REPORT.md``: the trained model in one line, which path
carries the in-context signal (:mod:`.in_words`), and the rung ladder's R^2 table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from induction_bigram.claims import ClaimOverSeeds
from induction_bigram.figures.markdown import markdown_table, recipe
from induction_bigram.incontext.in_words import paths_in_words
from induction_bigram.incontext.study import InContextResult


def incontext_section(results: Sequence[InContextResult], claims: list[ClaimOverSeeds]) -> list[str]:
    result = results[0]  # the first seed's details; the claims cover every seed
    final = result.final or {}
    trained = (
        f"in-context accuracy {final['in_context_accuracy']:.3f}, bigram loss {final['bigram_loss']:.3f} nats, "
        if final
        else ""
    )
    kl = "" if result.global_kl is None else f"global-memory KL {result.global_kl:.3f} nats"
    splits = list(result.check.splits.values())
    names = list(dict.fromkeys(r.name for r in splits[0].rungs + splits[0].causes))  # weights_only is both

    def cell(split: Any, name: str) -> str:
        r = split.rung(name)
        return f"{r.r2:.3f} ({r.r2_cells:.3f})"

    rows = [[name, *(cell(split, name) for split in splits)] for name in names]
    header = ["rung / cause step", *(f"{s.name}: {s.scored} ({s.n_scored} prompts)" for s in splits)]
    return [
        f"{recipe(result.config)}, FFN {result.config.model.ffn}: {trained}{kl}.",
        "",
        paths_in_words(claims),
        "",
        "xi_o^IC (at path level: every path from layer 2's head, docs/THEORY.md section 4.1) predicted by "
        "each rung of docs/THEORY.md section 5.7, fitted on a random half (validation, test) or the other prompts "
        "and scored on the column's: R^2 per prompt (of the per-cell means); validation picks the formula rung "
        "(not held out), test scores it. The cause steps put the model's real layer-1 attention, then layer-2 "
        "attention, then value read-out back into the weights-only prediction.",
        "",
        *markdown_table(header, rows),
    ]
