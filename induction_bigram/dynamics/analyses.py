"""The any-model analyses on a model trained on in-context Markov chains (docs/THEORY.md section
9; issue 29, item 6): what the associative-memory view explains in a head that averages over
every earlier occurrence of the current token instead of copying one.

:func:`analyse_markov_model` runs, on a model and its task's held-out chains:

1. the head-pair search (:func:`~induction_bigram.anymodel.find_head_pairs`) on repeated random
   tokens and on the chains, each against its no-circuit floor; a model where neither finds a
   pair gets "nothing found" and no further analysis;
2. the memory projections (:func:`~induction_bigram.anymodel.pair_memory_report`) of the
   previous-token head with every last-layer head that clears the statistical induction floor
   on the chains, and the readout W_O2 of those heads summed (their outputs add in the stream);
3. :func:`occurrence_attention` of each such head: by n_q (how many earlier occurrences of
   q = z_t the context holds), the attention on the positions right after them, how evenly it
   is spread over them, and the prior strength alpha_eff with which n_q / (n_q + alpha_eff)
   equals that attention: Bayes's weight on the context is n_q / (n_q + alpha);
4. the path split (:func:`~induction_bigram.anymodel.path_decomposition`) on chain positions
   where the context's favourite successor of q differs from the global bigram's: each source's
   mean contribution to xi_(in-context favourite) - xi_(global favourite);
5. patching (:func:`~induction_bigram.anymodel.patch_head`, and the whole last layer at once
   through :func:`~induction_bigram.incontext.patching.patch_positions`) on prompts with one
   earlier "q o" (:func:`~induction_bigram.anymodel.induction_prompts`): the fraction of the
   clean - corrupted logit difference restored, NaN when the gap is within noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from induction_bigram.anymodel import (
    find_head_pairs,
    induction_prompts,
    pair_memory_report,
    patch_head,
    path_decomposition,
    project_readout,
)
from induction_bigram.anymodel.heads import Head, attention_patterns, head_name
from induction_bigram.anymodel.logits import clean_corrupted_gap, restoration_metric
from induction_bigram.anymodel.memory_scores import Projection, memory_margin, recall_at_1
from induction_bigram.config.markov import MarkovConfig
from induction_bigram.data.markov import MarkovTask
from induction_bigram.data.strategies import transition_counts
from induction_bigram.incontext.patching import patch_positions
from induction_bigram.model import Model
from induction_bigram.serialise import Record
from induction_bigram.training.markov import held_out_batch

COUNTS = (1, 2, 3, 4, 6, 8, 12, 16)
"""The n_q at which :func:`occurrence_attention` reports."""


@dataclass(frozen=True)
class OccurrenceAttention(Record):
    """How one head attends to the positions after the earlier occurrences of the current token.

    Each list holds one value per entry of ``counts`` (queries with exactly n_q = count earlier
    occurrences of q = z_t; none: NaN).

    Attributes:
        head: the head.
        counts / queries: the n_q and how many queries had it.
        on_matches: mean attention on the positions s + 1 with z_s = z_t, s < t.
        alpha_eff: n_q (1 - m) / m for that mean m: the prior strength with which Bayes's
            weight on the context, n_q / (n_q + alpha), equals the attention on it.
        latest: mean share of that attention on the latest occurrence's successor (a copying
            head: 1; an averaging head: 1 / n_q).
        evenness: mean exp(entropy) / n_q of the attention among the n_q positions (1: an even
            average over every occurrence; 1 / n_q: all on one).
    """

    head: Head
    counts: list[int]
    queries: list[int]
    on_matches: list[float]
    alpha_eff: list[float]
    latest: list[float]
    evenness: list[float]


@torch.no_grad()
def occurrence_attention(
    model: Model, head: Head, tokens: Int[Tensor, "batch pos"], counts: Sequence[int] = COUNTS
) -> OccurrenceAttention:
    """:class:`OccurrenceAttention` of ``head`` on ``tokens`` (the statistical induction score's
    targets, :func:`~induction_bigram.anymodel.score_heads` on the chains, split by n_q)."""
    T = tokens.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril(-1)
    earlier = (tokens[:, :, None] == tokens[:, None, :]) & causal  # [batch, t, s]: z_s = z_t, s < t
    after = torch.zeros_like(earlier)
    after[:, :, 1:] = earlier[:, :, :-1]  # key s + 1 for each earlier occurrence s of z_t
    n_q = after.sum(-1)
    pattern = attention_patterns(model, tokens)[head[0]][:, head[1]]
    on = pattern * after
    mass = on.sum(-1)
    latest_key = torch.where(after, torch.arange(T, device=tokens.device), -1).amax(-1).clamp_min(0)
    share = on / mass.clamp_min(1e-12)[..., None]
    entropy = -(share * share.clamp_min(1e-12).log()).sum(-1)
    latest = share.gather(-1, latest_key[..., None]).squeeze(-1)
    queries, on_matches, alpha_eff, latest_share, evenness = [], [], [], [], []
    for n in counts:
        where = n_q == n
        queries.append(int(where.sum()))
        if not where.any():
            on_matches.append(math.nan)
            alpha_eff.append(math.nan)
            latest_share.append(math.nan)
            evenness.append(math.nan)
            continue
        m = float(mass[where].mean())
        on_matches.append(m)
        alpha_eff.append(n * (1 - m) / m if m > 0 else math.inf)
        latest_share.append(float(latest[where].mean()))
        evenness.append(float((entropy[where].exp() / n).mean()))
    return OccurrenceAttention(
        (int(head[0]), int(head[1])), list(counts), queries, on_matches, alpha_eff, latest_share, evenness
    )


def _summed_readout(model: Model, heads: Sequence[Head]) -> dict[str, float]:
    """Recall and margin of the W_O2 projection of several heads' OV circuits summed: what the
    unembedding reads when they attend to the same value."""
    parts = [project_readout(model, head) for head in heads]
    total = Projection(sum(p.coefficients for p in parts), parts[0].targets, parts[0].candidates, parts[0].by_row)
    return {"recall": recall_at_1(total), "margin": memory_margin(total)}


@torch.no_grad()
def _path_split(model: Model, tokens: Int[Tensor, "batch pos"], bigram: Tensor, n_prompts: int) -> dict[str, Any]:
    """Each source's mean contribution to xi_ic - xi_g at chain positions where the in-context
    favourite ic (the most frequent successor of q so far) differs from the global favourite g."""
    counts = transition_counts(tokens, bigram.shape[0])
    in_context = counts.argmax(-1)
    favourite = bigram.to(tokens.device).argmax(-1)[tokens]
    top = counts.max(-1).values
    unique = (counts == top[..., None]).sum(-1) == 1
    where = (top >= 1) & unique & (in_context != favourite)
    rows, positions = where.nonzero(as_tuple=True)
    pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[:n_prompts]
    rows, positions = rows[pick], positions[pick]
    paths = path_decomposition(model, tokens[rows], positions)
    a, b = in_context[rows, positions], favourite[rows, positions]
    table = {row["source"] + "/" + row["route"]: row["mean_difference"] for row in paths.table(a, b)}
    logits = paths.logits
    index = torch.arange(len(rows), device=logits.device)
    difference = logits[index, a] - logits[index, b]
    return {
        "positions": len(rows),
        "model_difference": float(difference.double().mean()),
        "model_prefers_in_context": float((difference > 0).double().mean()),
        "by_source": {path: value for path, value in table.items() if value != 0.0},  # no MLP: no mlp route
    }


@torch.no_grad()
def _patching(model: Model, heads: Sequence[Head], n_prompts: int) -> dict[str, Any]:
    prompts = induction_prompts(model, n_prompts=n_prompts)
    per_head = {}
    for head in heads:
        patched = patch_head(model, head, prompts)
        per_head[head_name(head)] = {"restored_last": patched.restored_last, "restored_all": patched.restored_all}
    gap, clean_cache = clean_corrupted_gap(model, prompts)
    restored = restoration_metric(gap, prompts.output, prompts.replacement)
    last = torch.zeros(prompts.clean.shape, dtype=torch.bool, device=prompts.clean.device)
    last[:, -1] = True
    hook = f"blocks.{model.cfg.n_layers - 1}.attn.hook_z"
    whole = patch_positions(model, prompts.corrupted, clean_cache, hook, last, restored)
    return {"gap": gap.to_dict(), "per_head": per_head, "last_layer_at_last_position": whole}


def analyse_markov_model(
    model: Model, config: MarkovConfig, *, n_chains: int = 64, n_prompts: int = 32, n_paths: int = 128
) -> dict[str, Any]:
    """Every analysis of the module doc, on ``n_chains`` held-out chains of ``config``'s task
    (:func:`~induction_bigram.training.markov.held_out_batch`), ``n_prompts`` probe prompts and
    ``n_paths`` chain positions for the path split. ``found`` is ``False`` (and nothing else is
    measured) when no head pair clears its floors, on random tokens or on the chains."""
    model.eval()
    task = MarkovTask.from_config(config.task)
    chains = held_out_batch(config, task).tokens[:n_chains].to(model.cfg.device)
    search = find_head_pairs(model, n_prompts=n_prompts)
    on_chains = find_head_pairs(model, tokens=chains[:n_prompts])
    result: dict[str, Any] = {
        "found": search.found or on_chains.found,
        "random_tokens": {"verdict": str(search), **search.to_dict()},
        "chains": {"verdict": str(on_chains), **on_chains.to_dict()},
    }
    if not result["found"]:
        return result
    pair = on_chains.best if on_chains.found else search.best
    last = model.cfg.n_layers - 1
    floor = on_chains.floors["induction"]
    heads = [(last, h) for h in range(model.cfg.n_heads) if on_chains.scores.induction[last, h] >= floor]
    heads = heads or [pair.induction]
    result["pair"] = pair.to_dict()
    result["statistical_induction_heads"] = [list(h) for h in heads]
    result["memories"] = {
        head_name(h): pair_memory_report(model, (pair.previous_token, h)).to_dict(with_convention=False) for h in heads
    }
    result["summed_readout"] = _summed_readout(model, heads)
    result["occurrence_attention"] = {head_name(h): occurrence_attention(model, h, chains).to_dict() for h in heads}
    result["alpha"] = config.task.alpha
    result["paths"] = _path_split(model, chains, task.stats.bigram, n_paths)
    result["patching"] = _patching(model, heads, n_prompts)
    return result
