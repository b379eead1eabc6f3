"""Our TransformerLens components: the parts TL's own models lack, swapped into the models that
:mod:`induction_bigram.model` builds. Each is a module on the path of the forward pass (never a
permanent hook, which ``reset_hooks(including_permanent=True)`` would remove):

- :mod:`.checks`, :mod:`.token_input`: the input checks and the FFN that reads only w_E(z_t), for both
  backends;
- TL 3 (subclasses of ``transformer_lens.components``, which TL 4 removed): :mod:`.attention`
  (``CircuitAttention``: TL's attention with an encoding's score term, a circuit hook point, the context
  check), :mod:`.embed` (the token-id and context checks), :mod:`.feedforward`
  (the linear W_F);
- TL 4: :mod:`.tl4`, the ``NativeModel`` counterparts.

The positional encodings' own modules are in :mod:`induction_bigram.model.encodings`; the hook points
and hook functions users hand TL are in :mod:`induction_bigram.hooks`.
"""

LINEAR_ACT_FN = "linear"
"""The identity activation of the linear feed-forward layer W_F, registered in each backend's table of
activations under this name (:mod:`.feedforward`, :mod:`.tl4`)."""
