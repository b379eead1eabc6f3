"""Positional variants of layer 1 that TransformerLens has no switch for.

- ``rpe``: :class:`RelativePositionBias`, a learned scalar b_(t-s) per offset, added to layer
  1's attention scores by a permanent hook on ``blocks.0.attn.hook_attn_scores`` (score + b_(t-s),
  T5-style). The bias is a parameter of the model, so it trains, saves and loads like any
  other; its own hook point ``blocks.0.attn.rel_pos.hook_bias`` exposes the [query, key] bias.
- ``rope``: TL applies rotary to every layer. :func:`make_layer_content_only` sets a layer's
  rotary frequencies to zero (cos = 1, sin = 0), so its "rotation" is the identity and its
  scores depend on content only, while layer 1 keeps the real rotation.

Permanent hooks survive ``model.reset_hooks()`` (TL's default) but not
``reset_hooks(including_permanent=True)``; rebuild the model if you call that.
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
        self.hook_bias = HookPoint()  # [query_pos, key_pos]

    def forward(self, n_query: int, n_key: int) -> Float[Tensor, "query_pos key_pos"]:
        offsets = torch.arange(n_query, device=self.bias.device)[:, None] - torch.arange(n_key, device=self.bias.device)
        # offsets < 0 are masked by the causal mask anyway; clamp keeps the gather in range
        return self.hook_bias(self.bias[offsets.clamp_min(0)])

    def add_to_scores(
        self, scores: Float[Tensor, "batch head query_pos key_pos"], hook: HookPoint
    ) -> Float[Tensor, "batch head query_pos key_pos"]:
        """Hook function for ``hook_attn_scores`` (after the causal mask: -inf stays -inf)."""
        return scores + self(scores.shape[-2], scores.shape[-1])


def add_relative_position_bias(model: HookedTransformer, layer: int = 0) -> RelativePositionBias:
    """Attach a :class:`RelativePositionBias` to ``blocks[layer].attn`` as ``rel_pos``."""
    rel_pos = RelativePositionBias(model.cfg.n_ctx).to(model.cfg.device)
    attn = model.blocks[layer].attn
    attn.rel_pos = rel_pos
    model.setup()  # registers the new hook point under its full name
    attn.hook_attn_scores.add_perma_hook(rel_pos.add_to_scores)
    return rel_pos


def make_layer_content_only(model: HookedTransformer, layer: int) -> None:
    """Zero the rotary frequencies of one layer of a rotary model (rotation by angle 0)."""
    attn = model.blocks[layer].attn
    with torch.no_grad():
        attn.rotary_cos.fill_(1.0)
        attn.rotary_sin.fill_(0.0)
