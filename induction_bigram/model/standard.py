"""A standard TransformerLens model for next-character prediction on plain text.

Unlike :mod:`.circuit`, nothing here is ours but the input checks and the tokenizer: the model
is TL's own configuration (several heads per layer, LayerNorm, learned token and positional
embeddings, biases, attention only unless ``model.d_mlp`` adds TL's MLPs, TL's own
initialisation, seeded by ``model.seed``), the kind of model the any-model analyses
(:mod:`induction_bigram.anymodel`) are for. The embeddings are TL's ``Embed``/``PosEmbed``
subclassed only to check their input (an id outside the vocabulary or a prompt longer than
``n_ctx`` is a :class:`DataError`), so the parameter names and the state dict are exactly a
plain ``HookedTransformer``'s.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from induction_bigram.config.standard import StandardModelConfig
from induction_bigram.errors import ModelShapeError
from induction_bigram.model.access import resolve_device, standard_tl_fields, standard_vocab
from induction_bigram.model.circuit import _attach_tokenizer
from induction_bigram.model.components.attention import CircuitAttention
from induction_bigram.model.components.checks import install_input_check
from induction_bigram.model.components.embed import CheckedPosEmbed, TokenEmbed

_STANDARD_ATTR = "_induction_bigram_standard_config"


def build_standard_model(
    cfg: StandardModelConfig, device: str | torch.device | None = "auto", vocab: str | None = None
) -> HookedTransformer:
    """A seeded ``HookedTransformer`` with TL's own initialisation (attention only unless ``cfg.d_mlp``).

    Args:
        cfg: the shape; ``cfg.vocab`` (or ``vocab``) gives the characters, token id i =
            ``vocab[i]``, carried as the model's tokenizer so ``to_str_tokens``, ``generate``
            and ``test_prompt`` work.
        device: ``"auto"`` picks CUDA when available.
        vocab: the characters when ``cfg.vocab`` is ``None``; must agree with it otherwise.
    """
    chars = standard_vocab(cfg, vocab)
    device = resolve_device(device)
    tl_cfg = HookedTransformerConfig(**standard_tl_fields(cfg, len(chars)), seed=None, device=str(device))
    with warnings.catch_warnings():
        # we pin transformer-lens < 4 on purpose; see README "TransformerLens versions"
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        # TL's own init, from our seed alone, without touching the global random stream
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = HookedTransformer(tl_cfg, move_to_device=False)
            _install_checks(model)
    model.to(device, print_details=False)
    _attach_tokenizer(model, tuple(chars))
    install_input_check(model)
    setattr(model, _STANDARD_ATTR, cfg if cfg.vocab is not None else _with_vocab(cfg, chars))
    return model


def _with_vocab(cfg: StandardModelConfig, vocab: str) -> StandardModelConfig:
    return dataclasses.replace(cfg, vocab="".join(vocab))


def _install_checks(model: HookedTransformer) -> None:
    """TL's components with input checks; same parameters, same initial values. A rotary
    model has no positional embedding to check the context at; its attention checks it where
    TL indexes the rotary tables (KV-cached positions included)."""
    swaps = [("embed", TokenEmbed(model.cfg))]
    if model.cfg.positional_embedding_type == "rotary":
        swaps += [(f"blocks.{i}.attn", CircuitAttention(model.cfg, "global", i)) for i in range(model.cfg.n_layers)]
    else:
        swaps.append(("pos_embed", CheckedPosEmbed(model.cfg)))
    for name, module in swaps:
        module.load_state_dict(model.get_submodule(name).state_dict())
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, module)
    model.setup()


def standard_config(model: HookedTransformer) -> StandardModelConfig:
    """The :class:`StandardModelConfig` a model was built from (raises for other models)."""
    cfg = getattr(model, _STANDARD_ATTR, None)
    if cfg is None:
        raise ModelShapeError("this HookedTransformer was not built by build_standard_model")
    return cfg
