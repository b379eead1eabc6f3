"""The weights of the TransformerLens 4 backend (:mod:`.tl4`): TL 3 names and layouts <-> the bridge's.

Our on-disk format is TL 3's (the shipped models, every checkpoint): :func:`portable_state_dict`
writes it from a bridge, whose own ``state_dict()`` has other keys and layouts
(``blocks.0.attn.k.weight``), and :func:`load_weights` reads both (the initial weights too:
:func:`~.initial.initial_weights`, by TL 3 name).
"""

from __future__ import annotations

import re
from typing import Any

import einops
import torch
from torch import Tensor
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

from induction_bigram.errors import CheckpointError
from induction_bigram.hooks.circuit import FORMAT_VERSION
from induction_bigram.model.access import (
    CONFIG_ATTR,
    MARKER_KEY,
    check_state,
    with_marker,
    without_config_buffers,
)
from induction_bigram.model.backend import TL_VERSION
from induction_bigram.model.encodings import SCORES_MODULE

# -- TL 3 names <-> bridge keys --------------------------------------------------------------


_PAIRS = [  # (TL 3 name, bridge key) patterns; each direction is a regex substitution
    (
        r"blocks\.(\d+)\.attn\.W_([QKVO])",
        r"blocks\.(\d+)\.attn\.([qkvo])\.weight",
        "blocks.{0}.attn.{1}.weight",
        "blocks.{0}.attn.W_{1}",
    ),
    (
        r"blocks\.(\d+)\.attn\.b_([QKVO])",
        r"blocks\.(\d+)\.attn\.([qkvo])\.bias",
        "blocks.{0}.attn.{1}.bias",
        "blocks.{0}.attn.b_{1}",
    ),
    (
        r"blocks\.(\d+)\.mlp\.W_(in|out)",
        r"blocks\.(\d+)\.mlp\.(in|out)\.weight",
        "blocks.{0}.mlp.{1}.weight",
        "blocks.{0}.mlp.W_{1}",
    ),
    (
        r"blocks\.(\d+)\.mlp\.b_(in|out)",
        r"blocks\.(\d+)\.mlp\.(in|out)\.bias",
        "blocks.{0}.mlp.{1}.bias",
        "blocks.{0}.mlp.b_{1}",
    ),
    (r"(blocks\.\d+\.ln\d|ln_final)\.w", r"(blocks\.\d+\.ln\d|ln_final)\.weight", "{0}.weight", "{0}.w"),
    (r"(blocks\.\d+\.ln\d|ln_final)\.b", r"(blocks\.\d+\.ln\d|ln_final)\.bias", "{0}.bias", "{0}.b"),
    (r"blocks\.0\.attn\.rel_pos\.(\w+)", r"rel_pos\.(\w+)", "rel_pos.{0}", "blocks.0.attn.rel_pos.{0}"),
    (r"embed\.W_E()", r"embed\.weight()", "embed.weight", "embed.W_E"),
    (r"pos_embed\.W_pos()", r"pos_embed\.weight()", "pos_embed.weight", "pos_embed.W_pos"),
    (r"unembed\.W_U()", r"unembed\.weight()", "unembed.weight", "unembed.W_U"),
    (r"unembed\.b_U()", r"unembed\.bias()", "unembed.bias", "unembed.b_U"),
]


def bridge_key(tl3_name: str) -> str:
    """``blocks.0.attn.W_K`` -> ``blocks.0.attn.k.weight`` (the bridge's state-dict key)."""
    for tl3, _, to_bridge, _ in _PAIRS:
        if m := re.fullmatch(tl3, tl3_name):
            return to_bridge.format(m[1], (m[2] or "").lower() if m.re.groups > 1 else "")
    return tl3_name


def tl3_name(bridge_key: str) -> str:
    """The inverse of :func:`bridge_key`."""
    for _, bridge, _, to_tl3 in _PAIRS:
        if m := re.fullmatch(bridge, bridge_key):
            part = m[2] if m.re.groups > 1 else ""
            return to_tl3.format(m[1], part if part in ("in", "out") else part.upper())
    return bridge_key


def _is_tl3_state(state: dict[str, Any]) -> bool:
    return any(re.search(r"(^|\.)(W_[A-Za-z]+|b_[A-Za-z]+)$", key) for key in state)


def convert_tl3(state: dict[str, Tensor], tl_cfg: TransformerBridgeConfig) -> dict[str, Tensor]:
    """A TL 3 state dict of ours -> the bridge's keys and layouts (TL's ``convert_tl_checkpoint``,
    plus an encoding's score module, which it refuses; our loader marker has no place in a bridge)."""
    rest, extra = {}, {}
    for key, value in without_config_buffers(state).items():
        if key == MARKER_KEY:
            continue
        if key.startswith(f"blocks.0.attn.{SCORES_MODULE}."):
            extra[bridge_key(key)] = value
        else:
            rest[key] = value
    try:
        return convert_tl_checkpoint(rest, tl_cfg) | extra
    except (KeyError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"cannot convert these TL 3 weights for TransformerLens {TL_VERSION}: {err}") from None


# the inverse of convert_tl_checkpoint's layout changes, by bridge key
_TO_TL3_LAYOUT = [
    (r"blocks\.\d+\.attn\.[qkv]\.weight", "(h d) m -> h m d"),
    (r"blocks\.\d+\.attn\.o\.weight", "m (h d) -> h d m"),
    (r"blocks\.\d+\.attn\.[qkv]\.bias", "(h d) -> h d"),
    (r"blocks\.\d+\.mlp\.(in|out)\.weight|unembed\.weight", "a b -> b a"),
]


def _tl3_layout(key: str, value: Tensor, n_heads: int, inverse: bool = False) -> Tensor:
    """The bridge tensor ``key`` in TL 3's layout (``inverse``: a TL 3 tensor in the bridge's)."""
    for pattern, rearrangement in _TO_TL3_LAYOUT:
        if re.fullmatch(pattern, key):
            if inverse:
                rearrangement = " -> ".join(reversed(rearrangement.split(" -> ")))
            return einops.rearrange(value, rearrangement, **({"h": n_heads} if "h" in rearrangement else {}))
    return value


def portable_state_dict(model: TransformerBridge) -> dict[str, Tensor]:
    """The bridge's weights as our files store them, loadable on either backend: TL 3's names and
    layouts (what TL 3's ``state_dict()`` holds, less the buffers the config determines), on the CPU.
    A circuit model's holds TL 3's loader marker, which the bridge does not keep."""
    state = {
        tl3_name(key): _tl3_layout(key, value.detach(), model.cfg.n_heads).cpu().contiguous().clone()
        for key, value in model.state_dict().items()
    }
    if hasattr(model, CONFIG_ATTR):
        state[MARKER_KEY] = torch.tensor(FORMAT_VERSION)
    return state


def tensor_layout(model: TransformerBridge, tl3: str, value: Tensor, to_tl3: bool) -> Tensor:
    """A tensor shaped as the bridge's parameter ``tl3`` (a TL 3 name), in TL 3's layout
    (``to_tl3``), or one in TL 3's layout back in the bridge's (an optimiser's momenta)."""
    return _tl3_layout(bridge_key(tl3), value, model.cfg.n_heads, inverse=not to_tl3)


def load_weights(model: TransformerBridge, state: Any, source: str = "state dict") -> TransformerBridge:
    """Load a ``state_dict`` of one of our models into ``model`` (built by :func:`build_model` or
    :func:`build_standard_model` from the same config), strictly and bitwise. ``state`` may be in
    TL 3's format (our files: :func:`portable_state_dict`, shipped models, TL 3 state dicts) or
    the bridge's; mismatches are a :class:`CheckpointError` naming ``source`` and, for TL 3's
    format, the TL 3 names, as on TL 3."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{source} holds no weights")
    if _is_tl3_state(state):
        expected = portable_state_dict(model)
        state = with_marker(expected, without_config_buffers(state))
        check_state(expected, state, source)
        state = convert_tl3(state, model.cfg)
    check_state(model.state_dict(), state, source)
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    return model
