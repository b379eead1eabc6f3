"""The training loop: fresh batches every step, a fixed evaluation batch, metrics, checkpoints.

``train(config, run_dir)`` writes ``run_dir/config.json``, appends one JSON object per
evaluation to ``run_dir/metrics.jsonl`` and saves ``run_dir/checkpoint.pt`` every
``checkpoint_every`` steps and at the end. ``train(..., resume=True)`` continues from the
checkpoint; on CPU the result is bitwise the same as a run that was never interrupted.

The run folder is held with :func:`~induction_bigram.files.claim_folder` while training: a
second writer is refused, and a folder that is not empty and not a run of ours is never
written. A loss or weight that turns NaN or infinite stops the run with
:class:`TrainingDivergedError`; the last checkpoint saved before it stays.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from induction_bigram.config import ModelConfig, RunConfig, TrainConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TaskBatch, TriggerTask
from induction_bigram.errors import ConfigError, TrainingDivergedError
from induction_bigram.files import append_text, atomic_write_text, claim_folder
from induction_bigram.model import (
    Model,
    build_model,
    model_config,
    resolve_device,
    trainable_names,
    trainable_parameters,
)
from induction_bigram.training.checkpoint import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    MetricsRecord,
    config_differences,
    load_checkpoint,
    metrics_line,
    read_metrics,
    restore_optimizer,
    save_checkpoint,
)
from induction_bigram.training.fused import BatchLoss, training_loss
from induction_bigram.training.metrics import batch_logits, loss_mask, score_logits

Tracker = Callable[[Model, TriggerTask], dict[str, Any]]
"""A measurement taken at every evaluation, whose keys join the metrics record (e.g.
:func:`induction_bigram.memories.track_memories`): later stages plug into training this way,
so training imports none of them."""


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model and its history."""

    model: Model
    config: RunConfig
    stats: BigramStats
    metrics: list[MetricsRecord] = field(default_factory=list)
    run_dir: Path | None = None

    @property
    def final(self) -> MetricsRecord:
        """The last evaluation record."""
        return self.metrics[-1]


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
    """One optimiser step on ``batch``; returns the training loss.

    The batch goes through ``loss_of`` (:func:`~induction_bigram.training.fused.logits_loss` of
    the model or its compiled version, or a :class:`~induction_bigram.training.fused.FusedLoss`)
    in micro-batches of ``cfg.micro_batch_size`` whose gradients add up to the whole batch's:
    each micro-batch's summed loss is divided by the whole batch's target count.
    """
    mask = loss_mask(batch, cfg.loss)
    total = mask.sum().clamp_min(1)
    size = cfg.micro_batch_size or cfg.batch_size
    optimizer.zero_grad(set_to_none=True)
    loss_sum = 0.0
    for tokens, targets, selected in zip(batch.tokens.split(size), batch.targets.split(size), mask.split(size)):
        loss = loss_of(tokens, targets, selected, total)
        loss.backward()
        loss_sum += loss.item()
    optimizer.step()
    return loss_sum


def train(
    config: RunConfig,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_eval: Callable[[MetricsRecord], None] | None = None,
    track: Sequence[Tracker] = (),
) -> TrainResult:
    """Train a model as ``config`` says.

    Args:
        config: the run; ``model.d_vocab`` is filled from the corpus.
        run_dir: where config, metrics and checkpoints go (``None``: keep nothing on disk).
            It must be missing, empty, or a run folder of this package (then ``resume`` or
            ``overwrite``); another process writing it is an error naming its PID.
        resume: continue from ``run_dir/checkpoint.pt``. Only ``train.steps`` may differ from
            the checkpoint's config (to train longer).
        overwrite: start afresh in a run folder of ours, replacing its config, metrics and
            checkpoint (nothing else in the folder is touched).
        progress: show a progress bar.
        on_eval: called with each metrics record as it is written.
        track: measurements added to each metrics record (``track=[ib.track_memories]``
            records the three memories' recall as they form).

    ``train.steps = 0`` is allowed: the untrained model is evaluated and saved as a loadable
    step-0 checkpoint (so ``evaluate`` and ``resume`` with more steps work on it).

    Raises:
        TrainingDivergedError: the loss or a trained weight became NaN or infinite (the last
            good checkpoint is kept).
    """
    if resume and overwrite:
        raise ConfigError("resume and overwrite exclude each other")
    if run_dir is None:
        if resume:
            raise ConfigError("resume needs a run folder")
        return _train_fresh(config, None, progress=progress, on_eval=on_eval, track=track)
    existing = "resume" if resume else "overwrite" if overwrite else "refuse"
    with claim_folder(run_dir, "run", existing=existing) as run_dir:
        if resume:
            return _resume(config, run_dir, progress=progress, on_eval=on_eval, track=track)
        return _train_fresh(config, run_dir, progress=progress, on_eval=on_eval, track=track)


def resolve_corpus(config: RunConfig) -> tuple[RunConfig, BigramStats]:
    """The run's corpus statistics, and ``config`` with ``model.d_vocab`` taken from them."""
    stats = BigramStats.from_corpus(config.task.corpus)
    return config.with_vocab(stats.n_tokens), stats


def _train_fresh(
    config: RunConfig,
    run_dir: Path | None,
    *,
    progress: bool,
    on_eval: Callable[[MetricsRecord], None] | None,
    track: Sequence[Tracker],
) -> TrainResult:
    config, stats = resolve_corpus(config)
    device = resolve_device(config.train.device)
    model = build_model(config.model, device, vocab=stats.vocab)
    optimizer = make_optimizer(model, config.train)
    generator = torch.Generator(device=device).manual_seed(config.train.seed)
    if run_dir is not None:
        (run_dir / CHECKPOINT).unlink(missing_ok=True)  # ours (claim_folder checked); a new run starts
        atomic_write_text(run_dir / CONFIG, config.to_json() + "\n")
        atomic_write_text(run_dir / METRICS, "")
    loop = _Loop(config, stats, model, optimizer, generator, run_dir, on_eval, track)
    loop.record(0, train_loss=None, train_seconds=0.0, tokens=0)
    if config.train.steps == 0:  # the untrained model is the result: save it, so it loads
        loop.save(0)
    return loop.run(start=0, elapsed=0.0, progress=progress)


def train_or_load(
    config: RunConfig, run_dir: str | Path | None, *, progress: bool = True, track: Sequence[Tracker] = ()
) -> TrainResult:
    """The finished run of ``config`` in ``run_dir`` if there is one; else it resumes an
    unfinished run there (refusing a different config) or trains afresh."""
    if run_dir is None:
        return train(config, None, progress=progress, track=track)
    with claim_folder(run_dir, "run", existing="resume") as run_dir:
        if not (run_dir / CHECKPOINT).exists():  # new, or killed before its first checkpoint
            return _train_fresh(config, run_dir, progress=progress, on_eval=None, track=track)
        ckpt = load_checkpoint(run_dir, config.train.device)
        if ckpt.step < config.train.steps or ckpt.config.recipe() != config.with_vocab(ckpt.stats.n_tokens).recipe():
            return _resume(config, run_dir, progress=progress, on_eval=None, track=track)
        ckpt.model.eval()
        return TrainResult(ckpt.model, ckpt.config, ckpt.stats, read_metrics(run_dir), run_dir)


def _resume(
    config: RunConfig,
    run_dir: Path,
    *,
    progress: bool,
    on_eval: Callable[[MetricsRecord], None] | None,
    track: Sequence[Tracker],
) -> TrainResult:
    ckpt = load_checkpoint(run_dir, config.train.device)
    requested = config.with_vocab(ckpt.stats.n_tokens)
    saved = replace(ckpt.config, train=replace(ckpt.config.train, steps=requested.train.steps)).recipe()
    if saved != requested.recipe():
        diff = config_differences(saved.to_dict(), requested.recipe().to_dict())
        raise ConfigError(f"cannot resume {run_dir} with a different config ({diff})")
    if requested.train.steps < ckpt.step:
        raise ConfigError(
            f"cannot resume {run_dir} with train.steps={requested.train.steps}: it has already run {ckpt.step} steps"
        )
    model = ckpt.model
    optimizer = make_optimizer(model, requested.train)
    restore_optimizer(model, optimizer, ckpt.optimizer_state, run_dir)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.set_state(ckpt.data_rng_state)
    kept = [line for line in read_metrics(run_dir) if line["step"] <= ckpt.step]
    atomic_write_text(run_dir / CONFIG, requested.to_json() + "\n")
    atomic_write_text(run_dir / METRICS, "".join(metrics_line(r) for r in kept))
    loop = _Loop(requested, ckpt.stats, model, optimizer, generator, run_dir, on_eval, track)
    loop.metrics, loop.saved_step = kept, ckpt.step
    return loop.run(start=ckpt.step, elapsed=ckpt.elapsed_seconds, progress=progress)


class _Loop:
    """State shared by the steps of one training run."""

    def __init__(self, config, stats, model, optimizer, generator, run_dir, on_eval, track):
        self.config, self.stats, self.model = config, stats, model
        self.optimizer, self.generator, self.run_dir, self.on_eval = optimizer, generator, run_dir, on_eval
        self.track = tuple(track)
        device = generator.device
        self.task = TriggerTask(stats, config.task, device)
        cfg = config.train
        eval_generator = torch.Generator(device=device).manual_seed(cfg.eval_seed)
        self.eval_batch: TaskBatch = self.task.sample(cfg.eval_batch_size, eval_generator)
        self.loss_of, self.loss_note = training_loss(model, config, device)
        self.metrics: list[MetricsRecord] = []
        self.saved_step: int | None = None  # the step of the last checkpoint in run_dir
        self.clock_start = time.perf_counter()  # wall clock, evaluation included

    def run(self, start: int, elapsed: float, progress: bool) -> TrainResult:
        cfg = self.config.train
        self.clock_start = time.perf_counter() - elapsed
        tokens_per_step = cfg.batch_size * self.config.task.seq_len
        window_seconds, window_tokens = 0.0, 0
        if progress and start < cfg.steps:
            print(self.loss_note, file=sys.stderr)  # stdout may carry --json output
        bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc="train", unit="step")
        try:
            self.model.train()
            for step in range(start + 1, cfg.steps + 1):
                began = time.perf_counter()
                loss = self.step()
                window_seconds += time.perf_counter() - began
                self.check_finite(step, loss)
                window_tokens += tokens_per_step
                bar.update(1)
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    record = self.record(step, train_loss=loss, train_seconds=window_seconds, tokens=window_tokens)
                    bar.set_postfix(loss=f"{loss:.3f}", icl_acc=f"{record['in_context_accuracy']:.3f}")
                    window_seconds, window_tokens = 0.0, 0
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    self.save(step)
        finally:
            bar.close()
        self.model.eval()
        return TrainResult(self.model, self.config, self.stats, self.metrics, self.run_dir)

    def save(self, step: int) -> None:
        """Write the checkpoint of ``step`` (nothing without a run folder)."""
        if self.run_dir is None:
            return
        save_checkpoint(
            self.run_dir / CHECKPOINT,
            model=self.model,
            config=self.config,
            stats=self.stats,
            step=step,
            elapsed_seconds=self.elapsed_seconds(),
            optimizer=self.optimizer,
            data_generator=self.generator,
        )
        self.saved_step = step

    def check_finite(self, step: int, loss: float) -> None:
        """Stop the run if the loss of ``step`` or a trained weight after it is NaN or infinite."""
        bad = None if math.isfinite(loss) else f"the training loss is {loss}"
        if bad is None:
            for name, param in trainable_parameters(self.model):
                if not bool(torch.isfinite(param).all()):
                    bad = f"{name} holds non-finite values"
                    break
        if bad is None:
            return
        cfg = self.config.train
        kept = (
            f"the last good checkpoint (step {self.saved_step}) is kept in {self.run_dir}"
            if self.run_dir is not None and self.saved_step is not None
            else "no checkpoint was written"
        )
        raise TrainingDivergedError(
            f"training diverged at step {step}: {bad} (train.optimizer={cfg.optimizer}, train.lr={cfg.lr}, "
            f"train.momentum={cfg.momentum}, train.weight_decay={cfg.weight_decay}); {kept}"
        )

    def elapsed_seconds(self) -> float:
        return time.perf_counter() - self.clock_start

    def step(self) -> float:
        batch = self.task.sample(self.config.train.batch_size, self.generator)
        return optimizer_step(self.loss_of, self.optimizer, batch, self.config.train)

    def record(self, step: int, *, train_loss: float | None, train_seconds: float, tokens: int) -> MetricsRecord:
        """Evaluate on the fixed batch, append to metrics.jsonl, call ``on_eval``.

        ``train_loss`` is the loss of the last training batch (``None`` before the first).
        """
        was_training = self.model.training
        self.model.eval()
        scores = score_logits(batch_logits(self.model, self.eval_batch.tokens), self.eval_batch)
        self.model.train(was_training)
        record: MetricsRecord = {
            "step": step,
            "train_loss": train_loss,
            "in_context_accuracy": scores.in_context_accuracy,
            "in_context_loss": scores.in_context_loss,
            "bigram_loss": scores.bigram_loss,
            "tokens_per_second": tokens / train_seconds if train_seconds > 0 else 0.0,
            "elapsed_seconds": self.elapsed_seconds(),
        }
        for tracker in self.track:
            record.update(tracker(self.model, self.task))
        self.metrics.append(record)
        if self.run_dir is not None:
            append_text(self.run_dir / METRICS, metrics_line(record))
        if self.on_eval is not None:
            self.on_eval(record)
        return record
