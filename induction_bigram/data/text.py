"""Plain text as next-character training data: random windows of ``n_ctx + 1`` characters.

The text is encoded with a character vocabulary (by default every character of the text,
sorted, as :meth:`BigramStats.from_text` numbers them); a character outside a given
vocabulary is a :class:`DataError` naming it. The last ``held_out_fraction`` of the text is
never trained on: a fixed set of windows from it gives the held-out loss. Windows are drawn
with a seeded ``torch.Generator``; nothing touches the network.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from jaxtyping import Int
from torch import Tensor

from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import DataError


def read_text(path: str | os.PathLike[str]) -> str:
    """A UTF-8 text file's contents; a missing, unreadable or empty file is a :class:`DataError`."""
    path = Path(path)
    if not os.fspath(path):
        raise DataError("no text file given (data.text is empty; pass --text PATH)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read text {path}: {err}") from None
    if len(text) < 2:
        raise DataError(f"the text {path} has {len(text)} characters; it needs at least 2")
    return text


def text_vocab(text: str) -> str:
    """Every character of ``text``, sorted (the numbering :meth:`BigramStats.from_text` uses)."""
    return "".join(BigramStats.from_text(text).vocab)


def encode_text(text: str, vocab: Sequence[str]) -> Int[Tensor, " length"]:
    """Token ids of ``text`` under ``vocab``; unknown characters are a :class:`DataError` naming them."""
    lookup = {c: i for i, c in enumerate(vocab)}
    unknown = sorted(set(text) - set(lookup))
    if unknown:
        where = text.index(unknown[0])
        raise DataError(
            f"the text has characters outside the model's vocabulary of {len(lookup)}: {unknown!r} "
            f"(first at index {where})"
        )
    table = torch.zeros(max(map(ord, lookup)) + 1, dtype=torch.long)
    table[torch.tensor([ord(c) for c in lookup])] = torch.arange(len(lookup))
    codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32).long()
    return table[codes]


class TextWindows:
    """Random windows of ``n_ctx + 1`` token ids from a text, split into train and held-out parts.

    Args:
        ids: the encoded text.
        n_ctx: the model's context; a window is ``n_ctx + 1`` ids (inputs and next-token targets).
        held_out_fraction: the last part of the text, kept for :meth:`held_out`.
    """

    def __init__(self, ids: Int[Tensor, " length"], n_ctx: int, held_out_fraction: float):
        n_held = int(len(ids) * held_out_fraction)
        self.n_ctx = n_ctx
        self.train_ids, self.held_ids = ids[: len(ids) - n_held], ids[len(ids) - n_held :]
        for name, part in (("training", self.train_ids), ("held-out", self.held_ids)):
            if len(part) < n_ctx + 1:
                raise DataError(
                    f"the text's {name} part has {len(part)} characters, fewer than one window of "
                    f"n_ctx + 1 = {n_ctx + 1}; use a longer text or a smaller model.n_ctx"
                )

    @staticmethod
    def _windows(ids: Tensor, n: int, n_ctx: int, generator: torch.Generator) -> Int[Tensor, "n window"]:
        starts = torch.randint(0, len(ids) - n_ctx, (n,), generator=generator)
        return ids[starts[:, None] + torch.arange(n_ctx + 1)]

    def sample(self, batch_size: int, generator: torch.Generator) -> Int[Tensor, "batch window"]:
        """``batch_size`` random training windows (CPU generator)."""
        return self._windows(self.train_ids, batch_size, self.n_ctx, generator)

    def held_out(self, n_windows: int, seed: int = 0) -> Int[Tensor, "n window"]:
        """A fixed set of ``n_windows`` held-out windows (the same for the same seed)."""
        return self._windows(self.held_ids, n_windows, self.n_ctx, torch.Generator().manual_seed(seed))
