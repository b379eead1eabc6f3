"""Task metrics of docs/THEORY.md section 1: in-context accuracy and loss, bigram loss.

- in-context accuracy: top-1 accuracy on targets with label >= 2;
- bigram loss: cross-entropy on targets with label 0;
- the training loss: cross-entropy on label >= 2 targets (``"in_context"``) or on all targets
  (``"full"``), see :func:`loss_mask`.

TransformerLens's own loss, ``model(tokens, return_type="loss")``, averages the cross-entropy
over every position. A model trained with ``train.loss = "in_context"`` (the default) was never
trained on the other positions, whose logits are unconstrained: there TL's loss is large, and
ablating the induction head can lower it (scripts/tl_loss.py measures it on the shipped models).
:func:`in_context_loss`
and :func:`in_context_accuracy` take ``(logits, batch)`` like a TL metric and score only the
targets the circuit is for; :func:`in_context_patching_metric` packages them for
``transformer_lens.patching`` and ablation studies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from induction_bigram.data.task import TaskBatch, TriggerTask
from induction_bigram.errors import ConfigError, DataError
from induction_bigram.model import Model, check_tokens, check_vocabulary
from induction_bigram.serialise import Record


@dataclass(frozen=True)
class TaskMetrics(Record):
    """Scores of a model on a :class:`TaskBatch` (floats; NaN where no target qualifies)."""

    in_context_accuracy: float
    in_context_loss: float
    bigram_loss: float
    full_loss: float
    n_in_context: int
    n_bigram: int


def masked_cross_entropy(
    logits: Float[Tensor, "batch pos vocab"],
    targets: Int[Tensor, "batch pos"],
    mask: Bool[Tensor, "batch pos"],
    normalizer: int | Tensor | None = None,
) -> Float[Tensor, ""]:
    """Summed cross-entropy over the targets selected by ``mask``, divided by ``normalizer``
    (default: the number selected, i.e. the mean; 0 if none is selected)."""
    losses = F.cross_entropy(logits[mask], targets[mask], reduction="sum")
    return losses / (mask.sum().clamp_min(1) if normalizer is None else normalizer)


def in_context_loss(logits: Float[Tensor, "batch pos vocab"], batch: TaskBatch) -> Float[Tensor, ""]:
    """Mean cross-entropy on the in-context targets (label >= 2); differentiable."""
    _check_logits(logits, batch, finite=False)  # a NaN loss says so itself
    return masked_cross_entropy(logits, batch.targets, batch.in_context)


def in_context_accuracy(logits: Float[Tensor, "batch pos vocab"], batch: TaskBatch) -> Float[Tensor, ""]:
    """Top-1 accuracy on the in-context targets (label >= 2)."""
    _check_logits(logits, batch, finite=True)  # argmax over NaNs is some index: a made-up accuracy
    correct = logits.argmax(-1) == batch.targets
    return correct[batch.in_context].float().mean()


def _check_logits(logits: Tensor, batch: TaskBatch, finite: bool) -> None:
    """Raise :class:`DataError` unless ``logits`` are floats of shape [batch, pos, vocab] over
    ``batch``'s targets, with an in-context target to score (and all finite when ``finite``)."""
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.ndim != 3:
        shown = f"{tuple(logits.shape)} {logits.dtype}" if isinstance(logits, Tensor) else type(logits).__name__
        raise DataError(f"logits must be a float tensor [batch, pos, vocab], got {shown}")
    top = int(batch.targets.max()) if batch.targets.numel() else -1
    if logits.shape[:2] != batch.targets.shape or logits.shape[2] <= top:
        raise DataError(
            f"logits of shape {tuple(logits.shape)} do not fit the batch's targets {tuple(batch.targets.shape)} "
            f"(ids up to {top})"
        )
    if not batch.in_context.any():
        raise DataError("this batch has no in-context target (label >= 2) to score")
    if finite and not torch.isfinite(logits).all():
        raise DataError("the logits hold NaN or infinite values; an accuracy over them would mean nothing")


def in_context_patching_metric(
    batch: TaskBatch, kind: str = "loss"
) -> Callable[[Float[Tensor, "batch pos vocab"]], Float[Tensor, ""]]:
    """``metric(logits)`` for ``transformer_lens.patching`` / hooks on ``batch.tokens``:
    the in-context ``"loss"`` or ``"accuracy"`` (:func:`in_context_loss`, :func:`in_context_accuracy`)."""
    score = {"loss": in_context_loss, "accuracy": in_context_accuracy}.get(kind)
    if score is None:
        raise ConfigError(f"kind must be 'loss' or 'accuracy', got {kind!r}")
    if not batch.in_context.any():
        raise DataError("this batch has no in-context target (label >= 2) to score")
    return lambda logits: score(logits, batch)


def loss_mask(batch: TaskBatch, kind: str) -> Bool[Tensor, "batch pos"]:
    """Targets of the training loss: ``"in_context"`` label >= 2 only (the reference) or
    ``"full"``, every target."""
    return batch.in_context if kind == "in_context" else torch.ones_like(batch.in_context)


def score_logits(logits: Float[Tensor, "batch pos vocab"], batch: TaskBatch) -> TaskMetrics:
    """Metrics from logits already computed on ``batch.tokens``."""
    logits = logits.detach().float()
    icl, bigram = batch.in_context, batch.bigram
    correct = logits.argmax(-1) == batch.targets
    nan = float("nan")
    return TaskMetrics(
        in_context_accuracy=correct[icl].float().mean().item() if icl.any() else nan,
        in_context_loss=masked_cross_entropy(logits, batch.targets, icl).item() if icl.any() else nan,
        bigram_loss=masked_cross_entropy(logits, batch.targets, bigram).item() if bigram.any() else nan,
        full_loss=masked_cross_entropy(logits, batch.targets, torch.ones_like(icl)).item(),
        n_in_context=int(icl.sum()),
        n_bigram=int(bigram.sum()),
    )


@torch.no_grad()
def batch_logits(model: Model, tokens: Tensor, chunk_size: int = 64) -> Float[Tensor, "batch pos vocab"]:
    """Logits for many sequences, ``chunk_size`` at a time so memory stays bounded."""
    check_tokens(model, tokens)
    return torch.cat([model(chunk) for chunk in tokens.split(chunk_size)])


def evaluate(
    model: Model,
    task: TriggerTask,
    *,
    batch_size: int = 512,
    seed: int = 0,
    chunk_size: int = 64,
) -> TaskMetrics:
    """Score ``model`` on a fresh batch drawn with ``seed`` (same seed, same batch)."""
    check_vocabulary(model, task.stats)
    generator = torch.Generator(device=task.device).manual_seed(seed)
    batch = task.sample(batch_size, generator)
    return score_logits(batch_logits(model, batch.tokens, chunk_size), batch)
