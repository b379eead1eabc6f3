"""The hijack with Bayes as referee (docs/THEORY.md section 9.4): Bayes n*, the (q, o) pairs that
spread it, and a model's logits and path split on designed prompts.

A designed prompt (:class:`~induction_bigram.data.prompts.PromptDesigner`) holds n pairs "q o" in
global-bigram filler without q and ends in q, so n_qo = n_q = n and Bayes switches from the global
favourite g to o at n*_Bayes = floor(alpha (pi_b(g | q) - pi_b(o | q))) + 1, at every prompt length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from induction_bigram.anymodel.heads import Head
from induction_bigram.anymodel.paths import path_decomposition
from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import DataError
from induction_bigram.incontext.theory import hijack_threshold
from induction_bigram.model import Model
from induction_bigram.serialise import Record

PARTS = ("logit", "in_context", "global", "prob_output", "prob_favourite")
"""The cell means :func:`measure_hijack` keeps: xi_o - xi_g, its induction-head and current-token
parts (:class:`~induction_bigram.anymodel.paths.PathDecomposition`'s ``in_context`` and
``global_``), and the probabilities of o and g."""


def bayes_threshold(pi_favourite: float, pi_output: float, alpha: float) -> int:
    """n*_Bayes: the smallest integer n with n + alpha pi_b(o | q) > alpha pi_b(g | q)."""
    if not alpha > 0:
        raise DataError(f"alpha must be > 0, got {alpha}")
    # floor(alpha (pi_g - pi_o)) + 1, checked against the inequality itself in the float arithmetic
    # Bayes uses: where alpha (pi_g - pi_o) is an integer up to rounding, the formula may be one off
    n = max(0, math.floor(alpha * (pi_favourite - pi_output)) - 1)
    while not n + alpha * pi_output > alpha * pi_favourite:
        n += 1
    return n


@dataclass(frozen=True)
class Pair(Record):
    """A designed (q, o) pair against q's global favourite g, with pi_b(o | q) > 0 and o != g, q."""

    trigger: int
    output: int
    favourite: int
    pi_output: float
    pi_favourite: float

    def bayes(self, alpha: float) -> int:
        """n*_Bayes of this pair at ``alpha``."""
        return bayes_threshold(self.pi_favourite, self.pi_output, alpha)


def candidate_pairs(stats: BigramStats) -> list[Pair]:
    """Every (q, o) with pi_b(o | q) > 0, o != q and o != g(q), most frequent transition first
    (pi_u(q) pi_b(o | q); ties by token ids)."""
    bigram, unigram = stats.bigram.double(), stats.unigram.double()
    favourite = bigram.argmax(-1)
    weight = unigram[:, None] * bigram
    found = []
    for q, o in (bigram > 0).nonzero().tolist():
        if o != q and o != favourite[q]:
            found.append((-float(weight[q, o]), q, o))
    g = favourite.tolist()
    return [Pair(q, o, g[q], float(bigram[q, o]), float(bigram[q, g[q]])) for _, q, o in sorted(found)]


def select_pairs(candidates: Sequence[Pair], alpha: float, n_pairs: int, max_count: int) -> list[Pair]:
    """Up to ``n_pairs`` pairs whose n*_Bayes at ``alpha`` spread evenly over [1, cap], cap =
    min(max_count - 1, the largest n*_Bayes any candidate reaches): for each target value, the most
    frequent candidate with exactly that n*_Bayes, a new trigger q where one is left. A target
    that no candidate hits is skipped, so fewer pairs come back (at alpha <= 1 every n* is 1)."""
    reach = max((p.bayes(alpha) for p in candidates), default=0)
    cap = min(max_count - 1, reach)
    if cap < 1:
        return []
    targets = sorted({round(1 + k * (cap - 1) / max(n_pairs - 1, 1)) for k in range(n_pairs)})
    chosen: list[Pair] = []
    for target in targets:
        hits = [p for p in candidates if p.bayes(alpha) == target and p not in chosen]
        fresh = [p for p in hits if p.trigger not in {c.trigger for c in chosen}]
        chosen += (fresh or hits)[:1]
    if len(targets) < n_pairs:  # fewer distinct targets than pairs (cap < n_pairs): more of each
        for p in candidates:
            if len(chosen) >= n_pairs:
                break
            if p not in chosen and 1 <= p.bayes(alpha) <= cap:
                chosen.append(p)
    return chosen


@torch.no_grad()
def measure_hijack(
    model: Model,
    designer: PromptDesigner,
    pairs: Sequence[Pair],
    lengths: Sequence[int],
    max_count: int,
    per_cell: int,
    induction_head: Head,
    *,
    seed: int,
    chunk_size: int = 256,
) -> dict[str, dict[str, list[list[float]]]]:
    """For each prompt length, part of :data:`PARTS` and pair: the mean over ``per_cell`` designed
    prompts of that part at n = 0..max_count, as ``{str(T): {part: [pair][n]}}``.

    The prompts depend on ``seed``, the pairs and the lengths only, so every model meets the same
    ones. The logits are split at the last position with ``induction_head`` as the in-context source.
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device=designer.device).manual_seed(seed)
    q = torch.tensor([p.trigger for p in pairs], device=designer.device).repeat_interleave(per_cell)
    o = torch.tensor([p.output for p in pairs], device=designer.device).repeat_interleave(per_cell)
    out: dict[str, dict[str, list[list[float]]]] = {}
    for length in lengths:
        columns = {part: [] for part in PARTS}
        for n in range(max_count + 1):
            prompts = designer.sample(
                length=length, n_output=n, batch_size=len(q), generator=generator, trigger=q, output=o
            )
            parts = _parts(
                model, prompts.tokens.to(device), prompts.output, prompts.favourite, induction_head, chunk_size
            )
            for part, values in parts.items():
                columns[part].append(values.view(len(pairs), per_cell).double().mean(-1))
        out[str(length)] = {part: torch.stack(cols, -1).tolist() for part, cols in columns.items()}
    return out


def _parts(model: Model, tokens: Tensor, o: Tensor, g: Tensor, head: Head, chunk_size: int) -> dict[str, Tensor]:
    parts: dict[str, list[Tensor]] = {part: [] for part in PARTS}
    o, g = o.to(tokens.device), g.to(tokens.device)
    for start in range(0, len(tokens), chunk_size):
        rows = slice(start, start + chunk_size)
        paths = path_decomposition(model, tokens[rows], induction_head=head)
        probs = paths.logits.float().softmax(-1)
        for part, value in (
            ("logit", paths.logits),
            ("in_context", paths.in_context),
            ("global", paths.global_),
        ):
            parts[part].append(_difference(value, o[rows], g[rows]))
        parts["prob_output"].append(probs.gather(1, o[rows, None]).squeeze(1))
        parts["prob_favourite"].append(probs.gather(1, g[rows, None]).squeeze(1))
    return {part: torch.cat(values).cpu() for part, values in parts.items()}


def _difference(values: Float[Tensor, "batch vocab"], a: Tensor, b: Tensor) -> Float[Tensor, " batch"]:
    return (values.gather(1, a[:, None]) - values.gather(1, b[:, None])).squeeze(1).float()


def model_thresholds(logit_by_count: Sequence[Sequence[float]]) -> list[int | None]:
    """Per pair, the model's n*: the smallest n whose cell mean xi_o - xi_g is positive (None: no
    switch up to the last count), from :func:`measure_hijack`'s ``logit`` rows."""
    out = []
    for row in logit_by_count:
        means = torch.tensor(row, dtype=torch.float64)
        out.append(hijack_threshold(torch.arange(len(row)), means))
    return out
