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
============  ==============================================================================

The oversight protocol. A prompt of length k T_train (k = 1..4) whose first (k - 1) T_train
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

Measured with the ``cpu`` preset (d = 128, T_train = 64, K = 5, AdamW 0.03, 1,500 steps,
batch 64, 256 prompts per (protocol, k); one CPU thread, about 9 minutes for the four
variants while another process kept the second core busy). In-context accuracy on the last
window, oversight / ordinary protocol, k = 1, 2, 3, 4:

===========  ===========================  ===========================  =====================
variant      oversight                    ordinary                     attention on t - 1
                                                                       inside / beyond
===========  ===========================  ===========================  =====================
ape          1.00  0.27  0.25  0.13       1.00  0.97  0.95  0.94       0.56 / 0.01
rpe          1.00  0.99  0.66  0.32       1.00  1.00  0.99  0.99       0.93 / 0.37
rpe-clipped  1.00  1.00  0.92  0.68       1.00  1.00  1.00  0.99       0.93 / 0.52
rope         1.00  1.00  1.00  1.00       1.00  1.00  1.00  1.00       0.64 / 0.62
rope-nobias  0.78  0.41  0.28  0.15       0.78  0.78  0.70  0.62       0.08 / 0.01
nope         0.89  0.46  0.33  0.20       0.89  0.84  0.80  0.79       0.07 / 0.01 (layers 1, 2)
===========  ===========================  ===========================  =====================

- APE: W_K^1 recall 1.0 up to t = 53, 0 from t = 64 on (positions near T_train are barely
  learned: few later queries look at them); previous-token argmax accuracy 0.89 inside,
  0.002 beyond. Under the ordinary protocol it still scores 0.94-0.97 beyond T_train.
- RPE: argmax at t - 1 at every position (accuracy 1.000), but b_1 = 3.9 against b_o = -2.5 on
  the trained offsets 2..63 and 0 on the untrained ones (no gradient ever reaches them), so the
  weight on t - 1 falls from 0.87-0.98 inside T_train to 0.20 at t = 255, and the oversight
  accuracy with it at 3x, 4x. Sharing the last trained bias (``rpe-clipped``) recovers part of
  it; what remains goes with the weight on t - 1 still falling (0.34 at t = 255): a fixed
  score gap spread over more and more keys.
- rotary: without biases no previous-token head forms (weight on t - 1: 0.08; in-context
  accuracy 0.78 at T_train after 1,500 steps). With trainable b_Q, b_K the bias term gives
  offsets 0 and 1 scores 7.9 and 8.6 and every other offset at most about 4, at every length,
  so the head splits between t (0.26-0.32) and t - 1 (0.6-0.65) and the model is perfect at
  every length.
- NoPE: no previous-token head in layer 1 or 2 (argmax accuracy 0.05, 0.07); the model reaches
  0.89 in range with an approximate mechanism that degrades with length (0.46 at 2x).
  Training also W_V, W_O of layers 1 and 2 diverged at lr 0.03 (accuracy 0.01) and reached
  only 0.75 at lr 0.005, so the default trained parts are kept.

The study's four parts: :class:`LengthsConfig` and :data:`PRESETS` (``induction-bigram lengths
--out runs/lengths --preset cpu --set lengths.multiples=1,2``), :func:`run` (writes ``result.json``),
:class:`LengthsResult` (``to_dict`` / ``from_dict``), and
:func:`induction_bigram.lengths.figures.figures`; :func:`claims` judges the claims above.

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
from induction_bigram.lengths.results import LengthsResult, ProtocolResult, VariantResult
from induction_bigram.lengths.study import WHAT_WAS_TRIED, claims, clipped_relative_bias, run

__all__ = [
    "MAIN_VARIANTS",
    "PRESETS",
    "PROTOCOLS",
    "VARIANTS",
    "WHAT_WAS_TRIED",
    "LengthsConfig",
    "LengthsResult",
    "LengthsSettings",
    "PositionCounts",
    "Protocol",
    "ProtocolResult",
    "VariantResult",
    "W_K1_recall_by_position",
    "claims",
    "clipped_relative_bias",
    "count_positions",
    "evaluate_lengths",
    "in_range_query",
    "protocol_batch",
    "rotary_bias_profile",
    "run",
    "variant_config",
    "window",
]
