"""Input checks on the forward pass (:mod:`.checks`): token ids and context length.

:class:`TokenEmbed` (TL's ``Embed``) and :class:`CheckedPosEmbed` (TL's
``PosEmbed``, which knows the KV-cache offset) raise a
:class:`~induction_bigram.errors.DataError` naming the offending value instead. They are
modules, not hooks, so no ``reset_hooks`` call can remove them.
"""

from __future__ import annotations

from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.components import Embed, PosEmbed

from induction_bigram.model.components.checks import check_positions, check_token_tensor
from induction_bigram.model.components.token_input import EmbeddingRecord


class TokenEmbed(Embed):
    """TL's ``Embed`` with the token check; with a ``record`` (``model.ffn_reads="token"``) it
    also hands its rows to the FFN (:mod:`.token_input`)."""

    record: EmbeddingRecord | None = None

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        check_token_tensor(tokens, self.cfg.d_vocab, self.cfg.n_ctx, ranks=(2,))
        rows = super().forward(tokens)
        if self.record is not None:
            self.record.record(rows)
        return rows


class CheckedPosEmbed(PosEmbed):
    def forward(self, tokens: Int[Tensor, "batch pos"], past_kv_pos_offset: int = 0, attention_mask=None):
        check_positions(tokens.shape[-1], past_kv_pos_offset, attention_mask, self.cfg.n_ctx)
        return super().forward(tokens, past_kv_pos_offset, attention_mask)
