"""The TransformerLens model type, named once so that no other module imports it.

Every module outside :mod:`induction_bigram.model` and :mod:`induction_bigram.hooks` annotates
models as :data:`Model` and reaches parameters through the accessors here, so that which
TransformerLens class runs is this package's business alone:

- TransformerLens 3.x (``transformer-lens>=3.5,<4``): ``HookedTransformer``, built by
  :mod:`.circuit` and :mod:`.natural`;
- TransformerLens 4.x (``>=4,<5``): ``TransformerBridge`` around TL's native model with our
  components, built by :mod:`.tl4`.

The backend is chosen by the installed TransformerLens's major version (:data:`TL_VERSION`),
once, at import. The hook names, ``run_with_cache``, ``ActivationCache``, ``FactoredMatrix`` and
``transformer_lens.patching`` are shared by both and are used directly.
"""

from __future__ import annotations

from importlib.metadata import version as _version

from torch import nn

TL_VERSION: str = _version("transformer-lens")
"""The installed TransformerLens version, e.g. ``"3.9.0"``."""
TL4: bool = int(TL_VERSION.split(".")[0]) >= 4
"""Whether the TransformerBridge backend (TL >= 4) is in use."""

if TL4:
    from transformer_lens.model_bridge import TransformerBridge as Model
else:
    from transformer_lens import HookedTransformer as Model

PARAMETER_LAYOUT: str = "transformer-lens-4-bridge" if TL4 else "transformer-lens-3"
"""The layout of the tensors :func:`trainable_parameters` returns, and so of an optimiser's
state: a checkpoint's weights load on either backend, its optimiser state only under this layout."""

__all__ = ["Model", "PARAMETER_LAYOUT", "TL4", "TL_VERSION", "trainable_parameters"]


def trainable_parameters(model: Model) -> list[tuple[str, nn.Parameter]]:
    """The parameters that train (``requires_grad``), by their TL 3 names (``blocks.0.attn.W_K``)
    on either backend; on TL 4 a name's tensor is the bridge's (``blocks.0.attn.k.weight``, the
    paper-convention layout), so shapes differ from TL 3's but the names and the split do not."""
    if TL4:
        from induction_bigram.model.tl4 import trainable_parameters as tl4_trainable_parameters

        return tl4_trainable_parameters(model)
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]
