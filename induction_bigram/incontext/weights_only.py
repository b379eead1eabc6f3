"""The in-context logits predicted from the weights alone, and the cause of what that misses
(docs/THEORY.md sections 3.2, 5.3 and 5.7).

Only the memory projections C[i, j] = u_i^T W v_j (section 3.1) and the prompt's tokens are
used, never an activation of the model:

- layer 1: beta_1(t, s) = softmax over s <= t of C_K1[t, s] / sqrt(d) (positions only, APE);
- layer 2, from the last position (query holding the trigger q): the score of key s is
  sum_r beta_1(s, r) C_K2[q, z_r] / sqrt(d), and beta_2 its softmax over the keys;
- read-out: xi_j^IC = sum_s beta_2(s) C_O2[j, z_s] (whole columns of C_O2, crosstalk included);
- global: xi_j^G = w_U(j)^T (I + W_F) w_E(q) (:func:`~.decompose.global_logits`);
- with a linear FFN, layer 2's output also reaches the logits through W_F:
  sum_s beta_2(s) w_U(j)^T W_F W_O^2 W_V^2 w_E(z_s), part of xi^IC at path level (section 4.1;
  the component split counted it in the FFN's part); every read-out column has that twin
  (``ffn_weights_ic_*``, ``ffn_measured_*``; measured: ``ffn_ic_*``).

The cause decomposition puts the model's real pieces back one at a time: layer 1's measured
attention (``measured_layer1``), then also layer 2's (``measured_layer2``), then also the
whole value read-out, w_U(j)^T W_O^2 W_V^2 x_s with x_s the real stream (``measured_values``),
which is layer 2's contribution exactly. Every step is batched over prompts and keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import einsum
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache

from induction_bigram.data.prompts import DesignedPrompts
from induction_bigram.errors import ModelShapeError
from induction_bigram.incontext.decompose import global_logits
from induction_bigram.memories.projections import project_W_K1, project_W_K2, project_W_O2
from induction_bigram.model import (
    Model,
    ffn_reads_token,
    get_paper_matrix,
    positional_embeddings,
    token_embeddings,
)
from induction_bigram.model.components import LINEAR_ACT_FN

SCORE_SCALES = 2.0 ** torch.linspace(-2.0, 2.0, 17)
"""Scales on the layer-2 scores at which the prediction for o is kept, so that a fitted rung can
choose one without the prompts' tokens (``weights_ic_output_by_score_scale``)."""
_TOKENS = ("output", "rival", "favourite")
_PAIR = ("output", "rival")  # the cause decomposition of 5.3's difference needs both
_ENDS = ("output", "favourite")  # the hijack contest of 5.4


@dataclass(frozen=True)
class WeightMemories:
    """The coefficient matrices the prediction reads, scores already divided by sqrt(d).

    Attributes:
        positions: C_K1[t, s] / sqrt(d) (row 0 is zero: at t = 0 only key 0 is causal);
            ``None`` without absolute positions in the stream.
        induction: C_K2[i, j] / sqrt(d), every token as a query.
        read_out: C_O2[j, k].
        global_logits: row q is w_U^T (I + W_F) w_E(q) (the direct path alone without an FFN,
            w_U^T (w_E(q) + FFN(w_E(q))) with a ReLU one).
        ffn_read_out: w_U(j)^T W_F W_O^2 W_V^2 w_E(k), layer 2's read-out through W_F (see
            :func:`ffn_matrix`).
    """

    positions: Float[Tensor, "n_ctx n_ctx"] | None
    induction: Float[Tensor, "vocab vocab"]
    read_out: Float[Tensor, "vocab vocab"]
    global_logits: Float[Tensor, "vocab vocab"]
    ffn_read_out: Float[Tensor, "vocab vocab"]


def ffn_matrix(model: Model) -> Float[Tensor, "d_model d_model"]:
    """The map by which layer 2's output reaches the logits through the FFN: W_F (paper
    convention) of a linear FFN; zero without an FFN or when the FFN reads only w_E(z_t) (the
    idealised model, section 4.2); NaN for a ReLU FFN, through which it does not pass linearly."""
    d = model.cfg.d_model
    if model.cfg.attn_only or ffn_reads_token(model):
        return torch.zeros((d, d), device=model.unembed.W_U.device)
    if model.cfg.act_fn == LINEAR_ACT_FN:
        return get_paper_matrix(model, "W_F")
    return torch.full((d, d), torch.nan, device=model.unembed.W_U.device)


@dataclass(frozen=True)
class ProjectionDiagonals:
    """What a trained model's weights say lambda and alpha are, token by token: the read-out
    strength lambda_j = C_O2[j, j] and the score alpha_q = C_K2[q, q] / sqrt(d), the diagonals
    of its memory projections (docs/THEORY.md section 5.7, rungs 2-3). Not the strengths a
    theory-built model is written with (:class:`~induction_bigram.memories.projections.MemoryStrengths`)."""

    read_out: Float[Tensor, " vocab"]
    alpha: Float[Tensor, " vocab"]


@torch.no_grad()
def read_projection_diagonals(model: Model, through_ffn: bool = False) -> ProjectionDiagonals:
    """lambda_j and alpha_q of every token, read off ``model``'s W_O^2 and W_K^2; with
    ``through_ffn``, lambda_j also counts layer 2's path through W_F,
    w_U(j)^T (I + W_F) W_O^2 W_V^2 w_E(j) (the in-context term at path level, section 4.1)."""
    read_out = project_W_O2(model).coefficients.diagonal()
    if through_ffn:
        read_out = read_out + weight_memories(model).ffn_read_out.diagonal().nan_to_num()
    keys = project_W_K2(model, None).coefficients.diagonal()  # every token as a query
    return ProjectionDiagonals(read_out.double().cpu(), (keys / math.sqrt(model.cfg.d_model)).double().cpu())


@torch.no_grad()
def weight_memories(model: Model) -> WeightMemories:
    """Read :class:`WeightMemories` off ``model`` (a two-layer, one-head model, section 3.2)."""
    sqrt_d = math.sqrt(model.cfg.d_model)
    positions = None
    if positional_embeddings(model) is not None:
        positions = F.pad(project_W_K1(model).coefficients, (0, 0, 1, 0)) / sqrt_d
    values = (token_embeddings(model) @ model.OV[1, 0]).AB  # rows (W_O^2 W_V^2 w_E(k))^T
    return WeightMemories(
        positions,
        project_W_K2(model, None).coefficients / sqrt_d,
        project_W_O2(model).coefficients,
        global_logits(model),
        (values @ ffn_matrix(model).T @ model.unembed.W_U).T,
    )


def layer1_attention(memories: WeightMemories, length: int) -> Float[Tensor, "key prev"]:
    """beta_1(t, s) from C_K1 alone; a model without p_t in the stream has no such prediction."""
    if memories.positions is None:
        raise ModelShapeError(
            "the weights-only layer-1 attention reads W_K^1 through the position embeddings p_t; this model "
            "has none (only 'ape' models have them)"
        )
    causal = torch.ones(length, length, dtype=torch.bool, device=memories.positions.device).tril()
    return memories.positions[:length, :length].masked_fill(~causal, -math.inf).softmax(-1)


def layer2_scores(
    memories: WeightMemories,
    layer1: Float[Tensor, "batch key prev"],
    tokens: Int[Tensor, "batch prev"],
    trigger: Int[Tensor, " batch"],
) -> Float[Tensor, "batch key"]:
    """Score of each key from a query holding q: sum_r beta_1(s, r) C_K2[q, z_r] / sqrt(d)."""
    return einsum(layer1, memories.induction[trigger[:, None], tokens], "batch key prev, batch prev -> batch key")


def read_out(
    coefficients: Float[Tensor, "vocab vocab"],
    attention: Float[Tensor, "batch key"],
    tokens: Int[Tensor, "batch key"],
    token: Int[Tensor, " batch"],
) -> Float[Tensor, " batch"]:
    """xi_j^IC = sum_s beta_2(s) C[j, z_s] for the ``token`` j of each prompt (-1: NaN), with C
    the read-out C_O2 (or its path through W_F)."""
    readout = coefficients[token.clamp_min(0)[:, None], tokens]
    return torch.where(token >= 0, einsum(attention, readout, "batch key, batch key -> batch"), torch.nan)


def value_read_out(model: Model, cache: ActivationCache, token: Int[Tensor, " batch"]) -> Float[Tensor, "batch key"]:
    """w_U(j)^T W_O^2 W_V^2 x_s per key s: the exact contribution of each key to the logit of j
    per unit of attention (biases are zero)."""
    values = cache["blocks.1.attn.hook_v"][:, :, 0] @ model.blocks[1].attn.W_O[0]
    return einsum(values, model.unembed.W_U[:, token.clamp_min(0)], "batch key d, d batch -> batch key")


@torch.no_grad()
def weights_only_columns(
    model: Model, memories: WeightMemories, prompts: DesignedPrompts, cache: ActivationCache
) -> dict[str, Tensor]:
    """The weights-only prediction and the cause decomposition for one chunk of prompts (the
    ``weights_*`` and ``measured_*`` columns of :class:`~.measure.Measurements`); the cache
    supplies the measured pieces only. Every column read through C_O2 has a twin ``ffn_*`` read
    through layer 2's path via W_F (``memories.ffn_read_out``), so that the in-context term at
    path level is their sum (:meth:`~.measure.Measurements.path_view`). Without absolute
    positions the weights-only columns are NaN, the measured steps are still computed."""
    tokens, q, batch = prompts.tokens, prompts.trigger, len(prompts)
    if memories.positions is None:
        layer1 = torch.full((batch, prompts.length, prompts.length), torch.nan, device=tokens.device)
    else:
        layer1 = layer1_attention(memories, prompts.length).expand(batch, -1, -1)
    scores = layer2_scores(memories, layer1, tokens, q)
    weights = scores.softmax(-1)
    scaled = (scores[:, None, :] * SCORE_SCALES.to(scores)[None, :, None]).softmax(-1)
    with_layer1 = layer2_scores(memories, cache["blocks.0.attn.hook_pattern"][:, 0], tokens, q).softmax(-1)
    measured = cache["blocks.1.attn.hook_pattern"][:, 0, -1]
    holds_output = prompts.after_trigger & (tokens == prompts.output[:, None])

    def read_through(coefficients: Tensor) -> dict[str, Tensor]:
        output_readout = coefficients[prompts.output[:, None], tokens]
        return {
            **{f"weights_ic_{w}": read_out(coefficients, weights, tokens, getattr(prompts, w)) for w in _TOKENS},
            "weights_ic_output_by_score_scale": einsum(
                scaled, output_readout, "batch scale key, batch key -> batch scale"
            ),
            **{
                f"measured_layer1_ic_{w}": read_out(coefficients, with_layer1, tokens, getattr(prompts, w))
                for w in _PAIR
            },
            **{f"measured_layer2_ic_{w}": read_out(coefficients, measured, tokens, getattr(prompts, w)) for w in _PAIR},
        }

    through_ffn = {f"ffn_{name}": value for name, value in read_through(memories.ffn_read_out).items()}
    return {
        **read_through(memories.read_out),
        **through_ffn,
        "weights_global_output": memories.global_logits[q, prompts.output],
        "weights_global_favourite": memories.global_logits[q, prompts.favourite],
        "weights_attention_on_S": (weights * prompts.after_trigger).sum(-1),
        "weights_attention_on_S_output": (weights * holds_output).sum(-1),
        "attention_on_S_output": (measured * holds_output).sum(-1),
        "measured_values_ic_output": (measured * value_read_out(model, cache, prompts.output)).sum(-1),
    }
