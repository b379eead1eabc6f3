"""Training the ``markov`` model: a standard TL model on in-context Markov chains, AdamW; the
markov family of the one training loop (:mod:`~induction_bigram.training.trainer`).

``train(config, run_dir)`` (:func:`~induction_bigram.training.trainer.train`, for a
:class:`~induction_bigram.config.markov.MarkovConfig`) writes ``run_dir/config.json`` (with ``model.vocab`` filled in
from the corpus statistics), appends a record per evaluation to ``run_dir/metrics.jsonl`` and
saves ``run_dir/checkpoint.pt`` every ``checkpoint_every`` steps and at the end.

The family's part: fresh chains every step from the data generator
(:class:`~induction_bigram.data.markov.MarkovTask`: each sequence its own transition matrix
drawn around the corpus bigram), the next-token loss at every position (trained through
:class:`~induction_bigram.training.standard_loss.StandardFusedLoss` where it computes the model's
maths, i.e. without an MLP; through the model's forward otherwise), and the held-out loss
on one fixed batch drawn from ``train.eval_seed`` (a generator no training batch comes from).
The ``track`` callables measure more on that batch: the command line adds
:func:`induction_bigram.dynamics.track_dynamics` (from a later stage, which training does not
import), whose :class:`~induction_bigram.dynamics.DynamicsPoint` fields (``loss``, ``kl``,
``excess_loss``, ``excess_ratio``, ``in_context_score``, the best heads) then sit at each
record's top level, where :func:`~induction_bigram.dynamics.run_dynamics` reads them back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from induction_bigram.config.markov import MarkovConfig
from induction_bigram.data.markov import MarkovBatch, MarkovTask
from induction_bigram.model import Model, build_standard_model
from induction_bigram.training.checkpoint import Checkpoint, MetricsRecord
from induction_bigram.training.standard import make_standard_optimizer
from induction_bigram.training.standard_loss import StandardFusedLoss
from induction_bigram.training.trainer import Plan, Setup

MarkovTracker = Callable[[Model, MarkovConfig, MarkovBatch], dict[str, Any]]
"""A measurement on the held-out batch added to every metrics record (e.g. the dynamics point)."""


def held_out_batch(config: MarkovConfig, task: MarkovTask) -> MarkovBatch:
    """The fixed evaluation batch: ``train.eval_batch`` chains from ``train.eval_seed``."""
    return task.sample(config.train.eval_batch, torch.Generator().manual_seed(config.train.eval_seed))


def markov_setup(track: Sequence[MarkovTracker]) -> Setup:
    """The markov family's :data:`~induction_bigram.training.trainer.Setup` (its entry in
    :data:`~induction_bigram.training.checkpoint.FAMILIES`)."""

    def setup(config: MarkovConfig, ckpt: Checkpoint | None) -> Plan:
        # chains are drawn on the CPU, from the CPU generator the checkpoint keeps, then moved
        task = MarkovTask.from_config(config.task)
        if ckpt is None:
            config = config.with_vocab("".join(task.stats.vocab))
            model = build_standard_model(config.model, config.train.device)
            generator = torch.Generator().manual_seed(config.train.seed)
        else:  # the loop restores the optimiser's and the generator's states
            config = config.with_vocab(ckpt.config.model.vocab).with_vocab("".join(task.stats.vocab))
            model, generator = ckpt.model, torch.Generator()
        cfg = config.train
        device = next(model.parameters()).device
        cpu_batch = held_out_batch(config, task)
        held_out = MarkovBatch(cpu_batch.tokens.to(device), cpu_batch.targets.to(device), cpu_batch.transitions)

        fused = StandardFusedLoss(model) if config.model.d_mlp is None else None

        def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            batch = task.sample(cfg.batch_size, generator)
            return batch.tokens.to(device), batch.targets.to(device)

        def loss(batch: tuple[torch.Tensor, torch.Tensor]) -> float:
            tokens, targets = batch
            if fused is None:
                value = _next_token_loss(model, tokens, targets)
            else:  # a window of T + 1 characters: the targets are the tokens shifted by one
                value = fused(torch.cat([tokens, targets[:, -1:]], 1))
            value.backward()
            return value.item()

        def evaluate(model: Model) -> MetricsRecord:
            return {"held_out_loss": _next_token_loss(model, held_out.tokens, held_out.targets).item()}

        return Plan(
            config,
            model,
            make_standard_optimizer(model, config),
            generator,
            sample=sample,
            loss=loss,
            evaluate=evaluate,
            tokens_per_step=cfg.batch_size * config.task.seq_len,
            track=[lambda model, tracker=tracker: tracker(model, config, held_out) for tracker in track],
            shown={"held_out": "held_out_loss", "in_context": "in_context_score"},
            note="fused loss on" if fused is not None else "fused loss off (it covers no MLP)",
        )

    return setup


def _next_token_loss(model: Model, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(tokens).flatten(0, 1).float(), targets.flatten())
