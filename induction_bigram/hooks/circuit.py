"""Named hook points for the circuit's parts, so analyses can say what they mean.

``model.circuit`` holds three HookPoints. They are called by the modules whose output they
name (:class:`~induction_bigram.model.components.attention.CircuitAttention`,
:class:`~induction_bigram.model.components.feedforward.CircuitMLP`), on the path of the forward pass, so
caching, editing and patching them works like any TL hook point, and no permanent hook is
involved: ``model.reset_hooks(including_permanent=True)`` cannot remove them.

- ``circuit.hook_previous_token``: layer 1's output, the previous-token head writing
  Phi_1 x_(t-1) (= ``blocks.0.hook_attn_out``; two-layer models);
- ``circuit.hook_induction``: the last attention layer's output, the in-context contribution
  (= ``blocks.{L-1}.hook_attn_out``);
- ``circuit.hook_global``: the feed-forward output, the global bigram memory
  (= ``blocks.{L-1}.hook_mlp_out``; models with an FFN).

Each is [batch, pos, d_model]. The circuit point fires inside the module, before TL's
``hook_attn_out`` / ``hook_mlp_out``, which therefore see what a circuit hook returned.

``repr(model)`` shows ``CircuitHooks.description``, what the model is beyond TL's ``cfg``.
``CircuitHooks`` also carries one buffer, :data:`LOADER_MARKER`, so that a state dict of ours
loaded strictly into a plain ``HookedTransformer`` (which lacks the relative bias and these
hook points) fails with an "unexpected key" that names the loader to use.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint

LOADER_MARKER = "LOAD_WITH_induction_bigram_load_weights"
FORMAT_VERSION = 2


class CircuitHooks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hook_previous_token = HookPoint()
        self.hook_induction = HookPoint()
        self.hook_global = HookPoint()
        self.register_buffer(LOADER_MARKER, torch.tensor(FORMAT_VERSION))
        self.description = ""  # what the model is, beyond TL's cfg (``induction_bigram.describe``)

    def extra_repr(self) -> str:
        return self.description


class RoutesOutput:
    """Mixin for a TL component whose output passes through a circuit hook point.

    The point is held in a tuple so that it is not registered a second time as a child of
    this module: its one name is ``circuit.hook_*``.
    """

    _circuit_point: tuple[HookPoint, ...] = ()

    def route_output_through(self, point: HookPoint) -> None:
        self._circuit_point = (point,)

    def _routed(self, output: Tensor) -> Tensor:
        return self._circuit_point[0](output) if self._circuit_point else output
