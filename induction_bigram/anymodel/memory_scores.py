"""Scores of an associative memory read off a coefficient matrix (docs/THEORY.md section 3.3),
for any model: recall@1, margin and cosine, in every convention of
:mod:`induction_bigram.memories.projections` (its module doc lists them).

A :class:`Projection` is a coefficient matrix C[i, j] = u_i^T W v_j with the intended entry of
each item; :func:`score_projections` turns the three memories' projections (W_O2, W_K2, W_K1)
and their cosines to the ideal forms into a :class:`MemoryReport`. Our own models' memories
(:func:`~induction_bigram.memories.projections.memory_report`) and any model's head pair
(:func:`~induction_bigram.anymodel.projections.pair_memory_report`) are scored here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from induction_bigram.serialise import Record, hook

FIRST_POSITIONS = 64


@dataclass(frozen=True)
class MemoryScore:
    """How faithfully one matrix is an associative memory.

    Attributes:
        name: ``"W_O2"``, ``"W_K2"`` or ``"W_K1"``.
        recall: recall@1 in the memory's main convention (see the module doc).
        margin: mean (intended - best other) / off-target std, main convention.
        cosine: cosine between the matrix and its ideal outer-product form.
        recalls: every convention's recall@1, keyed ``recall_<convention>``.
        convention: the main convention, in words.
    """

    name: str
    recall: float
    margin: float
    cosine: float
    recalls: dict[str, float] = field(default_factory=dict)
    convention: str = ""

    def to_dict(self, with_convention: bool = True) -> dict[str, float | str]:
        numbers = {"recall": self.recall, **self.recalls, "margin": self.margin, "cosine": self.cosine}
        return {**numbers, "convention": self.convention} if with_convention else numbers


@dataclass(frozen=True)
class MemoryReport:
    """The three memories of one model; prints as a table, converts to a dict / JSON."""

    memories: dict[str, MemoryScore]

    def to_dict(self, with_convention: bool = True) -> dict[str, dict[str, float | str]]:
        return {name: score.to_dict(with_convention) for name, score in self.memories.items()}

    def __getitem__(self, name: str) -> MemoryScore:
        return self.memories[name]

    def __str__(self) -> str:
        lines = [f"{'memory':7s} {'recall':>7s} {'margin':>7s} {'cosine':>7s}  other conventions"]
        for score in self.memories.values():
            others = ", ".join(f"{k[len('recall_') :]} {v:.3f}" for k, v in score.recalls.items())
            lines.append(f"{score.name:7s} {score.recall:7.3f} {score.margin:7.2f} {score.cosine:7.3f}  {others}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Projection(Record):
    """A coefficient matrix with the intended entry of each item.

    ``coefficients[i, j]`` is C[i, j] = u_i^T W v_j. Items are rows (``by_row``) or columns;
    ``targets[item]`` is the intended candidate and ``candidates[item]`` masks the allowed ones.
    From JSON (:class:`~induction_bigram.serialise.Record`) the tensors are on the CPU, C in float32.
    """

    coefficients: Float[Tensor, "n_out n_in"] = field(metadata=hook(partial(torch.tensor, dtype=torch.float32)))
    targets: Int[Tensor, " n_items"]
    candidates: Bool[Tensor, "n_items n_candidates"]
    by_row: bool

    @property
    def item_scores(self) -> Float[Tensor, "n_items n_candidates"]:
        return self.coefficients if self.by_row else self.coefficients.T


def recall_at_1(projection: Projection, items: Bool[Tensor, " n_items"] | None = None) -> float:
    """Fraction of items whose best allowed candidate is the intended one."""
    scores = projection.item_scores.masked_fill(~projection.candidates, -math.inf)
    hits = scores.argmax(-1) == projection.targets
    return (hits if items is None else hits[items]).float().mean().item()


def memory_margin(projection: Projection) -> float:
    """Mean over items of (intended - best other) / std of the other allowed candidates.

    Items with fewer than two other candidates (W_K1 at t = 1, 2) have no spread and are left out.
    """
    scores = projection.item_scores
    rows = torch.arange(len(projection.targets), device=scores.device)
    intended = scores[rows, projection.targets]
    others = projection.candidates.clone()
    others[rows, projection.targets] = False
    counts = others.sum(-1)
    best_other = scores.masked_fill(~others, -math.inf).max(-1).values
    mean = (scores * others).sum(-1) / counts.clamp_min(1)
    var = (((scores - mean[:, None]) * others) ** 2).sum(-1) / (counts - 1).clamp_min(1)
    margins = (intended - best_other) / var.sqrt().clamp_min(1e-12)
    return margins[counts >= 2].mean().item()


def cosine(a: Float[Tensor, "rows cols"], b: Float[Tensor, "rows cols"]) -> float:
    """Frobenius cosine <A, B> / (|A| |B|) (0 when either is zero)."""
    norm = a.norm() * b.norm()
    return (a.flatten() @ b.flatten() / norm).item() if norm > 0 else 0.0


def score_projections(
    projections: dict[str, Projection], cosines: dict[str, float], first_positions: int
) -> MemoryReport:
    """:func:`memory_report` from the coefficient matrices and their cosines to the ideal forms (every
    convention of the module doc in one place, for our models and :mod:`induction_bigram.anymodel`'s)."""
    o2, k2 = projections["W_O2"], projections["W_K2"]
    scores = {
        "W_O2": MemoryScore(
            "W_O2", recall_at_1(o2), memory_margin(o2), cosines["W_O2"], convention="argmax over the vocabulary"
        )
    }
    k2_vocab = Projection(k2.coefficients, k2.targets, torch.ones_like(k2.candidates), by_row=True)
    recalls = {"recall_triggers": recall_at_1(k2), "recall_vocab": recall_at_1(k2_vocab)}
    scores["W_K2"] = MemoryScore(
        "W_K2", recall_at_1(k2), memory_margin(k2), cosines["W_K2"], recalls, "keys among the triggers"
    )
    if "W_K1" in projections:
        k1 = projections["W_K1"]
        n = len(k1.targets) + 1
        everything = torch.ones_like(k1.candidates)
        everything[:, -1] = False  # the reference probes keys s = 0..n-2
        first = torch.arange(1, n, device=k1.targets.device) < first_positions
        recalls = {
            "recall_causal": recall_at_1(k1),
            "recall_reference": recall_at_1(Projection(k1.coefficients, k1.targets, everything, True)),
            f"recall_first{first_positions}": recall_at_1(k1, first),
        }
        scores["W_K1"] = MemoryScore(
            "W_K1", recall_at_1(k1), memory_margin(k1), cosines["W_K1"], recalls, "keys s < t (causal)"
        )
    return MemoryReport(scores)
