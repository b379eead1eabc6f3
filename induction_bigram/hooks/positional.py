"""Positional variants of layer 1 that TransformerLens has no switch for.

- ``rpe``: :class:`RelativePositionBias`, a learned scalar b_(t-s) per offset, added to layer
  1's attention scores (T5-style) by :class:`~induction_bigram.hooks.attention.CircuitAttention`
  before the causal mask, so ``hook_attn_scores`` sees score + b_(t-s). It is a parameter
  (``blocks.0.attn.rel_pos.bias``), so it trains, saves and loads like any other; its hook
  point ``blocks.0.attn.rel_pos.hook_bias`` carries the bias as [batch, head, query_pos,
  key_pos] (a broadcast view), and under a KV cache the query positions start after the
  cached ones. TL's config cannot express it: such a model says
  ``positional_embedding_type="standard"`` with W_pos = 0 (:func:`induction_bigram.describe`).
- ``rope``: TL applies rotary to every layer. :func:`make_layer_content_only` sets a layer's
  rotary frequencies to zero (cos = 1, sin = 0), so its "rotation" is the identity and its
  scores depend on content only, while layer 1 keeps the real rotation.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens import HookedTransformer
from transformer_lens.hook_points import HookPoint


class RelativePositionBias(nn.Module):
    """b_(t-s) for offsets 0..n_ctx-1, added to the causal scores of one attention layer."""

    def __init__(self, n_ctx: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_ctx))
        self.hook_bias = HookPoint()  # [batch, head, query_pos, key_pos]

    def forward(
        self, batch: int, n_heads: int, n_query: int, n_key: int
    ) -> Float[Tensor, "batch head query_pos key_pos"]:
        device = self.bias.device
        # under a KV cache the queries are the last n_query of the n_key positions
        query_positions = torch.arange(n_key - n_query, n_key, device=device)
        offsets = query_positions[:, None] - torch.arange(n_key, device=device)
        # offsets < 0 are masked by the causal mask anyway; clamp keeps the gather in range
        bias = self.bias[offsets.clamp_min(0)]
        return self.hook_bias(bias.expand(batch, n_heads, n_query, n_key))


def make_layer_content_only(model: HookedTransformer, layer: int) -> None:
    """Zero the rotary frequencies of one layer of a rotary model (rotation by angle 0)."""
    attn = model.blocks[layer].attn
    with torch.no_grad():
        attn.rotary_cos.fill_(1.0)
        attn.rotary_sin.fill_(0.0)
