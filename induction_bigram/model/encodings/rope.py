"""``rope``: rotary position embedding in layer 1 only (TL 3's layout: channel i rotates with
i + d/2); the later layers attend by content alone. With ``model.rope_qk_bias`` layer 1 trains a
query and a key bias, so that the score gains b_Q^T R_(s-t) b_K, a function of the offset alone;
they start at random N(0, 1/d), since b_Q^T R b_K is bilinear and both at zero would never move."""

from induction_bigram.model.encodings import Encoding

_BIASES = ("blocks.0.attn.b_Q", "blocks.0.attn.b_K")

ENCODING = Encoding(
    summary="rotary in layer 1 only (cfg says rotary; later layers have {unrotated})",
    initial=lambda cfg, normal: {name: normal(name, (1, cfg.d_model)) for name in _BIASES * cfg.rope_qk_bias},
    trained=lambda cfg: list(_BIASES * cfg.rope_qk_bias),
    rotary=True,
)
