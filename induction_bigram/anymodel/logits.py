"""What a chosen induction head does to the logits of any TL model (``TransformerBridge``; TL 3: ``HookedTransformer``).

The logit split of docs/THEORY.md section 4 and the patching of section 6, at head resolution
(section 3.8).

Prompts (:func:`induction_prompts`) are built from the model's own vocabulary:

    [BOS] a_1 .. a_m  q o  b_1 .. b_k  q          (clean; the last position should predict o)
    [BOS] a_1 .. a_m  q o' b_1 .. b_k  q          (corrupted: o replaced by o')

with q, o, o' and the fillers a, b distinct where the vocabulary allows; q is drawn from
``triggers`` when given (a fixed-trigger head, section 3.7, only completes its triggers). The
metric is the logit difference xi_o - xi_o' at the last position.

- :func:`direct_logit_split`: TL's per-head direct logit attribution. The stream before the
  unembedding is a sum of components (every head's output, the MLPs, the embeddings, the
  accumulated biases: ``ActivationCache.get_full_resid_decomposition``); the final LayerNorm is
  linear once its scale is fixed, so each component is centred, divided by the scale the clean
  run cached (``apply_ln``), multiplied by the LayerNorm's weight and read by W_U. LayerNorm's
  bias and b_U form one more component, and the components sum to the logits. Without a final
  LayerNorm this is our models' split (``incontext/decompose.py``) at head resolution.
- :func:`patch_head`: the head's output (``hook_z``) from the clean run patched into the
  corrupted one, at the last position and at every position, with
  ``transformer_lens.patching`` restricted to that head; reported as the fraction of the logit
  difference restored, 0 = corrupted, 1 = clean (section 6's normalisation), with the gap it
  divides by; NaN when that gap is within noise (:class:`PatchingGap`).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
import transformer_lens.patching as tl_patching
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache

from induction_bigram.anymodel.heads import Head, bos_token, head_name, token_pool
from induction_bigram.errors import DataError, ModelShapeError
from induction_bigram.model import Model, norm_parameters
from induction_bigram.serialise import Record

PROMPT_LENGTH = 32


@dataclass(frozen=True)
class InductionPrompts:
    """Clean and corrupted prompts, position for position (module doc).

    Attributes:
        clean / corrupted: the token ids (BOS first when the model uses one).
        trigger / output / replacement: q, o and o' of each prompt.
    """

    clean: Int[Tensor, "batch pos"]
    corrupted: Int[Tensor, "batch pos"]
    trigger: Int[Tensor, " batch"]
    output: Int[Tensor, " batch"]
    replacement: Int[Tensor, " batch"]


def _draw(pool: Tensor, n: int, g: torch.Generator) -> Tensor:
    """n tokens of ``pool``, distinct when the pool is large enough."""
    if len(pool) >= n:
        return pool[torch.randperm(len(pool), generator=g)[:n]]
    return pool[torch.randint(len(pool), (n,), generator=g)]


def induction_prompts(
    model: Model,
    n_prompts: int = 32,
    length: int = PROMPT_LENGTH,
    seed: int = 0,
    triggers: Int[Tensor, " k"] | None = None,
    vocabulary: Int[Tensor, " n"] | None = None,
) -> InductionPrompts:
    """``n_prompts`` prompts of ``length`` tokens (capped by n_ctx; BOS not counted), seeded.

    "q o" sits at a random position from 1 on: at position 0 a previous-token head can only
    attend to itself, so the key there would claim q as its own predecessor (docs/THEORY.md section 3.5).
    """
    pool = token_pool(model, vocabulary)
    bos = bos_token(model)
    length = min(length, model.cfg.n_ctx - (bos is not None))
    if length < 5 or len(pool) < 3 or n_prompts < 1:
        raise DataError(f"induction prompts need length >= 5 and 3 tokens; got length {length}, {len(pool)} tokens")
    choices = pool if triggers is None else token_pool(model, triggers)
    g = torch.Generator().manual_seed(seed)
    rows, corrupted_rows, q, o, r = [], [], [], [], []
    for _ in range(n_prompts):
        trigger = choices[torch.randint(len(choices), (1,), generator=g)]
        others = pool[(pool != trigger) & ~torch.isin(pool, choices)]
        others = others if len(others) >= 2 else pool[pool != trigger]
        output, replacement = _draw(others, 2, g)
        filler_pool = others[(others != output) & (others != replacement)]
        filler = _draw(filler_pool if len(filler_pool) else others, length - 3, g)
        at = int(torch.randint(1, length - 3, (1,), generator=g))
        rows.append(torch.cat([filler[:at], trigger, output[None], filler[at:], trigger]))
        corrupted_rows.append(torch.cat([filler[:at], trigger, replacement[None], filler[at:], trigger]))
        q.append(trigger[0])
        o.append(output)
        r.append(replacement)
    clean, corrupted = torch.stack(rows), torch.stack(corrupted_rows)
    trigger, output, replacement = torch.stack(q), torch.stack(o), torch.stack(r)
    if bos is not None:
        start = torch.full((n_prompts, 1), bos, dtype=torch.long)
        clean, corrupted = torch.cat([start, clean], 1), torch.cat([start, corrupted], 1)
    device = model.cfg.device
    return InductionPrompts(
        clean.to(device), corrupted.to(device), trigger.to(device), output.to(device), replacement.to(device)
    )


def logit_difference(
    logits: Float[Tensor, "batch pos vocab"], first: Int[Tensor, " batch"], second: Int[Tensor, " batch"]
) -> Float[Tensor, " batch"]:
    """xi_first - xi_second at the last position of each prompt (o against o' here, o against
    the global favourite g in the in-context study)."""
    last = logits[:, -1]
    rows = torch.arange(len(last), device=last.device)
    return last[rows, first] - last[rows, second]


GAP_STANDARD_ERRORS = 3.0
"""A clean/corrupted gap is measured when it exceeds this many standard errors over prompts ..."""
MIN_RELATIVE_GAP = 0.1
"""... and this fraction of the mean |logit difference| of the two runs (a significant but tiny
gap, such as an untrained model's real but slight response to the context, gives fractions that
say nothing)."""


@dataclass(frozen=True)
class PatchingGap(Record):
    """The gap a patch is normalised by: restored = (patched - corrupted) / (clean - corrupted),
    each a mean logit difference over the prompts (docs/THEORY.md section 6).

    A fraction of a gap within noise means nothing (an untrained model's gap of 0.013 gave
    "restored" fractions of -1.57 and 3.48), so the gap is *measurable* only when it exceeds
    :data:`GAP_STANDARD_ERRORS` standard errors of the per-prompt gaps and
    :data:`MIN_RELATIVE_GAP` of the mean absolute logit difference (``scale``); otherwise every
    fraction is NaN.

    Attributes:
        clean / corrupted: the mean logit differences of the two runs.
        standard_error: the standard error of the mean per-prompt gap (NaN for one prompt).
        scale: the mean absolute logit difference of the two runs (for the rounding floor).
    """

    clean: float
    corrupted: float
    standard_error: float
    scale: float

    @property
    def gap(self) -> float:
        return self.clean - self.corrupted

    @property
    def measurable(self) -> bool:
        sizeable = abs(self.gap) > MIN_RELATIVE_GAP * self.scale and self.gap != 0
        above_noise = math.isnan(self.standard_error) or abs(self.gap) > GAP_STANDARD_ERRORS * self.standard_error
        return sizeable and above_noise

    def restored(self, patched: Tensor) -> Tensor:
        """The fraction of the gap a patched run's mean logit difference restores (NaN when the
        gap is not measurable)."""
        if not self.measurable:
            return torch.full_like(patched, torch.nan)
        return (patched - self.corrupted) / self.gap

    def derived(self) -> dict[str, Any]:
        return {"gap": self.gap, "measurable": self.measurable}


def patching_gap(clean: Float[Tensor, " batch"], corrupted: Float[Tensor, " batch"]) -> PatchingGap:
    """The :class:`PatchingGap` of per-prompt logit differences of the clean and corrupted runs."""
    gaps = (clean - corrupted).double()
    error = float(gaps.std() / math.sqrt(len(gaps))) if len(gaps) > 1 else math.nan
    scale = float(torch.cat([clean, corrupted]).double().abs().mean())
    return PatchingGap(float(clean.double().mean()), float(corrupted.double().mean()), error, scale)


def restoration_metric(
    gap: PatchingGap, first: Int[Tensor, " batch"], second: Int[Tensor, " batch"]
) -> Callable[[Tensor], Tensor]:
    """The normalised metric ``transformer_lens.patching`` calls on patched logits: 0 for the
    corrupted run, 1 for the clean one, NaN when the gap is not measurable."""
    if not gap.measurable:
        warnings.warn(
            f"the clean/corrupted logit difference gap {gap.gap:.4g} is within {GAP_STANDARD_ERRORS:g} standard "
            f"errors ({gap.standard_error:.3g}) or under {MIN_RELATIVE_GAP:g} of the mean |logit difference| "
            f"({gap.scale:.3g}): the restored fractions are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    return lambda logits: gap.restored(logit_difference(logits, first, second).mean())


# -- direct logit attribution -------------------------------------------------------------------


@dataclass(frozen=True)
class HeadLogitSplit:
    """The logits at the last position, split into components (module doc).

    Attributes:
        head: the chosen head.
        labels: component names: TL's (``L0H0`` .., ``0_mlp_out`` .., ``embed``, ``pos_embed``,
            ``bias``) and ``unembed_bias`` (final LayerNorm's bias and b_U).
        parts: each component's direct contribution to the logits.
        logits: the model's logits (equal to ``parts.sum(0)`` to float precision).
    """

    head: Head
    labels: tuple[str, ...]
    parts: Float[Tensor, "component batch vocab"]
    logits: Float[Tensor, "batch vocab"]

    def __getitem__(self, label: str) -> Float[Tensor, "batch vocab"]:
        return self.parts[self.labels.index(label)]

    @property
    def head_logits(self) -> Float[Tensor, "batch vocab"]:
        """The chosen head's direct contribution."""
        return self[head_name(self.head)]

    @property
    def rest_logits(self) -> Float[Tensor, "batch vocab"]:
        """Every other component's, summed."""
        return self.parts.sum(0) - self.head_logits

    def differences(self, prompts: InductionPrompts) -> dict[str, float]:
        """Mean xi_o - xi_o' of the head, of the rest, and of the logits."""
        rows = torch.arange(len(self.logits), device=self.logits.device)

        def diff(x: Tensor) -> float:
            return (x[rows, prompts.output] - x[rows, prompts.replacement]).mean().item()

        return {"head": diff(self.head_logits), "rest": diff(self.rest_logits), "logits": diff(self.logits)}


@torch.no_grad()
def direct_logit_split(model: Model, head: Head, tokens: Int[Tensor, "batch pos"]) -> HeadLogitSplit:
    """Split the logits at the last position of ``tokens`` into every component's direct
    contribution, the final LayerNorm's cached scale applied (module doc)."""
    if not (0 <= head[0] < model.cfg.n_layers and 0 <= head[1] < model.cfg.n_heads):
        raise ModelShapeError(f"no head {head}: the model has {model.cfg.n_layers} layers of {model.cfg.n_heads} heads")
    logits, cache = model.run_with_cache(tokens)
    stack, labels = cache.get_full_resid_decomposition(
        apply_ln=True, pos_slice=-1, expand_neurons=False, return_labels=True
    )
    w, b = norm_parameters(getattr(model, "ln_final", None))
    # apply_ln centres and divides by the cached scale; the weight is the rest of LN's linear part
    stack = stack if w is None else stack * w
    W_U = model.unembed.W_U
    constant = model.unembed.b_U if b is None else b @ W_U + model.unembed.b_U
    parts = torch.cat([stack @ W_U, constant.expand(1, *stack.shape[1:-1], -1)])
    return HeadLogitSplit((int(head[0]), int(head[1])), (*labels, "unembed_bias"), parts, logits[:, -1])


# -- patching -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadPatching(Record):
    """Fractions of the clean logit difference restored by the head's clean output.

    Attributes:
        gap: the clean and corrupted mean xi_o - xi_o' and whether their gap is measurable
            (:class:`PatchingGap`); when it is not, both fractions are NaN.
        restored_last: the head's output patched at the last position only.
        restored_all: patched at every position.
    """

    head: Head
    gap: PatchingGap
    restored_last: float
    restored_all: float


def patch_head_metric(
    model: Model,
    head: Head,
    corrupted_tokens: Int[Tensor, "batch pos"],
    clean_cache: ActivationCache,
    metric: Callable[[Tensor], Tensor],
    all_positions: bool = False,
    progress: bool = False,
) -> float:
    """``metric`` of the corrupted run with ``head``'s ``hook_z`` taken from ``clean_cache``, at
    the last position (or every position), through ``transformer_lens.patching`` with a
    one-row index (only this head is patched; its tqdm bar is hidden unless ``progress``)."""
    layer, index = head
    if all_positions:
        rows = pd.DataFrame({"layer": [layer], "head": [index]})
        sweep = tl_patching.get_act_patch_attn_head_out_all_pos
    else:
        rows = pd.DataFrame({"layer": [layer], "pos": [corrupted_tokens.shape[1] - 1], "head": [index]})
        sweep = tl_patching.get_act_patch_attn_head_out_by_pos
    quiet = contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO())
    with quiet:
        result = sweep(model, corrupted_tokens, clean_cache, metric, index_axis_names=None, index_df=rows)
    return float(result[0])


def clean_corrupted_gap(model: Model, prompts: InductionPrompts) -> tuple[PatchingGap, ActivationCache]:
    """The :class:`PatchingGap` of xi_o - xi_o' between the clean and the corrupted prompts, and the
    clean run's cache that patching copies from."""
    o, o_prime = prompts.output, prompts.replacement
    clean_logits, clean_cache = model.run_with_cache(prompts.clean)
    gap = patching_gap(
        logit_difference(clean_logits, o, o_prime), logit_difference(model(prompts.corrupted), o, o_prime)
    )
    return gap, clean_cache


@torch.no_grad()
def patch_head(model: Model, head: Head, prompts: InductionPrompts, progress: bool = False) -> HeadPatching:
    """Patch the head's clean output into the corrupted prompts (module doc); the fractions are
    NaN, with a warning, when the clean/corrupted gap is not measurable (:class:`PatchingGap`)."""
    gap, clean_cache = clean_corrupted_gap(model, prompts)
    restored = restoration_metric(gap, prompts.output, prompts.replacement)
    head = (int(head[0]), int(head[1]))
    return HeadPatching(
        head=head,
        gap=gap,
        restored_last=patch_head_metric(model, head, prompts.corrupted, clean_cache, restored, False, progress),
        restored_all=patch_head_metric(model, head, prompts.corrupted, clean_cache, restored, True, progress),
    )
