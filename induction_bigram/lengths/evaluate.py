"""Scoring one trained variant: both protocols at every length, the previous-token head, the
offset profiles and the memories."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from induction_bigram.anymodel.memory_scores import Projection, memory_margin, recall_at_1
from induction_bigram.data.task import TriggerTask
from induction_bigram.lengths.config import PROTOCOLS, LengthsSettings, Protocol
from induction_bigram.lengths.protocol import PositionCounts, count_positions, in_range_query, protocol_batch, window
from induction_bigram.lengths.results import ProtocolResult, VariantResult, ratio
from induction_bigram.memories.projections import memory_report, project_W_K1
from induction_bigram.model import Model, model_config, relative_position_bias, rotate_layer1, token_embeddings


def _protocol_result(counts: dict[int, PositionCounts], protocol: Protocol, train_length: int) -> ProtocolResult:
    ks = sorted(counts)
    longest = counts[ks[-1]]
    if protocol == "oversight":  # stitch the windows: position p from the prompts whose window holds p
        correct = torch.cat([counts[k].correct[window(k, train_length).start :] for k in ks])
        total = torch.cat([counts[k].total[window(k, train_length).start :] for k in ks])
        if len(correct) != len(longest.correct):  # multiples with gaps: leave the rest empty
            correct = torch.zeros_like(longest.correct)
            total = torch.zeros_like(longest.total)
            for k in ks:
                w = window(k, train_length)
                correct[w.start : w.stop] = counts[k].correct[w.start :]
                total[w.start : w.stop] = counts[k].total[w.start :]
    else:
        correct, total = longest.correct, longest.total
    windows = {k: window(k, train_length) for k in ks}
    return ProtocolResult(
        accuracy_by_length={f"{k}x": counts[k].window_accuracy(windows[k]) for k in ks},
        whole_prompt_accuracy_by_length={f"{k}x": counts[k].window_accuracy(range(windows[k].stop)) for k in ks},
        n_in_context_by_length={f"{k}x": int(counts[k].total[windows[k].start :].sum()) for k in ks},
        correct_by_position=correct.tolist(),
        count_by_position=total.tolist(),
    )


@torch.no_grad()
def rotary_bias_profile(model: Model, n_offsets: int) -> Float[Tensor, " offset"] | None:
    """b_Q^T R_(s-t) b_K / sqrt(d) of layer 1 for offsets t - s = 0..n-1 (rotary models with
    query/key biases; ``None`` otherwise). It is the part of the score that depends on the
    offset alone, whatever the tokens."""
    attn = model.blocks[0].attn
    if model.cfg.positional_embedding_type != "rotary" or not (attn.b_Q.any() or attn.b_K.any()):
        return None
    q = rotate_layer1(model, attn.b_Q.detach().expand(1, n_offsets, *attn.b_Q.shape))
    k = rotate_layer1(model, attn.b_K.detach().expand(1, n_offsets, *attn.b_K.shape))
    last = n_offsets - 1
    scores = (q[0, last, 0] * k[0, :, 0]).sum(-1) / model.cfg.d_head**0.5  # key s = last - offset
    return scores.flip(0)


@torch.no_grad()
def _last_layer_readout(model: Model) -> dict[str, float]:
    """C[i, k] = w_U(i)^T W_O^L W_V^L w_E(k) for the last layer (any depth): recall, margin."""
    ov = token_embeddings(model) @ model.OV[model.cfg.n_layers - 1, 0] @ model.unembed.W_U.detach()
    n = model.cfg.d_vocab
    proj = Projection(
        ov.AB.T,
        torch.arange(n, device=ov.A.device),
        torch.ones(n, n, dtype=torch.bool, device=ov.A.device),
        by_row=False,
    )
    return {"recall": recall_at_1(proj), "margin": memory_margin(proj)}


@torch.no_grad()
def W_K1_recall_by_position(model: Model, n_positions: int) -> list[float] | None:
    """APE only: 1.0 at position t when argmax_(s<t) p_t^T W_K^1 p_s = t - 1 (NaN at t = 0)."""
    if model_config(model).positional != "ape":
        return None
    proj = project_W_K1(model, n_positions)
    scores = proj.item_scores.masked_fill(~proj.candidates, -math.inf)
    hits = (scores.argmax(-1) == proj.targets).double().cpu()
    return [math.nan] + hits.tolist()


@torch.no_grad()
def evaluate_lengths(
    model: Model,
    task: TriggerTask,
    *,
    train_length: int,
    multiples: Sequence[int] = LengthsSettings.multiples,
    batch_size: int = LengthsSettings.eval_batch_size,
    chunk_size: int = LengthsSettings.chunk_size,
    seed: int = LengthsSettings.eval_seed,
    variant: str | None = None,
) -> VariantResult:
    """Both protocols at every k, previous-token accuracy, offset profiles and memories.

    Each (protocol, k) draws ``batch_size`` prompts from its own seed (the same for every
    model, so variants are scored on identical prompts); "1x" is one batch for both.
    """
    was_training = model.training
    model.eval()
    cfg = model_config(model)
    counts: dict[str, dict[int, PositionCounts]] = {p: {} for p in PROTOCOLS}
    for protocol in PROTOCOLS:
        for k in multiples:  # k = 1 is the same ordinary prompt under both protocols
            offset = 1000 if protocol == "ordinary" and k > 1 else 0
            generator = torch.Generator(device=task.device).manual_seed(seed + offset + k)
            batch = protocol_batch(task, protocol, k, train_length, batch_size, generator)
            counts[protocol][k] = count_positions(model, batch, train_length, chunk_size)
    longest = counts["ordinary"][multiples[-1]]
    max_length = multiples[-1] * train_length
    example = protocol_batch(
        task,
        "oversight",
        min(2, multiples[-1]),
        train_length,
        1,
        torch.Generator(device=task.device).manual_seed(seed - 1),
    )
    _, cache = model.run_with_cache(example.tokens, names_filter=lambda n: n.endswith("attn.hook_pattern"))
    patterns = torch.stack([cache[f"blocks.{i}.attn.hook_pattern"][0, 0] for i in range(cfg.n_layers)])
    if cfg.positional == "rpe":
        offset_bias = relative_position_bias(model).detach()[:max_length].cpu().tolist()
    else:
        rotary = rotary_bias_profile(model, max_length)
        offset_bias = None if rotary is None else rotary.cpu().tolist()
    if cfg.n_layers == 2:
        memories = memory_report(model, task.shared_triggers, train_length).to_dict(with_convention=False)
    else:
        memories = {f"W_O{cfg.n_layers}": _last_layer_readout(model)}
    late = (longest.late_attention / longest.n_sequences).cpu()
    model.train(was_training)
    return VariantResult(
        variant=variant or cfg.positional,
        config={},
        train_length=train_length,
        train_seconds=math.nan,
        train_accuracy=math.nan,
        oversight=_protocol_result(counts["oversight"], "oversight", train_length),
        ordinary=_protocol_result(counts["ordinary"], "ordinary", train_length),
        previous_token_by_position=[ratio(h, longest.previous_total) for h in longest.previous],
        previous_token_after_trigger_by_position=[ratio(h, longest.after_trigger_total) for h in longest.after_trigger],
        previous_token_mass_by_position=[ratio(m, longest.previous_total) for m in longest.previous_mass],
        score_by_offset={
            "in_range": ratio(longest.offset_score[0], longest.offset_count[0]),
            "beyond": ratio(longest.offset_score[1], longest.offset_count[1]),
        },
        late_attention={
            f"query_{in_range_query(train_length, max_length)}": late[0].tolist(),
            f"query_{max_length - 1}": late[1].tolist(),
        },
        W_K1_recall_by_position=W_K1_recall_by_position(model, max_length),
        offset_bias=offset_bias,
        memories=memories,
        example_tokens=example.tokens[0].cpu().tolist(),
        example_patterns=patterns.detach().cpu(),
    )
