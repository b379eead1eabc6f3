"""The attention layer of our TL 3 models: TL's ``Attention`` plus what TL has no switch for.

:class:`CircuitAttention` is a subclass, so every TL hook point (``hook_q`` ... ``hook_pattern``,
``hook_z``, ``hook_result`` with ``use_attn_result``) fires as in TL, and TL's settings, KV
cache and attention masks work unchanged. It adds, as modules on the forward path rather than
permanent hooks (which ``reset_hooks(including_permanent=True)`` removes):

- an optional term added to the scores, ``rel_pos``: a positional encoding's
  :attr:`~induction_bigram.model.encodings.Encoding.scores` module (``rpe``'s b_(t-s)), told the
  number of cached positions under a KV cache;
- an optional circuit hook point its output passes through (``circuit.hook_induction`` ...);
- the context check: more than ``n_ctx`` positions (cached ones included) is a
  :class:`~induction_bigram.errors.DataError`, never a silent read past the trained positions.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.components import Attention

from induction_bigram.hooks.circuit import RoutesOutput
from induction_bigram.model.components.checks import check_context_length, check_positions


class CircuitAttention(RoutesOutput, Attention):
    rel_pos: nn.Module | None

    def __init__(self, cfg, attn_type: str = "global", layer_id: int | None = None, scores: nn.Module | None = None):
        super().__init__(cfg, attn_type, layer_id)
        self.rel_pos = scores  # an encoding's term on the scores (rpe's b_(t-s)), or None

    def forward(
        self,
        query_input: Float[Tensor, "batch pos d_model"],
        key_input: Float[Tensor, "batch kv_pos d_model"],
        value_input: Float[Tensor, "batch kv_pos d_model"],
        past_kv_cache_entry=None,
        additive_attention_mask=None,
        attention_mask=None,
        position_bias=None,
    ) -> Float[Tensor, "batch pos d_model"]:
        out = super().forward(
            query_input, key_input, value_input, past_kv_cache_entry, additive_attention_mask, attention_mask
        )
        return self._routed(out)

    def calculate_attention_scores(
        self,
        q: Float[Tensor, "batch query_pos head_index d_head"],
        k: Float[Tensor, "batch key_pos head_index d_head"],
    ) -> Float[Tensor, "batch head_index query_pos key_pos"]:
        scores = super().calculate_attention_scores(q, k)
        batch, n_heads, n_query, n_key = scores.shape
        check_context_length(n_key, self.cfg.n_ctx)
        if self.rel_pos is not None:
            scores = scores + self.rel_pos(batch, n_heads, n_query, n_key)
        return scores

    def apply_rotary(self, x: Tensor, past_kv_pos_offset: int = 0, attention_mask=None) -> Tensor:
        # before TL indexes its rotary tables, which would raise a bare IndexError past n_ctx
        check_positions(x.shape[1], past_kv_pos_offset, attention_mask, self.cfg.n_ctx)
        return super().apply_rotary(x, past_kv_pos_offset, attention_mask)
