"""The input checks of the forward pass, for both TransformerLens backends: what the model is
given (a prompt, a list of prompts, a tensor of token ids), its token ids and context length.
A HookedTransformer indexes ``W_E[tokens]``: id -1 silently reads the last row, an id >= N is a
bare ``IndexError``, a float, bool, meta or 3-D tensor or an empty batch a foreign error from
deep inside TL; these raise a :class:`~induction_bigram.errors.DataError` naming what is wrong
instead. :func:`check_model_input` is the model's door (a forward pre-hook, installed by
:func:`install_input_check`); the embedding modules check again where TL calls them directly."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from induction_bigram.data.tokenizer import special_token_note
from induction_bigram.errors import DataError

# what torch indexes W_E with as ids (a uint8 or bool tensor is a mask; int8/int16 an IndexError)
_ID_DTYPES = (torch.int64, torch.int32)


def check_token_ids(tokens: Tensor, d_vocab: int) -> None:
    """Raise for the first id outside ``[0, d_vocab)``, saying what ids past N are."""
    bad = (tokens < 0) | (tokens >= d_vocab)
    if bad.any():
        first = int(tokens[bad][0])
        note = f"; {special_token_note(d_vocab)}" if first >= d_vocab else ""
        if first == d_vocab:  # the BOS that prepend_bos=True (ARENA's repeated-token recipe) adds
            note += (
                "; this model was trained without a BOS: tokenize with prepend_bos=False (its default), "
                "or use a model trained with one"
            )
        raise DataError(f"token id {first} is outside the model's vocabulary [0, {d_vocab}){note}")


def check_context_length(n_positions: int, n_ctx: int) -> None:
    if n_positions > n_ctx:
        raise DataError(
            f"a prompt of length {n_positions} exceeds the context n_ctx = {n_ctx} (KV-cached positions count)"
        )


def check_token_tensor(tokens: Any, d_vocab: int, n_ctx: int, ranks: tuple[int, ...] = (1, 2)) -> None:
    """Raise :class:`DataError` unless ``tokens`` is a non-empty integer tensor of token ids with
    a real device, of rank in ``ranks`` (``[pos]`` or ``[batch, pos]``), no longer than ``n_ctx``
    and every id in ``[0, d_vocab)``."""
    if not isinstance(tokens, Tensor):
        raise DataError(f"tokens must be a tensor of token ids, got {type(tokens).__name__}")
    if tokens.is_meta:
        raise DataError("tokens are on the meta device (a tensor without values); make them on cpu or cuda")
    if tokens.dtype not in _ID_DTYPES:
        raise DataError(f"token ids must be a torch.long (or torch.int32) tensor, got dtype {tokens.dtype}")
    shape = tuple(tokens.shape)
    if tokens.ndim not in ranks:
        wanted = " or ".join({1: "[pos]", 2: "[batch, pos]"}[r] for r in ranks)
        raise DataError(f"tokens must have shape {wanted}, got {shape}")
    if tokens.numel() == 0:
        what = "a sequence of length 0" if tokens.shape[-1] == 0 else "a batch of size 0"
        raise DataError(f"tokens of shape {shape} are empty ({what}): the model needs at least one token")
    check_context_length(shape[-1], n_ctx)
    check_token_ids(tokens, d_vocab)


def check_trigger_ids(triggers: Any, d_vocab: int) -> None:
    """Raise :class:`DataError` unless ``triggers`` is None or a 1-D integer tensor of at least
    one distinct id in ``[0, d_vocab)`` (an empty or repeated set scores a made-up recall)."""
    if triggers is None:
        return
    if not isinstance(triggers, Tensor) or triggers.dtype == torch.bool or triggers.is_floating_point():
        shown = f"dtype {triggers.dtype}" if isinstance(triggers, Tensor) else type(triggers).__name__
        raise DataError(f"triggers must be a 1-D tensor of token ids (torch.tensor([...])), got {shown}")
    ids = triggers.tolist() if triggers.ndim == 1 else None
    if not ids or len(set(ids)) != len(ids) or not all(0 <= i < d_vocab for i in ids):
        shown = ids if ids is not None else f"shape {tuple(triggers.shape)}"
        raise DataError(f"triggers must be distinct token ids in [0, {d_vocab}), at least one; got {shown}")


def check_memory_arguments(model: nn.Module, triggers: Any, n_positions: Any) -> Tensor | None:
    """``triggers`` after :func:`check_trigger_ids`, and ``n_positions`` None or in [1, n_ctx]
    (:func:`~induction_bigram.memories.projections.memory_report`'s arguments); a :class:`DataError` names
    the bad one."""
    check_trigger_ids(triggers, model.cfg.d_vocab)
    if n_positions is not None and not (isinstance(n_positions, int) and 1 <= n_positions <= model.cfg.n_ctx):
        raise DataError(f"n_positions must be an integer in [1, n_ctx = {model.cfg.n_ctx}], got {n_positions!r}")
    return triggers


def check_positions(n_new: int, past_kv_pos_offset: int, attention_mask: Tensor | None, n_ctx: int) -> None:
    """The context check where TL knows the KV-cache offset (positional embedding, rotary).

    With a padding mask TL reads positions off the mask, which spans cached and new positions
    (``generate`` passes every token with the cache's length as offset)."""
    n_positions = past_kv_pos_offset + n_new if attention_mask is None else attention_mask.shape[-1]
    check_context_length(n_positions, n_ctx)


def check_model_input(model: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
    """A forward pre-hook: the model's ``input`` (a prompt, a list of prompts, or token ids)
    checked before TL touches it. A prompt too long for ``n_ctx`` is refused by the tokenizer
    (:func:`induction_bigram.data.tokenizer.character_tokenizer`), where TL would cut it."""
    if kwargs.get("start_at_layer") is not None or len(args) > 4:  # a residual stream, or a call we do not read
        return
    given = args[0] if args else kwargs.get("input")
    if given is None:
        return
    if isinstance(given, str):
        if not given:
            raise DataError("the prompt is the empty string: the model needs at least one token")
    elif isinstance(given, (list, tuple)):
        if not given:
            raise DataError("an empty list of prompts: the model needs at least one")
        wrong = next((p for p in given if not isinstance(p, str)), None)
        if wrong is not None:
            raise DataError(f"a list of prompts must hold strings, got {type(wrong).__name__} {wrong!r:.40}")
        if not any(given):
            raise DataError("every prompt of the list is the empty string: the model needs at least one token")
    elif isinstance(given, Tensor):
        check_token_tensor(given, model.cfg.d_vocab, model.cfg.n_ctx)
    else:
        raise DataError(
            f"the model takes a prompt, a list of prompts or a tensor of token ids, got {type(given).__name__}"
        )


def install_input_check(model: nn.Module) -> None:
    """Make :func:`check_model_input` the first thing every call of ``model`` does (a module
    forward pre-hook: TL's ``reset_hooks`` removes hook-point hooks only, never this)."""
    model.register_forward_pre_hook(check_model_input, with_kwargs=True)
