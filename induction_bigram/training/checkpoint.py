"""Checkpoints and run folders.

A run folder holds ``config.json`` (the resolved :class:`RunConfig`), ``metrics.jsonl`` and
``checkpoint.pt``. The checkpoint alone rebuilds the run: it holds the run config, the corpus
statistics, the TL config (for reference), every weight, the optimiser state, the step and the
data generator's RNG state. It is written atomically and loads with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformer_lens import HookedTransformer

from induction_bigram.config import RunConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import CheckpointError, InductionBigramError
from induction_bigram.files import atomic_write_with, dumps_json
from induction_bigram.model import build_model, load_weights, resolve_device

FORMAT = "induction-bigram-checkpoint"
VERSION = 1
CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model plus everything needed to resume."""

    model: HookedTransformer
    config: RunConfig
    stats: BigramStats
    step: int
    elapsed_seconds: float
    optimizer_state: dict[str, Any]
    data_rng_state: torch.Tensor


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: HookedTransformer,
    config: RunConfig,
    stats: BigramStats,
    step: int,
    elapsed_seconds: float,
    optimizer: torch.optim.Optimizer,
    data_generator: torch.Generator,
) -> None:
    """Write a checkpoint atomically (a crash mid-write leaves the previous one intact)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_json(),
        "stats": dumps_json(stats.to_dict(), indent=None),
        "tl_config": dumps_json(model.cfg.to_dict(), indent=None, default=str),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": optimizer.state_dict(),
        "step": step,
        "elapsed_seconds": elapsed_seconds,
        "data_rng_state": data_generator.get_state(),
    }
    atomic_write_with(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device | None = "auto") -> Checkpoint:
    """Read a checkpoint file or run folder; every failure of the file is a
    :class:`CheckpointError` (a bad ``device`` is a :class:`ConfigError`)."""
    device = resolve_device(device)  # a bad device is the caller's, not the checkpoint's
    path = _checkpoint_path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"{path} is truncated or not a checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an induction-bigram checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has format version {payload.get('version')}, expected {VERSION}")
    try:
        config = RunConfig.from_dict(json.loads(payload["config"]))
        stats = BigramStats.from_dict(json.loads(payload["stats"]))
        config = config.with_vocab(stats.n_tokens)
        model = build_model(config.model, device, vocab=stats.vocab)
    except (KeyError, json.JSONDecodeError, InductionBigramError) as err:
        raise CheckpointError(f"{path} holds an invalid config: {err}") from None
    load_weights(model, payload.get("model_state"), str(path))
    try:
        return Checkpoint(
            model=model,
            config=config,
            stats=stats,
            step=int(payload["step"]),
            elapsed_seconds=float(payload["elapsed_seconds"]),
            optimizer_state=payload["optimizer_state"],
            data_rng_state=payload["data_rng_state"],
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} lacks or garbles {err}") from None


def load(path: str | os.PathLike[str], device: str | torch.device | None = "auto") -> HookedTransformer:
    """The trained HookedTransformer of a run folder or checkpoint file, in one call."""
    return load_checkpoint(path, device).model


def _checkpoint_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return path
