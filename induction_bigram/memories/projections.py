"""The three associative memories of docs/THEORY.md section 3, and the theory-built model.

With near-orthonormal random embeddings, W = sum_(i,j) u_j v_i^T maps v_i to u_j. Projecting a
trained matrix onto the embedding outer products means computing the coefficient matrix

    C[i, j] = u_i^T W v_j        (rows: the output family u, columns: the input family v)

for the families of each memory (computed with TransformerLens ``FactoredMatrix`` products in
TL's row-vector convention; never a loop over pairs):

========  ============================  ==========================  =======================
memory    output family u (rows)        input family v (columns)    recalled when
========  ============================  ==========================  =======================
W_O2      w_U(i), every token           W_V^2 w_E(k), every token   column k: argmax_i = k
W_K2      query w_E(i), i a trigger     key Phi_1 w_E(j)            row i: argmax_j = i
W_K1      query p_t, t >= 1             key p_s                     row t: argmax_s = t - 1
========  ============================  ==========================  =======================

Conventions (each score says which it uses):

- W_O2: ``recall`` over the whole vocabulary.
- W_K2: ``recall`` among the triggers only (the reference code's convention; chance 1/K) and
  ``recall_vocab`` among every token. With random triggers every token is a trigger.
- W_K1: ``recall`` = ``recall_causal``, argmax over keys s < t (docs/THEORY.md); ``recall_reference``
  over keys s = 0..n-2 whatever t (the reference code, which ignores the causal mask);
  ``recall_first64`` = causal recall for t < 64 (``first_positions``): W_K^1 learns early positions first.

The margin of one item is (intended coefficient - best other) / (std of the other candidates);
a memory's margin is the mean over items. The cosine is between the paper-convention matrix
(W_O^2; the bilinear form W_Q^T W_K of layer 2 or 1) and its ideal outer-product form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.anymodel.memory_scores import (
    FIRST_POSITIONS,
    MemoryReport,
    Projection,
    cosine,
    score_projections,
)
from induction_bigram.anymodel.projections import project_induction, project_positions, project_readout
from induction_bigram.config import ModelConfig
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import ModelShapeError
from induction_bigram.model import (
    Model,
    build_model,
    get_paper_matrix,
    positional_embeddings,
    set_paper_matrix,
    token_embeddings,
    unembeddings,
)
from induction_bigram.model.components.checks import check_memory_arguments

# -- the projections: the general ones (anymodel) with the circuit's fixed heads -----------------

PREVIOUS_TOKEN_HEAD, INDUCTION_HEAD = (0, 0), (1, 0)
"""Layer 1's and layer 2's one head (docs/THEORY.md section 2)."""


def _check_shape(model: Model) -> None:
    cfg = model.cfg
    problems = []
    if cfg.n_layers != 2:
        problems.append(f"2 attention layers (has {cfg.n_layers})")
    if cfg.n_heads != 1:
        problems.append(f"1 head per layer (has {cfg.n_heads})")
    if cfg.d_head != cfg.d_model:
        problems.append(f"d_head = d_model (has {cfg.d_head} != {cfg.d_model})")
    if problems:
        raise ModelShapeError("the memory projections need " + ", ".join(problems))


def project_W_O2(model: Model) -> Projection:
    """C[i, k] = w_U(i)^T W_O^2 W_V^2 w_E(k): does the value of token k read out as k?
    (:func:`~induction_bigram.anymodel.projections.project_readout` of layer 2's head)."""
    _check_shape(model)
    return project_readout(model, INDUCTION_HEAD)


def project_W_K2(model: Model, triggers: Int[Tensor, " k"] | None = None) -> Projection:
    """C[i, j] = w_E(i)^T W_K^2 Phi_1 w_E(j): does a query on trigger i find a key after i?

    Rows are the triggers (every token when ``triggers`` is None); columns every token. The
    candidates of a row are the triggers (:func:`memory_report` adds the whole-vocabulary
    convention). :func:`~induction_bigram.anymodel.projections.project_induction` of the pair.
    """
    _check_shape(model)
    return project_induction(model, PREVIOUS_TOKEN_HEAD, INDUCTION_HEAD, triggers)


def project_W_K1(model: Model, n_positions: int | None = None) -> Projection:
    """C[t, s] = p_t^T W_K^1 p_s: does a query at position t find the key at t - 1?

    Rows t = 1..n-1; the candidates of row t are the keys s < t (causal).
    :func:`~induction_bigram.anymodel.projections.project_positions` of layer 1's head.
    """
    _check_shape(model)
    if positional_embeddings(model) is None:
        raise ModelShapeError(
            "the W_K1 projection needs absolute positional embeddings p_t in the residual "
            "stream (an 'ape' model); this model has none"
        )
    return project_positions(model, PREVIOUS_TOKEN_HEAD, n_positions)


# -- ideal forms and the theory-built model -----------------------------------------------------


def ideal_W_O2(model: Model) -> Float[Tensor, "d_model d_model"]:
    """sum_k w_U(k) (W_V^2 w_E(k))^T, normalised per pair so that it maps each v_k to w_U(k)."""
    values = token_embeddings(model) @ get_paper_matrix(model, "W_V2").T  # rows W_V^2 w_E(k)
    return unembeddings(model).T @ (values / values.pow(2).sum(-1, keepdim=True))


def ideal_W_K2(model: Model, triggers: Int[Tensor, " k"] | None) -> Float[Tensor, "d_model d_model"]:
    """sum_(q in triggers) w_E(q) (Phi_1 w_E(q))^T (every token when ``triggers`` is None)."""
    E = token_embeddings(model)
    E = E if triggers is None else E[triggers.to(E.device)]
    phi1 = get_paper_matrix(model, "W_O1") @ get_paper_matrix(model, "W_V1")
    return E.T @ (E @ phi1.T)


def ideal_W_K1(model: Model, n_positions: int | None = None) -> Float[Tensor, "d_model d_model"]:
    """sum_(t = 1..n-1) p_t p_(t-1)^T."""
    P = positional_embeddings(model)
    if P is None:
        raise ModelShapeError("the ideal W_K1 needs absolute positional embeddings (an 'ape' model)")
    P = P[: n_positions or model.cfg.n_ctx]
    return P[1:].T @ P[:-1]


@dataclass(frozen=True)
class MemoryStrengths:
    """Scales of the theory-built memories (score units are before TL's 1/sqrt(d)).

    Attributes:
        W_K1: lambda_1 of lambda_1 sum_t p_t p_(t-1)^T, in units of sqrt(d).
        W_K2: lambda_2 of lambda_2 sum_q w_E(q) (Phi_1 w_E(q))^T, in units of sqrt(d).
        W_O2: logit gain of the read-out.
        sink: c of the position-0 correction -c sum_q w_E(q) p_0^T, relative to W_K2.
    """

    W_K1: float = 10.0
    W_K2: float = 10.0
    W_O2: float = 10.0
    sink: float = 1.0


def build_theory_model(
    cfg: ModelConfig,
    triggers: Int[Tensor, " k"] | None,
    strengths: MemoryStrengths = MemoryStrengths(),
    device: str | torch.device | None = "auto",
    *,
    vocab: Sequence[str],
) -> Model:
    """A model of the same architecture whose memories are written, not trained (``vocab``:
    the characters, as for :func:`~induction_bigram.model.build_model`).

    W_K^1 = lambda_1 sum_t p_t p_(t-1)^T (previous-token head), W_K^2 = lambda_2 sum_q
    w_E(q) (Phi_1 w_E(q))^T - c lambda_2 sum_q w_E(q) p_0^T (induction head, with the position-0
    sink suppressed: at t = 0 layer 1 can only attend to itself, so the key there looks
    "preceded by z_0"), W_O^2 = gain sum_k w_U(k) (W_V^2 w_E(k))^T / |W_V^2 w_E(k)|^2.
    """
    if cfg.positional != "ape" or cfg.ffn != "none":
        raise ModelShapeError("the theory-built model is defined for the 'ape' model without FFN")
    model = build_model(cfg, device, vocab=vocab)
    sqrt_d = math.sqrt(cfg.d_model)
    P = positional_embeddings(model)
    E = token_embeddings(model)
    trigger_embeddings = E if triggers is None else E[triggers.to(E.device)]
    sink = trigger_embeddings.sum(0)[:, None] @ P[:1]  # sum_q w_E(q) p_0^T
    set_paper_matrix(model, "W_K1", strengths.W_K1 * sqrt_d * ideal_W_K1(model))
    set_paper_matrix(model, "W_K2", strengths.W_K2 * sqrt_d * (ideal_W_K2(model, triggers) - strengths.sink * sink))
    set_paper_matrix(model, "W_O2", strengths.W_O2 * ideal_W_O2(model))
    return model


# -- the report -----------------------------------------------------------------------------------


def memory_projections(
    model: Model, triggers: Int[Tensor, " k"] | None = None, n_positions: int | None = None
) -> dict[str, Projection]:
    """The coefficient matrices of W_O2, W_K2 and (for APE models) W_K1."""
    projections = {"W_O2": project_W_O2(model), "W_K2": project_W_K2(model, triggers)}
    if positional_embeddings(model) is not None:
        projections["W_K1"] = project_W_K1(model, n_positions)
    return projections


@torch.no_grad()
def memory_report(
    model: Model,
    triggers: Int[Tensor, " k"] | None = None,
    n_positions: int | None = None,
    first_positions: int = FIRST_POSITIONS,
) -> MemoryReport:
    """Recall, margin and cosine of W_O2, W_K2 and (for APE models) W_K1.

    Args:
        triggers: the fixed triggers (``TriggerTask.shared_triggers``); ``None`` when triggers
            are random per sequence, so that every token is one.
        n_positions: positions probed for W_K1 (default n_ctx; pass the training length when
            the model has more positions than it was trained on).
        first_positions: W_K1's early positions, scored as ``recall_first<first_positions>``
            (docs/THEORY.md section 3.6).
    """
    projections = memory_projections(model, check_memory_arguments(model, triggers, n_positions), n_positions)
    cosines = {"W_O2": cosine(get_paper_matrix(model, "W_O2"), ideal_W_O2(model))}
    cosines["W_K2"] = cosine(model.QK[1, 0].AB, ideal_W_K2(model, triggers))
    if "W_K1" in projections:
        cosines["W_K1"] = cosine(model.QK[0, 0].AB, ideal_W_K1(model, n_positions))
    return score_projections(projections, cosines, first_positions)


def track_memories(model: Model, task: TriggerTask, first_positions: int = FIRST_POSITIONS) -> dict[str, dict]:
    """A training tracker (``train(..., track=[track_memories])``): the three memories' scores
    at each evaluation under ``"memories"``, as they form (nothing for a model that is not
    two-layer)."""
    if model.cfg.n_layers != 2:
        return {}
    report = memory_report(model, task.shared_triggers, task.cfg.seq_len, first_positions)
    return {"memories": report.to_dict(with_convention=False)}
