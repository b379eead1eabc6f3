"""The in-context against bigram study: designed prompts -> theory check, patching, hijack curves.

One call, :func:`run_hijack_study`, runs what docs/THEORY.md sections 5 and 6 ask of a trained model
(best: an associative memory transformer, whose FFN holds the global bigrams):

1. a grid of designed prompts (n = 0..n_max uses of "q o" at several lengths T, plus prompts
   with two competing outputs) is measured and checked against the predicted in-context logits
   (:mod:`.theory`);
2. aligned clean/corrupted prompts are patched (:mod:`.patching`), with both corruptions;
3. hijack curves: P(o), P(g) and xi_o - xi_g against n for each T, measured and predicted;
4. for a model with a feed-forward layer, the KL probe of its global memory.

The position-by-position patches run through ``transformer_lens.patching``; its progress bars
show with ``progress=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens import HookedTransformer

from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import DataError
from induction_bigram.incontext.decompose import LogitDecomposition, decompose_logits, global_memory_kl
from induction_bigram.incontext.patching import PatchingResult, corrupt, patch_in_context_against_bigram
from induction_bigram.incontext.theory import (
    Measurements,
    TheoryCheck,
    check_theory,
    measure,
    read_strengths,
    rung_prediction,
)
from induction_bigram.model import check_vocabulary


@dataclass(frozen=True)
class HijackStudyConfig:
    """Settings of :func:`run_hijack_study`.

    Attributes:
        length_fractions: prompt lengths as fractions of the training length T_train.
        max_count: n runs over 0..max_count (capped so that 2n + 1 <= T).
        per_cell: prompts per (T, n) cell.
        competing: (n_a, n_b) pairs for the two-output prompts, at T_train / 2.
        patch_count / patch_prompts / patch_length: n, batch size and length (<= T_train) of
            the aligned patching prompts.
        seed: seeds every prompt and the held-out split.
    """

    length_fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    max_count: int = 8
    per_cell: int = 16
    competing: tuple[tuple[int, int], ...] = ((1, 1), (2, 1), (1, 2), (3, 1), (1, 3), (2, 2), (4, 2), (2, 4))
    patch_count: int = 3
    patch_prompts: int = 32
    patch_length: int = 64
    seed: int = 0


@dataclass(frozen=True)
class HijackStudy:
    """Everything :func:`run_hijack_study` measured (tensors for plotting, dicts for JSON)."""

    measurements: Measurements
    prediction: Tensor
    check: TheoryCheck
    patching: dict[str, PatchingResult]
    example: LogitDecomposition
    example_tokens: Int[Tensor, " pos"]
    example_output: int
    example_favourite: int
    global_kl: float | None
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def summary(self) -> dict:
        """The JSON of ``induction-bigram logits --json``."""
        best = next(r for r in self.check.rungs if r.name == self.check.best)
        longest = max(self.check.hijack, key=int)
        return {
            "theory_r2": best.r2,
            "theory_r2_cells": best.r2_cells,
            "theory_best_rung": best.name,
            "patch_restore_layer2_head": self.patching["replace_outputs"].layer2_head_last,
            "patch_restore_layer1_after_trigger": self.patching["remove_triggers"].layer1_after_trigger,
            "patch_restore_ffn_last": self.patching["replace_outputs"].ffn_last,
            "hijack_threshold": self.check.hijack[longest]["measured"],
            "hijack_threshold_predicted": self.check.hijack[longest]["predicted"],
            "hijack_thresholds": self.check.hijack,
            "global_memory_kl": self.global_kl,
            "theory": self.check.to_dict(),
            "patching": {name: result.summary() for name, result in self.patching.items()},
            "curves": self.curves,
        }


def run_hijack_study(
    model: HookedTransformer,
    stats: BigramStats,
    triggers: Int[Tensor, " k"] | None,
    train_length: int,
    cfg: HijackStudyConfig = HijackStudyConfig(),
    progress: bool = False,
) -> HijackStudy:
    """Run the whole study on a trained model (see the module doc).

    Args:
        triggers: the fixed triggers the model was trained with (``None`` for random ones).
        train_length: T_train; prompt lengths are fractions of it.
        progress: show TransformerLens's patching progress bars.
    """
    if train_length > model.cfg.n_ctx:
        raise DataError(f"train_length {train_length} exceeds the model's n_ctx {model.cfg.n_ctx}")
    check_vocabulary(model, stats)
    model.eval()
    device = next(model.parameters()).device
    designer = PromptDesigner(stats, triggers, device)
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    lengths = sorted({max(4, round(f * train_length)) for f in cfg.length_fractions})
    batches = [
        designer.sample(length=T, n_output=n, batch_size=cfg.per_cell, generator=g)
        for T in lengths
        for n in range(0, min(cfg.max_count, (T - 1) // 2) + 1)
    ]
    middle = lengths[len(lengths) // 2]
    batches += [
        designer.sample(length=middle, n_output=a, n_rival=b, batch_size=cfg.per_cell, generator=g)
        for a, b in cfg.competing
        if 2 * (a + b) < middle
    ]
    meas = measure(model, batches)
    strengths = read_strengths(model)
    check = check_theory(meas, strengths, seed=cfg.seed)
    best = next(r for r in check.rungs if r.name == check.best)
    prediction = rung_prediction(meas, strengths, best)

    length = min(cfg.patch_length, train_length)
    aligned = designer.sample(
        length=length,
        n_output=cfg.patch_count,
        batch_size=cfg.patch_prompts,
        generator=g,
        pair_starts=designer.evenly_spaced(cfg.patch_count, length),
    )
    patching = {
        mode: patch_in_context_against_bigram(model, aligned, corrupt(aligned, stats.bigram, g, mode), progress)
        for mode in ("replace_outputs", "remove_triggers")
    }
    kl = None
    if not model.cfg.attn_only:
        kl = float(global_memory_kl(model, stats, triggers).nanmean())
    return HijackStudy(
        measurements=meas,
        prediction=prediction,
        check=check,
        patching=patching,
        example=decompose_logits(model, aligned.tokens[:1]),
        example_tokens=aligned.tokens[0].cpu(),
        example_output=int(aligned.output[0]),
        example_favourite=int(aligned.favourite[0]),
        global_kl=kl,
        curves=hijack_curves(meas, prediction - rung_prediction(meas, strengths, best, "favourite")),
    )


def hijack_curves(meas: Measurements, predicted_ic_difference: Tensor) -> dict[str, dict[str, list[float]]]:
    """Per length T, against n: mean P(o), P(g), measured xi_o - xi_g and the predicted one
    (predicted xi^IC difference plus the measured xi^G difference)."""
    curves = {}
    predicted = predicted_ic_difference + meas.global_output - meas.global_favourite
    single = meas.rival < 0
    for T in meas.length.unique().tolist():
        rows = single & (meas.length == T)
        counts = sorted(meas.n_output[rows].unique().tolist())
        mean = lambda x: [float(x[rows & (meas.n_output == n)].double().mean()) for n in counts]  # noqa: E731
        curves[str(T)] = {
            "n": [float(n) for n in counts],
            "prob_output": mean(meas.prob_output),
            "prob_favourite": mean(meas.prob_favourite),
            "difference": mean(meas.logit_difference),
            "difference_predicted": mean(predicted),
        }
    return curves
