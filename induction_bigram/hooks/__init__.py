"""TransformerLens components and hook points our model variants and analyses need.

This is ``induction_bigram.hooks`` (not a top-level ``hooks`` package, which would collide in
site-packages). Each is a subclass of a TL component or a TL ``HookPoint``, on the path of the
forward pass, so nothing here depends on permanent hooks:

- :mod:`.embed`: token-id and context-length checks (``TokenEmbed``, ``CheckedPosEmbed``);
- :mod:`.attention`: ``CircuitAttention``, TL's attention with an optional relative bias;
- :mod:`.positional`: the learned relative-position bias of layer 1 (``rpe``) and rotary in
  layer 1 only (``rope``);
- :mod:`.feedforward`: the linear feed-forward layer W_F of the associative memory transformer;
- :mod:`.circuit`: named hook points for the circuit's parts (``circuit.hook_induction``, ...).

Under TransformerLens 4 (which removed ``transformer_lens.components``) these names come from
:mod:`.tl4`, the ``TransformerBridge`` counterparts; ``TokenEmbed``, ``CheckedPosEmbed`` and
``make_layer_content_only`` have none there (the checks and the layer-1-only rotary are built
into the model by :mod:`induction_bigram.model.tl4`), and the TL 3 submodules cannot be imported.
"""

from importlib.metadata import version as _version

if int(_version("transformer-lens").split(".")[0]) >= 4:
    from induction_bigram.hooks.tl4 import LINEAR_ACT_FN, CircuitAttention, CircuitMLP, RelativePositionBias
    from induction_bigram.hooks.tl4 import BridgeCircuitHooks as CircuitHooks

    __all__ = ["CircuitAttention", "CircuitHooks", "CircuitMLP", "LINEAR_ACT_FN", "RelativePositionBias"]
else:
    from induction_bigram.hooks.attention import CircuitAttention
    from induction_bigram.hooks.circuit import CircuitHooks
    from induction_bigram.hooks.embed import CheckedPosEmbed, TokenEmbed
    from induction_bigram.hooks.feedforward import LINEAR_ACT_FN, CircuitMLP
    from induction_bigram.hooks.positional import RelativePositionBias, make_layer_content_only

    __all__ = [
        "CheckedPosEmbed",
        "CircuitAttention",
        "CircuitHooks",
        "CircuitMLP",
        "LINEAR_ACT_FN",
        "RelativePositionBias",
        "TokenEmbed",
        "make_layer_content_only",
    ]
