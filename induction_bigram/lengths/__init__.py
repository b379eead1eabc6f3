"""Positional encodings and long prompts: APE against RPE, rotary and NoPE.

docs/THEORY.md section 5.6 (Wang & Sato): with absolute positions p_t (APE) the previous-token
memory W_K^1 = sum_t p_t p_(t-1)^T is only learned for the positions t < T_train seen in
training, so in-context evidence that lies beyond them is overlooked; a relative bias
b_(t-s) (RPE) is the same at every position, so the previous-token head works at any length.

Variants (all genuine ``HookedTransformer`` s, built by :func:`~induction_bigram.model.build_model`
from :func:`variant_config`; every one has ``n_ctx = k_max T_train``; choose them with
``lengths.variants``):

============  ==============================================================================
``ape``       random absolute p_t in the stream; p_t for t >= T_train exist but are never seen
``rpe``       score + b_(t-s) in layer 1 (``blocks.0.attn.rel_pos.bias``); no p_t; layer 2
              content only
``rope``      rotary in layer 1 only, with trainable b_Q, b_K (``model.rope_qk_bias``): the
              score gains b_Q^T R_(s-t) b_K, a function of the offset alone
``rope-nobias``  rotary in layer 1 with W_Q = I and no biases (the prototype's failure)
``nope``      three attention layers, no positions at all, causal mask only
``rpe-clipped``  not trained: the trained ``rpe`` model evaluated with b_o := b_(T_train - 1)
              for every o >= T_train (T5's shared last bucket)
``rpe-logn``  not trained: the trained ``rpe`` model evaluated with b_o := mean(b_2..b_(T_train - 1))
              for o >= T_train and layer 1's scores times max(1, ln(t + 1) / ln T_train)
============  ==============================================================================

The oversight protocol. A prompt of length k T_train (k = 1, 2, 3, 4, 6, 8) whose first (k - 1) T_train
inputs hold no trigger (global bigram text with the triggers excluded), followed by the trigger
process: every in-context target (label c >= 2) lies in the last window
[(k - 1) T_train, k T_train). "kx" is the in-context accuracy on that window; "1x" is the
ordinary prompt of the training length. The ordinary protocol runs the trigger process over the
whole long prompt and also scores the last window: there an APE model can still succeed,
because the first occurrences of each trigger lie inside the trained positions and layer 2
only needs one key "preceded by q" with the right output.

Measured quantities (:class:`VariantResult`):

- in-context accuracy on the last window per k, both protocols, and by position (for the
  oversight protocol, position p is scored on the prompts whose window holds p);
- layer 1's previous-token accuracy by position: argmax_s of ``blocks.0.attn.hook_pattern``
  at query t equals t - 1, at every position t >= 1 (and separately at the positions t whose
  input z_(t-1) is a trigger), on ordinary prompts of the longest length; NoPE reports its
  first two layers;
- W_K^1 recall by position (APE): for each t, is argmax_(s<t) p_t^T W_K^1 p_s = t - 1?
  (:func:`~induction_bigram.memories.projections.project_W_K1` over positions 0..k_max T_train - 1);
- what plays the role of W_K^1 elsewhere: the mean layer-1 score (after the 1/sqrt(d)
  scaling, bias included) as a function of the offset t - s, for queries inside and beyond
  T_train; the learned b_(t-s) (rpe); b_Q^T R_(s-t) b_K / sqrt(d) (rope);
- the W_O^2 and W_K^2 memories (:func:`~induction_bigram.memories.projections.memory_report`; NoPE: the
  read-out of its last layer only).
- the mean attention weight on t - 1 by position: the argmax can stay at t - 1 while the
  weight there is diluted over more and more keys.

What the variants measure is not written here: ``induction-bigram lengths`` (or ``reproduce``)
writes it to ``result.json`` and its figures, and docs/report-quick/lengths holds the report's
run over seeds.

The study's four parts: :class:`LengthsConfig` and :data:`PRESETS` (``induction-bigram lengths
--out runs/lengths --preset cpu --set lengths.multiples=1,2``), :func:`run` (writes ``result.json``),
:class:`LengthsResult` (``to_dict`` / ``from_dict``), and
:func:`induction_bigram.lengths.figures.figures`; :func:`claims` judges the claims above, and
:func:`induction_bigram.lengths.markdown.lengths_section` is its part of ``REPORT.md``.

Evaluation runs ``lengths.chunk_size`` sequences at a time under ``torch.no_grad()`` and keeps only
per-position counts, so memory stays bounded whatever the batch.
"""

from induction_bigram.lengths.config import (
    MAIN_VARIANTS,
    PRESETS,
    PROTOCOLS,
    VARIANTS,
    LengthsConfig,
    LengthsSettings,
    Protocol,
    variant_config,
)
from induction_bigram.lengths.evaluate import W_K1_recall_by_position, evaluate_lengths, rotary_bias_profile
from induction_bigram.lengths.protocol import PositionCounts, count_positions, in_range_query, protocol_batch, window
from induction_bigram.lengths.results import LengthsResult, ProtocolResult, VariantResult, accuracy_over_seeds
from induction_bigram.lengths.study import RECIPES, claims, clipped_relative_bias, length_scaled_layer1, run

__all__ = [
    "MAIN_VARIANTS",
    "PRESETS",
    "PROTOCOLS",
    "VARIANTS",
    "RECIPES",
    "LengthsConfig",
    "LengthsResult",
    "LengthsSettings",
    "PositionCounts",
    "Protocol",
    "ProtocolResult",
    "VariantResult",
    "W_K1_recall_by_position",
    "accuracy_over_seeds",
    "claims",
    "clipped_relative_bias",
    "count_positions",
    "evaluate_lengths",
    "in_range_query",
    "length_scaled_layer1",
    "protocol_batch",
    "rotary_bias_profile",
    "run",
    "variant_config",
    "window",
]
