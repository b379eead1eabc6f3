"""Training the ``natural`` model: next-character prediction on a text file, AdamW.

``train_natural(config, run_dir)`` writes ``run_dir/config.json`` (with ``model.vocab`` filled
in from the text), appends a record per evaluation to ``run_dir/metrics.jsonl`` (train loss,
held-out loss, plus whatever the ``track`` callables measure: the command line adds
:func:`induction_bigram.anymodel.track_head_scores`, the best induction and previous-token
heads, from a later stage that training does not import) and saves ``run_dir/checkpoint.pt``
every ``checkpoint_every`` steps and at the end. The folder is a run folder of the package
(:func:`~induction_bigram.files.claim_folder` with kind ``"run"``, so ``--resume``/``--overwrite``
behave as for ``train``); its checkpoint has its own format, which :func:`load_natural` reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm import tqdm

from induction_bigram.config.natural import NaturalConfig
from induction_bigram.data.text import TextWindows, encode_text, read_text, text_vocab
from induction_bigram.errors import CheckpointError, ConfigError, InductionBigramError, TrainingDivergedError
from induction_bigram.files import append_text, atomic_write_text, atomic_write_with, claim_folder
from induction_bigram.model import (
    Model,
    build_natural_model,
    load_weights,
    portable_optimizer_state,
    portable_state_dict,
    resolve_device,
)
from induction_bigram.training.checkpoint import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    MetricsRecord,
    config_differences,
    metrics_line,
    read_metrics,
    restore_optimizer,
)
from induction_bigram.training.natural_loss import NaturalFusedLoss, forward_loss, next_character_loss

FORMAT = "induction-bigram-natural-checkpoint"
NaturalTracker = Callable[[Model, NaturalConfig], dict[str, Any]]
"""A measurement added to every metrics record (e.g. the induction score)."""


@dataclass
class NaturalResult:
    """What :func:`train_natural` returns: the trained model and its history."""

    model: Model
    config: NaturalConfig
    metrics: list[MetricsRecord] = field(default_factory=list)
    run_dir: Path | None = None

    @property
    def final(self) -> MetricsRecord:
        return self.metrics[-1]


def resolve_text(config: NaturalConfig) -> tuple[NaturalConfig, TextWindows]:
    """Read and encode the text; ``config`` with ``model.vocab`` taken from it if unset, and the
    text's absolute path and content hash (``data.sha256``)."""
    text = read_text(config.data.text)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    data = dataclasses.replace(config.data, text=str(Path(config.data.text).expanduser().resolve()), sha256=digest)
    config = dataclasses.replace(config, data=data)
    config = config.with_vocab(text_vocab(text) if config.model.vocab is None else config.model.vocab)
    ids = encode_text(text, config.model.vocab)
    return config, TextWindows(ids, config.model.n_ctx, config.data.held_out_fraction)


def make_natural_optimizer(model: Model, config: NaturalConfig) -> torch.optim.Optimizer:
    cfg = config.train
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def train_natural(
    config: NaturalConfig,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    track: Sequence[NaturalTracker] = (),
) -> NaturalResult:
    """Train the natural model as ``config`` says (``data.text`` must name a text file).

    ``resume`` continues ``run_dir``'s checkpoint (only ``train.steps`` may differ);
    ``overwrite`` starts afresh in a run folder of ours. A loss that turns NaN or infinite
    stops the run with :class:`TrainingDivergedError`, keeping the last checkpoint.
    """
    if resume and overwrite:
        raise ConfigError("resume and overwrite exclude each other")
    if run_dir is None:
        if resume:
            raise ConfigError("resume needs a run folder")
        return _Loop.fresh(config, None, track).run(progress)
    existing = "resume" if resume else "overwrite" if overwrite else "refuse"
    with claim_folder(run_dir, "run", existing=existing) as run_dir:
        loop = _Loop.resumed(config, run_dir, track) if resume else _Loop.fresh(config, run_dir, track)
        return loop.run(progress)


def load_natural_checkpoint(path: str | Path, device: str | torch.device | None = "auto") -> dict[str, Any]:
    """A natural checkpoint's payload, with ``"model"`` (rebuilt, weights loaded) and
    ``"config"`` (a :class:`NaturalConfig`); any fault of the file is a :class:`CheckpointError`."""
    device = resolve_device(device)
    path = Path(path)
    path = path / CHECKPOINT if path.is_dir() else path
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for missing, truncated or foreign files
        raise CheckpointError(f"{path} is missing, truncated or not a checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a natural-model checkpoint (train it with `induction-bigram natural`)")
    try:
        config = NaturalConfig.from_dict(json.loads(payload["config"]))
        model = build_natural_model(config.model, device)
    except (KeyError, json.JSONDecodeError, InductionBigramError) as err:
        raise CheckpointError(f"{path} holds an invalid config: {err}") from None
    load_weights(model, payload.get("model_state"), str(path))
    return payload | {"model": model.eval(), "config": config}


def load_natural(path: str | Path, device: str | torch.device | None = "auto") -> Model:
    """The trained model of a natural run folder (or checkpoint file), in eval mode."""
    return load_natural_checkpoint(path, device)["model"]


def in_context_score(losses: Float[Tensor, " pos"]) -> float:
    """The held-out loss over the last tenth of the context minus that over its second tenth
    (Olsson et al.'s late-minus-early loss, at n_ctx 512: positions 461-511 against 51-101):
    how much the context read so far lowers the loss. An induction head's formation shows as a
    drop below the values before it (docs/THEORY.md section 3.8)."""
    tenth = max(len(losses) // 10, 1)
    return float(losses[-tenth:].mean() - losses[tenth : 2 * tenth].mean())


class _Loop:
    def __init__(self, config, windows, model, optimizer, generator, run_dir, track):
        self.config, self.windows, self.model = config, windows, model
        self.optimizer, self.generator, self.run_dir = optimizer, generator, run_dir
        self.track = tuple(track)
        self.device = next(model.parameters()).device
        self.held_out = windows.held_out(config.data.held_out_windows).to(self.device)
        self.metrics: list[MetricsRecord] = []
        self.start, self.elapsed = 0, 0.0

    @classmethod
    def fresh(cls, config: NaturalConfig, run_dir: Path | None, track) -> _Loop:
        config, windows = resolve_text(config)
        model = build_natural_model(config.model, config.train.device)
        generator = torch.Generator().manual_seed(config.train.seed)
        if run_dir is not None:
            (run_dir / CHECKPOINT).unlink(missing_ok=True)
            atomic_write_text(run_dir / CONFIG, config.to_json() + "\n")
            atomic_write_text(run_dir / METRICS, "")
        loop = cls(config, windows, model, make_natural_optimizer(model, config), generator, run_dir, track)
        loop.record(0, None, 0.0, 0)
        if config.train.steps == 0:
            loop.save(0)
        return loop

    @classmethod
    def resumed(cls, config: NaturalConfig, run_dir: Path, track) -> _Loop:
        ckpt = load_natural_checkpoint(run_dir, config.train.device)
        saved: NaturalConfig = ckpt["config"]
        requested, windows = resolve_text(config.with_vocab(saved.model.vocab))
        if saved.data.sha256 and saved.data.sha256 != requested.data.sha256:
            raise ConfigError(
                f"cannot resume {run_dir}: the text {requested.data.text} is not the one it was trained on "
                f"(sha256 {saved.data.sha256[:12]}... then, {requested.data.sha256[:12]}... now); train a new run "
                "on it, or pass --overwrite to start this one again"
            )
        if not saved.data.sha256:  # a run from before texts were hashed: nothing to compare
            warnings.warn(f"{run_dir} holds no hash of its text; cannot check that {requested.data.text} is unchanged")
            saved = dataclasses.replace(saved, data=dataclasses.replace(saved.data, sha256=requested.data.sha256))
        if saved.recipe() != requested.recipe():
            diff = config_differences(saved.recipe().to_dict(), requested.recipe().to_dict())
            raise ConfigError(f"cannot resume {run_dir} with a different config ({diff})")
        if requested.train.steps < ckpt["step"]:
            raise ConfigError(
                f"cannot resume {run_dir} with train.steps={requested.train.steps}: it ran {ckpt['step']}"
            )
        model = ckpt["model"]
        optimizer = make_natural_optimizer(model, requested)
        restore_optimizer(model, optimizer, ckpt["optimizer_state"], run_dir)
        generator = torch.Generator()
        generator.set_state(ckpt["data_rng_state"])
        loop = cls(requested, windows, model, optimizer, generator, run_dir, track)
        loop.start, loop.elapsed = int(ckpt["step"]), float(ckpt["elapsed_seconds"])
        loop.metrics = [r for r in read_metrics(run_dir) if r["step"] <= loop.start]
        atomic_write_text(run_dir / CONFIG, requested.to_json() + "\n")
        atomic_write_text(run_dir / METRICS, "".join(metrics_line(r) for r in loop.metrics))
        return loop

    def run(self, progress: bool) -> NaturalResult:
        cfg = self.config.train
        clock = time.perf_counter() - self.elapsed
        loss_of = NaturalFusedLoss(self.model) if cfg.fused_loss else forward_loss(self.model)
        if progress:  # stderr: stdout may carry --json output
            print("fused loss on" if cfg.fused_loss else "fused loss off (train.fused_loss=false)", file=sys.stderr)
        losses, seconds = [], 0.0
        bar = tqdm(total=cfg.steps, initial=self.start, disable=not progress, desc="natural", unit="step")
        try:
            self.model.train()
            for step in range(self.start + 1, cfg.steps + 1):
                began = time.perf_counter()
                batch = self.windows.sample(cfg.batch_size, self.generator).to(self.device)
                loss = loss_of(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                losses.append(loss.item())
                seconds += time.perf_counter() - began
                if not math.isfinite(losses[-1]):
                    raise TrainingDivergedError(
                        f"training diverged at step {step}: the loss is {losses[-1]} (train.lr={cfg.lr}); "
                        f"the last checkpoint is kept"
                    )
                bar.update(1)
                self.elapsed = time.perf_counter() - clock
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    record = self.record(step, sum(losses) / len(losses), seconds, len(losses))
                    bar.set_postfix(
                        {
                            k: f"{record[k]:.3f}"
                            for k in ("held_out_loss", "in_context_score", "induction_score")
                            if k in record
                        }
                    )
                    losses, seconds = [], 0.0
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    self.save(step)
        finally:
            bar.close()
        self.model.eval()
        return NaturalResult(self.model, self.config, self.metrics, self.run_dir)

    @torch.no_grad()
    def record(self, step: int, train_loss: float | None, seconds: float, n_steps: int) -> MetricsRecord:
        was_training = self.model.training
        self.model.eval()
        held = self.held_out
        losses = next_character_loss(self.model(held[:, :-1]), held, reduction="none").mean(0)
        tokens = n_steps * self.config.train.batch_size * self.config.model.n_ctx
        record: MetricsRecord = {
            "step": step,
            "train_loss": train_loss,
            "held_out_loss": float(losses.mean()),
            "in_context_score": in_context_score(losses),
            "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
            "elapsed_seconds": self.elapsed,
        }
        for tracker in self.track:
            record.update(tracker(self.model, self.config))
        self.model.train(was_training)
        self.metrics.append(record)
        if self.run_dir is not None:
            append_text(self.run_dir / METRICS, metrics_line(record))
        return record

    def save(self, step: int) -> None:
        if self.run_dir is None:
            return
        payload = {
            "format": FORMAT,
            "config": self.config.to_json(),
            "model_state": portable_state_dict(self.model),
            "optimizer_state": portable_optimizer_state(self.model, self.optimizer),
            "step": step,
            "elapsed_seconds": self.elapsed,
            "data_rng_state": self.generator.get_state(),
        }
        atomic_write_with(self.run_dir / CHECKPOINT, lambda handle: torch.save(payload, handle))
