"""``nope``: no positions at all (W_pos = 0): only the causal mask can supply order, so the model
has three attention layers (:data:`induction_bigram.config.POSITIONAL_ENCODINGS`)."""

from induction_bigram.model.encodings import Encoding, zero_positions

ENCODING = Encoding(
    summary="none, three layers (TL cannot express it: cfg says 'standard' with W_pos = 0)",
    initial=zero_positions,
)
