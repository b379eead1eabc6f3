"""One evaluation of a model against the reference strategies (docs/THEORY.md section 9.3).

:func:`measure_dynamics` takes any TL model, a batch of sequences and a set of strategies
(:mod:`induction_bigram.data.strategies`) and returns a :class:`DynamicsPoint`: the model's
loss, each strategy's loss on the same targets, the KL from each strategy to the model, the excess
loss over the reference (Bayes), the in-context score (Olsson et al.) and the best
previous-token, induction and statistical induction heads. A trainer records one point per
evaluation; :func:`~induction_bigram.dynamics.phases.detect_phases` reads the KL curves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from induction_bigram.anymodel.heads import Head, HeadScores, score_heads
from induction_bigram.config.markov import MarkovConfig
from induction_bigram.data.markov import MarkovBatch
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.strategies import (
    Strategy,
    kl_divergence,
    markov_strategies,
    token_losses,
    trigger_strategies,
)
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import DataError
from induction_bigram.model import Model
from induction_bigram.serialise import Record, decode, hook
from induction_bigram.training.standard import in_context_score

HEAD_KINDS = ("previous_token", "induction", "statistical_induction")


@dataclass(frozen=True)
class HeadSummary(Record):
    """The best head of one kind and its score (:func:`~induction_bigram.anymodel.score_heads`)."""

    head: Head
    score: float
    chance: float


def _inf_for_null(losses: dict[str, float | None]) -> dict[str, float]:
    """Strategy losses from strict JSON (``metrics.jsonl``), where an infinite loss was written as ``null``."""
    return {name: math.inf if v is None else v for name, v in losses.items()}


@dataclass(frozen=True)
class DynamicsPoint(Record):
    """A model measured against the strategies on one batch.

    Attributes:
        loss: the model's mean next-token cross-entropy (nats).
        strategy_loss: each strategy's mean cross-entropy on the same targets (infinite for a
            counting strategy whenever a target was unseen in its context).
        kl: each strategy's mean KL(strategy || model) over batch and positions.
        reference: the strategy the excess loss is measured against (``None`` when absent).
        excess_loss: loss - strategy_loss[reference]: on data drawn from the reference's own
            model (Bayes on :class:`~induction_bigram.data.markov.MarkovTask`) its expectation is
            kl[reference]; ``None`` when the reference's loss is infinite.
        excess_ratio: excess_loss over the same excess of the ``baseline`` strategy (the global
            bigram): 0 is Bayes, 1 is no better than the prior's mean; ``None`` without both or
            when that excess is not a positive finite number (the bigram's loss is infinite on
            trigger outputs it never saw).
        in_context_score: the loss over the last tenth of the positions minus that over the
            second tenth (:func:`~induction_bigram.training.standard.in_context_score`).
        previous_token: the best previous-token head below the last layer, scored on the batch.
        induction: the best induction head of the last layer on repeated random tokens.
        statistical_induction: the best head of the last layer by attention on the positions
            right after every earlier occurrence of the current token, on the batch.
    """

    loss: float
    strategy_loss: dict[str, float] = field(metadata=hook(_inf_for_null))
    kl: dict[str, float]
    reference: str | None
    excess_loss: float | None
    excess_ratio: float | None
    in_context_score: float
    previous_token: HeadSummary
    induction: HeadSummary
    statistical_induction: HeadSummary

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DynamicsPoint:
        """The point in a metrics record (``metrics.jsonl``), whose other keys the trainer wrote."""
        return decode(cls, {f.name: data[f.name] for f in fields(cls) if f.name in data})


@torch.no_grad()
def measure_dynamics(
    model: Model,
    tokens: Int[Tensor, "batch pos"],
    targets: Int[Tensor, "batch pos"],
    strategies: Mapping[str, Strategy],
    *,
    reference: str = "bayes",
    baseline: str = "bigram",
    score_prompts: int = 16,
) -> DynamicsPoint:
    """Measure ``model`` against ``strategies`` on ``tokens`` -> ``targets`` (module doc).

    Args:
        reference / baseline: the strategies of the excess loss and its ratio (see
            :class:`DynamicsPoint`); either may be missing from ``strategies``.
        score_prompts: repeated random sequences behind the induction score.
    """
    if tokens.ndim != 2 or tokens.shape != targets.shape:
        raise DataError(f"tokens and targets must share a shape [batch, pos], got {tokens.shape}, {targets.shape}")
    was_training = model.training
    model.eval()
    try:
        log_probs = model(tokens).float().log_softmax(-1)
        losses = token_losses(log_probs, targets)
        strategy_loss, kl = {}, {}
        for name, strategy in strategies.items():
            theirs = strategy(tokens).float()
            if theirs.shape != log_probs.shape:
                raise DataError(f"strategy {name!r} gives shape {tuple(theirs.shape)}, the model {log_probs.shape}")
            strategy_loss[name] = float(token_losses(theirs, targets).mean())
            kl[name] = float(kl_divergence(theirs, log_probs).mean())
        text_scores = score_heads(model, tokens)
        random_scores = score_heads(model, n_prompts=score_prompts)
    finally:
        model.train(was_training)
    last = model.cfg.n_layers - 1
    loss = float(losses.mean())
    finite_reference = reference in strategy_loss and math.isfinite(strategy_loss[reference])
    excess = loss - strategy_loss[reference] if finite_reference else None
    gap = strategy_loss[baseline] - strategy_loss[reference] if {reference, baseline} <= set(strategy_loss) else None
    return DynamicsPoint(
        loss=loss,
        strategy_loss=strategy_loss,
        kl=kl,
        reference=reference if reference in strategy_loss else None,
        excess_loss=excess,
        excess_ratio=excess / gap if excess is not None and gap is not None and 0 < gap < math.inf else None,
        in_context_score=in_context_score(losses.mean(0)),
        previous_token=_best(text_scores, "previous_token", range(max(last, 1))),
        induction=_best(random_scores, "induction", range(last, last + 1)),
        statistical_induction=_best(text_scores, "induction", range(last, last + 1)),
    )


def track_dynamics(model: Model, config: MarkovConfig, batch: MarkovBatch) -> dict[str, Any]:
    """The :class:`DynamicsPoint` of ``model`` on a markov run's held-out ``batch``, against the six
    strategies of its task (:func:`~induction_bigram.data.strategies.markov_strategies`), as a
    metrics record's fields: the ``track`` of :func:`~induction_bigram.training.trainer.train`."""
    strategies = _strategies(config.task.corpus, config.task.alpha)
    point = measure_dynamics(model, batch.tokens, batch.targets, strategies, score_prompts=config.train.score_prompts)
    return point.to_dict()


TRIGGER_BATCH = 64
"""Sequences in the trigger task's dynamics batch."""
TRIGGER_SEED = 1_000_003
"""Seeds the trigger task's dynamics batch: a generator of its own (a run's training batches come
from ``train.seed``'s), so the batch is held out unless a run sets ``train.seed`` to it."""


def track_trigger_dynamics(
    model: Model, task: TriggerTask, *, batch_size: int = TRIGGER_BATCH, seed: int = TRIGGER_SEED
) -> dict[str, Any]:
    """The :class:`DynamicsPoint` of a trigger-task model (docs/THEORY.md sections 1 and 9.3), as a
    metrics record's fields: the tracker of :func:`~induction_bigram.training.trainer.train`
    (``ib.train(config, out, track=[track_trigger_dynamics])``).

    Measured on ``batch_size`` sequences drawn from ``seed`` (the same batch at every evaluation)
    against :func:`~induction_bigram.data.strategies.trigger_strategies` of their triggers; the
    excess loss is over ``in_context_copy`` (finite when first outputs follow the bigram,
    ``task.output_mode = "bigram"``), its ratio to the global bigram's.
    """
    batch = task.sample(batch_size, torch.Generator(device=task.device).manual_seed(seed))
    strategies = trigger_strategies(task.stats, batch.triggers)
    point = measure_dynamics(model, batch.tokens, batch.targets, strategies, reference="in_context_copy")
    return point.to_dict()


@lru_cache(maxsize=4)
def _strategies(corpus: str, alpha: float) -> dict[str, Strategy]:
    return markov_strategies(BigramStats.from_corpus(corpus), alpha)


def kl_curves(points: Sequence[DynamicsPoint]) -> dict[str, list[float]]:
    """Each strategy's KL over a run's points, the input of
    :func:`~induction_bigram.dynamics.phases.detect_phases`."""
    return {name: [point.kl[name] for point in points] for name in (points[0].kl if points else {})}


def _best(scores: HeadScores, kind: str, layers: range) -> HeadSummary:
    head = scores.best(kind, layers)
    return HeadSummary(head, float(scores[kind][head]), scores.chance[kind])
