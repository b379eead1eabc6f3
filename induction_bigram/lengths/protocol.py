"""The prompts of the two protocols and one counting pass of a model over them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.data.task import TaskBatch, TriggerTask
from induction_bigram.errors import ConfigError
from induction_bigram.lengths.config import PROTOCOLS, LengthsSettings
from induction_bigram.model import Model


def window(k: int, train_length: int) -> range:
    """Positions of the last window of a prompt of length k T_train (the scored targets)."""
    return range((k - 1) * train_length, k * train_length)


def protocol_batch(
    task: TriggerTask,
    protocol: str,
    k: int,
    train_length: int,
    batch_size: int,
    generator: torch.Generator,
) -> TaskBatch:
    """Prompts of length k T_train; under ``"oversight"`` the first (k - 1) T_train inputs hold
    no trigger, so every in-context target (label >= 2) lies in :func:`window`."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    prefix = (k - 1) * train_length if protocol == "oversight" else 0
    return task.sample(batch_size, generator, seq_len=k * train_length, trigger_free_prefix=prefix)


@dataclass
class PositionCounts:
    """Per-position counts of one batch, added up over chunks.

    Attributes:
        correct / total: in-context targets (label >= 2) predicted right / present, per position.
        previous / previous_total: per probed layer, queries t whose attention argmax is t - 1,
            over queries t >= 1 (``previous_total[0] = 0``).
        previous_mass: per probed layer, the summed attention weight on t - 1 at query t.
        after_trigger / after_trigger_total: the same at queries t with z_(t-1) a trigger.
        offset_score / offset_count: layer 1's summed score at offset o = t - s, for queries
            t < T_train (row 0) and t >= T_train (row 1).
        late_attention: layer 1's attention row, summed over the batch, at the query
            :func:`in_range_query` (row 0) and at the last position (row 1).
    """

    correct: Int[Tensor, " pos"]
    total: Int[Tensor, " pos"]
    previous: Int[Tensor, "layer pos"]
    previous_total: Int[Tensor, " pos"]
    previous_mass: Float[Tensor, "layer pos"]
    after_trigger: Int[Tensor, "layer pos"]
    after_trigger_total: Int[Tensor, " pos"]
    offset_score: Float[Tensor, "2 pos"]
    offset_count: Int[Tensor, "2 pos"]
    late_attention: Float[Tensor, "2 pos"]
    n_sequences: int

    def window_accuracy(self, positions: range) -> float:
        """In-context accuracy over the targets at ``positions``."""
        total = int(self.total[positions.start : positions.stop].sum())
        return int(self.correct[positions.start : positions.stop].sum()) / total if total else math.nan


def in_range_query(train_length: int, length: int) -> int:
    """A query well inside the trained positions (T_train / 2 - 1): under APE the last few
    trained positions are barely learned, since few later queries ever look at them."""
    return min(max(train_length // 2 - 1, 1), length - 1)


@torch.no_grad()
def count_positions(
    model: Model, batch: TaskBatch, train_length: int, chunk_size: int = LengthsSettings.chunk_size
) -> PositionCounts:
    """Run ``batch`` through the model ``chunk_size`` prompts at a time and count, per position,
    in-context hits, previous-token hits and layer-1 scores by offset (see
    :class:`PositionCounts`)."""
    n_probed = max(model.cfg.n_layers - 1, 1)  # layers that may be the previous-token head
    L = batch.tokens.shape[1]
    device = batch.tokens.device
    t = torch.arange(L, device=device)
    offsets = t[:, None] - t[None, :]
    causal = offsets >= 0
    query_beyond = (t >= train_length)[:, None].expand(L, L)
    late_rows = torch.tensor([in_range_query(train_length, L), L - 1], device=device)
    counts = PositionCounts(
        correct=torch.zeros(L, dtype=torch.long, device=device),
        total=torch.zeros(L, dtype=torch.long, device=device),
        previous=torch.zeros(n_probed, L, dtype=torch.long, device=device),
        previous_total=torch.zeros(L, dtype=torch.long, device=device),
        previous_mass=torch.zeros(n_probed, L, dtype=torch.float64, device=device),
        after_trigger=torch.zeros(n_probed, L, dtype=torch.long, device=device),
        after_trigger_total=torch.zeros(L, dtype=torch.long, device=device),
        offset_score=torch.zeros(2, L, dtype=torch.float64, device=device),
        offset_count=torch.zeros(2, L, dtype=torch.long, device=device),
        late_attention=torch.zeros(2, L, dtype=torch.float64, device=device),
        n_sequences=batch.tokens.shape[0],
    )
    names = {f"blocks.{layer}.attn.hook_pattern" for layer in range(n_probed)}
    names.add("blocks.0.attn.hook_attn_scores")
    pieces = zip(*(x.split(chunk_size) for x in (batch.tokens, batch.targets, batch.labels, batch.triggers)))
    for tokens, targets, labels, triggers in pieces:
        logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
        in_context = labels >= 2
        counts.correct += ((logits.argmax(-1) == targets) & in_context).sum(0)
        counts.total += in_context.sum(0)
        # previous-token head: argmax over keys at query t is t - 1 (t >= 1)
        previous_is_trigger = torch.zeros_like(in_context)
        previous_is_trigger[:, 1:] = (tokens[:, :-1, None] == triggers[:, None, :]).any(-1)
        counts.previous_total[1:] += tokens.shape[0]
        counts.after_trigger_total += previous_is_trigger.sum(0)
        for layer in range(n_probed):
            pattern = cache[f"blocks.{layer}.attn.hook_pattern"][:, 0]
            hit = pattern.argmax(-1) == (t - 1)
            counts.previous_mass[layer, 1:] += pattern.diagonal(offset=-1, dim1=-2, dim2=-1).double().sum(0)
            counts.previous[layer] += hit.sum(0)
            counts.after_trigger[layer] += (hit & previous_is_trigger).sum(0)
        # layer 1's score against the offset t - s, queries inside / beyond T_train
        scores = cache["blocks.0.attn.hook_attn_scores"][:, 0]
        summed = scores.masked_fill(~causal, 0.0).double().sum(0)
        for row, queries in enumerate((~query_beyond, query_beyond)):
            keep = causal & queries
            counts.offset_score[row] += torch.bincount(offsets[keep], summed[keep], minlength=L)
            counts.offset_count[row] += torch.bincount(offsets[keep], minlength=L) * tokens.shape[0]
        pattern = cache["blocks.0.attn.hook_pattern"][:, 0]
        counts.late_attention += pattern[:, late_rows].double().sum(0)
    return counts
