"""The model of docs/THEORY.md section 2 as a genuine ``transformer_lens.HookedTransformer``.

This package (:mod:`induction_bigram.model`) is the one place that knows TransformerLens's
parameter layout and its row-vector convention; everything else reads and writes weights
through :func:`get_paper_matrix` / :func:`set_paper_matrix` (the paper's column convention) or
through TL's own hooks. Its TL 4 counterpart is :mod:`.tl4` (the same model as a
``TransformerBridge``).

Conventions. TL multiplies row vectors from the right (q = x W_Q, k = x W_K,
score = q k^T / sqrt(d_head), out = z W_O); the paper multiplies column vectors from the left
(score = x_t^T W_K x_s / sqrt(d), out = W_O W_V x). With W_Q = I the same model has

    paper W_K^l = (TL blocks[l-1].attn.W_K[0])^T,   paper W_O^l W_V^l = (TL W_V W_O)^T,

and in general every paper matrix is the transpose of its TL counterpart
(:func:`swap_convention`).

Parameters (layers numbered 1, 2 as in the paper; TL blocks 0, 1):

=============  ==========================  ===============================  =========
paper          TL parameter                init                             trained
=============  ==========================  ===============================  =========
w_E(i)         embed.W_E[i]                N(0, 1/d)                        no
p_t            pos_embed.W_pos[t]          N(0, 1/d) (APE) or 0             no
w_U(i)         unembed.W_U[:, i]           N(0, 1/d)                        no
W_Q^l          blocks[l-1].attn.W_Q[0]     identity                         no
W_K^l          blocks[l-1].attn.W_K[0]^T   0                                yes
W_V^l          blocks[l-1].attn.W_V[0]^T   N(0, 1/d)                        no
W_O^l (l<L)    blocks[l-1].attn.W_O[0]^T   N(0, 1/d)                        no
W_O^L          blocks[L-1].attn.W_O[0]^T   0                                yes
W_F (linear)   blocks[L-1].mlp.W_out^T     0 (W_in frozen at identity)      yes
b_(t-s) (rpe)  blocks[0].attn.rel_pos.bias 0                                yes
=============  ==========================  ===============================  =========

All biases are zero and frozen (except ``rope_qk_bias``). Every random matrix comes from its
own generator seeded by (seed, name), so the same config gives bitwise the same model and a
model with a longer ``n_ctx`` shares its first positions with a shorter one; both backends load
these values from :func:`~.initial.initial_weights`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens import HookedTransformer, HookedTransformerConfig

from induction_bigram.config import ModelConfig
from induction_bigram.data.tokenizer import BOS, character_tokenizer
from induction_bigram.errors import CheckpointError, ModelShapeError
from induction_bigram.hooks import CircuitHooks
from induction_bigram.model.access import (
    CONFIG_ATTR,
    CONFIG_BUFFERS,
    bias_of,
    check_buildable,
    check_fits_in_memory,
    check_state,
    circuit_tl_fields,
    describe,
    model_bytes,
    paper_matrix_place,
    resolve_device,
    swap_convention,
    trainable_names,
    with_marker,
    without_config_buffers,
)
from induction_bigram.model.components.attention import CircuitAttention
from induction_bigram.model.components.checks import install_input_check
from induction_bigram.model.components.embed import CheckedPosEmbed, TokenEmbed
from induction_bigram.model.components.feedforward import CircuitMLP
from induction_bigram.model.components.token_input import EmbeddingRecord, TokenEmbeddingInput
from induction_bigram.model.encodings import SCORES_MODULE, encoding
from induction_bigram.model.initial import initial_weights


def build_model(
    cfg: ModelConfig, device: str | torch.device | None = "auto", *, vocab: Sequence[str]
) -> HookedTransformer:
    """A seeded HookedTransformer of the paper's architecture, trainable parts at zero.

    Args:
        cfg: the architecture.
        device: ``"auto"`` picks CUDA when available.
        vocab: the characters, token id i = ``vocab[i]`` (``BigramStats.vocab``): the model
            carries them as its tokenizer (:func:`induction_bigram.data.tokenizer.character_tokenizer`),
            so TL's string tools work and :func:`check_vocabulary` can refuse other statistics.

    Only the trained tensors (:func:`trainable_names`) have ``requires_grad``.
    """
    check_buildable(cfg, vocab)
    device = resolve_device(device)
    check_fits_in_memory(model_bytes(cfg), f"a model of d_model = {cfg.d_model}, n_ctx = {cfg.n_ctx}", device)
    tl_cfg = HookedTransformerConfig(**circuit_tl_fields(cfg), device=str(device))
    with warnings.catch_warnings():
        # we pin transformer-lens < 4 on purpose; see README "TransformerLens versions"
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        model = HookedTransformer(tl_cfg)
    if tl_cfg.attn_only:
        model.cfg.d_mlp = None  # TL fills in 4 d even without an MLP
    _install_components(model, cfg)
    model.to(device, print_details=False)
    load_weights(model, initial_weights(cfg), "the initial weights")
    trainable = set(trainable_names(cfg))
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable)
    _attach_tokenizer(model, vocab)
    install_input_check(model)
    setattr(model, CONFIG_ATTR, cfg)
    model.circuit.description = describe(model)  # repr(model) shows it
    return model


def _install_components(model: HookedTransformer, cfg: ModelConfig) -> None:
    """Swap TL's components for our subclasses (:mod:`induction_bigram.model.components`), put the
    positional encoding's parts in layer 1 (:mod:`induction_bigram.model.encodings`) and wire the
    circuit hook points; parameter names stay TL's."""
    model.embed = TokenEmbed(model.cfg)
    if model.cfg.positional_embedding_type == "standard":
        model.pos_embed = CheckedPosEmbed(model.cfg)
    positional = encoding(cfg)
    for layer, block in enumerate(model.blocks):
        scores = positional.scores(cfg) if positional.scores is not None and layer == 0 else None
        block.attn = CircuitAttention(model.cfg, "global", layer, scores=scores)
        if not model.cfg.attn_only:
            block.mlp = CircuitMLP(model.cfg)
    if positional.rotary:  # TL rotates every layer: the later ones rotate by angle 0, attending by content
        for block in model.blocks[1:]:
            with torch.no_grad():
                block.attn.rotary_cos.fill_(1.0)
                block.attn.rotary_sin.fill_(0.0)
    model.circuit = CircuitHooks()
    last = model.blocks[cfg.n_layers - 1]
    if cfg.n_layers == 2:
        model.blocks[0].attn.route_output_through(model.circuit.hook_previous_token)
    last.attn.route_output_through(model.circuit.hook_induction)
    if not model.cfg.attn_only:
        last.mlp.route_output_through(model.circuit.hook_global)
    if cfg.ffn_reads == "token":
        model.embed.record = EmbeddingRecord(cfg.n_ctx)
        last.ln2 = TokenEmbeddingInput(model.embed.record)
    model.setup()  # registers the new hook points under their full names


def _attach_tokenizer(model: HookedTransformer, vocab: Sequence[str]) -> None:
    model.set_tokenizer(character_tokenizer(vocab), default_padding_side="right")
    model.tokenizer.bos_token = BOS  # after set_tokenizer, which would reload a tokenizer with a BOS


# -- the paper's convention ---------------------------------------------------------------------


def _tl_parameter(model: HookedTransformer, name: str) -> Tensor:
    """The TL tensor holding paper matrix ``name`` (``W_K2``, ``W_O1``, ``W_F``, ...)."""
    kind, block = paper_matrix_place(model, name)
    if kind == "W_F":
        return model.blocks[block].mlp.W_out
    return getattr(model.blocks[block].attn, kind)[0]


def get_paper_matrix(model: HookedTransformer, name: str) -> Float[Tensor, "d_out d_in"]:
    """A weight matrix in the paper's column convention, e.g. ``get_paper_matrix(m, "W_K2")``."""
    return swap_convention(_tl_parameter(model, name).detach())


def set_paper_matrix(model: HookedTransformer, name: str, value: Float[Tensor, "d_out d_in"]) -> None:
    """Write a paper-convention matrix into the model (the inverse of :func:`get_paper_matrix`)."""
    target = _tl_parameter(model, name)
    if swap_convention(value).shape != target.shape:
        raise ModelShapeError(f"{name} needs shape {tuple(swap_convention(target).shape)}, got {tuple(value.shape)}")
    with torch.no_grad():
        target.copy_(swap_convention(value))


# -- vocabulary, description, weights ---------------------------------------------------------


def relative_position_bias(model: HookedTransformer) -> nn.Parameter:
    """b_(t-s), the relative-position bias on layer 1's scores of an ``rpe`` model, as the
    parameter itself (edits in place change the model)."""
    return bias_of(scores_module(model))


def scores_module(model: HookedTransformer) -> nn.Module | None:
    """The positional encoding's term on layer 1's scores (``rpe``'s b_(t-s)), or ``None``."""
    return getattr(model.blocks[0].attn, SCORES_MODULE, None)


def rotate_layer1(
    model: HookedTransformer, x: Float[Tensor, "batch pos head d_head"]
) -> Float[Tensor, "batch pos head d_head"]:
    """Layer 1's rotary applied to queries or keys at positions 0..pos-1 (``rope`` models)."""
    return model.blocks[0].attn.apply_rotary(x)


def load_weights(model: HookedTransformer, state: Any, source: str = "state dict") -> HookedTransformer:
    """Load a state dict saved from one of our models (:func:`portable_state_dict`, or a TL 3
    ``state_dict()``) into ``model`` (built by :func:`build_model`, or
    :func:`~induction_bigram.model.standard.build_standard_model`, from the same config), strictly
    and bitwise. The buffers the config determines (:data:`~.access.CONFIG_BUFFERS`) are the
    model's own, whether ``state`` holds them or not.

    This is the loader for our state dicts: a plain ``HookedTransformer`` lacks the relative
    bias and the circuit hook points, and its strict ``load_state_dict`` names this function.
    Mismatches are reported by tensor name and shape, as a :class:`CheckpointError` naming
    ``source``.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"{source} holds no weights")
    expected = model.state_dict()
    state = with_marker(expected, without_config_buffers(state))
    check_state(without_config_buffers(expected), state, source)
    own = {key: value for key, value in expected.items() if CONFIG_BUFFERS.fullmatch(key)}
    model.load_state_dict(own | state)
    return model


def portable_state_dict(model: HookedTransformer) -> dict[str, Tensor]:
    """The model's weights as our files store them, loadable on either backend: TL 3's names and
    layouts, on the CPU, without the buffers the config determines."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in without_config_buffers(model.state_dict()).items()}
