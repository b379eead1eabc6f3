"""The standard model's training loss, with each attention layer as one fused kernel.

TransformerLens's attention writes out the scores, the causal mask and the softmax as separate
[batch, head, pos, pos] tensors, forward and backward; at the context lengths an induction head
needs (n_ctx 512 and more, docs/THEORY.md section 3.8) that traffic is most of a training step.
:class:`StandardFusedLoss` computes the same next-character loss from the same parameters with
``torch.nn.functional.scaled_dot_product_attention``, which never holds the pos x pos matrix:

- the stream starts as W_E[z] (plus W_pos[t] for ``standard`` positions);
- each layer adds sum_h softmax(q_h k_h^T / sqrt(d_head), causal) v_h W_O^h + b_O, where q, k and
  v read LN1 of the stream (``shortformer`` adds W_pos[t] to the queries' and keys' input after
  LN1; ``rotary`` rotates q and k, GPT-NeoX style, over the whole head);
- the logits are LN_final of the stream times W_U, plus b_U.

The loss and the gradients equal the model's within float rounding
(``tests/training/test_standard_loss.py``, every positional encoding and normalisation, on both
backends), so a run learns what it would through the model; evaluation, hooks and every
analysis still run the TransformerLens model. ``train.fused_loss`` switches it off.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from induction_bigram.model import Model, standard_config, tl3_parameters

ROTARY_BASE = 10_000
"""TL's default ``rotary_base``, which the standard model keeps."""


def next_character_loss(
    logits: Float[Tensor, "batch pos vocab"], windows: Int[Tensor, "batch window"], reduction: str = "mean"
) -> Tensor:
    """Cross-entropy of predicting ``windows[:, t + 1]`` from the logits at every position t of
    ``windows[:, :-1]`` (a window holds n_ctx + 1 characters, so every position is read): the
    mean, or with ``reduction="none"`` each position's, shaped [batch, pos]."""
    return F.cross_entropy(logits.transpose(1, 2), windows[:, 1:], reduction=reduction)


def forward_loss(model: Model) -> Callable[[Int[Tensor, "batch window"]], Float[Tensor, ""]]:
    """:func:`next_character_loss` through the model's own forward (``train.fused_loss=false``)."""
    return lambda windows: next_character_loss(model(windows[:, :-1]), windows)


def rotary_sin_cos(n_pos: int, d_rotary: int) -> tuple[Float[Tensor, "pos d_rotary"], Float[Tensor, "pos d_rotary"]]:
    """sin and cos of the angle t / base^(2i / d) that TL's rotary applies to the pair (i, i + d/2)."""
    inverse_frequency = ROTARY_BASE ** -(torch.arange(d_rotary // 2, dtype=torch.float64) / (d_rotary / 2))
    angles = torch.outer(torch.arange(n_pos, dtype=torch.float64), inverse_frequency).repeat(1, 2)
    return angles.sin().float(), angles.cos().float()


def _rotate(x: Float[Tensor, "batch head pos d_head"], sin: Tensor, cos: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


def _project(x: Float[Tensor, "batch pos d_model"], w: dict[str, Tensor], attn: str, kind: str) -> Tensor:
    """x W_kind + b_kind of every head, as [batch, head, pos, d_head]."""
    return torch.einsum("bpd,hde->bhpe", x, w[f"{attn}.W_{kind}"]) + w[f"{attn}.b_{kind}"].unsqueeze(1)


class StandardFusedLoss(nn.Module):
    """``loss = StandardFusedLoss(model)(windows)``: :func:`next_character_loss` of ``model`` on
    ``windows`` (n_ctx + 1 characters each), differentiable in the model's parameters."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model
        self.config = standard_config(model)
        self.eps = float(model.cfg.eps)

    def _norm(self, x: Tensor, w: dict[str, Tensor], name: str) -> Tensor:
        if self.config.normalization == "none":
            return x
        return F.layer_norm(x, x.shape[-1:], w.get(f"{name}.w"), w.get(f"{name}.b"), self.eps)

    def forward(self, windows: Int[Tensor, "batch window"]) -> Float[Tensor, ""]:
        w = tl3_parameters(self.model)
        tokens = windows[:, :-1]
        n_pos = tokens.shape[1]
        positional = self.config.positional
        stream = w["embed.W_E"][tokens]
        position = w["pos_embed.W_pos"][:n_pos] if positional in ("standard", "shortformer") else None
        if positional == "standard":
            stream = stream + position
        if positional == "rotary":
            sin, cos = (t.to(stream.device) for t in rotary_sin_cos(n_pos, self.config.d_head))
        for layer in range(self.config.n_layers):
            prefix = f"blocks.{layer}"
            normed = self._norm(stream, w, f"{prefix}.ln1")
            key_input = normed + position if positional == "shortformer" else normed
            q, k = (_project(key_input, w, f"{prefix}.attn", kind) for kind in "QK")
            v = _project(normed, w, f"{prefix}.attn", "V")
            if positional == "rotary":
                q, k = _rotate(q, sin, cos), _rotate(k, sin, cos)
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            stream = stream + torch.einsum("bhpe,hed->bpd", z, w[f"{prefix}.attn.W_O"]) + w[f"{prefix}.attn.b_O"]
        logits = self._norm(stream, w, "ln_final") @ w["unembed.W_U"] + w["unembed.b_U"]
        return next_character_loss(logits, windows)
