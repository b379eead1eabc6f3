"""``rpe``: a learned scalar b_(t-s) per offset, added to layer 1's attention scores (T5-style).

:class:`RelativePositionBias` is added by the attention layer before the causal mask, so
``hook_attn_scores`` sees score + b_(t-s). It is a parameter (``blocks.0.attn.rel_pos.bias``), so it
trains, saves and loads like any other, starting at zero like every trained matrix of the paper's
model; its hook point ``blocks.0.attn.rel_pos.hook_bias`` carries the bias as [batch, head, query_pos,
key_pos] (a broadcast view), and under a KV cache the query positions start after the cached ones.
TL's config cannot express it: such a model says ``positional_embedding_type="standard"`` with
W_pos = 0 (:func:`induction_bigram.describe`).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint

from induction_bigram.model.encodings import Encoding, zero_positions

BIAS = "blocks.0.attn.rel_pos.bias"


class RelativePositionBias(nn.Module):
    """b_(t-s) for offsets 0..n_ctx-1, added to the causal scores of layer 1."""

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


ENCODING = Encoding(
    summary="relative: learned scalar bias b_(t-s) on layer 1's scores, {scores} "
    "(TL cannot express it: cfg says positional_embedding_type='standard' with W_pos = 0)",
    initial=lambda cfg, normal: zero_positions(cfg, normal) | {BIAS: torch.zeros(cfg.n_ctx)},
    trained=lambda cfg: [BIAS],
    scores=lambda cfg: RelativePositionBias(cfg.n_ctx),
)
