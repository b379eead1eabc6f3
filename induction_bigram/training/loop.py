"""Training the circuit model (docs/THEORY.md section 2) on the trigger task: the circuit family
of the one training loop (:mod:`~induction_bigram.training.trainer`).

``train(config, run_dir)`` (:func:`~induction_bigram.training.trainer.train`, for a
:class:`~induction_bigram.config.RunConfig`) writes ``run_dir/config.json``, appends one JSON
object per evaluation to ``run_dir/metrics.jsonl`` and saves ``run_dir/checkpoint.pt`` every
``checkpoint_every`` steps and at the end. ``train(..., resume=True)`` continues from the
checkpoint; on CPU the result is bitwise the same as a run that was never interrupted.

The family's part: fresh trigger-task batches from the data generator, the in-context loss
(fused where it applies, :mod:`~induction_bigram.training.fused`) in micro-batches, and the
scores of a fixed evaluation batch; its optimiser has one parameter group per trained matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from induction_bigram.config import ModelConfig, RunConfig, TrainConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TaskBatch, TriggerTask
from induction_bigram.model import (
    Model,
    build_model,
    model_config,
    resolve_device,
    trainable_names,
    trainable_parameters,
)
from induction_bigram.training.checkpoint import Checkpoint, MetricsRecord
from induction_bigram.training.fused import BatchLoss, training_loss
from induction_bigram.training.metrics import batch_logits, loss_mask, score_logits
from induction_bigram.training.trainer import Plan, Setup, take_step

Tracker = Callable[[Model, TriggerTask], dict[str, Any]]
"""A measurement taken at every evaluation, whose keys join the metrics record (e.g.
:func:`induction_bigram.memories.track_memories`): later stages plug into training this way,
so training imports none of them."""


def reference_code_scales(cfg: ModelConfig) -> dict[str, float]:
    """For each trained parameter, the factor c with W = c W' between this model and the
    reference code's (Bietti et al.), whose token and positional embeddings have N(0, 1)
    entries, sqrt(d) times docs/THEORY.md's N(0, 1/d), while its unembedding has our scale.

    The residual stream there is x' = sqrt(d) x, so the same function needs
    W_K = d W_K' (the score x^T W_K x is bilinear in the stream) and
    W_O^L = sqrt(d) W_O^L', W_F = sqrt(d) W_F' (their output is read by the unembedding, their
    input is the stream). For W = c W', a step on W' of size lr * grad_W' = lr * c * grad_W is a
    step of lr * c^2 * grad_W on W: SGD there is SGD here with learning rate c^2 lr (AdamW,
    invariant to gradient scale, with c lr). What the mapping leaves unmatched: the direct path
    (the unembedding reading the embeddings and layer 1's output) is sqrt(d) louder there, an
    FFN also reads layer L's output, and the reference code's frozen random matrices differ
    from ours by O(1) factors (nn.Linear's default init). Parameters the reference code does
    not have (RPE bias, rotary q/k biases) get c = 1.
    """
    last = cfg.n_layers - 1
    root_d = math.sqrt(cfg.d_model)
    scales = dict.fromkeys(trainable_names(cfg), 1.0)
    for layer in range(cfg.n_layers):
        scales[f"blocks.{layer}.attn.W_K"] = float(cfg.d_model)
    scales[f"blocks.{last}.attn.W_O"] = root_d
    if cfg.ffn != "none":
        scales[f"blocks.{last}.mlp.W_out"] = root_d
    return scales


def make_optimizer(model: Model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over the trainable parameters only, one parameter group per
    matrix with its learning rate and weight decay (``cfg.lr_scaling``)."""
    multipliers = learning_rate_multipliers(model, cfg)
    groups = [
        {"params": [p], "lr": cfg.lr * multipliers[name], "weight_decay": cfg.weight_decay / multipliers[name]}
        for name, p in trainable_parameters(model)
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def learning_rate_multipliers(model: Model, cfg: TrainConfig) -> dict[str, float]:
    """Learning-rate multiplier per trained parameter (TL name): 1 under ``lr_scaling="none"``;
    c^2 for SGD and c for AdamW under ``"reference-code"``, with c from
    :func:`reference_code_scales`."""
    scales = reference_code_scales(model_config(model))
    power = {"none": 0, "reference-code": 2 if cfg.optimizer == "sgd" else 1}[cfg.lr_scaling]
    return {name: scales[name] ** power for name, _ in trainable_parameters(model)}


def optimizer_step(
    loss_of: BatchLoss,
    optimizer: torch.optim.Optimizer,
    batch: TaskBatch,
    cfg: TrainConfig,
) -> float:
    """One optimiser step on ``batch`` (the loop's :func:`~induction_bigram.training.trainer.take_step`
    with :func:`batch_backward`); returns the training loss."""
    return take_step(optimizer, lambda b: batch_backward(loss_of, b, cfg), batch)


def batch_backward(loss_of: BatchLoss, batch: TaskBatch, cfg: TrainConfig) -> float:
    """The family's loss: ``batch``'s training loss, its gradients accumulated; returns its value.

    The batch goes through ``loss_of`` (:func:`~induction_bigram.training.fused.logits_loss` of
    the model or its compiled version, or a :class:`~induction_bigram.training.fused.FusedLoss`)
    in micro-batches of ``cfg.micro_batch_size`` whose gradients add up to the whole batch's:
    each micro-batch's summed loss is divided by the whole batch's target count.
    """
    mask = loss_mask(batch, cfg.loss)
    total = mask.sum().clamp_min(1)
    size = cfg.micro_batch_size or cfg.batch_size
    loss_sum = 0.0
    for tokens, targets, selected in zip(batch.tokens.split(size), batch.targets.split(size), mask.split(size)):
        loss = loss_of(tokens, targets, selected, total)
        loss.backward()
        loss_sum += loss.item()
    return loss_sum


def resolve_corpus(config: RunConfig) -> tuple[RunConfig, BigramStats]:
    """The run's corpus statistics, and ``config`` with ``model.d_vocab`` taken from them."""
    stats = BigramStats.from_corpus(config.task.corpus)
    return config.with_vocab(stats.n_tokens), stats


def circuit_setup(track: Sequence[Tracker]) -> Setup:
    """The circuit family's :data:`~induction_bigram.training.trainer.Setup` (its entry in
    :data:`~induction_bigram.training.checkpoint.FAMILIES`)."""

    def setup(config: RunConfig, ckpt: Checkpoint | None) -> Plan:
        if ckpt is None:
            config, stats = resolve_corpus(config)
            device = resolve_device(config.train.device)
            model = build_model(config.model, device, vocab=stats.vocab)
            generator = torch.Generator(device=device).manual_seed(config.train.seed)
        else:  # the loop restores the optimiser's and the generator's states
            config, stats, model = config.with_vocab(ckpt.stats.n_tokens), ckpt.stats, ckpt.model
            device = next(model.parameters()).device
            generator = torch.Generator(device=device)
        cfg = config.train
        optimizer = make_optimizer(model, cfg)
        task = TriggerTask(stats, config.task, device)
        eval_batch = task.sample(cfg.eval_batch_size, torch.Generator(device=device).manual_seed(cfg.eval_seed))
        loss_of, note = training_loss(model, config, device)
        return Plan(
            config,
            model,
            optimizer,
            generator,
            sample=lambda generator: task.sample(cfg.batch_size, generator),
            loss=lambda batch: batch_backward(loss_of, batch, cfg),
            evaluate=lambda model: _scores(model, eval_batch),
            tokens_per_step=cfg.batch_size * config.task.seq_len,
            stats=stats,
            track=[lambda model, tracker=tracker: tracker(model, task) for tracker in track],
            note=note,
            shown={"loss": "train_loss", "icl_acc": "in_context_accuracy"},
        )

    return setup


def _scores(model: Model, batch: TaskBatch) -> MetricsRecord:
    scores = score_logits(batch_logits(model, batch.tokens), batch)
    return {
        "in_context_accuracy": scores.in_context_accuracy,
        "in_context_loss": scores.in_context_loss,
        "bigram_loss": scores.bigram_loss,
    }
