"""The TransformerLens 4 backend: our models as a ``TransformerBridge`` (TL 4 removed ``HookedTransformer``).

:mod:`induction_bigram.model` imports this module instead of :mod:`.circuit` and :mod:`.standard`
when TransformerLens >= 4 is installed (:data:`~induction_bigram.model.backend.TL4`); the public
functions have the same names, arguments and meaning.

How a model is built: TL 4's own small model is ``NativeModel`` wrapped by ``TransformerBridge``
(what ``TransformerBridge.boot_native`` does). We build the ``NativeModel`` with our components
(:mod:`induction_bigram.model.components.tl4`) swapped in, wrap it with TL's ``build_bridge_from_module``,
then wire the hook points and fill the weights with :mod:`.circuit`'s values (:mod:`.tl4_weights`),
so one config gives bitwise the same model on both backends.

Same as on TL 3: the logits (bitwise for the shipped models), the TL 3 hook names we document
(``hook_attn_scores`` pre-softmax as in TL 3, ``rel_pos.hook_bias``, ``circuit.*``), the trained/
frozen split by TL 3 name, the tokenizer, the :class:`DataError` checks, ``model.OV``/``QK``.
Different (the bridge's): ``state_dict()`` keys (``blocks.0.attn.k.weight``, [out, in] = the
paper's convention; ``rel_pos.bias`` at the top; :func:`load_weights` reads TL 3's too),
``named_parameters()`` names (use ``trainable_parameters``), ``attn.W_K`` is derived, no
``attn.OV`` / ``hook_rot_q/k`` / ``hook_result`` / KV cache; the standard model's init is TL 4's.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.sources import build_bridge_from_module
from transformer_lens.model_bridge.sources.native import initialize_native_model

from induction_bigram.config import ModelConfig
from induction_bigram.config.standard import StandardModelConfig
from induction_bigram.data.tokenizer import BOS, character_tokenizer
from induction_bigram.errors import ConfigError, ModelShapeError
from induction_bigram.model.access import (
    CONFIG_ATTR,
    bias_of,
    check_buildable,
    check_fits_in_memory,
    circuit_tl_fields,
    describe,
    model_bytes,
    paper_matrix_place,
    resolve_device,
    standard_tl_fields,
    standard_vocab,
    trainable_names,
)
from induction_bigram.model.backend import TL_VERSION
from induction_bigram.model.components.checks import install_input_check
from induction_bigram.model.components.tl4 import (
    CheckedNativeModel,
    CircuitAttention,
    CircuitMLP,
    HalfSplitRotary,
    RecordingEmbedding,
    missing_internals,
    wire_hooks,
)
from induction_bigram.model.components.token_input import EmbeddingRecord, TokenEmbeddingInput
from induction_bigram.model.encodings import SCORES_MODULE, encoding
from induction_bigram.model.initial import initial_weights
from induction_bigram.model.tl4_weights import bridge_key, load_weights, tl3_name

_STANDARD_ATTR = "_induction_bigram_standard_config"


def _variant(cfg: ModelConfig) -> str:
    return f"positional={cfg.positional!r}, ffn={cfg.ffn!r}" + (", rope_qk_bias" if cfg.rope_qk_bias else "")


def _unsupported(variant: str, why: str) -> ConfigError:
    return ConfigError(
        f"the model {variant} cannot be built on TransformerLens {TL_VERSION}: {why}; "
        "install transformer-lens 3.x (>=3.5,<4) or 4.3 (README 'TransformerLens versions')"
    )


def _check_internals(variant: str) -> None:
    missing = missing_internals()
    if missing:
        raise _unsupported(variant, f"this TL lacks the internals our components need ({'; '.join(missing)})")


# -- the paper's model -------------------------------------------------------------------------


def _bridge_config(cfg: ModelConfig) -> TransformerBridgeConfig:
    return TransformerBridgeConfig(**circuit_tl_fields(cfg), seed=cfg.seed)


def build_model(
    cfg: ModelConfig, device: str | torch.device | None = "auto", *, vocab: Sequence[str]
) -> TransformerBridge:
    """A seeded ``TransformerBridge`` of the paper's architecture, trainable parts at zero
    (the TL 4 counterpart of :func:`induction_bigram.model.circuit.build_model`; same values)."""
    check_buildable(cfg, vocab)
    _check_internals(_variant(cfg))
    device = resolve_device(device)
    check_fits_in_memory(model_bytes(cfg), f"a model of d_model = {cfg.d_model}, n_ctx = {cfg.n_ctx}", device)
    tl_cfg = _bridge_config(cfg)
    with torch.random.fork_rng(devices=[]):  # every tensor is overwritten below
        native = CheckedNativeModel(tl_cfg)
    positional = encoding(cfg)
    rotary = HalfSplitRotary(cfg.n_ctx, cfg.d_model) if positional.rotary else None
    native.rotary = rotary
    scores = positional.scores(cfg) if positional.scores is not None else None
    if scores is not None:  # at the top: the bridge keeps no parameter nested in a wrapped component
        setattr(native, SCORES_MODULE, scores)
    for layer, block in enumerate(native.layers):
        # the encoding acts on layer 1 only: later layers are content-only (TL 3: zero frequencies)
        first = layer == 0
        block.attn = CircuitAttention(tl_cfg, rotary=rotary if first else None, rel_pos=scores if first else None)
        if not tl_cfg.attn_only:
            block.mlp = CircuitMLP(tl_cfg)
    if cfg.ffn_reads == "token":
        native.tok_embed = RecordingEmbedding(native.tok_embed, EmbeddingRecord(cfg.n_ctx))
        native.layers[-1].ln2 = TokenEmbeddingInput(native.tok_embed.record)
    bridge = _wrap(native, tl_cfg, vocab)
    wire_hooks(bridge, circuit=True)
    load_weights(bridge, initial_weights(cfg), "the initial weights")
    trainable = {bridge_key(name) for name in trainable_names(cfg)}
    for name, tensor in bridge.state_dict(keep_vars=True).items():
        if isinstance(tensor, nn.Parameter):
            tensor.requires_grad_(name in trainable)
    bridge.to(device, print_details=False)
    if tl_cfg.attn_only:
        bridge.cfg.d_mlp = None  # NativeModel fills in 4 d even without an MLP (circuit.py undoes it too)
    object.__setattr__(bridge, CONFIG_ATTR, cfg)
    bridge.circuit.description = describe(bridge)
    return bridge


def _wrap(native: nn.Module, tl_cfg: TransformerBridgeConfig, vocab: Sequence[str]) -> TransformerBridge:
    tokenizer = character_tokenizer(tuple(vocab))
    bridge = build_bridge_from_module(
        native, "TransformerLensNative", tl_config=tl_cfg, tokenizer=tokenizer, model_name=tl_cfg.model_name
    )
    bridge.tokenizer.padding_side = "right"
    bridge.tokenizer.bos_token = BOS  # as TL 3's set_tokenizer path: a BOS the model has no embedding for
    install_input_check(bridge)
    return bridge


_NAMED: weakref.WeakKeyDictionary[TransformerBridge, tuple[tuple[int, ...], list[tuple[str, nn.Parameter]]]] = (
    weakref.WeakKeyDictionary()
)
"""Each bridge's parameters by TL 3 name, with the ids of the Parameter objects they were read from."""


def named_parameters(model: TransformerBridge) -> list[tuple[str, nn.Parameter]]:
    """Every parameter, by TL 3 name (``blocks.0.attn.W_K``).

    The names come from the bridge's ``state_dict``, which converts every key of its module tree:
    too slow to ask at every training step (benchmarks/bench_quick.py), so they are kept for as
    long as the model holds the same Parameter objects (``model.parameters()`` is cheap)."""
    ids = tuple(id(p) for p in model.parameters())
    kept = _NAMED.get(model)
    if kept is None or kept[0] != ids:
        state = model.state_dict(keep_vars=True)
        kept = ids, [(tl3_name(key), p) for key, p in state.items() if isinstance(p, nn.Parameter)]
        _NAMED[model] = kept
    return list(kept[1])


# -- the paper's convention ---------------------------------------------------------------------


def _paper_tensor(model: TransformerBridge, name: str) -> Tensor:
    """The bridge Parameter holding paper matrix ``name``: ``nn.Linear`` stores [out, in], which
    is the paper's column convention, so no transpose (TL 3's ``W_K[0]`` is its transpose)."""
    kind, block = paper_matrix_place(model, name)
    linear = "mlp.out" if kind == "W_F" else f"attn.{kind[-1].lower()}"
    return model.state_dict(keep_vars=True)[f"blocks.{block}.{linear}.weight"]


def get_paper_matrix(model: TransformerBridge, name: str) -> Float[Tensor, "d_out d_in"]:
    """A weight matrix in the paper's column convention, e.g. ``get_paper_matrix(m, "W_K2")``."""
    return _paper_tensor(model, name).detach()


def set_paper_matrix(model: TransformerBridge, name: str, value: Float[Tensor, "d_out d_in"]) -> None:
    """Write a paper-convention matrix into the model (the inverse of :func:`get_paper_matrix`)."""
    target = _paper_tensor(model, name)
    if value.shape != target.shape:
        raise ModelShapeError(f"{name} needs shape {tuple(target.shape)}, got {tuple(value.shape)}")
    with torch.no_grad():
        target.copy_(value)


# -- vocabulary, description, weights ---------------------------------------------------------


def relative_position_bias(model: TransformerBridge) -> nn.Parameter:
    """b_(t-s), the relative-position bias on layer 1's scores of an ``rpe`` model, as the
    parameter itself (on TL 4 it sits at the top of the native model: the bridge drops a
    parameter nested inside a wrapped component)."""
    return bias_of(scores_module(model))


def scores_module(model: TransformerBridge) -> nn.Module | None:
    """The positional encoding's term on layer 1's scores (``rpe``'s b_(t-s)), or ``None``."""
    return getattr(model.original_model, SCORES_MODULE, None)


def rotate_layer1(
    model: TransformerBridge, x: Float[Tensor, "batch pos head d_head"]
) -> Float[Tensor, "batch pos head d_head"]:
    """Layer 1's rotary applied to queries or keys at positions 0..pos-1 (``rope`` models)."""
    rotary = model.original_model.rotary
    by_head = x.transpose(1, 2)  # the native rotary reads [batch, head, pos, d_head]
    return rotary.apply_rope(by_head, by_head)[0].transpose(1, 2)


# -- the standard model ---------------------------------------------------------------------------


def build_standard_model(
    cfg: StandardModelConfig, device: str | torch.device | None = "auto", vocab: str | None = None
) -> TransformerBridge:
    """A seeded ``TransformerBridge`` with TL 4's own initialisation (the TL 4
    counterpart of :func:`induction_bigram.model.standard.build_standard_model`; a TL 3 state dict
    loads into it bitwise, but its seeded initial values are TL 4's, not TL 3's)."""
    chars = standard_vocab(cfg, vocab)
    variant = f"standard, positional={cfg.positional!r}"
    if cfg.positional == "shortformer":
        raise _unsupported(
            variant,
            "its native model adds positions to the residual stream or rotates q/k, "
            "and has no shortformer (positions in the queries' and keys' input only)",
        )
    _check_internals(variant)
    device = resolve_device(device)
    tl_cfg = TransformerBridgeConfig(**standard_tl_fields(cfg, len(chars)), init_weights=True, seed=cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        native = CheckedNativeModel(tl_cfg)
        native.head = nn.Linear(cfg.d_model, len(chars), bias=True)  # b_U trains, as in TL 3
        rotary = HalfSplitRotary(cfg.n_ctx, cfg.d_head) if cfg.positional == "rotary" else None
        native.rotary = rotary
        for block in native.layers:
            block.attn = CircuitAttention(tl_cfg, rotary=rotary)
        initialize_native_model(native, tl_cfg)
        with torch.no_grad():
            native.head.bias.zero_()
    bridge = _wrap(native, tl_cfg, tuple(chars))
    wire_hooks(bridge, circuit=False)
    bridge.to(device, print_details=False)
    standard = cfg if cfg.vocab is not None else dataclasses.replace(cfg, vocab="".join(chars))
    object.__setattr__(bridge, _STANDARD_ATTR, standard)
    return bridge


def standard_config(model: TransformerBridge) -> StandardModelConfig:
    """The :class:`StandardModelConfig` a model was built from (raises for other models)."""
    cfg = getattr(model, _STANDARD_ATTR, None)
    if cfg is None:
        raise ModelShapeError("this TransformerBridge was not built by build_standard_model")
    return cfg
