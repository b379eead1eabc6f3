"""``ape``: random frozen absolute positions p_t ~ N(0, 1/d) added to the stream (docs/THEORY.md
section 2), TL's ``pos_embed.W_pos``; a model with a longer ``n_ctx`` shares its first rows."""

from induction_bigram.model.encodings import Encoding

ENCODING = Encoding(
    summary="absolute: random frozen p_t added to the stream (cfg: standard)",
    initial=lambda cfg, normal: {"pos_embed.W_pos": normal("pos_embed.W_pos", (cfg.n_ctx, cfg.d_model))},
)
