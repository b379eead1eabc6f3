"""Activation patching, in-context against bigram (docs/THEORY.md section 6).

Clean prompt: "q o" occurs n times, then q. Corrupted prompt: the same, with every o after a q
replaced by a token drawn from pi_b(. | q) (or with the earlier q's replaced by filler). The
metric is the logit difference xi_o - xi_g at the last position, normalised so that the
corrupted run scores 0 and the clean run 1:

    restored = (mean diff(patched) - mean diff(corrupted)) / (mean diff(clean) - mean diff(corrupted))

(:func:`~induction_bigram.anymodel.logits.restoration_metric`, shared with ``patch_head``: NaN
when the gap is within noise, :class:`~induction_bigram.anymodel.logits.PatchingGap`).

Patches (clean activations into the corrupted run):

- the residual stream by layer and position, and every head's output by layer and position,
  with ``transformer_lens.patching``;
- the layer-2 (last-layer) head output at the last position;
- the layer-1 head output at the positions after each q (S), all at once;
- the feed-forward output at the last position (models with an FFN).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
import transformer_lens.patching as tl_patching
from jaxtyping import Bool, Float, Int
from torch import Tensor
from transformer_lens import ActivationCache

from induction_bigram.anymodel.logits import PatchingGap, logit_difference, patching_gap, restoration_metric
from induction_bigram.data.prompts import DesignedPrompts, check_prompts
from induction_bigram.data.task import cdf, sample_from_cdf
from induction_bigram.errors import DataError, ModelShapeError
from induction_bigram.hooks import patch_where
from induction_bigram.model import Model, check_tokens
from induction_bigram.serialise import Record


def corrupt(
    prompts: DesignedPrompts,
    bigram: Float[Tensor, "vocab vocab"],
    generator: torch.Generator,
    mode: Literal["replace_outputs", "remove_triggers"] = "replace_outputs",
) -> Int[Tensor, "batch pos"]:
    """Corrupted copies of designed prompts, position for position.

    ``replace_outputs``: each token at a position in S (right after an earlier q) is replaced
    by a draw from pi_b(. | q) that differs from it. ``remove_triggers``: each earlier q is
    replaced by a draw from pi_b(. | previous token) that is not q, so S becomes empty.
    """
    tokens = prompts.tokens.clone()
    B, T = tokens.shape
    bigram = bigram.to(tokens.device).float()
    u = torch.rand(B, T, generator=generator, device=tokens.device)
    if mode == "replace_outputs":
        sites = prompts.after_trigger
        previous = prompts.trigger[:, None].expand(B, T)
    elif mode == "remove_triggers":
        sites = torch.zeros_like(prompts.after_trigger)
        sites[:, 1:-1] = tokens[:, 1:-1] == prompts.trigger[:, None]
        previous = torch.cat([tokens[:, :1], tokens[:, :-1]], dim=1)
    else:
        raise DataError(f"unknown corruption mode {mode!r}")
    rows, cols = sites.nonzero(as_tuple=True)
    probs = bigram[previous[rows, cols]].clone()
    probs[torch.arange(len(rows), device=probs.device), tokens[rows, cols]] = 0.0  # must differ
    if mode == "remove_triggers":
        probs[:, prompts.trigger[rows]] = 0.0
    tokens[rows, cols] = sample_from_cdf(cdf(probs), u[rows, cols])
    return tokens


@dataclass(frozen=True)
class PatchingResult(Record):
    """Fractions of the clean logit difference restored (0 = corrupted, 1 = clean).

    Attributes:
        gap: the clean and corrupted mean xi_o - xi_g and whether their gap is measurable
            (:class:`~induction_bigram.anymodel.logits.PatchingGap`); when it is not, every
            fraction is NaN.
        resid_pre: restoration by patching ``blocks.{l}.hook_resid_pre`` at each position.
        head_out: restoration by patching each head's output (layer, position).
        layer2_head_last: the last attention layer's head output at the last position.
        layer1_after_trigger: layer 1's head output at every position of S at once.
        ffn_last: the feed-forward output at the last position (NaN without an FFN).
        has_ffn: whether the model has a feed-forward layer to patch: its own field, so that a
            result read back from JSON (where NaN is null) still tells "no FFN" from a gap too
            small to divide by.
        positions_after_trigger: S, when the prompts are aligned (else ``None``).
    """

    gap: PatchingGap
    resid_pre: Float[Tensor, "layer pos"]
    head_out: Float[Tensor, "layer pos"]
    layer2_head_last: float
    layer1_after_trigger: float
    ffn_last: float
    has_ffn: bool
    positions_after_trigger: list[int] | None = field(default=None)

    @property
    def clean_difference(self) -> float:
        return self.gap.clean

    @property
    def corrupted_difference(self) -> float:
        return self.gap.corrupted

    def summary(self) -> dict[str, float | None]:
        return {
            "clean_difference": self.clean_difference,
            "corrupted_difference": self.corrupted_difference,
            "gap_measurable": self.gap.measurable,
            "restore_layer2_head_last": self.layer2_head_last,
            "restore_layer1_after_trigger": self.layer1_after_trigger,
            "restore_ffn_last": self.ffn_last if self.has_ffn else None,
        }


def patch_positions(
    model: Model,
    corrupted_tokens: Int[Tensor, "batch pos"],
    clean_cache: ActivationCache,
    hook_name: str,
    where: Bool[Tensor, "batch pos"],
    metric: Callable[[Tensor], Tensor],
) -> float:
    """Run the corrupted prompts with ``hook_name`` taken from the clean cache where ``where``."""
    if hook_name not in model.hook_dict:
        raise ModelShapeError(f"this model has no hook point {hook_name!r} to patch")
    fired: list[str] = []
    with torch.no_grad():
        logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(hook_name, patch_where(clean_cache, where, fired))])
    if not fired:  # TL registers some hook points (hook_mlp_out) even where no layer uses them
        raise ModelShapeError(f"this model has no layer behind hook point {hook_name!r} to patch")
    return metric(logits).item()


@contextlib.contextmanager
def _tl_progress_bars(show: bool) -> Iterator[None]:
    """``transformer_lens.patching`` draws a tqdm bar on stderr for every sweep and has no
    option to hide it; unless ``show``, stderr is held back for the sweep and any warning
    raised meanwhile is re-issued afterwards."""
    if show:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@torch.no_grad()
def patch_in_context_against_bigram(
    model: Model,
    prompts: DesignedPrompts,
    corrupted_tokens: Int[Tensor, "batch pos"],
    progress: bool = False,
) -> PatchingResult:
    """Every patch of the module doc, on one batch of clean/corrupted prompts (``progress``:
    show TransformerLens's bar for each layer-by-position sweep)."""
    check_prompts(prompts.tokens, prompts.trigger)
    check_tokens(model, prompts.tokens)
    if corrupted_tokens.shape != prompts.tokens.shape:
        raise DataError(
            f"corrupted prompts have shape {tuple(corrupted_tokens.shape)}, clean {tuple(prompts.tokens.shape)}"
        )
    model.eval()
    clean_logits, clean_cache = model.run_with_cache(prompts.tokens)
    o, g = prompts.output, prompts.favourite
    gap = patching_gap(logit_difference(clean_logits, o, g), logit_difference(model(corrupted_tokens), o, g))
    metric = restoration_metric(gap, o, g)
    last_layer = model.cfg.n_layers - 1
    last = torch.zeros_like(prompts.after_trigger)
    last[:, -1] = True
    with _tl_progress_bars(progress):
        head_out = tl_patching.get_act_patch_attn_head_out_by_pos(model, corrupted_tokens, clean_cache, metric)
        resid_pre = tl_patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)
    aligned = bool((prompts.after_trigger == prompts.after_trigger[:1]).all())
    return PatchingResult(
        gap=gap,
        resid_pre=resid_pre,
        head_out=head_out[..., 0],
        layer2_head_last=patch_positions(
            model, corrupted_tokens, clean_cache, f"blocks.{last_layer}.attn.hook_z", last, metric
        ),
        layer1_after_trigger=patch_positions(
            model, corrupted_tokens, clean_cache, "blocks.0.attn.hook_z", prompts.after_trigger, metric
        ),
        ffn_last=math.nan
        if model.cfg.attn_only
        else patch_positions(model, corrupted_tokens, clean_cache, f"blocks.{last_layer}.hook_mlp_out", last, metric),
        has_ffn=not model.cfg.attn_only,
        positions_after_trigger=prompts.after_trigger[0].nonzero().flatten().tolist() if aligned else None,
    )
