"""The positional encodings of the paper's model (``model.positional``; docs/THEORY.md section 5.6), one
module each, and :data:`ENCODINGS`, the registry every other module reads.

An encoding is what the model knows of positions beyond its causal mask. Each module here holds one
:class:`Encoding` as ``ENCODING``; its name and number of attention layers are the config's
(:data:`induction_bigram.config.POSITIONAL_ENCODINGS`: the config precedes the model, so it cannot
import this registry), and :data:`ENCODINGS` loads the module of each name there. Both backends build
the model from the entry (:mod:`..circuit` on TL 3, :mod:`..tl4` on TL 4), the one initialiser
(:mod:`..initial`) takes its initial weights from it, and the fused training loss
(:mod:`induction_bigram.training.fused`) asks it whether it is covered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module

import torch
from torch import Tensor, nn

from induction_bigram.config import POSITIONAL_ENCODINGS, ModelConfig
from induction_bigram.errors import ConfigError

Normal = Callable[[str, tuple[int, ...]], Tensor]
"""``normal(name, shape)``: the frozen random tensor N(0, 1/d) the initialiser seeds by (seed, name)."""

SCORES_MODULE = "rel_pos"
"""The attribute under which an encoding's :attr:`Encoding.scores` module sits: TL 3
``blocks.0.attn.rel_pos`` (its tensors ``blocks.0.attn.rel_pos.*``), TL 4 the native model's
``rel_pos`` (the bridge keeps no parameter nested in a wrapped component), its hook points shown
under the TL 3 names on both."""


@dataclass(frozen=True)
class Encoding:
    """One positional encoding: what it adds to TL's model on both backends.

    It acts on layer 1, the previous-token head's layer (docs/THEORY.md section 2), and nowhere else:
    through the stream (``pos_embed.W_pos``: :attr:`initial` gives it random p_t, or zeros), through a
    term added to layer 1's attention scores (:attr:`scores`), or by rotating layer 1's queries and keys
    (:attr:`rotary`; the later layers attend by content alone).

    Attributes:
        summary: what it is, for :func:`~induction_bigram.model.describe` (the words TL's ``cfg`` lacks);
            ``{scores}`` becomes where its :attr:`scores` module sits on this backend, ``{unrotated}``
            what a rotary model's later layers have instead of a rotation.
        initial: its tensors at initialisation by TL 3 name, in TL 3's layout: ``pos_embed.W_pos``
            (unless :attr:`rotary`, where TL has no W_pos) and those of its :attr:`scores` module.
        trained: the TL 3 names of its tensors that train.
        scores: ``scores(cfg)``, a module ``(batch, n_heads, n_query, n_key) -> [batch, head, query_pos,
            key_pos]`` whose output is added to layer 1's scores before the causal mask (under a KV cache
            the queries are the last ``n_query`` of the ``n_key`` positions): a plain torch module, the
            same on TL 3 and TL 4, its tensors and hook points under ``blocks.0.attn.rel_pos``
            (:data:`SCORES_MODULE`).
        rotary: rotate layer 1's queries and keys (TL 3: TL's rotary with the later layers' frequencies
            at zero; TL 4: :class:`~induction_bigram.model.components.tl4.HalfSplitRotary` on layer 1).
        fused: whether :class:`~induction_bigram.training.fused.FusedLoss` computes a model with it (it
            writes out the stream, the :attr:`scores` term and layer 1's rotation; an encoding that acts
            elsewhere says ``False``).
    """

    summary: str
    initial: Callable[[ModelConfig, Normal], dict[str, Tensor]]
    trained: Callable[[ModelConfig], list[str]] = field(default=lambda cfg: [])
    scores: Callable[[ModelConfig], nn.Module] | None = None
    rotary: bool = False
    fused: bool = True


def encoding(cfg: ModelConfig) -> Encoding:
    """The :class:`Encoding` of ``cfg.positional``."""
    try:
        return ENCODINGS[cfg.positional]
    except KeyError:  # a name the config knows but the registry lacks: one of the two tables was edited alone
        raise ConfigError(
            f"model.positional={cfg.positional!r} has no module in induction_bigram.model.encodings"
        ) from None


def zero_positions(cfg: ModelConfig, normal: Normal) -> dict[str, Tensor]:
    """W_pos = 0: a stream without positions (every encoding but ``ape``, and ``rope``, which has no W_pos)."""
    return {"pos_embed.W_pos": torch.zeros(cfg.n_ctx, cfg.d_model)}


ENCODINGS: dict[str, Encoding] = {name: import_module(f"{__name__}.{name}").ENCODING for name in POSITIONAL_ENCODINGS}
"""Every positional encoding by name, in the config's order."""
