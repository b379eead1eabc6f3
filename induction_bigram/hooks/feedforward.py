"""The linear feed-forward layer W_F (THEORY.md section 2, associative memory transformer).

TransformerLens builds an MLP ``W_out act(W_in x)``. We register an identity activation under
the name ``"linear"`` in TL's activation table, so a model whose ``cfg.act_fn == "linear"`` is
an ordinary HookedTransformer (``hook_pre``/``hook_post``/``hook_mlp_out`` all fire). The
builder freezes ``W_in`` at the identity, so the layer computes exactly ``W_out^T x``, i.e.
W_F = ``W_out^T`` in the paper's column convention.
"""

from torch import Tensor
from transformer_lens.utilities.activation_functions import SUPPORTED_ACTIVATIONS

LINEAR_ACT_FN = "linear"


def _identity(x: Tensor) -> Tensor:
    return x


SUPPORTED_ACTIVATIONS.setdefault(LINEAR_ACT_FN, _identity)
