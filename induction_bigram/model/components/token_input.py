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

A forward pass that looked up no embedding since the FFN last read (``start_at_layer`` > 0, a
block called on its own, ``inputs_embeds``) raises a :class:`~induction_bigram.errors.ConfigError`
instead of reading another pass's embedding.
This module imports no TL component: both backends use it.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from induction_bigram.errors import ConfigError


class EmbeddingRecord:
    """The token embedding rows recorded since the FFN last read, for the FFN of the same pass.

    Rows are appended along the positions (up to ``n_ctx`` kept) so that a pass that looked up
    only its newest tokens' rows still finds the rows of the whole sequence: TL 3's ``generate``
    embeds the prompt once, then one new token per step, and runs the stream from layer 0
    (``start_at_layer=0``), with or without a KV cache. The FFN reads the last rows, as many as
    its pass has positions, and only if some were recorded since it last read.
    """

    def __init__(self, n_ctx: int) -> None:
        self.n_ctx = n_ctx
        self._rows: Tensor | None = None
        self._fresh = False

    def record(self, rows: Float[Tensor, "batch pos d_model"]) -> None:
        earlier = self._rows
        if earlier is not None and (earlier.shape[0], earlier.device, earlier.dtype) == (
            rows.shape[0],
            rows.device,
            rows.dtype,
        ):
            rows = torch.cat([earlier, rows], 1)[:, -self.n_ctx :]
        self._rows, self._fresh = rows, True

    def take(self, stream: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        rows, fresh = self._rows, self._fresh
        self._fresh = False
        if not fresh or rows is None or rows.shape[0] != stream.shape[0] or rows.shape[1] < stream.shape[1]:
            raise ConfigError(
                "this model's FFN reads the token embedding w_E(z_t) of the same forward pass (model.ffn_reads="
                "'token'), and this pass did not look one up for it: run the model on token ids from the first layer "
                "(not start_at_layer > 0, a block on its own, or inputs_embeds)"
            )
        return rows[:, -stream.shape[1] :].contiguous()


class TokenEmbeddingInput(nn.Module):
    """The ``ln2`` of a block whose FFN reads only w_E(z_t) (module doc)."""

    def __init__(self, record: EmbeddingRecord) -> None:
        super().__init__()
        self.record = record

    def forward(self, stream: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        return self.record.take(stream)
