"""The attention layer of our models: TL's ``Attention`` plus what TL has no switch for.

:class:`CircuitAttention` is a subclass, so every TL hook point (``hook_q`` ... ``hook_pattern``,
``hook_z``, ``hook_result`` with ``use_attn_result``) fires exactly as in TL, and TL's
settings, KV cache and attention masks work unchanged. It adds, as modules on the forward
path rather than permanent hooks (which ``reset_hooks(including_permanent=True)`` removes):

- an optional relative-position bias ``rel_pos`` (:class:`~.positional.RelativePositionBias`),
  offset by the number of cached positions under a KV cache;
- an optional circuit hook point its output passes through (``circuit.hook_induction`` ...);
- the context check: more than ``n_ctx`` positions (cached ones included) is a
  :class:`~induction_bigram.errors.DataError`, never a silent read past the trained positions.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor
from transformer_lens.components import Attention

from induction_bigram.hooks.circuit import RoutesOutput
from induction_bigram.hooks.embed import check_context_length
from induction_bigram.hooks.positional import RelativePositionBias


class CircuitAttention(RoutesOutput, Attention):
    rel_pos: RelativePositionBias | None

    def __init__(self, cfg, attn_type: str = "global", layer_id: int | None = None, relative_bias: bool = False):
        super().__init__(cfg, attn_type, layer_id)
        self.rel_pos = RelativePositionBias(self.cfg.n_ctx) if relative_bias else None

    def forward(self, *args, **kwargs) -> Float[Tensor, "batch pos d_model"]:
        return self._routed(super().forward(*args, **kwargs))

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
