"""What the study measures, as typed results that convert to JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from induction_bigram.intervals import Interval, mean_interval
from induction_bigram.lengths.config import MAIN_VARIANTS, LengthsConfig, Protocol
from induction_bigram.serialise import Record, from_fields, json_safe


def ratio(numerator: Tensor, denominator: Tensor) -> list[float]:
    """Elementwise numerator / denominator as floats, NaN where the denominator is 0."""
    numerator, denominator = numerator.double().cpu(), denominator.double().cpu()
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1), torch.nan).tolist()


def _mean_over(values: Sequence[float], positions: range) -> float:
    chosen = [v for v in values[positions.start : positions.stop] if not math.isnan(v)]
    return sum(chosen) / len(chosen) if chosen else math.nan


@dataclass(frozen=True)
class ProtocolResult(Record):
    """One protocol at every k.

    Attributes:
        accuracy_by_length: ``"kx"`` -> in-context accuracy on the last window.
        whole_prompt_accuracy_by_length: ``"kx"`` -> in-context accuracy over the whole prompt.
        n_in_context_by_length: ``"kx"`` -> number of in-context targets in the last window.
        correct_by_position / count_by_position: positions 0..k_max T_train - 1. Oversight:
            position p counted on the prompts whose last window holds p; ordinary: on the
            longest prompts.
    """

    accuracy_by_length: dict[str, float]
    whole_prompt_accuracy_by_length: dict[str, float]
    n_in_context_by_length: dict[str, int]
    correct_by_position: list[int]
    count_by_position: list[int]

    @property
    def accuracy_by_position(self) -> list[float]:
        return ratio(torch.tensor(self.correct_by_position), torch.tensor(self.count_by_position))


@dataclass(frozen=True)
class VariantResult:
    """Everything the study measures on one trained variant (module doc for definitions).

    ``previous_token_by_position[layer]`` etc. are lists over positions 0..k_max T_train - 1
    (NaN where undefined); ``layer`` 0 is the paper's layer 1. ``example_*`` hold one oversight
    prompt of length 2 T_train and every layer's attention on it (for the circuitsvis view;
    :meth:`to_dict` keeps the attention to 3 decimals, as the view shows it).
    """

    variant: str
    config: dict[str, Any]
    train_length: int
    train_seconds: float
    train_accuracy: float
    oversight: ProtocolResult
    ordinary: ProtocolResult
    previous_token_by_position: list[list[float]]
    previous_token_after_trigger_by_position: list[list[float]]
    previous_token_mass_by_position: list[list[float]]
    score_by_offset: dict[str, list[float]]
    late_attention: dict[str, list[float]]
    W_K1_recall_by_position: list[float] | None
    offset_bias: list[float] | None
    memories: dict[str, dict[str, float]]
    example_tokens: list[int]
    example_patterns: Float[Tensor, "layer query key"]
    recipe: str = ""

    def previous_token_summary(self) -> dict[str, dict[str, float]]:
        """Previous-token accuracy (argmax at t - 1; all queries t >= 1, and queries after a
        trigger) and the mean attention on t - 1, inside [1, T_train) and beyond
        [T_train, k_max T_train), per probed layer."""
        T, L = self.train_length, len(self.previous_token_by_position[0])
        summary = {}
        for layer, series in enumerate(
            zip(
                self.previous_token_by_position,
                self.previous_token_after_trigger_by_position,
                self.previous_token_mass_by_position,
            )
        ):
            summary[f"layer{layer + 1}"] = {
                f"{name}{where}": _mean_over(values, positions)
                for name, values in zip(("", "after_trigger_", "mass_"), series)
                for where, positions in (("in_range", range(1, T)), ("beyond", range(T, L)))
            }
        return summary

    def offset_summary(self) -> dict[str, Any]:
        """How sharp layer 1's preference for offset 1 is, read off one profile: the learned
        b_(t-s) (rpe), b_Q^T R_(s-t) b_K / sqrt(d) (rope), else the mean layer-1 score by
        offset at queries beyond T_train."""
        name, profile = (
            ("offset_bias", self.offset_bias)
            if self.offset_bias is not None
            else ("mean_score_beyond", self.score_by_offset["beyond"])
        )
        v, T = np.asarray(profile, dtype=float), self.train_length
        finite = lambda x: np.isfinite(x).any()  # noqa: E731
        others = np.delete(v, 1)
        return {
            "profile": name,
            "argmax_offset": int(np.nanargmax(v)) if finite(v) else -1,
            "offset0": float(v[0]),
            "offset1": float(v[1]),
            "offset1_minus_best_other": float(v[1] - np.nanmax(others)) if finite(others) else math.nan,
            "mean_offsets_2_to_T_train": float(np.nanmean(v[2:T])) if finite(v[2:T]) else math.nan,
            "mean_offsets_beyond_T_train": float(np.nanmean(v[T:])) if finite(v[T:]) else math.nan,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (NaN -> None): every field (:meth:`from_dict` reads them back) and
        the summaries; ``accuracy_by_length`` is the oversight protocol."""
        T, L = self.train_length, len(self.previous_token_by_position[0])
        out: dict[str, Any] = {
            "variant": self.variant,
            "train_length": T,
            "accuracy_by_length": self.oversight.accuracy_by_length,
            "ordinary_accuracy_by_length": self.ordinary.accuracy_by_length,
            "oversight": self.oversight.to_dict(),
            "ordinary": self.ordinary.to_dict(),
            "train_accuracy": self.train_accuracy,
            "train_seconds": self.train_seconds,
            "previous_token_accuracy": self.previous_token_summary(),
            "offset_summary": self.offset_summary(),
            "memories": self.memories,
            "recipe": self.recipe,
            "by_position": {
                "accuracy_oversight": self.oversight.accuracy_by_position,
                "accuracy_ordinary": self.ordinary.accuracy_by_position,
                "previous_token": self.previous_token_by_position,
                "previous_token_after_trigger": self.previous_token_after_trigger_by_position,
                "previous_token_mass": self.previous_token_mass_by_position,
            },
            "score_by_offset": self.score_by_offset,
            "late_attention": self.late_attention,
            "example": {
                "tokens": self.example_tokens,
                "patterns": self.example_patterns.double().round(decimals=3).tolist(),
            },
            "config": self.config,
        }
        if self.W_K1_recall_by_position is not None:
            recall = self.W_K1_recall_by_position
            out["W_K1_recall"] = {
                "in_range": _mean_over(recall, range(1, T)),
                "beyond": _mean_over(recall, range(T, L)),
            }
            out["by_position"]["W_K1_recall"] = recall
        if self.offset_bias is not None:
            out["offset_bias"] = self.offset_bias
        return json_safe(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VariantResult":
        """Rebuild from :meth:`to_dict` output (the summaries are recomputed, not read): the fields
        stand under other keys than their names, and each is read by its type hint."""
        by_position, example = data["by_position"], data["example"]
        stored = {
            **{key: data[key] for key in ("variant", "config", "train_length", "train_seconds", "train_accuracy")},
            **{key: data[key] for key in ("oversight", "ordinary", "score_by_offset", "late_attention", "memories")},
            "previous_token_by_position": by_position["previous_token"],
            "previous_token_after_trigger_by_position": by_position["previous_token_after_trigger"],
            "previous_token_mass_by_position": by_position["previous_token_mass"],
            "W_K1_recall_by_position": by_position.get("W_K1_recall"),
            "offset_bias": data.get("offset_bias"),
            "example_tokens": example["tokens"],
            "example_patterns": example["patterns"],
            "recipe": data["recipe"],
        }
        return from_fields(cls, stored)


@dataclass(frozen=True)
class LengthsResult:
    """The study: its config, one :class:`VariantResult` per variant (``rpe-clipped`` too),
    the wall time and the vocabulary (to label the tokens of the attention view)."""

    config: LengthsConfig
    variants: dict[str, VariantResult]
    wall_seconds: float
    vocab: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"variants": {"ape": {"accuracy_by_length": {"1x": ...}, ...}, ...}, ...}``;
        variants outside :data:`MAIN_VARIANTS` go under ``"extra_variants"``."""
        main = {name: r.to_dict() for name, r in self.variants.items() if name in MAIN_VARIANTS}
        extra = {name: r.to_dict() for name, r in self.variants.items() if name not in MAIN_VARIANTS}
        out: dict[str, Any] = {"variants": main}
        if extra:
            out["extra_variants"] = extra
        out.update(
            config=self.config.to_dict(),
            train_length=self.config.task.seq_len,
            multiples=list(self.config.lengths.multiples),
            wall_seconds=self.wall_seconds,
            vocab=list(self.vocab),
        )
        return json_safe(out)

    def summary(self) -> dict[str, Any]:
        """The headline numbers per variant, without the by-position series and the attention
        example (``induction-bigram lengths --json``, the report's ``numbers.json``)."""
        variants = {
            name: {
                "accuracy_by_length": r.oversight.accuracy_by_length,
                "ordinary_accuracy_by_length": r.ordinary.accuracy_by_length,
                "previous_token_accuracy": r.previous_token_summary(),
                "train_accuracy": r.train_accuracy,
            }
            for name, r in self.variants.items()
        }
        return json_safe(
            {"variants": variants, "train_length": self.config.task.seq_len, "wall_seconds": self.wall_seconds}
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LengthsResult":
        """Rebuild from :meth:`to_dict` output (e.g. a study folder's ``result.json``)."""
        variants = {**data["variants"], **data.get("extra_variants", {})}
        return from_fields(cls, {"variants": variants, **{k: data[k] for k in ("config", "wall_seconds", "vocab")}})


def accuracy_over_seeds(
    results: Sequence[LengthsResult], protocol: Protocol = "oversight", level: float = 0.95
) -> dict[str, dict[str, Interval]]:
    """Variant -> ``"kx"`` -> the mean over seeds of each seed's in-context accuracy on the last
    window (``results[i]`` is seed i's study) and its Student-t interval at ``level``
    (:func:`~induction_bigram.intervals.mean_interval`: over seeds, each trained and evaluated on
    prompts of its own in a sweep), clipped to [0, 1]. Variants and lengths that some
    seed lacks, or where some seed has no in-context target (NaN), are left out."""
    if not results:
        raise ValueError("accuracy_over_seeds needs the result of at least one seed")
    out: dict[str, dict[str, Interval]] = {}
    for name, first in results[0].variants.items():
        if not all(name in r.variants for r in results):
            continue
        cells = {}
        for k in getattr(first, protocol).accuracy_by_length:
            values = [getattr(r.variants[name], protocol).accuracy_by_length.get(k, math.nan) for r in results]
            if all(math.isfinite(v) for v in values):
                cells[k] = mean_interval(values, level, bounds=(0.0, 1.0))
        out[name] = cells
    return out
