"""Hook points and hook functions: what a user hands TransformerLens to read or change a forward pass.

This is ``induction_bigram.hooks`` (not a top-level ``hooks`` package, which would collide in
site-packages). It holds, for both TransformerLens backends:

- :mod:`.circuit`: the named hook points of the circuit's parts (``circuit.hook_induction``, ...), on the
  forward path of every model :func:`induction_bigram.build_model` builds;
- :mod:`.patching`: hook functions for ``run_with_hooks`` / ``hooks(fwd_hooks=...)``: patch an
  activation from another run's cache at chosen positions.

The TL components our models are built from (attention, feed-forward, input checks, the TL 4 native
parts) live beside the model code, in :mod:`induction_bigram.model.components`, and the positional
encodings in :mod:`induction_bigram.model.encodings`.
"""

from induction_bigram.hooks.circuit import CircuitHooks
from induction_bigram.hooks.patching import patch_where

__all__ = ["CircuitHooks", "patch_where"]
