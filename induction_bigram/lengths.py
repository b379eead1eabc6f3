"""Positional encodings and long prompts: APE against RPE, rotary and NoPE.

THEORY.md section 5, item 6 (Wang & Sato): with absolute positions p_t (APE) the previous-token
memory W_K^1 = sum_t p_t p_(t-1)^T is only learned for the positions t < T_train seen in
training, so in-context evidence that lies beyond them is overlooked; a relative bias
b_(t-s) (RPE) is the same at every position, so the previous-token head works at any length.

Variants (all genuine ``HookedTransformer`` s, built by :func:`~induction_bigram.model.build_model`
from :func:`variant_config`; every one has ``n_ctx = k_max T_train``):

============  ==============================================================================
``ape``       random absolute p_t in the stream; p_t for t >= T_train exist but are never seen
``rpe``       score + b_(t-s) in layer 1 (``blocks.0.attn.rel_pos.bias``); no p_t; layer 2
              content only
``rope``      rotary in layer 1 only, with trainable b_Q, b_K (``model.rope_qk_bias``): the
              score gains b_Q^T R_(s-t) b_K, a function of the offset alone
``rope-nobias``  rotary in layer 1 with W_Q = I and no biases (the prototype's failure)
``nope``      three attention layers, no positions at all, causal mask only
``rpe-clipped``  not trained: the trained ``rpe`` model evaluated with b_o := b_(T_train - 1)
              for every o >= T_train (T5's shared last bucket)
============  ==============================================================================

The oversight protocol. A prompt of length k T_train (k = 1..4) whose first (k - 1) T_train
inputs hold no trigger (global bigram text with the triggers excluded), followed by the trigger
process: every in-context target (label c >= 2) lies in the last window
[(k - 1) T_train, k T_train). "kx" is the in-context accuracy on that window; "1x" is the
ordinary prompt of the training length. The ordinary protocol runs the trigger process over the
whole long prompt and also scores the last window: there an APE model can still succeed,
because the first occurrences of each trigger lie inside the trained positions and layer 2
only needs one key "preceded by q" with the right output.

Measured quantities (:class:`VariantResult`):

- in-context accuracy on the last window per k, both protocols, and by position (for the
  oversight protocol, position p is scored on the prompts whose window holds p);
- layer 1's previous-token accuracy by position: argmax_s of ``blocks.0.attn.hook_pattern``
  at query t equals t - 1, at every position t >= 1 (and separately at the positions t whose
  input z_(t-1) is a trigger), on ordinary prompts of the longest length; NoPE reports its
  first two layers;
- W_K^1 recall by position (APE): for each t, is argmax_(s<t) p_t^T W_K^1 p_s = t - 1?
  (:func:`~induction_bigram.memory.project_W_K1` over positions 0..k_max T_train - 1);
- what plays the role of W_K^1 elsewhere: the mean layer-1 score (after the 1/sqrt(d)
  scaling, bias included) as a function of the offset t - s, for queries inside and beyond
  T_train; the learned b_(t-s) (rpe); b_Q^T R_(s-t) b_K / sqrt(d) (rope);
- the W_O^2 and W_K^2 memories (:func:`~induction_bigram.memory.memory_report`; NoPE: the
  read-out of its last layer only).
- the mean attention weight on t - 1 by position: the argmax can stay at t - 1 while the
  weight there is diluted over more and more keys.

Measured with the ``cpu`` preset (d = 128, T_train = 64, K = 5, AdamW 0.03, 1,500 steps,
batch 64, 256 prompts per (protocol, k); one CPU thread, about 9 minutes for the four
variants while another process kept the second core busy). In-context accuracy on the last
window, oversight / ordinary protocol, k = 1, 2, 3, 4:

===========  ===========================  ===========================  =====================
variant      oversight                    ordinary                     attention on t - 1
                                                                       inside / beyond
===========  ===========================  ===========================  =====================
ape          1.00  0.27  0.25  0.13       1.00  0.97  0.95  0.94       0.56 / 0.01
rpe          1.00  0.99  0.66  0.32       1.00  1.00  0.99  0.99       0.93 / 0.37
rpe-clipped  1.00  1.00  0.92  0.68       1.00  1.00  1.00  0.99       0.93 / 0.52
rope         1.00  1.00  1.00  1.00       1.00  1.00  1.00  1.00       0.64 / 0.62
rope-nobias  0.78  0.41  0.28  0.15       0.78  0.78  0.70  0.62       0.08 / 0.01
nope         0.89  0.46  0.33  0.20       0.89  0.84  0.80  0.79       0.07 / 0.01 (layers 1, 2)
===========  ===========================  ===========================  =====================

- APE: W_K^1 recall 1.0 up to t = 53, 0 from t = 64 on (positions near T_train are barely
  learned: few later queries look at them); previous-token argmax accuracy 0.89 inside,
  0.002 beyond. Under the ordinary protocol it still scores 0.94-0.97 beyond T_train.
- RPE: argmax at t - 1 at every position (accuracy 1.000), but b_1 = 3.9 against b_o = -2.5 on
  the trained offsets 2..63 and 0 on the untrained ones (no gradient ever reaches them), so the
  weight on t - 1 falls from 0.87-0.98 inside T_train to 0.20 at t = 255, and the oversight
  accuracy with it at 3x, 4x. Sharing the last trained bias (``rpe-clipped``) recovers part of
  it; what remains goes with the weight on t - 1 still falling (0.34 at t = 255): a fixed
  score gap spread over more and more keys.
- rotary: without biases no previous-token head forms (weight on t - 1: 0.08; in-context
  accuracy 0.78 at T_train after 1,500 steps). With trainable b_Q, b_K the bias term gives
  offsets 0 and 1 scores 7.9 and 8.6 and every other offset at most about 4, at every length,
  so the head splits between t (0.26-0.32) and t - 1 (0.6-0.65) and the model is perfect at
  every length.
- NoPE: no previous-token head in layer 1 or 2 (argmax accuracy 0.05, 0.07); the model reaches
  0.89 in range with an approximate mechanism that degrades with length (0.46 at 2x).
  Training also W_V, W_O of layers 1 and 2 diverged at lr 0.03 (accuracy 0.01) and reached
  only 0.75 at lr 0.005, so the default trained parts are kept.

Evaluation runs ``chunk_size`` sequences at a time under ``torch.no_grad()`` and keeps only
per-position counts, so memory stays bounded whatever the batch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from induction_bigram.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TaskBatch, TriggerTask
from induction_bigram.errors import ConfigError
from induction_bigram.files import atomic_write_text, json_safe
from induction_bigram.memory import Projection, memory_margin, memory_report, project_W_K1, recall_at_1
from induction_bigram.model import model_config, token_embeddings
from induction_bigram.train import train_or_load

Protocol = Literal["oversight", "ordinary"]
PROTOCOLS: tuple[Protocol, ...] = ("oversight", "ordinary")
MAIN_VARIANTS = ("ape", "rpe", "rope", "nope")
_VARIANT_MODELS: dict[str, dict[str, Any]] = {
    "ape": {"positional": "ape"},
    "rpe": {"positional": "rpe"},
    "rope": {"positional": "rope", "rope_qk_bias": True},
    "rope-nobias": {"positional": "rope", "rope_qk_bias": False},
    "nope": {"positional": "nope"},
}
VARIANTS = tuple(_VARIANT_MODELS)


# -- the study's configuration ------------------------------------------------------------------


@dataclass(frozen=True)
class LengthsStudyConfig:
    """One object for the whole study (the prototype recipe of THEORY.md section 5, item 6).

    Attributes:
        variants: names from :data:`VARIANTS`.
        train_length: T_train, the length of every training prompt.
        multiples: the k of the evaluation lengths k T_train; must start at 1.
        d_model: d.
        n_triggers: K fixed triggers (the K most frequent characters), uniform outputs.
        steps / batch_size / lr: AdamW (no weight decay) on the in-context loss.
        variant_steps: per-variant number of steps overriding ``steps``.
        eval_batch_size: prompts per (protocol, k).
        chunk_size: prompts per forward pass during evaluation (bounds the memory).
        model_seed / train_seed / eval_seed: the frozen matrices, the training batches and
            the evaluation batches.
        rpe_clipped: also evaluate the trained rpe model with its untrained far offsets set to
            the last trained one (:func:`clipped_relative_bias`), reported as ``rpe-clipped``.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        threads: ``torch.set_num_threads`` for the study's duration (restored after);
            ``None`` leaves it alone. At d = 128 one thread is as fast as two on an idle
            2-core machine and far faster on a busy one (measured: 0.05 s against 0.7 s per
            training step while another process kept one core busy).
    """

    variants: tuple[str, ...] = MAIN_VARIANTS
    train_length: int = 64
    multiples: tuple[int, ...] = (1, 2, 3, 4)
    d_model: int = 128
    n_triggers: int = 5
    steps: int = 1500
    batch_size: int = 64
    lr: float = 0.03
    variant_steps: dict[str, int] = field(default_factory=dict)
    eval_batch_size: int = 256
    chunk_size: int = 32
    model_seed: int = 0
    train_seed: int = 0
    eval_seed: int = 2024
    rpe_clipped: bool = True
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        unknown = [v for v in (*self.variants, *self.variant_steps) if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
        ks = list(self.multiples)
        if not ks or ks[0] != 1 or ks != sorted(set(ks)):
            raise ConfigError(f"multiples must be increasing and start at 1, got {self.multiples}")
        for name in ("train_length", "d_model", "n_triggers", "batch_size", "eval_batch_size", "chunk_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.train_length < 2:
            raise ConfigError(f"train_length must be >= 2, got {self.train_length}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1 or None, got {self.threads}")

    @property
    def max_length(self) -> int:
        """k_max T_train: the context of every variant and the longest evaluation prompt."""
        return self.train_length * self.multiples[-1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LengthsStudyConfig":
        names = {f.name for f in fields(cls)}
        bad = set(data) - names
        if bad:
            raise ConfigError(f"unknown lengths-study key {sorted(bad)[0]!r}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)


LENGTHS_PRESETS: dict[str, LengthsStudyConfig] = {
    # THEORY.md's prototype: d = 128, T_train = 64, evaluation up to 256, K = 5, Adam 0.03,
    # 1,500 steps; about 10 minutes for the four variants on 2 CPU cores
    "cpu": LengthsStudyConfig(threads=1),
    # a few steps of a tiny model: bookkeeping only, no learning
    "test": LengthsStudyConfig(
        train_length=8,
        d_model=16,
        n_triggers=3,
        steps=3,
        batch_size=8,
        eval_batch_size=12,
        chunk_size=5,
    ),
}


def lengths_preset(name: str) -> LengthsStudyConfig:
    """A named study configuration from :data:`LENGTHS_PRESETS`."""
    try:
        return LENGTHS_PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown lengths preset {name!r}; choose one of {', '.join(sorted(LENGTHS_PRESETS))}"
        ) from None


def variant_config(variant: str, study: LengthsStudyConfig | None = None) -> RunConfig:
    """The :class:`RunConfig` of one variant: trained at T_train, context k_max T_train.

    Under APE the positions T_train..n_ctx - 1 therefore exist (random frozen p_t) but no
    training prompt reaches them.
    """
    study = study or LengthsStudyConfig()
    if variant not in _VARIANT_MODELS:
        raise ConfigError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    steps = study.variant_steps.get(variant, study.steps)
    return RunConfig(
        task=TaskConfig(seq_len=study.train_length, n_triggers=study.n_triggers),
        model=ModelConfig(
            d_model=study.d_model,
            n_ctx=study.max_length,
            seed=study.model_seed,
            **_VARIANT_MODELS[variant],
        ),
        train=TrainConfig(
            steps=steps,
            batch_size=study.batch_size,
            optimizer="adamw",
            lr=study.lr,
            weight_decay=0.0,
            loss="in_context",
            eval_every=max(steps // 10, 1),
            eval_batch_size=min(study.eval_batch_size, 256),
            checkpoint_every=max(steps, 1),
            seed=study.train_seed,
            device=study.device,
        ),
    )


# -- the prompts --------------------------------------------------------------------------------


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


# -- one pass over a batch ----------------------------------------------------------------------


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
    model: HookedTransformer, batch: TaskBatch, train_length: int, chunk_size: int = 32
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


# -- results ------------------------------------------------------------------------------------


def _ratio(hits: Tensor, total: Tensor) -> list[float]:
    hits, total = hits.double().cpu(), total.double().cpu()
    return torch.where(total > 0, hits / total.clamp_min(1), torch.nan).tolist()


def _mean_over(values: Sequence[float], positions: range) -> float:
    chosen = [v for v in values[positions.start : positions.stop] if not math.isnan(v)]
    return sum(chosen) / len(chosen) if chosen else math.nan


@dataclass(frozen=True)
class ProtocolResult:
    """One protocol at every k.

    Attributes:
        accuracy_by_length: ``"kx"`` -> in-context accuracy on the last window.
        whole_prompt_accuracy_by_length: ``"kx"`` -> in-context accuracy over the whole prompt.
        n_in_context_by_length: ``"kx"`` -> number of in-context targets in the last window.
        correct_by_position / count_by_position: positions 0..k_max T_train - 1. Oversight:
            position p counted on the prompts whose last window holds p; ordinary: on the
            longest prompts.
    """

    accuracy_by_length: dict[str, float]
    whole_prompt_accuracy_by_length: dict[str, float]
    n_in_context_by_length: dict[str, int]
    correct_by_position: list[int]
    count_by_position: list[int]

    @property
    def accuracy_by_position(self) -> list[float]:
        return _ratio(torch.tensor(self.correct_by_position), torch.tensor(self.count_by_position))


@dataclass(frozen=True)
class VariantResult:
    """Everything the study measures on one trained variant (module doc for definitions).

    ``previous_token_by_position[layer]`` etc. are lists over positions 0..k_max T_train - 1
    (NaN where undefined); ``layer`` 0 is the paper's layer 1. ``example_*`` hold one oversight
    prompt of length 2 T_train and every layer's attention on it (for circuitsvis; not in
    :meth:`to_dict`).
    """

    variant: str
    config: dict[str, Any]
    train_length: int
    train_seconds: float
    train_accuracy: float
    oversight: ProtocolResult
    ordinary: ProtocolResult
    previous_token_by_position: list[list[float]]
    previous_token_after_trigger_by_position: list[list[float]]
    previous_token_mass_by_position: list[list[float]]
    score_by_offset: dict[str, list[float]]
    late_attention: dict[str, list[float]]
    W_K1_recall_by_position: list[float] | None
    offset_bias: list[float] | None
    memories: dict[str, dict[str, float]]
    example_tokens: list[int]
    example_patterns: Float[Tensor, "layer query key"]
    what_was_tried: str = ""

    def previous_token_summary(self) -> dict[str, dict[str, float]]:
        """Previous-token accuracy (argmax at t - 1; all queries t >= 1, and queries after a
        trigger) and the mean attention on t - 1, inside [1, T_train) and beyond
        [T_train, k_max T_train), per probed layer."""
        T, L = self.train_length, len(self.previous_token_by_position[0])
        summary = {}
        for layer, series in enumerate(
            zip(
                self.previous_token_by_position,
                self.previous_token_after_trigger_by_position,
                self.previous_token_mass_by_position,
            )
        ):
            summary[f"layer{layer + 1}"] = {
                f"{name}{where}": _mean_over(values, positions)
                for name, values in zip(("", "after_trigger_", "mass_"), series)
                for where, positions in (("in_range", range(1, T)), ("beyond", range(T, L)))
            }
        return summary

    def offset_summary(self) -> dict[str, Any]:
        """How sharp layer 1's preference for offset 1 is, read off one profile: the learned
        b_(t-s) (rpe), b_Q^T R_(s-t) b_K / sqrt(d) (rope), else the mean layer-1 score by
        offset at queries beyond T_train."""
        name, profile = (
            ("offset_bias", self.offset_bias)
            if self.offset_bias is not None
            else ("mean_score_beyond", self.score_by_offset["beyond"])
        )
        v, T = np.asarray(profile, dtype=float), self.train_length
        finite = lambda x: np.isfinite(x).any()  # noqa: E731
        others = np.delete(v, 1)
        return {
            "profile": name,
            "argmax_offset": int(np.nanargmax(v)) if finite(v) else -1,
            "offset0": float(v[0]),
            "offset1": float(v[1]),
            "offset1_minus_best_other": float(v[1] - np.nanmax(others)) if finite(others) else math.nan,
            "mean_offsets_2_to_T_train": float(np.nanmean(v[2:T])) if finite(v[2:T]) else math.nan,
            "mean_offsets_beyond_T_train": float(np.nanmean(v[T:])) if finite(v[T:]) else math.nan,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (NaN -> None); ``accuracy_by_length`` is the oversight protocol."""
        T, L = self.train_length, len(self.previous_token_by_position[0])
        out: dict[str, Any] = {
            "accuracy_by_length": self.oversight.accuracy_by_length,
            "ordinary_accuracy_by_length": self.ordinary.accuracy_by_length,
            "ordinary_whole_prompt_accuracy_by_length": self.ordinary.whole_prompt_accuracy_by_length,
            "n_in_context_by_length": self.oversight.n_in_context_by_length,
            "train_accuracy": self.train_accuracy,
            "train_seconds": self.train_seconds,
            "previous_token_accuracy": self.previous_token_summary(),
            "offset_summary": self.offset_summary(),
            "memories": self.memories,
            "what_was_tried": self.what_was_tried,
            "by_position": {
                "accuracy_oversight": self.oversight.accuracy_by_position,
                "accuracy_ordinary": self.ordinary.accuracy_by_position,
                "previous_token": self.previous_token_by_position,
                "previous_token_after_trigger": self.previous_token_after_trigger_by_position,
                "previous_token_mass": self.previous_token_mass_by_position,
            },
            "score_by_offset": self.score_by_offset,
            "late_attention": self.late_attention,
            "config": self.config,
        }
        if self.W_K1_recall_by_position is not None:
            recall = self.W_K1_recall_by_position
            out["W_K1_recall"] = {
                "in_range": _mean_over(recall, range(1, T)),
                "beyond": _mean_over(recall, range(T, L)),
            }
            out["by_position"]["W_K1_recall"] = recall
        if self.offset_bias is not None:
            out["offset_bias"] = self.offset_bias
        return json_safe(out)


@dataclass(frozen=True)
class LengthsResult:
    """The study: one :class:`VariantResult` per variant, plus the config and timing."""

    study: LengthsStudyConfig
    variants: dict[str, VariantResult]
    wall_seconds: float
    vocab: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"variants": {"ape": {"accuracy_by_length": {"1x": ...}, ...}, ...}, ...}``;
        variants outside :data:`MAIN_VARIANTS` go under ``"extra_variants"``."""
        main = {name: r.to_dict() for name, r in self.variants.items() if name in MAIN_VARIANTS}
        extra = {name: r.to_dict() for name, r in self.variants.items() if name not in MAIN_VARIANTS}
        out: dict[str, Any] = {"variants": main}
        if extra:
            out["extra_variants"] = extra
        out.update(
            study=self.study.to_dict(),
            train_length=self.study.train_length,
            multiples=list(self.study.multiples),
            wall_seconds=self.wall_seconds,
        )
        return out


# -- evaluation ---------------------------------------------------------------------------------


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
def rotary_bias_profile(model: HookedTransformer, n_offsets: int) -> Float[Tensor, " offset"] | None:
    """b_Q^T R_(s-t) b_K / sqrt(d) of layer 1 for offsets t - s = 0..n-1 (rotary models with
    query/key biases; ``None`` otherwise). It is the part of the score that depends on the
    offset alone, whatever the tokens."""
    attn = model.blocks[0].attn
    if model.cfg.positional_embedding_type != "rotary" or not (attn.b_Q.any() or attn.b_K.any()):
        return None
    q = attn.apply_rotary(attn.b_Q.detach().expand(1, n_offsets, *attn.b_Q.shape))
    k = attn.apply_rotary(attn.b_K.detach().expand(1, n_offsets, *attn.b_K.shape))
    last = n_offsets - 1
    scores = (q[0, last, 0] * k[0, :, 0]).sum(-1) / attn.attn_scale  # key s = last - offset
    return scores.flip(0)


@torch.no_grad()
def _last_layer_readout(model: HookedTransformer) -> dict[str, float]:
    """C[i, k] = w_U(i)^T W_O^L W_V^L w_E(k) for the last layer (any depth): recall, margin."""
    last = model.blocks[model.cfg.n_layers - 1].attn
    ov = token_embeddings(model) @ last.OV[0] @ model.unembed.W_U.detach()
    n = model.cfg.d_vocab
    proj = Projection(
        ov.AB.T,
        torch.arange(n, device=ov.A.device),
        torch.ones(n, n, dtype=torch.bool, device=ov.A.device),
        by_row=False,
    )
    return {"recall": recall_at_1(proj), "margin": memory_margin(proj)}


@torch.no_grad()
def W_K1_recall_by_position(model: HookedTransformer, n_positions: int) -> list[float] | None:
    """APE only: 1.0 at position t when argmax_(s<t) p_t^T W_K^1 p_s = t - 1 (NaN at t = 0)."""
    if model_config(model).positional != "ape":
        return None
    proj = project_W_K1(model, n_positions)
    scores = proj.item_scores.masked_fill(~proj.candidates, -math.inf)
    hits = (scores.argmax(-1) == proj.targets).double().cpu()
    return [math.nan] + hits.tolist()


@torch.no_grad()
def evaluate_lengths(
    model: HookedTransformer,
    task: TriggerTask,
    *,
    train_length: int,
    multiples: Sequence[int] = (1, 2, 3, 4),
    batch_size: int = 256,
    chunk_size: int = 32,
    seed: int = 2024,
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
        offset_bias = model.blocks[0].attn.rel_pos.bias.detach()[:max_length].cpu().tolist()
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
        previous_token_by_position=[_ratio(h, longest.previous_total) for h in longest.previous],
        previous_token_after_trigger_by_position=[
            _ratio(h, longest.after_trigger_total) for h in longest.after_trigger
        ],
        previous_token_mass_by_position=[_ratio_float(m, longest.previous_total) for m in longest.previous_mass],
        score_by_offset={
            "in_range": _ratio_float(longest.offset_score[0], longest.offset_count[0]),
            "beyond": _ratio_float(longest.offset_score[1], longest.offset_count[1]),
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


def _ratio_float(sums: Tensor, counts: Tensor) -> list[float]:
    return torch.where(counts > 0, sums.cpu() / counts.cpu().clamp_min(1), torch.nan).tolist()


# -- the study ----------------------------------------------------------------------------------


WHAT_WAS_TRIED = {
    "ape": "random frozen p_t for all n_ctx = k_max T_train positions; trained on T_train only",
    "rpe": "learned b_(t-s) added to layer 1's scores (zero init); stream without positions; "
    "offsets >= T_train never get a gradient and stay at 0 (see rpe-clipped)",
    "rope": "rotary in layer 1 only with trainable query/key biases (random init N(0, 1/d)); "
    "without them no previous-token head forms (variant rope-nobias)",
    "rope-nobias": "rotary in layer 1 only, W_Q = I, no biases (the prototype's recipe)",
    "nope": "three attention layers, no positions; trained: W_K of every layer and W_O of the "
    "last. Also training W_V, W_O of layers 1-2 diverged at lr 0.03 and was worse at "
    "lr 0.005 (0.75 in range against 0.89), so it is not used",
    "rpe-clipped": "the trained rpe model evaluated with b_o := b_(T_train - 1) for o >= T_train "
    "(T5's shared last bucket; training is unchanged, those offsets never get a gradient)",
}


@contextmanager
def clipped_relative_bias(model: HookedTransformer, max_offset: int):
    """Within the block, offsets o > ``max_offset`` use b_(max_offset) (T5-style: far offsets
    share the last bucket) instead of their untrained value 0."""
    bias = model.blocks[0].attn.rel_pos.bias
    saved = bias.detach().clone()
    with torch.no_grad():
        bias[max_offset + 1 :] = bias[max_offset]
    try:
        yield model
    finally:
        with torch.no_grad():
            bias.copy_(saved)


def run_lengths_study(
    study: LengthsStudyConfig | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> LengthsResult:
    """Train (or load from ``out_dir/<variant>``) each variant, evaluate it, and when
    ``out_dir`` is given write ``lengths.json`` there (figures: ``viz.lengths_figures``; the
    circuitsvis view: ``views.lengths_attention_view``)."""
    study = study or LengthsStudyConfig()
    threads = torch.get_num_threads()
    if study.threads is not None:
        torch.set_num_threads(study.threads)
    try:
        return _run_study(study, Path(out_dir) if out_dir is not None else None, progress)
    finally:
        torch.set_num_threads(threads)


def _run_study(study: LengthsStudyConfig, out_dir: Path | None, progress: bool) -> LengthsResult:
    began = time.perf_counter()
    results: dict[str, VariantResult] = {}
    stats = None
    for variant in study.variants:
        config = variant_config(variant, study)
        stats = stats or BigramStats.from_corpus(config.task.corpus)
        config = config.with_vocab(stats.n_tokens)
        trained = train_or_load(config, out_dir / variant if out_dir else None, progress=progress)
        model = trained.model
        seconds, accuracy = trained.final["elapsed_seconds"], trained.final["in_context_accuracy"]
        task = TriggerTask(stats, config.task, next(model.parameters()).device)
        evaluation = dict(
            model=model,
            task=task,
            train_length=study.train_length,
            multiples=study.multiples,
            batch_size=study.eval_batch_size,
            chunk_size=study.chunk_size,
            seed=study.eval_seed,
        )
        result = evaluate_lengths(**evaluation, variant=variant)
        evaluated = {variant: result}
        if variant == "rpe" and study.rpe_clipped:
            with clipped_relative_bias(model, study.train_length - 1):
                evaluated["rpe-clipped"] = evaluate_lengths(**evaluation, variant="rpe-clipped")
        for name, result in evaluated.items():
            results[name] = replace(
                result,
                config=config.to_dict(),
                train_seconds=seconds,
                train_accuracy=accuracy,
                what_was_tried=WHAT_WAS_TRIED[name],
            )
            if progress:
                print(
                    f"{name}: oversight {_fmt(result.oversight.accuracy_by_length)}; "
                    f"ordinary {_fmt(result.ordinary.accuracy_by_length)}",
                    flush=True,
                )
    lengths = LengthsResult(study, results, time.perf_counter() - began, stats.vocab if stats else ())
    if out_dir is not None:
        write_lengths_json(lengths, out_dir)
    return lengths


def _fmt(accuracies: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in accuracies.items())


def write_lengths_json(result: LengthsResult, out_dir: str | Path) -> Path:
    """``out_dir/lengths.json``: the numbers of the study."""
    path = Path(out_dir) / "lengths.json"
    atomic_write_text(path, json.dumps(result.to_dict(), indent=1) + "\n")
    return path
