"""The feed-forward layer of the associative memory transformer (docs/THEORY.md section 2).

TransformerLens builds an MLP ``W_out act(W_in x)``. We register an identity activation under
the name ``"linear"`` in TL's activation table, so a model whose ``cfg.act_fn == "linear"`` is
an ordinary HookedTransformer (``hook_pre``/``hook_post``/``hook_mlp_out`` all fire). The
builder freezes ``W_in`` at the identity, so the layer computes exactly ``W_out^T x``, i.e.
W_F = ``W_out^T`` in the paper's column convention.

:class:`CircuitMLP` is TL's MLP whose output also passes through ``circuit.hook_global``.
"""

from jaxtyping import Float
from torch import Tensor
from transformer_lens.components.mlps.mlp import MLP
from transformer_lens.utilities.activation_functions import SUPPORTED_ACTIVATIONS

from induction_bigram.hooks.circuit import RoutesOutput
from induction_bigram.model.components import LINEAR_ACT_FN


def _identity(x: Tensor) -> Tensor:
    return x


SUPPORTED_ACTIVATIONS.setdefault(LINEAR_ACT_FN, _identity)


class CircuitMLP(RoutesOutput, MLP):
    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        return self._routed(super().forward(x))
