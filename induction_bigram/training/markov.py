"""Training the ``markov`` model: a standard TL model on in-context Markov chains, AdamW; the
markov family of the one training loop (:mod:`~induction_bigram.training.trainer`).

``train_markov(config, run_dir)`` writes ``run_dir/config.json`` (with ``model.vocab`` filled in
from the corpus statistics), appends a record per evaluation to ``run_dir/metrics.jsonl`` and
saves ``run_dir/checkpoint.pt`` every ``checkpoint_every`` steps and at the end.

The family's part: fresh chains every step from the data generator
(:class:`~induction_bigram.data.markov.MarkovTask`: each sequence its own transition matrix
drawn around the corpus bigram), the next-token loss at every position, and an evaluator that
measures the model with :func:`~induction_bigram.dynamics.measure_dynamics` against the six
strategies of :func:`~induction_bigram.data.strategies.markov_strategies` on one fixed held-out
batch, drawn from ``train.eval_seed`` (a generator no training batch comes from). Each record
holds the :class:`~induction_bigram.dynamics.DynamicsPoint`'s fields at its top level
(``loss``, ``kl``, ``excess_loss``, ``excess_ratio``, ``in_context_score``, the best heads), so
:func:`~induction_bigram.dynamics.figures.run_dynamics` reads the points back.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from induction_bigram.config.markov import MarkovConfig
from induction_bigram.data.markov import MarkovBatch, MarkovTask
from induction_bigram.data.strategies import markov_strategies
from induction_bigram.dynamics.measure import measure_dynamics
from induction_bigram.model import build_natural_model
from induction_bigram.training.checkpoint import Checkpoint
from induction_bigram.training.natural import make_natural_optimizer
from induction_bigram.training.trainer import Plan, TrainResult, folder_mode, train_run


def train_markov(
    config: MarkovConfig,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train the markov model as ``config`` says.

    ``resume`` continues ``run_dir``'s checkpoint (only ``train.steps`` may differ);
    ``overwrite`` starts afresh in a run folder of ours. A loss or weight that turns NaN or
    infinite stops the run with :class:`TrainingDivergedError`, keeping the last checkpoint.
    """
    return train_run(_setup, config, run_dir, existing=folder_mode(resume, overwrite), progress=progress)


def held_out_batch(config: MarkovConfig, task: MarkovTask) -> MarkovBatch:
    """The fixed evaluation batch: ``train.eval_batch`` chains from ``train.eval_seed``."""
    return task.sample(config.train.eval_batch, torch.Generator().manual_seed(config.train.eval_seed))


def _setup(config: MarkovConfig, ckpt: Checkpoint | None) -> Plan:
    # chains are drawn on the CPU, from the CPU generator the checkpoint keeps, then moved
    task = MarkovTask.from_config(config.task)
    if ckpt is None:
        config = config.with_vocab("".join(task.stats.vocab))
        model = build_natural_model(config.model, config.train.device)
        generator = torch.Generator().manual_seed(config.train.seed)
    else:  # the loop restores the optimiser's and the generator's states
        config = config.with_vocab(ckpt.config.model.vocab).with_vocab("".join(task.stats.vocab))
        model, generator = ckpt.model, torch.Generator()
    cfg = config.train
    device = next(model.parameters()).device
    held_out = held_out_batch(config, task)
    tokens, targets = held_out.tokens.to(device), held_out.targets.to(device)
    strategies = markov_strategies(task.stats, config.task.alpha)

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        batch = task.sample(cfg.batch_size, generator)
        return batch.tokens.to(device), batch.targets.to(device)

    def loss(batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        inputs, outputs = batch
        value = F.cross_entropy(model(inputs).flatten(0, 1).float(), outputs.flatten())
        value.backward()
        return value.item()

    def evaluate(model) -> dict:
        point = measure_dynamics(model, tokens, targets, strategies, score_prompts=cfg.score_prompts)
        return point.to_dict()

    return Plan(
        config,
        model,
        make_natural_optimizer(model, config),
        generator,
        sample=sample,
        loss=loss,
        evaluate=evaluate,
        tokens_per_step=cfg.batch_size * config.task.seq_len,
        shown={"held_out": "loss", "in_context": "in_context_score"},
    )
