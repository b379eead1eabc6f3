"""Task metrics of THEORY.md section 1: in-context accuracy and loss, bigram loss.

- in-context accuracy: top-1 accuracy on targets with label >= 2;
- bigram loss: cross-entropy on targets with label 0;
- the training loss: cross-entropy on label >= 2 targets (``"in_context"``) or on all targets
  (``"full"``), see :func:`loss_mask`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from induction_bigram.data.task import TaskBatch, TriggerTask
from induction_bigram.model import check_tokens


@dataclass(frozen=True)
class TaskMetrics:
    """Scores of a model on a :class:`TaskBatch` (floats; NaN where no target qualifies)."""

    in_context_accuracy: float
    in_context_loss: float
    bigram_loss: float
    full_loss: float
    n_in_context: int
    n_bigram: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


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
def batch_logits(model: HookedTransformer, tokens: Tensor, chunk_size: int = 64) -> Float[Tensor, "batch pos vocab"]:
    """Logits for many sequences, ``chunk_size`` at a time so memory stays bounded."""
    check_tokens(model, tokens)
    return torch.cat([model(chunk) for chunk in tokens.split(chunk_size)])


def evaluate(
    model: HookedTransformer,
    task: TriggerTask,
    *,
    batch_size: int = 512,
    seed: int = 0,
    chunk_size: int = 64,
) -> TaskMetrics:
    """Score ``model`` on a fresh batch drawn with ``seed`` (same seed, same batch)."""
    generator = torch.Generator(device=task.device).manual_seed(seed)
    batch = task.sample(batch_size, generator)
    return score_logits(batch_logits(model, batch.tokens, chunk_size), batch)
