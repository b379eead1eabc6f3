"""Training the ``standard`` model: next-character prediction on a text file, AdamW; the standard
family of the one training loop (:mod:`~induction_bigram.training.trainer`).

``train(config, run_dir)`` (:func:`~induction_bigram.training.trainer.train`, for a
:class:`~induction_bigram.config.standard.StandardConfig`) writes ``run_dir/config.json`` (with ``model.vocab`` filled
in from the text), appends a record per evaluation to ``run_dir/metrics.jsonl`` (train loss,
held-out loss, plus whatever the ``track`` callables measure: the command line adds
:func:`induction_bigram.anymodel.track_head_scores`, the best induction and previous-token
heads, from a later stage that training does not import) and saves ``run_dir/checkpoint.pt``
every ``checkpoint_every`` steps and at the end, in the checkpoint format of every family
(:func:`~induction_bigram.training.checkpoint.load_checkpoint` and ``load`` read it).

The family's part: random windows of the text from the data generator, the next-character loss
(fused, :mod:`~induction_bigram.training.standard_loss`, unless ``train.fused_loss`` is off) and
the held-out loss and in-context score of fixed held-out windows. A resumed run must read the
same text (by its hash), at whatever path.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from induction_bigram.config.markov import MarkovConfig
from induction_bigram.config.standard import StandardConfig
from induction_bigram.data.text import TextWindows, encode_text, read_text, text_vocab
from induction_bigram.errors import ConfigError
from induction_bigram.model import Model, build_standard_model
from induction_bigram.training.checkpoint import Checkpoint, MetricsRecord
from induction_bigram.training.standard_loss import StandardFusedLoss, forward_loss, next_character_loss
from induction_bigram.training.trainer import Plan, Setup

StandardTracker = Callable[[Model, StandardConfig], dict[str, Any]]
"""A measurement added to every metrics record (e.g. the induction score)."""


def resolve_text(config: StandardConfig) -> tuple[StandardConfig, TextWindows]:
    """Read and encode the text; ``config`` with ``model.vocab`` taken from it if unset, and the
    text's absolute path and content hash (``data.sha256``)."""
    text = read_text(config.data.text)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    data = dataclasses.replace(config.data, text=str(Path(config.data.text).expanduser().resolve()), sha256=digest)
    config = dataclasses.replace(config, data=data)
    config = config.with_vocab(text_vocab(text) if config.model.vocab is None else config.model.vocab)
    ids = encode_text(text, config.model.vocab)
    return config, TextWindows(ids, config.model.n_ctx, config.data.held_out_fraction)


def make_standard_optimizer(model: Model, config: StandardConfig | MarkovConfig) -> torch.optim.Optimizer:
    """AdamW with the ``train`` section's settings (the standard model's families share it)."""
    cfg = config.train
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def in_context_score(losses: Float[Tensor, " pos"]) -> float:
    """The held-out loss over the last tenth of the context minus that over its second tenth
    (Olsson et al.'s late-minus-early loss, at n_ctx 512: positions 461-511 against 51-101):
    how much the context read so far lowers the loss. An induction head's formation shows as a
    drop below the values before it (docs/THEORY.md section 3.8)."""
    tenth = max(len(losses) // 10, 1)
    return float(losses[-tenth:].mean() - losses[tenth : 2 * tenth].mean())


def standard_setup(track: Sequence[StandardTracker]) -> Setup:
    """The standard family's :data:`~induction_bigram.training.trainer.Setup` (its entry in
    :data:`~induction_bigram.training.checkpoint.FAMILIES`)."""

    def setup(config: StandardConfig, ckpt: Checkpoint | None) -> Plan:
        if ckpt is None:
            config, windows = resolve_text(config)
            model = build_standard_model(config.model, config.train.device)
            generator = torch.Generator().manual_seed(config.train.seed)
        else:  # the loop restores the optimiser's and the generator's states
            config, windows = resolve_text(config.with_vocab(ckpt.config.model.vocab))
            _check_same_text(ckpt.config, config)
            model, generator = ckpt.model, torch.Generator()
        cfg = config.train
        device = next(model.parameters()).device
        held_out = windows.held_out(config.data.held_out_windows).to(device)
        loss_of = StandardFusedLoss(model) if cfg.fused_loss else forward_loss(model)

        def loss(batch: Tensor) -> float:
            value = loss_of(batch)
            value.backward()
            return value.item()

        return Plan(
            config,
            model,
            make_standard_optimizer(model, config),
            generator,
            sample=lambda generator: windows.sample(cfg.batch_size, generator).to(device),
            loss=loss,
            evaluate=lambda model: _held_out_scores(model, held_out),
            tokens_per_step=cfg.batch_size * config.model.n_ctx,
            track=[lambda model, tracker=tracker: tracker(model, config) for tracker in track],
            note="fused loss on" if cfg.fused_loss else "fused loss off (train.fused_loss=false)",
            shown={key: key for key in ("held_out_loss", "in_context_score", "induction_score")},
        )

    return setup


def _check_same_text(saved: StandardConfig, requested: StandardConfig) -> None:
    if saved.data.sha256 != requested.data.sha256:
        raise ConfigError(
            f"cannot resume: the text {requested.data.text} is not the one it was trained on "
            f"(sha256 {saved.data.sha256[:12]}... then, {requested.data.sha256[:12]}... now); train a new run "
            "on it, or pass --overwrite to start this one again"
        )


def _held_out_scores(model: Model, held_out: Tensor) -> MetricsRecord:
    losses = next_character_loss(model(held_out[:, :-1]), held_out, reduction="none").mean(0)
    return {"held_out_loss": float(losses.mean()), "in_context_score": in_context_score(losses)}
