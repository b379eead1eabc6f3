"""Named hook points for the circuit's parts, so analyses can say what they mean.

``model.circuit`` holds three HookPoints that sit *inside* TL's own hooks, on the path of the
forward pass (a permanent hook routes the activation through them and passes on what they
return), so caching, editing and patching them works like any TL hook point:

- ``circuit.hook_previous_token``: layer 1's output, the previous-token head writing
  Phi_1 x_(t-1) (= ``blocks.0.hook_attn_out``; two-layer models);
- ``circuit.hook_induction``: the last attention layer's output, the in-context contribution
  (= ``blocks.{L-1}.hook_attn_out``);
- ``circuit.hook_global``: the feed-forward output, the global bigram memory
  (= ``blocks.{L-1}.hook_mlp_out``; models with an FFN).

Each is [batch, pos, d_model]. A hook added later on the TL name runs after (and sees the
result of) the circuit hook point.
"""

from __future__ import annotations

from torch import nn
from transformer_lens import HookedTransformer
from transformer_lens.hook_points import HookPoint


class CircuitHooks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hook_previous_token = HookPoint()
        self.hook_induction = HookPoint()
        self.hook_global = HookPoint()


def _route_through(point: HookPoint):
    def route(activation, hook):
        return point(activation)

    return route


def add_circuit_hooks(model: HookedTransformer) -> CircuitHooks:
    """Attach :class:`CircuitHooks` as ``model.circuit`` and wire them into the forward pass."""
    circuit = CircuitHooks()
    model.circuit = circuit
    model.setup()
    last = model.blocks[model.cfg.n_layers - 1]
    if model.cfg.n_layers == 2:
        model.blocks[0].hook_attn_out.add_perma_hook(_route_through(circuit.hook_previous_token))
    last.hook_attn_out.add_perma_hook(_route_through(circuit.hook_induction))
    if not model.cfg.attn_only:
        last.hook_mlp_out.add_perma_hook(_route_through(circuit.hook_global))
    return circuit
