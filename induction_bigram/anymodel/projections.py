"""The three memories of a chosen head pair of any TL model (``TransformerBridge``; ``HookedTransformer`` on TL 3).

The memories and scores of docs/THEORY.md sections 3.1-3.3, for the models of section 3.8.

For a previous-token head P = (l_1, h_1) and an induction head I = (l_2, h_2), l_1 < l_2, the
memories of section 3.2 are read with each head's own W_Q, W_K, W_V, W_O (no W_Q = I):

========  ======================  =========================================  ======
memory    output family u (rows)  input family v (columns)                   matrix
========  ======================  =========================================  ======
W_O2      w_U(i)                  value e(k) W_V^I                           W_O^I
W_K2      query e(i) W_Q^I        key (e(j) W_V^P W_O^P) W_K^I: P's output   W_K^I
W_K1      query p_t W_Q^P         key p_s W_K^P                              W_K^P
========  ======================  =========================================  ======

(in TL's row vectors, a score is query . key). They are scored by
:func:`induction_bigram.anymodel.memory_scores.score_projections`, so the report is a
:class:`MemoryReport` of :class:`Projection` s, as for our own models. W_K1 exists only when
the model adds absolute positions p_t to the stream; otherwise it is left out.

**LayerNorm** (section 3.8). A head reads ``LN(x) = centre(x) / sigma(x) * w + b``. We split
that into a linear part, which is folded into the head's matrices exactly as TL's ``fold_ln``
and ``center_writing_weights`` fold it (W -> centre_rows(diag(w) W) on the reading side, and
every vector written to the stream is centred), and the scale sigma, which depends on the whole
stream and so must be chosen:

- token i's effective embedding is e(i) = centre(w_E(i)) / sigma(w_E(i) + p_mean): its own
  direction, at the scale of a stream holding it at the mean position (p_mean = mean of p_t,
  0 without absolute positions); the position's own direction is W_K1's business, not W_K2's;
- position t's is centre(p_t) / sigma(p_t + e_mean), e_mean the mean token embedding;
- what a head writes is read by the next LayerNorm at one typical scale (the mean of the
  tokens' sigma): a single number, which no recall or margin sees.

Biases (b_Q, b_K, b_V, b_O, b_U, LayerNorm's b) add terms that do not depend on the item (a prior
over keys or outputs), not associations, and are left out; TL's processing moves LayerNorm's
b into b_Q and b_V into b_O, so leaving them out makes the report the same whether the model
was loaded with ``fold_ln`` / ``center_writing_weights`` / ``fold_value_biases`` or without.
``center_unembed`` shifts each column of W_O2's coefficients by a constant, which changes its
coefficients and cosine but no recall or margin. Without a normalisation (our models) all of
this is the identity, and the report equals :func:`memory_report`'s to float precision.
Rotary heads are read with their unrotated W_Q W_K^T (the score at offset 0).
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import FactoredMatrix

from induction_bigram.anymodel.heads import Head, HeadPair
from induction_bigram.anymodel.memory_scores import (
    FIRST_POSITIONS,
    MemoryReport,
    Projection,
    cosine,
    score_projections,
)
from induction_bigram.errors import ModelShapeError
from induction_bigram.model import Model, norm_parameters, positional_embeddings, token_embeddings

_CENTRED = ("LN", "LNPre")  # normalisations that subtract the mean over d_model
_NORMALISED = ("LN", "LNPre", "RMS", "RMSPre")


def _centres(model: Model) -> bool:
    return model.cfg.normalization_type in _CENTRED


def _centre(model: Model, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_model"]:
    """x with its mean over d_model removed when the model's normalisation does that (else x
    itself, untouched, so that a model without LayerNorm gives bitwise our own projections)."""
    return x - x.mean(-1, keepdim=True) if _centres(model) else x


def _scale(model: Model, x: Float[Tensor, "n d_model"]) -> Float[Tensor, "n 1"] | None:
    """sigma(x) as the model's normalisation computes it (``None`` without one)."""
    if model.cfg.normalization_type not in _NORMALISED:
        return None
    return (_centre(model, x).pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt()


def _read(model: Model, ln: torch.nn.Module | None, W: Float[Tensor, "d_model n"]) -> Float[Tensor, "d_model n"]:
    """A matrix that reads the stream through ``ln``, with ln's linear part folded in as TL's
    ``fold_ln`` does: rows scaled by ln's weight w, then centred over d_model (a centred input
    cannot see the mean)."""
    w, _ = norm_parameters(ln)
    W = W if w is None else w.detach()[:, None] * W
    return W - W.mean(0, keepdim=True) if _centres(model) else W


def effective_token_embeddings(model: Model) -> Float[Tensor, "d_vocab d_model"]:
    """Rows e(i) = centre(w_E(i)) / sigma(w_E(i) + p_mean) (module doc; w_E(i) without LayerNorm)."""
    E = token_embeddings(model)
    P = positional_embeddings(model)
    scale = _scale(model, E if P is None else E + P.mean(0))
    return E if scale is None else _centre(model, E) / scale


def effective_positional_embeddings(
    model: Model, n_positions: int | None = None
) -> Float[Tensor, "n_positions d_model"] | None:
    """Rows centre(p_t) / sigma(p_t + e_mean) for t < n_positions, or ``None`` without absolute
    positions in the stream."""
    P = positional_embeddings(model)
    if P is None:
        return None
    P = P[: n_positions or model.cfg.n_ctx]
    scale = _scale(model, P + token_embeddings(model).mean(0))
    return P if scale is None else _centre(model, P) / scale


def _typical_scale(model: Model) -> float:
    """The one scale at which a layer's output is read downstream (module doc)."""
    E = token_embeddings(model)
    P = positional_embeddings(model)
    scale = _scale(model, E if P is None else E + P.mean(0))
    return 1.0 if scale is None else scale.mean().item()


def _check_head(model: Model, head: Head) -> None:
    layer, index = head
    if not (0 <= layer < model.cfg.n_layers and 0 <= index < model.cfg.n_heads):
        raise ModelShapeError(f"no head {head}: the model has {model.cfg.n_layers} layers of {model.cfg.n_heads} heads")


def head_QK(model: Model, head: Head) -> FactoredMatrix:
    """The head's W_Q W_K^T with its LayerNorm's linear part folded in (d_model x d_model)."""
    _check_head(model, head)
    block = model.blocks[head[0]]
    W_Q, W_K = block.attn.W_Q[head[1]].detach(), block.attn.W_K[head[1]].detach()
    return FactoredMatrix(_read(model, block.ln1, W_Q), _read(model, block.ln1, W_K).T)


def head_OV(model: Model, head: Head) -> FactoredMatrix:
    """The head's W_V W_O with its LayerNorm's linear part folded in (d_model x d_model)."""
    _check_head(model, head)
    block = model.blocks[head[0]]
    W_V, W_O = block.attn.W_V[head[1]].detach(), block.attn.W_O[head[1]].detach()
    return FactoredMatrix(_read(model, block.ln1, W_V), W_O)


def effective_unembedding(model: Model) -> Float[Tensor, "d_model d_vocab"]:
    """W_U read through the final LayerNorm (its weight folded in, centred), at the typical scale."""
    W_U = _read(model, getattr(model, "ln_final", None), model.unembed.W_U.detach())
    scale = _typical_scale(model)
    return W_U if scale == 1.0 else W_U / scale


@torch.no_grad()
def project_readout(model: Model, induction: Head) -> Projection:
    """C[i, k] = u_i^T W_O^I (W_V^I e(k)): does the value of token k read out as k? (W_O2)"""
    full_ov = effective_token_embeddings(model) @ head_OV(model, induction) @ effective_unembedding(model)
    n = model.cfg.d_vocab
    device = full_ov.A.device
    return Projection(
        full_ov.AB.T, torch.arange(n, device=device), torch.ones(n, n, dtype=torch.bool, device=device), False
    )


def _keys(model: Model, previous_token: Head) -> FactoredMatrix:
    """Rows: P's output when it attends to token j, e(j) W_V^P W_O^P, as block l_2 reads it
    (centred, at the typical scale)."""
    keys = effective_token_embeddings(model) @ head_OV(model, previous_token)
    if _centres(model):
        keys = FactoredMatrix(keys.A, keys.B - keys.B.mean(-1, keepdim=True))
    scale = _typical_scale(model)
    return keys if scale == 1.0 else FactoredMatrix(keys.A / scale, keys.B)


@torch.no_grad()
def project_induction(
    model: Model, previous_token: Head, induction: Head, triggers: Int[Tensor, " k"] | None = None
) -> Projection:
    """C[i, j] = (e(i) W_Q^I) . (key_j W_K^I): does a query on i find the key after i? (W_K2)

    Rows: the triggers (every token when ``triggers`` is None); candidates of a row: the triggers,
    as :func:`~induction_bigram.memories.projections.project_W_K2`.
    """
    if previous_token[0] >= induction[0]:
        raise ModelShapeError(f"the previous-token head {previous_token} must sit in an earlier layer than {induction}")
    E = effective_token_embeddings(model)
    C = (E @ head_QK(model, induction) @ _keys(model, previous_token).T).AB
    n = model.cfg.d_vocab
    rows = torch.arange(n, device=C.device) if triggers is None else triggers.to(C.device)
    candidates = torch.zeros(len(rows), n, dtype=torch.bool, device=C.device)
    candidates[:, rows] = True
    return Projection(C[rows], rows, candidates, by_row=True)


def _n_positions(model: Model, n_positions: int | None) -> int:
    n = model.cfg.n_ctx if n_positions is None else n_positions
    if not 2 <= n <= model.cfg.n_ctx:
        raise ModelShapeError(f"n_positions must be in [2, {model.cfg.n_ctx}], got {n}")
    return n


@torch.no_grad()
def project_positions(model: Model, previous_token: Head, n_positions: int | None = None) -> Projection:
    """C[t, s] = (p_t W_Q^P) . (p_s W_K^P): does a query at t find the key at t - 1? (W_K1)

    Rows t = 1..n-1, candidates the keys s < t. Raises :class:`ModelShapeError` when the model
    has no absolute positions in the stream (rotary, relative, none).
    """
    P = effective_positional_embeddings(model, _n_positions(model, n_positions))
    if P is None:
        raise ModelShapeError(
            "the W_K1 projection needs absolute positional embeddings p_t in the residual stream; this model has none"
        )
    C = (P @ head_QK(model, previous_token) @ P.T).AB
    n = len(P)
    t = torch.arange(1, n, device=C.device)
    causal = torch.arange(n, device=C.device)[None, :] < t[:, None]
    return Projection(C[1:], t - 1, causal, by_row=True)


def _pair(pair: HeadPair | tuple[Head, Head]) -> tuple[Head, Head]:
    if isinstance(pair, HeadPair):
        return pair.previous_token, pair.induction
    previous_token, induction = pair
    return (int(previous_token[0]), int(previous_token[1])), (int(induction[0]), int(induction[1]))


@torch.no_grad()
def pair_projections(
    model: Model,
    pair: HeadPair | tuple[Head, Head],
    triggers: Int[Tensor, " k"] | None = None,
    n_positions: int | None = None,
) -> dict[str, Projection]:
    """The coefficient matrices W_O2, W_K2 and (with absolute positions) W_K1 of a head pair,
    under the names of :func:`~induction_bigram.memories.projections.memory_projections`."""
    previous_token, induction = _pair(pair)
    projections = {
        "W_O2": project_readout(model, induction),
        "W_K2": project_induction(model, previous_token, induction, triggers),
    }
    if positional_embeddings(model) is not None:
        projections["W_K1"] = project_positions(model, previous_token, n_positions)
    return projections


def _ideal_cosines(
    model: Model,
    previous_token: Head,
    induction: Head,
    triggers: Int[Tensor, " k"] | None,
    n_positions: int | None,
) -> dict[str, float]:
    """Each memory's cosine to its ideal outer-product form, both in the effective coordinates
    of the module doc (section 3.3: structural, not functional)."""
    layer, index = induction
    E = effective_token_embeddings(model)
    # W_O2: the part of W_O^I the final LayerNorm can see, against sum_k u_k v_k^T / |v_k|^2
    W_O = model.blocks[layer].attn.W_O[index].detach()
    W_O = W_O - W_O.mean(-1, keepdim=True) if _centres(model) else W_O
    values = E @ _read(model, model.blocks[layer].ln1, model.blocks[layer].attn.W_V[index].detach())
    ideal_O = effective_unembedding(model) @ (values / values.pow(2).sum(-1, keepdim=True))
    cosines = {"W_O2": cosine(W_O.T, ideal_O)}
    # W_K2: W_Q^I W_K^I^T against sum_q e(q) key_q^T
    keys = _keys(model, previous_token).AB
    rows = slice(None) if triggers is None else triggers.to(E.device)
    cosines["W_K2"] = cosine(head_QK(model, induction).AB, E[rows].T @ keys[rows])
    P = effective_positional_embeddings(model, _n_positions(model, n_positions))
    if P is not None:  # W_K1: W_Q^P W_K^P^T against sum_t p_t p_(t-1)^T
        cosines["W_K1"] = cosine(head_QK(model, previous_token).AB, P[1:].T @ P[:-1])
    return cosines


@torch.no_grad()
def pair_memory_report(
    model: Model,
    pair: HeadPair | tuple[Head, Head],
    triggers: Int[Tensor, " k"] | None = None,
    n_positions: int | None = None,
    first_positions: int = FIRST_POSITIONS,
) -> MemoryReport:
    """Recall, margin and cosine of the three memories of a head pair, in every convention of
    :func:`~induction_bigram.memories.projections.memory_report` (the same arguments; ``pair``
    from :func:`~induction_bigram.anymodel.heads.find_head_pairs` or ``((l_1, h_1), (l_2, h_2))``).
    """
    previous_token, induction = _pair(pair)
    projections = pair_projections(model, (previous_token, induction), triggers, n_positions)
    cosines = _ideal_cosines(model, previous_token, induction, triggers, n_positions)
    return score_projections(projections, cosines, first_positions)
