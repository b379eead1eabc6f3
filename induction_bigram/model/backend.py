"""The TransformerLens model type, named once so that no other module imports it.

Every module outside :mod:`induction_bigram.model` and :mod:`induction_bigram.hooks` annotates
models as :data:`Model` and reaches parameters through the accessors here, so that which
TransformerLens class runs is this package's business alone:

- TransformerLens 3.x (``transformer-lens>=3.5,<4``): ``HookedTransformer``, built by
  :mod:`.circuit` and :mod:`.standard`;
- TransformerLens 4.x (``>=4,<5``): ``TransformerBridge`` around TL's native model with our
  components, built by :mod:`.tl4`.

The backend is chosen by the installed TransformerLens's major version (:data:`TL_VERSION`),
once, at import. The hook names, ``run_with_cache``, ``ActivationCache``, ``FactoredMatrix`` and
``transformer_lens.patching`` are shared by both and are used directly.
"""

from __future__ import annotations

from importlib.metadata import version as _version
from typing import Any

import torch
from torch import nn

from induction_bigram.errors import CheckpointError

TL_VERSION: str = _version("transformer-lens")
"""The installed TransformerLens version, e.g. ``"3.9.0"``."""
TL4: bool = int(TL_VERSION.split(".")[0]) >= 4
"""Whether the TransformerBridge backend (TL >= 4) is in use."""

if TL4:
    from transformer_lens.model_bridge import TransformerBridge as Model
else:
    from transformer_lens import HookedTransformer as Model

__all__ = [
    "Model",
    "TL4",
    "TL_VERSION",
    "load_optimizer_state",
    "named_parameters",
    "portable_optimizer_state",
    "tl3_parameters",
    "trainable_parameters",
]


def named_parameters(model: Model) -> list[tuple[str, nn.Parameter]]:
    """Every parameter by its TL 3 name (``blocks.0.attn.W_K``), on either backend; on TL 4 a
    name's tensor is the bridge's (``blocks.0.attn.k.weight``, the paper-convention layout)."""
    if TL4:
        from induction_bigram.model.tl4 import named_parameters as bridge_named_parameters

        return bridge_named_parameters(model)
    return list(model.named_parameters())


def trainable_parameters(model: Model) -> list[tuple[str, nn.Parameter]]:
    """The parameters that train (``requires_grad``), by their TL 3 names, on either backend:
    the names and the split are the same, the shapes are each backend's."""
    return [(name, p) for name, p in named_parameters(model) if p.requires_grad]


def tl3_parameters(model: Model) -> dict[str, torch.Tensor]:
    """Every parameter by TL 3 name in TL 3's layout (``blocks.0.attn.W_K``: [head, d_model,
    d_head]), still attached to autograd, on either backend (on TL 4 a rearranged view of the
    bridge's tensor): maths on the weights written once serves both."""
    return {name: _layout(model, name, p, to_tl3=True) for name, p in named_parameters(model)}


def portable_optimizer_state(model: Model, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer.state_dict()`` as checkpoints store it: parameters named by TL 3 name instead
    of numbered, every per-parameter tensor (momenta, second moments) in TL 3's layout. The two
    backends order and shape the parameters differently, so only this form resumes under either."""
    names = _names_by_index(model, optimizer)
    state = optimizer.state_dict()
    return {
        "state": {
            names[index]: {key: _layout(model, names[index], value, to_tl3=True) for key, value in entries.items()}
            for index, entries in state["state"].items()
        },
        "param_groups": [{**group, "params": [names[i] for i in group["params"]]} for group in state["param_groups"]],
    }


def load_optimizer_state(model: Model, optimizer: torch.optim.Optimizer, state: Any) -> None:
    """Load a :func:`portable_optimizer_state` into ``optimizer`` (made over the same parameters,
    in any order); a state that does not fit, or one numbered by position as torch's own
    ``state_dict`` numbers it, is a :class:`CheckpointError`."""
    if not isinstance(state, dict) or not isinstance(state.get("state"), dict) or "param_groups" not in state:
        raise CheckpointError("the saved optimiser state is not an optimiser's state")
    if any(isinstance(p, int) for group in state["param_groups"] for p in group.get("params", [])):
        raise CheckpointError(
            "the saved optimiser state numbers its parameters by position (torch's state_dict), not by name "
            "(induction_bigram.model.portable_optimizer_state)"
        )
    names = _names_by_index(model, optimizer)
    index = {name: i for i, name in enumerate(names)}
    saved_groups = {frozenset(group["params"]): group for group in state["param_groups"]}
    groups = []
    for group in optimizer.state_dict()["param_groups"]:
        members = frozenset(names[i] for i in group["params"])
        if members not in saved_groups:
            raise CheckpointError(
                f"the saved optimiser state does not fit this run: it has no parameter group of {sorted(members)}"
            )
        groups.append({**saved_groups[members], "params": group["params"]})
    unknown = sorted(set(state["state"]) - set(index))
    if unknown:
        raise CheckpointError(f"the saved optimiser state does not fit this run: it holds parameters {unknown}")
    optimizer.load_state_dict(
        {
            "state": {
                index[name]: {key: _layout(model, name, value, to_tl3=False) for key, value in entries.items()}
                for name, entries in state["state"].items()
            },
            "param_groups": groups,
        }
    )


def _names_by_index(model: Model, optimizer: torch.optim.Optimizer) -> list[str]:
    """The TL 3 name of each parameter of ``optimizer``, in its ``state_dict`` numbering."""
    name_of = {id(p): name for name, p in named_parameters(model)}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    foreign = [tuple(p.shape) for p in params if id(p) not in name_of]
    if foreign:
        raise CheckpointError(f"the optimiser holds tensors that are not the model's: shapes {foreign}")
    return [name_of[id(p)] for p in params]


def _layout(model: Model, name: str, value: Any, to_tl3: bool) -> Any:
    """A tensor shaped as parameter ``name`` (a parameter, or its optimiser state) in TL 3's
    layout (``to_tl3``) or back."""
    if not TL4 or not isinstance(value, torch.Tensor) or value.dim() == 0:
        return value
    from induction_bigram.model.tl4_weights import tensor_layout

    return tensor_layout(model, name, value, to_tl3)
