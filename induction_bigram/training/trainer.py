"""The one training loop, for every model family: fresh batches every step, evaluations, checkpoints.

:func:`train` trains the run a config configures, whichever family it belongs to (a
:class:`~induction_bigram.config.RunConfig`: the paper's circuit model,
:mod:`~induction_bigram.training.loop`; a :class:`~induction_bigram.config.standard.StandardConfig`:
a standard TL model on text, :mod:`~induction_bigram.training.standard`; a
:class:`~induction_bigram.config.markov.MarkovConfig`: the standard model on Markov chains,
:mod:`~induction_bigram.training.markov`). A family describes one run as a
:class:`Plan`: the model, its optimiser, a sampler that draws a training batch from the data
generator, a loss that turns a batch into gradients, and an evaluator that measures the model.
:func:`train_run` does everything else, the same for every family: the run folder (held with
:func:`~induction_bigram.files.claim_folder`: ``config.json``, one ``metrics.jsonl`` record per
evaluation, ``checkpoint.pt`` every ``train.checkpoint_every`` steps and at the end, in the one
checkpoint format of :mod:`~induction_bigram.training.checkpoint`), ``resume`` (only
``train.steps`` and what the config's ``recipe()`` leaves out may change; on CPU the result is
bitwise that of a run never interrupted), the divergence rule (a loss or trained weight that is
NaN or infinite stops the run with :class:`TrainingDivergedError`, naming the last good
checkpoint, which stays), timing and the progress bar.

Adding a family (another task, or another kind of TL model):

1. its config: a :class:`~induction_bigram.config.base.Config` with a ``recipe()`` and a ``train``
   section holding ``steps``, ``eval_every``, ``checkpoint_every``, ``seed`` and ``device``;
2. a :data:`Setup`: ``setup(config, None)`` builds the fresh, seeded run and ``setup(config,
   checkpoint)`` the resumed one (the checkpoint's model, a new optimiser and an unseeded
   generator: the loop restores their states), each returning a :class:`Plan` whose sampler,
   loss and evaluator are the family's own;
3. one :class:`~induction_bigram.training.checkpoint.Family` entry in
   :data:`~induction_bigram.training.checkpoint.FAMILIES`: its name, the command that trains it,
   its config class, how a checkpoint's config rebuilds the (untrained) model, and
   ``setup(track)``, its :data:`Setup` with the ``track`` measurements added. :func:`train`
   and :func:`train_or_load` then train it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

from induction_bigram.config.base import Config
from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import ConfigError, TrainingDivergedError
from induction_bigram.files import append_text, atomic_write_text, claim_folder
from induction_bigram.model import Model, trainable_parameters
from induction_bigram.training.checkpoint import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    Checkpoint,
    MetricsRecord,
    family_of,
    load_checkpoint,
    metrics_line,
    read_metrics,
    restore_optimizer,
    resume_differences,
    save_checkpoint,
)

Sampler = Callable[[torch.Generator], Any]
"""Draws one training batch from the data generator (whose state every checkpoint keeps)."""
Loss = Callable[[Any], float]
"""Computes a batch's training loss and accumulates its gradients (calls ``backward``, in
micro-batches if it likes); returns the loss's value."""
Evaluator = Callable[[Model], MetricsRecord]
"""Measures the model (in eval mode, without gradients) for a metrics record."""
OPTIMISER_KEYS = ("optimizer", "lr", "momentum", "weight_decay", "beta1", "beta2")
"""The ``train`` keys a divergence message names, those of them the family's config has."""


@dataclass
class Plan:
    """One run as its family sets it up; :func:`train_run` runs it."""

    config: Any
    """The run's config, filled in from its data (what ``config.json`` and the checkpoint hold)."""
    model: Model
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    sample: Sampler
    loss: Loss
    evaluate: Evaluator
    tokens_per_step: int
    stats: BigramStats | None = None
    """Corpus statistics the checkpoint keeps beside the config (the circuit family's)."""
    track: Sequence[Callable[[Model], dict[str, Any]]] = ()
    """Measurements added to each record after the evaluator's (later stages plug in here)."""
    note: str = ""
    """One line on stderr when training starts (which loss runs)."""
    shown: Mapping[str, str] = field(default_factory=dict)
    """Progress-bar label -> record key."""


Setup = Callable[[Any, Checkpoint | None], Plan]
"""A family's part: the :class:`Plan` of a fresh run of a config (``None``), or of its resumption
from a checkpoint (module doc)."""


@dataclass
class TrainResult:
    """What training returns: the trained model and its history."""

    model: Model
    config: Any
    stats: BigramStats | None = None
    """The corpus statistics of a circuit run (``None`` for the other families)."""
    metrics: list[MetricsRecord] = field(default_factory=list)
    run_dir: Path | None = None

    @property
    def final(self) -> MetricsRecord:
        """The last evaluation record."""
        return self.metrics[-1]


def train_run(
    setup: Setup,
    config: Config,
    run_dir: str | Path | None,
    *,
    existing: Literal["refuse", "resume", "overwrite", "reuse"] = "refuse",
    progress: bool = True,
    on_eval: Callable[[MetricsRecord], None] | None = None,
) -> TrainResult:
    """Train the run ``setup`` plans for ``config`` in ``run_dir`` (``None``: nothing on disk).

    ``existing`` says what to do with a run folder that holds a run of ours: refuse it, resume
    it, start it afresh (``"overwrite"``), or ``"reuse"`` it (a finished run of the same config
    is returned as it is, an unfinished one resumed, a folder without a checkpoint trained
    afresh). ``train.steps = 0`` evaluates and saves the untrained model, so it loads and resumes.
    """
    if run_dir is None:
        if existing == "resume":
            raise ConfigError("resume needs a run folder")
        return _fresh(setup, config, None, on_eval).run(progress)
    with claim_folder(run_dir, "run", existing="resume" if existing == "reuse" else existing) as run_dir:
        if existing in ("refuse", "overwrite") or (existing == "reuse" and not (run_dir / CHECKPOINT).exists()):
            return _fresh(setup, config, run_dir, on_eval).run(progress)
        ckpt = load_checkpoint(run_dir, config.train.device, family_of(type(config)).name)
        plan = setup(config, ckpt)
        finished = ckpt.step == plan.config.train.steps == ckpt.config.train.steps
        if existing == "reuse" and finished and not resume_differences(ckpt.config, plan.config):
            plan.model.eval()  # finished: nothing to train
            return TrainResult(plan.model, ckpt.config, ckpt.stats, read_metrics(run_dir), run_dir)
        return _resumed(plan, ckpt, run_dir, on_eval).run(progress)


def train(
    config: Config,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_eval: Callable[[MetricsRecord], None] | None = None,
    track: Sequence[Callable[..., dict[str, Any]]] = (),
) -> TrainResult:
    """Train the run ``config`` configures, in its model family (module doc).

    Args:
        config: the run; what its data fixes (the circuit model's ``model.d_vocab``, the
            standard models' ``model.vocab``) is filled in. A standard run's ``data.text`` must
            name a text file.
        run_dir: where config, metrics and checkpoints go (``None``: keep nothing on disk).
            It must be missing, empty, or a run folder of this package (then ``resume`` or
            ``overwrite``); another process writing it is an error naming its PID.
        resume: continue from ``run_dir/checkpoint.pt``. Only ``train.steps`` (and what the
            config's ``recipe()`` leaves out, such as ``train.fused_loss``) may differ from the
            checkpoint's config; on CPU the result is bitwise that of a run never interrupted.
        overwrite: start afresh in a run folder of ours, replacing its config, metrics and
            checkpoint (nothing else in the folder is touched).
        progress: show a progress bar.
        on_eval: called with each metrics record as it is written.
        track: measurements added to each metrics record, each called as its family calls
            them: ``tracker(model, task)`` for the circuit model (``track=[ib.track_memories]``
            records the three memories' recall as they form), ``tracker(model, config)`` for
            the standard model (:func:`~induction_bigram.anymodel.track_head_scores`) and
            ``tracker(model, config, held_out)`` for the markov model
            (:func:`~induction_bigram.dynamics.track_dynamics`).

    ``train.steps = 0`` is allowed: the untrained model is evaluated and saved as a loadable
    step-0 checkpoint (so ``evaluate`` and ``resume`` with more steps work on it).

    Raises:
        TrainingDivergedError: the loss or a trained weight became NaN or infinite (the last
            good checkpoint is kept).
    """
    setup = family_of(type(config)).setup(track)
    existing = folder_mode(resume, overwrite)
    return train_run(setup, config, run_dir, existing=existing, progress=progress, on_eval=on_eval)


def train_or_load(
    config: Config,
    run_dir: str | Path | None,
    *,
    progress: bool = True,
    track: Sequence[Callable[..., dict[str, Any]]] = (),
) -> TrainResult:
    """The finished run of ``config`` in ``run_dir`` if there is one; else it resumes an
    unfinished run there (refusing a different config) or trains afresh (the studies' runs)."""
    return train_run(family_of(type(config)).setup(track), config, run_dir, existing="reuse", progress=progress)


def folder_mode(resume: bool, overwrite: bool) -> Literal["refuse", "resume", "overwrite"]:
    """``train_run``'s ``existing`` for a command's ``resume`` and ``overwrite`` flags."""
    if resume and overwrite:
        raise ConfigError("resume and overwrite exclude each other")
    return "resume" if resume else "overwrite" if overwrite else "refuse"


def take_step(optimizer: torch.optim.Optimizer, loss: Loss, batch: Any) -> float:
    """One optimiser step on ``batch``; returns its training loss."""
    optimizer.zero_grad(set_to_none=True)
    value = loss(batch)
    optimizer.step()
    return value


def _fresh(setup: Setup, config: Config, run_dir: Path | None, on_eval) -> _Loop:
    plan = setup(config, None)
    if run_dir is not None:
        (run_dir / CHECKPOINT).unlink(missing_ok=True)  # ours (claim_folder checked); a new run starts
        atomic_write_text(run_dir / CONFIG, plan.config.to_json() + "\n")
        atomic_write_text(run_dir / METRICS, "")
    loop = _Loop(plan, run_dir, on_eval, start=0, elapsed=0.0)
    loop.record(0, train_loss=None, train_seconds=0.0, tokens=0)
    if plan.config.train.steps == 0:  # the untrained model is the result: save it, so it loads
        loop.save(0)
    return loop


def _resumed(plan: Plan, ckpt: Checkpoint, run_dir: Path, on_eval) -> _Loop:
    requested = plan.config
    diff = resume_differences(ckpt.config, requested)
    if diff:
        raise ConfigError(f"cannot resume {run_dir} with a different config ({diff})")
    if requested.train.steps < ckpt.step:
        raise ConfigError(
            f"cannot resume {run_dir} with train.steps={requested.train.steps}: it has already run {ckpt.step} steps"
        )
    restore_optimizer(plan.model, plan.optimizer, ckpt.optimizer_state, run_dir)
    plan.generator.set_state(ckpt.data_rng_state)
    kept = [line for line in read_metrics(run_dir) if line["step"] <= ckpt.step]
    atomic_write_text(run_dir / CONFIG, requested.to_json() + "\n")
    atomic_write_text(run_dir / METRICS, "".join(metrics_line(r) for r in kept))
    loop = _Loop(plan, run_dir, on_eval, start=ckpt.step, elapsed=ckpt.elapsed_seconds)
    loop.metrics, loop.saved_step = kept, ckpt.step
    return loop


class _Loop:
    """State shared by the steps of one training run."""

    def __init__(self, plan: Plan, run_dir: Path | None, on_eval, start: int, elapsed: float):
        self.plan, self.run_dir, self.on_eval, self.start = plan, run_dir, on_eval, start
        self.metrics: list[MetricsRecord] = []
        self.saved_step: int | None = None  # the step of the last checkpoint in run_dir
        self.clock_start = time.perf_counter() - elapsed  # wall clock, evaluation included

    def run(self, progress: bool) -> TrainResult:
        plan, cfg = self.plan, self.plan.config.train
        window_seconds, window_tokens = 0.0, 0
        if progress and self.start < cfg.steps and plan.note:
            print(plan.note, file=sys.stderr)  # stdout may carry --json output
        command = family_of(type(plan.config)).command
        bar = tqdm(total=cfg.steps, initial=self.start, disable=not progress, desc=command, unit="step")
        try:
            plan.model.train()
            for step in range(self.start + 1, cfg.steps + 1):
                began = time.perf_counter()
                loss = take_step(plan.optimizer, plan.loss, plan.sample(plan.generator))
                window_seconds += time.perf_counter() - began
                self.check_finite(step, loss)
                window_tokens += plan.tokens_per_step
                bar.update(1)
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    record = self.record(step, train_loss=loss, train_seconds=window_seconds, tokens=window_tokens)
                    bar.set_postfix({label: f"{record[key]:.3f}" for label, key in plan.shown.items() if key in record})
                    window_seconds, window_tokens = 0.0, 0
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    self.save(step)
        finally:
            bar.close()
        plan.model.eval()
        return TrainResult(plan.model, plan.config, plan.stats, self.metrics, self.run_dir)

    def save(self, step: int) -> None:
        """Write the checkpoint of ``step`` (nothing without a run folder)."""
        if self.run_dir is None:
            return
        plan = self.plan
        save_checkpoint(
            self.run_dir / CHECKPOINT,
            model=plan.model,
            config=plan.config,
            stats=plan.stats,
            step=step,
            elapsed_seconds=self.elapsed_seconds(),
            optimizer=plan.optimizer,
            data_generator=plan.generator,
        )
        self.saved_step = step

    def check_finite(self, step: int, loss: float) -> None:
        """Stop the run if the loss of ``step`` or a trained weight after it is NaN or infinite."""
        bad = None if math.isfinite(loss) else f"the training loss is {loss}"
        if bad is None:
            for name, param in trainable_parameters(self.plan.model):
                if not bool(torch.isfinite(param).all()):
                    bad = f"{name} holds non-finite values"
                    break
        if bad is None:
            return
        cfg = self.plan.config.train
        settings = ", ".join(f"train.{key}={getattr(cfg, key)}" for key in OPTIMISER_KEYS if hasattr(cfg, key))
        kept = (
            f"the last good checkpoint (step {self.saved_step}) is kept in {self.run_dir}"
            if self.run_dir is not None and self.saved_step is not None
            else "no checkpoint was written"
        )
        raise TrainingDivergedError(f"training diverged at step {step}: {bad} ({settings}); {kept}")

    def elapsed_seconds(self) -> float:
        return time.perf_counter() - self.clock_start

    def record(self, step: int, *, train_loss: float | None, train_seconds: float, tokens: int) -> MetricsRecord:
        """Evaluate, append to metrics.jsonl, call ``on_eval``. ``train_loss`` is the loss of the
        last training batch (``None`` before the first)."""
        plan = self.plan
        was_training = plan.model.training
        plan.model.eval()
        with torch.no_grad():
            measured = plan.evaluate(plan.model)
            tracked = [tracker(plan.model) for tracker in plan.track]
        plan.model.train(was_training)
        record: MetricsRecord = {
            "step": step,
            "train_loss": train_loss,
            **measured,
            "tokens_per_second": tokens / train_seconds if train_seconds > 0 else 0.0,
            "elapsed_seconds": self.elapsed_seconds(),
        }
        for extra in tracked:
            record.update(extra)
        self.metrics.append(record)
        if self.run_dir is not None:
            append_text(self.run_dir / METRICS, metrics_line(record))
        if self.on_eval is not None:
            self.on_eval(record)
        return record
