"""TransformerLens hook functions and hooked modules the model variants and analyses need.

This is ``induction_bigram.hooks`` (not a top-level ``hooks`` package, which would collide in
site-packages).

- :mod:`.positional`: the learned relative-position bias of layer 1 (``rpe``) and rotary in
  layer 1 only (``rope``).
- :mod:`.feedforward`: the linear feed-forward layer W_F of the associative memory transformer.
- :mod:`.circuit`: named hook points for the circuit's parts (``circuit.hook_induction``, ...).
"""

from induction_bigram.hooks.circuit import CircuitHooks, add_circuit_hooks
from induction_bigram.hooks.feedforward import LINEAR_ACT_FN
from induction_bigram.hooks.positional import RelativePositionBias, make_layer_content_only

__all__ = ["CircuitHooks", "LINEAR_ACT_FN", "add_circuit_hooks", "RelativePositionBias", "make_layer_content_only"]
