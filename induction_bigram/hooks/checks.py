"""The input checks of the forward pass, for both TransformerLens backends: token ids and
context length. A HookedTransformer indexes ``W_E[tokens]``: id -1 silently reads the last row,
an id >= N is a bare ``IndexError``; these raise a :class:`~induction_bigram.errors.DataError`
naming the offending value instead."""

from __future__ import annotations

from torch import Tensor

from induction_bigram.data.tokenizer import special_token_note
from induction_bigram.errors import DataError


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


def check_positions(n_new: int, past_kv_pos_offset: int, attention_mask: Tensor | None, n_ctx: int) -> None:
    """The context check where TL knows the KV-cache offset (positional embedding, rotary).

    With a padding mask TL reads positions off the mask, which spans cached and new positions
    (``generate`` passes every token with the cache's length as offset)."""
    n_positions = past_kv_pos_offset + n_new if attention_mask is None else attention_mask.shape[-1]
    check_context_length(n_positions, n_ctx)
