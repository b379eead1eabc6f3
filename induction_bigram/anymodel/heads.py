"""Finding the induction circuit of any TL model, a ``TransformerBridge`` (``HookedTransformer`` on
TL 3) (docs/THEORY.md sections 3.7, 3.8).

Our own models have one head per layer, so the circuit is known: layer 1 is the previous-token
head, layer 2 the induction head (section 2). A researcher's model has many heads per layer and
the circuit sits in some pair of them, which must be found before its memories can be read
(section 3.8). This module scores every head by what it attends to on prompts made of a random
sequence of distinct tokens repeated twice (section 3.7's test):

- **previous-token**: attention from t to t - 1;
- **duplicate-token**: attention from a token to its earlier occurrence;
- **induction**: attention from a token to the position *after* its earlier occurrence.

On other text (``score_heads(model, tokens)``) a token may recur many times and the induction
targets are the positions after *every* earlier occurrence: the score is then the *statistical*
induction score of Edelman et al. 2024 (docs/THEORY.md section 9.3; tests/dynamics checks it).

The targets of each kind are TransformerLens's own detection patterns
(``transformer_lens.head_detector.get_*_detection_pattern``) and the score is TL's ``"mul"``
measure (attention on the targets over attention in total), with one change: it is taken over
the queries that have a target. On a sequence repeated twice only the second half has an earlier
occurrence, so TL's ``detect_head`` caps an ideal induction head at 1/2 and an ideal
previous-token head at (T - 1) / T; ours gives 1 for both. Exactly,

    detect_head score = our score x (queries with a target) / T        (no BOS),

which tests/anymodel checks against ``detect_head`` itself. We do not call ``detect_head``:
it takes strings and re-tokenises them with ``model.to_tokens``, which needs a tokenizer (a
freshly initialised model has none), may not give back the random ids we drew (a BPE tokenizer
merges decoded tokens), and runs one prompt per forward pass; here one batched
``run_with_cache`` gives every head's pattern on every prompt.

A pair is a previous-token head in an earlier layer than an induction head, ranked by the
product of the two scores (whether the best pair is a circuit at all is :mod:`.circuit`'s
verdict); each pair carries TL's K-composition score (``model.all_composition_scores("K")``,
computed from the raw weights: LayerNorm weights are inside it only for a model loaded with
``fold_ln``), which breaks ties but does not rank and is not printed: its scale depends on the
heads' ranks and norms (for random d x d matrices it is about 1/sqrt(d)), and on the shipped
models a real circuit's pair scores only a little above the same weights shuffled, so the number
alone does not tell a circuit from an untrained model.
:func:`~induction_bigram.anymodel.pair_memory_report` reads what the pair's W_K^2 stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from transformer_lens.head_detector import (
    get_duplicate_token_head_detection_pattern,
    get_induction_head_detection_pattern,
    get_previous_token_head_detection_pattern,
)

from induction_bigram.errors import DataError
from induction_bigram.model import Model
from induction_bigram.serialise import Record

Head = tuple[int, int]  # (layer, head index), TL's block numbering
KINDS = ("previous_token", "induction", "duplicate_token")
_DETECTORS = {
    "previous_token": get_previous_token_head_detection_pattern,
    "induction": get_induction_head_detection_pattern,
    "duplicate_token": get_duplicate_token_head_detection_pattern,
}
HALF_LENGTH = 25
N_PROMPTS = 16


def head_name(head: Head) -> str:
    """TL's label of a head, ``L{layer}H{head}``."""
    return f"L{head[0]}H{head[1]}"


# -- prompts ------------------------------------------------------------------------------------


def bos_token(model: Model) -> int | None:
    """The BOS id TL's ``to_tokens`` would prepend to this model's prompts, else ``None``.

    A model trained with a BOS uses it as an attention sink; prompts without it would probe a
    model out of its training distribution.
    """
    tokenizer = getattr(model, "tokenizer", None)
    if not model.cfg.default_prepend_bos or tokenizer is None or tokenizer.bos_token_id is None:
        return None
    return int(tokenizer.bos_token_id)


def token_pool(model: Model, vocabulary: Int[Tensor, " n"] | None = None) -> Int[Tensor, " n_pool"]:
    """The token ids prompts are drawn from: ``vocabulary`` when given, else every id below
    ``d_vocab`` that is not one of the tokenizer's special tokens (our models keep theirs past
    ``d_vocab``, so this is the whole vocabulary)."""
    if vocabulary is not None:
        pool = torch.unique(vocabulary.detach().cpu().long())
        if len(pool) == 0 or pool.min() < 0 or pool.max() >= model.cfg.d_vocab:
            raise DataError(f"vocabulary must hold ids in [0, {model.cfg.d_vocab}), got {pool.tolist()}")
        return pool
    tokenizer = getattr(model, "tokenizer", None)
    specials = set(getattr(tokenizer, "all_special_ids", []) or [])
    return torch.tensor([i for i in range(model.cfg.d_vocab) if i not in specials], dtype=torch.long)


def repeated_random_tokens(
    model: Model,
    n_prompts: int = N_PROMPTS,
    half_length: int = HALF_LENGTH,
    seed: int = 0,
    vocabulary: Int[Tensor, " n"] | None = None,
) -> Int[Tensor, "batch pos"]:
    """Prompts ``[BOS] r r``: a sequence r of distinct random tokens, repeated once.

    ``half_length`` is capped by the pool's size (the tokens are distinct) and by n_ctx.
    Seeded by ``seed`` alone, on the CPU, so the same call gives the same prompts anywhere.
    """
    pool = token_pool(model, vocabulary)
    bos = bos_token(model)
    half = min(half_length, len(pool), (model.cfg.n_ctx - (bos is not None)) // 2)
    if half < 2 or n_prompts < 1:
        raise DataError(f"need n_prompts >= 1 and 2 distinct tokens repeated within n_ctx; got half length {half}")
    g = torch.Generator().manual_seed(seed)
    first = torch.stack([pool[torch.randperm(len(pool), generator=g)[:half]] for _ in range(n_prompts)])
    tokens = torch.cat([first, first], dim=1)
    if bos is not None:
        tokens = torch.cat([torch.full((n_prompts, 1), bos, dtype=torch.long), tokens], dim=1)
    return tokens.to(model.cfg.device)


# -- scores -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadScores(Record):
    """Every head's score as previous-token, induction and duplicate-token head (module doc).

    Attributes:
        previous_token / induction / duplicate_token: per head, the fraction of attention on the
            kind's targets, over the queries that have one (1 = ideal, see the module doc).
        k_composition: TL's K-composition score of (earlier head, later head), indexed
            [layer_1, head_1, layer_2, head_2] (0 unless layer_1 < layer_2).
        n_prompts / half_length / seed: the probe: n_prompts sequences of half_length distinct
            tokens, each repeated once.
        chance: each kind's score of a head that attends uniformly over the keys it may see,
            on the same prompts (what a head without the behaviour scores).
    """

    previous_token: Float[Tensor, "n_layers n_heads"]
    induction: Float[Tensor, "n_layers n_heads"]
    duplicate_token: Float[Tensor, "n_layers n_heads"]
    k_composition: Float[Tensor, "n_layers n_heads n_layers n_heads"]
    n_prompts: int
    half_length: int
    seed: int
    chance: dict[str, float]

    def __getitem__(self, kind: str) -> Float[Tensor, "n_layers n_heads"]:
        if kind not in KINDS:
            raise KeyError(f"unknown head kind {kind!r}; use one of {', '.join(KINDS)}")
        return getattr(self, kind)

    def best(self, kind: str, layers: range | None = None) -> Head:
        """The head with the highest score of ``kind`` (among ``layers`` when given)."""
        scores = self[kind].clone()
        if layers is not None:
            keep = torch.zeros(scores.shape[0], dtype=torch.bool)
            keep[list(layers)] = True
            scores[~keep] = -torch.inf
        layer, head = divmod(int(scores.argmax()), scores.shape[1])
        return layer, head

    def __str__(self) -> str:
        n_layers, n_heads = self.previous_token.shape
        heads = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
        header = f"head scores on {self.n_prompts} random sequences of {self.half_length} tokens, repeated once"
        if len(heads) > 24:  # a table of every head would drown the answer
            lines = [header]
            for kind in KINDS:
                order = self[kind].flatten().argsort(descending=True)[:5].tolist()
                best = ", ".join(f"{head_name(heads[i])} {self[kind].flatten()[i]:.3f}" for i in order)
                lines.append(f"  best {kind.replace('_', '-')}: {best}")
            return "\n".join(lines)
        lines = [header, f"  {'head':6s} {'prev':>6s} {'induct':>6s} {'dup':>6s}"]
        for head in heads:
            row = " ".join(f"{self[kind][head]:6.3f}" for kind in KINDS)
            lines.append(f"  {head_name(head):6s} {row}")
        return "\n".join(lines)


def attention_patterns(model: Model, tokens: Int[Tensor, "batch pos"]) -> list[Float[Tensor, "batch n_heads pos pos"]]:
    """Every layer's attention pattern on ``tokens`` (TL's ``hook_pattern``, one cached
    forward pass), in float32."""
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern"))
    return [cache["pattern", layer].float() for layer in range(model.cfg.n_layers)]


def _on_targets(
    pattern: Float[Tensor, "batch n_heads pos pos"], targets: Bool[Tensor, "batch pos pos"], exclude_bos: bool
) -> Float[Tensor, " n_heads"]:
    """Per head: attention on the targets / attention in total, over the queries with a target,
    averaged over prompts (TL's ``"mul"`` measure, restricted to those queries)."""
    if exclude_bos:  # as TL's exclude_bos: attention to BOS counts neither way
        pattern = pattern.clone()
        pattern[..., 0] = 0
    queries = targets.any(-1)
    on_target = (pattern * targets[:, None]).sum((-2, -1))
    total = (pattern * queries[:, None, :, None]).sum((-2, -1))
    return (on_target / total.clamp_min(1e-12)).mean(0)


@torch.no_grad()
def score_heads(
    model: Model,
    tokens: Int[Tensor, "batch pos"] | None = None,
    *,
    n_prompts: int = N_PROMPTS,
    half_length: int = HALF_LENGTH,
    seed: int = 0,
    vocabulary: Int[Tensor, " n"] | None = None,
) -> HeadScores:
    """Score every head of ``model`` (module doc), on ``tokens`` or on
    :func:`repeated_random_tokens` (``n_prompts``, ``half_length``, ``seed``, ``vocabulary``).

    Pass ``vocabulary`` to probe with some tokens only: a fixed-trigger head (docs/THEORY.md
    section 3.7) shows as an induction head on sequences of its triggers and not on the
    whole vocabulary.
    """
    if tokens is None:
        tokens = repeated_random_tokens(model, n_prompts, half_length, seed, vocabulary)
    if tokens.ndim != 2 or not 2 <= tokens.shape[1] <= model.cfg.n_ctx:
        raise DataError(f"tokens must have shape [batch, pos] with 2 <= pos <= {model.cfg.n_ctx}")
    bos = bos_token(model)
    exclude_bos = bos is not None and bool((tokens[:, 0] == bos).all())
    targets = {}
    for kind, detector in _DETECTORS.items():
        rows = [detector(row.cpu()) > 0 for row in tokens]
        targets[kind] = torch.stack(rows).to(tokens.device)
        if exclude_bos:  # the step from the first token back to BOS is no previous-token evidence
            targets[kind][..., 0] = False
    scores = {kind: torch.zeros(model.cfg.n_layers, model.cfg.n_heads) for kind in KINDS}
    for layer, pattern in enumerate(attention_patterns(model, tokens)):
        for kind in KINDS:
            scores[kind][layer] = _on_targets(pattern, targets[kind], exclude_bos).cpu()
    n = tokens.shape[1]
    causal = torch.ones(n, n, device=tokens.device).tril()
    uniform = (causal / causal.sum(-1, keepdim=True)).expand(tokens.shape[0], 1, n, n)
    return HeadScores(
        **scores,
        k_composition=model.all_composition_scores("K").detach().float().cpu(),
        n_prompts=tokens.shape[0],
        half_length=(tokens.shape[1] - exclude_bos) // 2,
        seed=seed,
        chance={kind: float(_on_targets(uniform, targets[kind], exclude_bos)[0]) for kind in KINDS},
    )


@torch.no_grad()
def attention_by_offset(
    model: Model, tokens: Int[Tensor, "batch pos"], max_offset: int = 8
) -> Float[Tensor, "n_layers n_heads offset"]:
    """How far back every head looks: entry [l, h, o] is the attention head h of layer l pays,
    from a query at t to the key at t - o, averaged over prompts and over the queries
    t > ``max_offset`` (those with every offset available), for o = 0..``max_offset``; the last
    entry is the attention beyond ``max_offset``. Each row sums to 1.

    On text this tells the heads apart that the repeated-token scores do not: a previous-token
    head peaks at offset 1, an "averaging" head spreads over the last few offsets, and an
    induction head puts its mass beyond them. Attention to a BOS at position 0 counts as far.
    """
    if tokens.ndim != 2 or not max_offset + 2 <= tokens.shape[1] <= model.cfg.n_ctx:
        raise DataError(
            f"tokens must have shape [batch, pos] with {max_offset + 2} <= pos <= {model.cfg.n_ctx} "
            f"(max_offset={max_offset} needs queries past it), got {tuple(tokens.shape)}"
        )
    queries = torch.arange(max_offset + 1, tokens.shape[1], device=tokens.device)
    near = queries[:, None] - torch.arange(max_offset + 1, device=tokens.device)  # key of each (t, o)
    rows = []
    for pattern in attention_patterns(model, tokens):
        pattern = pattern[:, :, queries]  # batch head query key
        by_offset = pattern.gather(-1, near.expand(*pattern.shape[:2], -1, -1)).mean((0, 2))
        rows.append(torch.cat([by_offset, (1 - by_offset.sum(-1, keepdim=True)).clamp_min(0)], -1))
    return torch.stack(rows).cpu()


# -- pairs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadPair(Record):
    """A candidate induction circuit: a previous-token head feeding an induction head's keys.

    Attributes:
        previous_token / induction: (layer, head); the previous-token head's layer is earlier.
        previous_token_score / induction_score: their :class:`HeadScores`.
        k_composition: TL's K-composition score of the two heads (in ``to_dict``, not in ``str``:
            module doc).
    """

    previous_token: Head
    induction: Head
    previous_token_score: float
    induction_score: float
    k_composition: float

    @property
    def score(self) -> float:
        """The ranking score: previous-token score x induction score."""
        return self.previous_token_score * self.induction_score

    def __str__(self) -> str:
        return (
            f"previous-token {head_name(self.previous_token)} ({self.previous_token_score:.3f}) -> "
            f"induction {head_name(self.induction)} ({self.induction_score:.3f})"
        )


def head_pairs(scores: HeadScores, top: int | None = 3) -> list[HeadPair]:
    """The ``top`` pairs (every pair when ``None``), best first (module doc's ranking)."""
    n_layers, n_heads = scores.previous_token.shape
    heads = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    pairs = [
        HeadPair(
            previous_token=early,
            induction=late,
            previous_token_score=float(scores.previous_token[early]),
            induction_score=float(scores.induction[late]),
            k_composition=float(scores.k_composition[early + late]),
        )
        for early in heads
        for late in heads
        if early[0] < late[0]
    ]
    pairs.sort(key=lambda p: (-p.score, -p.k_composition, p.previous_token, p.induction))
    return pairs if top is None else pairs[:top]


def track_head_scores(model: Model, config: Any) -> dict[str, Any]:
    """A training tracker (``train(..., track=[track_head_scores])``): the best
    induction head of the last layer and the best previous-token head of the earlier ones, with
    their scores (:func:`score_heads` on ``config.train.score_prompts`` repeated random sequences,
    seed 0), so that ``metrics.jsonl`` shows when an induction head forms."""
    scores = score_heads(model, n_prompts=config.train.score_prompts)
    last = model.cfg.n_layers - 1
    induction = scores.best("induction", range(last, last + 1))
    previous = scores.best("previous_token", range(max(last, 1)))
    return {
        "induction_score": float(scores["induction"][induction]),
        "induction_head": list(induction),
        "previous_token_score": float(scores["previous_token"][previous]),
        "previous_token_head": list(previous),
    }
