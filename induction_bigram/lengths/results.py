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

from induction_bigram.files import json_safe
from induction_bigram.lengths.config import MAIN_VARIANTS, LengthsStudyConfig


def ratio(numerator: Tensor, denominator: Tensor) -> list[float]:
    """Elementwise numerator / denominator as floats, NaN where the denominator is 0."""
    numerator, denominator = numerator.double().cpu(), denominator.double().cpu()
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1), torch.nan).tolist()


def _mean_over(values: Sequence[float], positions: range) -> float:
    chosen = [v for v in values[positions.start : positions.stop] if not math.isnan(v)]
    return sum(chosen) / len(chosen) if chosen else math.nan


@dataclass(frozen=True)
class ProtocolResult:
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
    prompt of length 2 T_train and every layer's attention on it (for circuitsvis; not in
    :meth:`to_dict`).
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
    what_was_tried: str = ""

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
        """JSON-ready numbers (NaN -> None); ``accuracy_by_length`` is the oversight protocol."""
        T, L = self.train_length, len(self.previous_token_by_position[0])
        out: dict[str, Any] = {
            "accuracy_by_length": self.oversight.accuracy_by_length,
            "ordinary_accuracy_by_length": self.ordinary.accuracy_by_length,
            "ordinary_whole_prompt_accuracy_by_length": self.ordinary.whole_prompt_accuracy_by_length,
            "n_in_context_by_length": self.oversight.n_in_context_by_length,
            "train_accuracy": self.train_accuracy,
            "train_seconds": self.train_seconds,
            "previous_token_accuracy": self.previous_token_summary(),
            "offset_summary": self.offset_summary(),
            "memories": self.memories,
            "what_was_tried": self.what_was_tried,
            "by_position": {
                "accuracy_oversight": self.oversight.accuracy_by_position,
                "accuracy_ordinary": self.ordinary.accuracy_by_position,
                "previous_token": self.previous_token_by_position,
                "previous_token_after_trigger": self.previous_token_after_trigger_by_position,
                "previous_token_mass": self.previous_token_mass_by_position,
            },
            "score_by_offset": self.score_by_offset,
            "late_attention": self.late_attention,
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


@dataclass(frozen=True)
class LengthsResult:
    """The study: one :class:`VariantResult` per variant, plus the config and timing."""

    study: LengthsStudyConfig
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
            study=self.study.to_dict(),
            train_length=self.study.train_length,
            multiples=list(self.study.multiples),
            wall_seconds=self.wall_seconds,
        )
        return out
