"""In-context against global: the logits split into the parts of the circuit (docs/THEORY.md section 4).

The final logits are a sum, because the model has no LayerNorm:

    logits = (w_E + p) W_U  +  sum_l attn_out_l W_U  +  ffn_out W_U  +  b_U

:func:`decompose_logits` computes the parts from TransformerLens's ``ActivationCache``
(``decompose_resid``) and names them after their role: ``direct`` (embeddings and the zero,
frozen b_U), ``previous_token`` (layer 1), ``in_context`` (the last attention layer, xi^IC),
``global`` (the feed-forward layer, xi^G; absent without one). The parts sum to the logits.

:func:`global_memory_kl` probes the feed-forward memory: how far the model's global prediction
for a token is from pi_b.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache

from induction_bigram.anymodel.paths import PATH_HOOKS
from induction_bigram.data.stats import BigramStats
from induction_bigram.model import Model, check_tokens, check_vocabulary, token_embeddings
from induction_bigram.serialise import Record


@dataclass(frozen=True)
class LogitDecomposition(Record):
    """The logits of a batch of prompts and their parts.

    Attributes:
        names: the part names, in order (``direct``, ``previous_token`` (two-layer models) or
            ``layer_<l>``, ``in_context``, ``global`` when there is an FFN).
        parts: each part's contribution to the logits.
        logits: the model's logits (equal to ``parts.sum(0)`` up to float rounding).
    """

    names: tuple[str, ...]
    parts: Float[Tensor, "part batch pos vocab"]
    logits: Float[Tensor, "batch pos vocab"]

    def __getitem__(self, name: str) -> Float[Tensor, "batch pos vocab"]:
        return self.parts[self.names.index(name)]

    @property
    def in_context(self) -> Float[Tensor, "batch pos vocab"]:
        """xi^IC: the last attention layer's contribution."""
        return self["in_context"]

    def at(self, positions: Int[Tensor, " batch"]) -> "LogitDecomposition":
        """The decomposition at one position per prompt (e.g. the last)."""
        rows = torch.arange(self.logits.shape[0], device=self.logits.device)
        return LogitDecomposition(
            self.names, self.parts[:, rows, positions][:, :, None], self.logits[rows, positions][:, None]
        )


def _part_name(label: str, n_layers: int) -> str:
    """Map TL's decompose_resid labels (``embed``, ``0_attn_out``, ``1_mlp_out``) to roles."""
    if label in ("embed", "pos_embed"):
        return "direct"
    layer, _, kind = label.partition("_")
    if kind == "mlp_out":
        return "global"
    if int(layer) == n_layers - 1:
        return "in_context"
    return "previous_token" if n_layers == 2 else f"layer_{int(layer) + 1}"


_CACHED = ("hook_attn_out", "attn.hook_pattern", "attn.hook_v", *PATH_HOOKS)


def _cached(name: str) -> bool:
    """The hook points :func:`decompose_cache` reads (TL's ``decompose_resid``: the embeddings and
    each block's outputs), the path decomposition's (:data:`~induction_bigram.anymodel.paths.PATH_HOOKS`),
    the attention patterns and values (the weights-only read-out); no more, so that TL 4 does
    not warn about the hook points it keeps gated off."""
    return name.endswith(_CACHED)


@torch.no_grad()
def run_for_decomposition(
    model: Model, tokens: Int[Tensor, "batch pos"]
) -> tuple[Float[Tensor, "batch pos vocab"], ActivationCache]:
    """One forward pass that caches what :func:`decompose_cache` and the path decomposition
    need, attention patterns included."""
    check_tokens(model, tokens)
    return model.run_with_cache(tokens, names_filter=_cached)


@torch.no_grad()
def decompose_cache(
    model: Model, logits: Float[Tensor, "batch pos vocab"], cache: ActivationCache
) -> LogitDecomposition:
    """Split ``logits`` into the circuit's parts with TL's ``decompose_resid`` on ``cache``
    (from :func:`run_for_decomposition`)."""
    resid_parts, labels = cache.decompose_resid(mode="all", apply_ln=False, incl_embeds=True, return_labels=True)
    contributions = resid_parts @ model.unembed.W_U
    names: list[str] = []
    grouped: list[Tensor] = []
    for label, contribution in zip(labels, contributions):
        name = _part_name(label, model.cfg.n_layers)
        if name in names:
            grouped[names.index(name)] = grouped[names.index(name)] + contribution
        else:
            names.append(name)
            grouped.append(contribution)
    grouped[names.index("direct")] = grouped[names.index("direct")] + model.unembed.b_U
    # TL lists block 0's (zero) mlp_out before block 1's attention; show the circuit's order
    order = sorted(range(len(names)), key=lambda i: (names[i] == "global", names[i] == "in_context"))
    return LogitDecomposition(tuple(names[i] for i in order), torch.stack([grouped[i] for i in order]), logits)


def decompose_logits(model: Model, tokens: Int[Tensor, "batch pos"]) -> LogitDecomposition:
    """Split the logits of ``tokens`` into the circuit's parts (one forward pass)."""
    return decompose_cache(model, *run_for_decomposition(model, tokens))


@torch.no_grad()
def global_logits(model: Model) -> Float[Tensor, "vocab vocab"]:
    """Row i: the logits the model gives from the current token i alone, through the direct
    path and the feed-forward layer: w_U^T (w_E(i) + FFN(w_E(i))). The position, the
    attention layers and the rest of the context are left out."""
    E = token_embeddings(model)
    resid = E
    if not model.cfg.attn_only:
        resid = E + model.blocks[model.cfg.n_layers - 1].mlp(E[None])[0]
    return resid @ model.unembed.W_U + model.unembed.b_U


@torch.no_grad()
def global_memory_kl(
    model: Model, stats: BigramStats, triggers: Int[Tensor, " k"] | None = None
) -> Float[Tensor, " vocab"]:
    """KL(pi_b(. | i) || softmax(global logits of i)) per token i (NaN for triggers).

    This probes the feed-forward memory of the associative memory transformer: near 0 when it
    stores the bigram, about the entropy gap to uniform when it stores nothing.
    """
    check_vocabulary(model, stats)
    log_q = F.log_softmax(global_logits(model).double(), dim=-1)
    p = stats.bigram.to(log_q.device)
    kl = (p * (p.clamp_min(1e-300).log() - log_q)).sum(-1)
    if triggers is not None:
        kl[triggers.to(kl.device)] = float("nan")
    return kl
