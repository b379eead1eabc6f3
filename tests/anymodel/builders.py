"""Models for the anymodel tests: standard multi-head TransformerLens models, random or with a
hand-written induction circuit (the analytic oracle)."""

from __future__ import annotations

import math
import warnings

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

PREVIOUS_TOKEN = (0, 2)  # where ideal_circuit_model writes its heads: not head 0, so that the
INDUCTION = (1, 1)  # finder cannot pass by returning the first head of each layer


def config(normalization_type: str | None = "LN", d_vocab: int = 50, seed: int = 0) -> HookedTransformerConfig:
    """The small standard model of the brief: 2 layers of 4 heads, LayerNorm, learned positions."""
    return HookedTransformerConfig(
        n_layers=2,
        n_heads=4,
        d_model=64,
        d_head=16,
        n_ctx=32,
        d_vocab=d_vocab,
        attn_only=True,
        normalization_type=normalization_type,
        positional_embedding_type="standard",
        act_fn=None,
        seed=seed,
    )


def _build(cfg: HookedTransformerConfig) -> HookedTransformer:
    with warnings.catch_warnings():  # the project pins transformer-lens < 4 on purpose (README)
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        return HookedTransformer(cfg)


def random_model(normalization_type: str | None = "LN", seed: int = 0, perturb: bool = True) -> HookedTransformer:
    """A randomly initialised model; ``perturb`` also draws LayerNorm weights and biases and the
    attention biases (TL initialises them at 1 and 0), so that folding them has an effect."""
    model = _build(config(normalization_type, seed=seed))
    if perturb:
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith((".w", ".b")) or ".attn.b_" in name or name == "unembed.b_U":
                    base = 1.0 if name.endswith(".w") else 0.0
                    param.copy_(base + 0.3 * torch.randn(param.shape, generator=g))
    return model.eval()


def ideal_circuit_model(gain: float = 10.0) -> HookedTransformer:
    """A 2-layer, 4-head LayerNorm model whose head PREVIOUS_TOKEN attends from t to t - 1 and
    whose head INDUCTION attends to the token after the earlier occurrence of the current one
    and copies it to the logits; every other head keeps TL's random initialisation.

    Stream layout (d_model = 64): dims 0-15 the token (one-hot, d_vocab = 16 so that a head of
    width 16 copies it exactly), 16-23 the position (4 frequencies of cos/sin), 24-39 the
    previous token (written by PREVIOUS_TOKEN), 40-55 the output (written by INDUCTION, read by
    W_U). Positions: q_t . k_s = sum_k cos(theta_k (t - s - 1)), largest at s = t - 1.
    """
    model = _build(config("LN", d_vocab=16))
    thetas = [2 * math.pi * 2**k / 64 for k in range(4)]
    t = torch.arange(32, dtype=torch.float32)
    with torch.no_grad():
        model.embed.W_E.zero_()
        model.embed.W_E[:, :16] = gain * torch.eye(16)
        model.pos_embed.W_pos.zero_()
        for k, theta in enumerate(thetas):
            model.pos_embed.W_pos[:, 16 + 2 * k] = gain * torch.cos(theta * t)
            model.pos_embed.W_pos[:, 17 + 2 * k] = gain * torch.sin(theta * t)
        layer, head = PREVIOUS_TOKEN
        attn = model.blocks[layer].attn
        for W in (attn.W_Q, attn.W_K, attn.W_V, attn.W_O):
            W[head].zero_()
        for k, theta in enumerate(thetas):
            rows = slice(16 + 2 * k, 18 + 2 * k)
            attn.W_Q[head, rows, 2 * k : 2 * k + 2] = 2.0 * torch.eye(2)
            # p_s R = p_(s+1): the key of s looks like the query of s + 1
            R = torch.tensor([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
            attn.W_K[head, rows, 2 * k : 2 * k + 2] = 2.0 * R
        attn.W_V[head, :16, :16] = torch.eye(16)
        attn.W_O[head, :16, 24:40] = 3.0 * torch.eye(16)
        layer, head = INDUCTION
        attn = model.blocks[layer].attn
        for W in (attn.W_Q, attn.W_K, attn.W_V, attn.W_O):
            W[head].zero_()
        attn.W_Q[head, :16, :16] = 2.0 * torch.eye(16)
        attn.W_K[head, 24:40, :16] = 2.0 * torch.eye(16)
        attn.W_V[head, :16, :16] = torch.eye(16)
        attn.W_O[head, :16, 40:56] = torch.eye(16)
        model.unembed.W_U.zero_()
        model.unembed.W_U[40:56] = 10.0 * torch.eye(16)
    return model.eval()
