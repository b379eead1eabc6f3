"""The idealised feed-forward input: W_F reads only the current token's embedding w_E(z_t)
(docs/THEORY.md section 4.2).

Bietti et al. (2023) and Wang & Sato (2024) write the global bigram memory as W_F applied to
w_E(z_t) alone: the FFN never sees what the heads wrote. In a model with ``model.ffn_reads =
"token"`` the last block's ``ln2`` slot (the module TL applies to the stream before the MLP, an
identity in our models, on both backends) holds :class:`TokenEmbeddingInput`, which ignores the
stream and hands the MLP the embedding rows this forward pass looked up. The embedding module
records them into a shared :class:`EmbeddingRecord` (TL 3: ``TokenEmbed``; TL 4: the native
model's token embedding), before ``hook_embed``; the FFN's input shows in the cache as
``blocks.{L-1}.mlp.hook_pre`` (W_in = I), where it can be patched.

Each forward pass records once and the FFN takes once, so a forward that does not start at the
tokens (``start_at_layer``, a block called on its own, ``inputs_embeds``) raises a
:class:`~induction_bigram.errors.ConfigError` instead of reading another pass's embedding.
This module imports no TL component: both backends use it.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor, nn

from induction_bigram.errors import ConfigError


class EmbeddingRecord:
    """The token embedding rows of the forward pass under way, from the embedding to the FFN."""

    def __init__(self) -> None:
        self._rows: Tensor | None = None

    def record(self, rows: Float[Tensor, "batch pos d_model"]) -> None:
        self._rows = rows

    def take(self, stream: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        rows, self._rows = self._rows, None
        if rows is None or rows.shape != stream.shape:
            raise ConfigError(
                "this model's FFN reads the token embedding w_E(z_t) of the same forward pass (model.ffn_reads="
                "'token'), and this pass did not look one up for it: run the model on token ids from the first layer "
                "(not start_at_layer, a block on its own, or inputs_embeds)"
            )
        return rows


class TokenEmbeddingInput(nn.Module):
    """The ``ln2`` of a block whose FFN reads only w_E(z_t) (module doc)."""

    def __init__(self, record: EmbeddingRecord) -> None:
        super().__init__()
        self.record = record

    def forward(self, stream: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        return self.record.take(stream)
