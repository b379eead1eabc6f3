"""The analyses of docs/THEORY.md sections 3, 4 and 6 on any TransformerLens model of 2 layers or
more (section 3.8): several heads per layer, LayerNorm, biases, learned embeddings. On TL 4 (the
default install) that is a ``TransformerBridge``: one you configure
(``TransformerBridge.boot_native(TransformerBridgeConfig(...))``) or a Hugging Face model
(``TransformerBridge.boot_transformers(name)``), read through TL's weight accessors (``W_Q``,
``OV``; norms through :func:`~induction_bigram.model.norm_parameters`); on TL 3.9 a
``HookedTransformer``. Tested on the models the package builds and on ``boot_native`` bridges
(``HookedTransformer`` s on TL 3), before and after ``process_weights`` (``fold_ln``).

- :mod:`.heads`: score every head as previous-token, induction and duplicate-token head on
  repeated random tokens, and rank (previous-token head, induction head) pairs; how far back
  each head looks on any text (:func:`.attention_by_offset`);
- :mod:`.circuit`: whether the best pair is an induction circuit at all (:func:`.find_head_pairs`,
  with a floor above what a uniform head scores);
- :mod:`.projections`: the memories W_O2, W_K2, W_K1 of a chosen pair, with each head's own
  weights and LayerNorm folded in, as the same :class:`MemoryReport` our models get;
- :mod:`.logits`: prompts with a repeated "q o" from the model's vocabulary, the chosen head's
  direct logit attribution against everything else, and patching of its output;
- :mod:`.paths`: the logits as a sum over paths (each source, direct or through the MLPs), with
  the in-context and global totals (section 4.1).
"""

from induction_bigram.anymodel.circuit import HeadPairSearch, circuit_floor, find_head_pairs
from induction_bigram.anymodel.heads import (
    Head,
    HeadPair,
    HeadScores,
    attention_by_offset,
    head_pairs,
    repeated_random_tokens,
    score_heads,
    track_head_scores,
)
from induction_bigram.anymodel.logits import (
    HeadLogitSplit,
    HeadPatching,
    InductionPrompts,
    PatchingGap,
    direct_logit_split,
    induction_prompts,
    logit_difference,
    patch_head,
    patch_head_metric,
    patching_gap,
    restoration_metric,
)
from induction_bigram.anymodel.paths import PathDecomposition, path_decomposition
from induction_bigram.anymodel.projections import (
    effective_positional_embeddings,
    effective_token_embeddings,
    pair_memory_report,
    pair_projections,
    project_induction,
    project_positions,
    project_readout,
)

__all__ = [
    "Head",
    "HeadLogitSplit",
    "HeadPair",
    "HeadPairSearch",
    "HeadPatching",
    "HeadScores",
    "InductionPrompts",
    "PatchingGap",
    "PathDecomposition",
    "attention_by_offset",
    "circuit_floor",
    "direct_logit_split",
    "effective_positional_embeddings",
    "effective_token_embeddings",
    "find_head_pairs",
    "head_pairs",
    "induction_prompts",
    "logit_difference",
    "pair_memory_report",
    "pair_projections",
    "patch_head",
    "patch_head_metric",
    "path_decomposition",
    "patching_gap",
    "restoration_metric",
    "project_induction",
    "project_positions",
    "project_readout",
    "repeated_random_tokens",
    "score_heads",
    "track_head_scores",
]
