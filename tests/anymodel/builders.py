"""Models for the anymodel tests: standard multi-head TransformerLens models (built by
``build_standard_model``, so on either backend), random or with a hand-written induction circuit
(the analytic oracle)."""

from __future__ import annotations

import math
import string
import warnings

import torch

from induction_bigram.config.standard import StandardModelConfig
from induction_bigram.model import TL4, Model, build_standard_model, load_weights, portable_state_dict

PREVIOUS_TOKEN = (0, 2)  # where ideal_circuit_model writes its heads: not head 0, so that the
INDUCTION = (1, 1)  # finder cannot pass by returning the first head of each layer


def config(normalization: str = "LN", seed: int = 0, positional: str = "standard") -> StandardModelConfig:
    """The small standard model of the brief: 2 layers of 4 heads, LayerNorm, learned positions."""
    return StandardModelConfig(
        n_layers=2,
        n_heads=4,
        d_model=64,
        d_head=16,
        n_ctx=32,
        normalization=normalization,
        positional=positional,
        seed=seed,
    )


def build(normalization: str | None = "LN", d_vocab: int = 50, seed: int = 0, positional: str = "standard") -> Model:
    """A standard TL model with TL's own initialisation and ``d_vocab`` characters for tokens:
    ``build_standard_model``'s, so a HookedTransformer or a TransformerBridge as the installed TL
    builds; RMSNorm, which our standard model does not offer, is TL's own :func:`plain_model`."""
    if normalization == "RMS":
        return plain_model(normalization, d_vocab, seed)
    chars = (string.ascii_letters + string.digits)[:d_vocab]
    return build_standard_model(config(normalization or "none", seed, positional), "cpu", vocab=chars)


def plain_model(normalization: str | None, d_vocab: int = 50, seed: int = 0, act_fn: str | None = None) -> Model:
    """The same shape as TL itself builds it, without the package: a plain ``HookedTransformer``
    under TL 3, ``TransformerBridge.boot_native`` under TL 4 (a user's own model); attention
    only, or with an MLP of width 4 d_model and activation ``act_fn`` in every layer."""
    cfg = config()
    fields = dict(
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        n_ctx=cfg.n_ctx,
        d_vocab=d_vocab,
        attn_only=act_fn is None,
        d_mlp=None if act_fn is None else 4 * cfg.d_model,
        normalization_type=normalization,
        positional_embedding_type="standard",
        act_fn=act_fn,
        seed=seed,
    )
    if TL4:
        from transformer_lens.config import TransformerBridgeConfig
        from transformer_lens.model_bridge import TransformerBridge

        return TransformerBridge.boot_native(TransformerBridgeConfig(**fields))
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    with warnings.catch_warnings():  # TL 3.9 announces TL 4; the project supports both (README)
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        return HookedTransformer(HookedTransformerConfig(**fields))


def random_model(normalization: str = "LN", seed: int = 0, perturb: bool = True) -> Model:
    """A randomly initialised model; ``perturb`` also draws LayerNorm weights and biases and the
    attention biases (TL initialises them at 1 and 0), so that folding them has an effect."""
    model = build(normalization, seed=seed)
    if perturb:
        g = torch.Generator().manual_seed(seed + 1)
        state = portable_state_dict(model)  # TL 3's names and layouts on either backend
        for name, value in sorted(state.items()):
            if name.endswith((".w", ".b")) or ".attn.b_" in name or name == "unembed.b_U":
                base = 1.0 if name.endswith(".w") else 0.0
                state[name] = base + 0.3 * torch.randn(value.shape, generator=g)
        load_weights(model, state)
    return model.eval()


def ideal_circuit_model(gain: float = 10.0) -> Model:
    """A 2-layer, 4-head LayerNorm model whose head PREVIOUS_TOKEN attends from t to t - 1 and
    whose head INDUCTION attends to the token after the earlier occurrence of the current one
    and copies it to the logits; every other head keeps TL's random initialisation.

    Stream layout (d_model = 64): dims 0-15 the token (one-hot, d_vocab = 16 so that a head of
    width 16 copies it exactly), 16-23 the position (4 frequencies of cos/sin), 24-39 the
    previous token (written by PREVIOUS_TOKEN), 40-55 the output (written by INDUCTION, read by
    W_U). Positions: q_t . k_s = sum_k cos(theta_k (t - s - 1)), largest at s = t - 1.
    """
    model = build("LN", d_vocab=16)
    state = portable_state_dict(model)  # written in TL 3's layout, loaded on either backend
    thetas = [2 * math.pi * 2**k / 64 for k in range(4)]
    t = torch.arange(32, dtype=torch.float32)
    state["embed.W_E"].zero_()
    state["embed.W_E"][:, :16] = gain * torch.eye(16)
    state["pos_embed.W_pos"].zero_()
    for k, theta in enumerate(thetas):
        state["pos_embed.W_pos"][:, 16 + 2 * k] = gain * torch.cos(theta * t)
        state["pos_embed.W_pos"][:, 17 + 2 * k] = gain * torch.sin(theta * t)
    layer, head = PREVIOUS_TOKEN
    W_Q, W_K, W_V, W_O = (state[f"blocks.{layer}.attn.W_{m}"] for m in "QKVO")
    for matrix in (W_Q, W_K, W_V, W_O):
        matrix[head].zero_()
    for k, theta in enumerate(thetas):
        rows = slice(16 + 2 * k, 18 + 2 * k)
        W_Q[head, rows, 2 * k : 2 * k + 2] = 2.0 * torch.eye(2)
        # p_s R = p_(s+1): the key of s looks like the query of s + 1
        R = torch.tensor([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
        W_K[head, rows, 2 * k : 2 * k + 2] = 2.0 * R
    W_V[head, :16, :16] = torch.eye(16)
    W_O[head, :16, 24:40] = 3.0 * torch.eye(16)
    layer, head = INDUCTION
    W_Q, W_K, W_V, W_O = (state[f"blocks.{layer}.attn.W_{m}"] for m in "QKVO")
    for matrix in (W_Q, W_K, W_V, W_O):
        matrix[head].zero_()
    W_Q[head, :16, :16] = 2.0 * torch.eye(16)
    W_K[head, 24:40, :16] = 2.0 * torch.eye(16)
    W_V[head, :16, :16] = torch.eye(16)
    W_O[head, :16, 40:56] = torch.eye(16)
    state["unembed.W_U"].zero_()
    state["unembed.W_U"][40:56] = 10.0 * torch.eye(16)
    return load_weights(model, state).eval()
