"""Trained against theory-built memories across the width d (docs/THEORY.md section 3).

For each d, one model is trained with a recipe and one is written by
:func:`~induction_bigram.memories.projections.build_theory_model` from the same seed, so both share every
frozen random matrix. Both are scored on the same evaluation batch. At small d a memory of
N = 65 near-orthogonal pairs is near capacity: the naive outer-product sum interferes with
itself, while training can find a better-conditioned solution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from induction_bigram.config import RunConfig, preset
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.memories.projections import build_theory_model, memory_report
from induction_bigram.training.loop import train
from induction_bigram.training.metrics import evaluate


@dataclass(frozen=True)
class CapacityRow:
    """One width: accuracy and memory scores of the trained and the theory-built model."""

    d_model: int
    trained_accuracy: float
    theory_accuracy: float
    trained: dict[str, dict[str, float]]
    theory: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        return asdict(self)


def compare_across_widths(
    d_values: Sequence[int] = (16, 32, 64, 128),
    recipe: RunConfig | None = None,
    *,
    eval_batch_size: int = 512,
    progress: bool = True,
) -> list[CapacityRow]:
    """Train and theory-build one model per d; ``recipe`` defaults to the ``quick`` preset."""
    recipe = recipe or preset("quick")
    stats = BigramStats.from_corpus(recipe.task.corpus)
    rows = []
    for d in d_values:
        config = recipe.with_overrides({"model.d_model": d}).with_vocab(stats.n_tokens)
        result = train(config, None, progress=progress)
        task = TriggerTask(stats, config.task, next(result.model.parameters()).device)
        theory = build_theory_model(config.model, task.shared_triggers, device=config.train.device, vocab=stats.vocab)
        seed = config.train.eval_seed
        rows.append(
            CapacityRow(
                d_model=d,
                trained_accuracy=evaluate(
                    result.model, task, batch_size=eval_batch_size, seed=seed
                ).in_context_accuracy,
                theory_accuracy=evaluate(theory, task, batch_size=eval_batch_size, seed=seed).in_context_accuracy,
                trained=memory_report(result.model, task.shared_triggers, config.task.seq_len).to_dict(False),
                theory=memory_report(theory, task.shared_triggers, config.task.seq_len).to_dict(False),
            )
        )
    return rows
