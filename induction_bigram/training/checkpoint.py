"""Run folders: every file of one is written and read here.

A run folder of any model family (:data:`FAMILIES`: the circuit model's ``train`` runs, the
standard model's ``standard`` and ``markov`` runs) holds ``config.json`` (the resolved config), ``metrics.jsonl``
and ``checkpoint.pt``, all written by the one training loop
(:mod:`~induction_bigram.training.trainer`). The checkpoint, one versioned format for every
family, alone rebuilds the run: it holds the family's name, the run config, the corpus statistics
(circuit runs), the TL config (for reference), every weight, the optimiser state, the step and the
data generator's RNG state; weights and optimiser state in TL 3's layout, whichever backend wrote
them, so a run loads and resumes under either. It is written atomically and loads with
``weights_only=True``.
The checkpoint is the source of truth: ``config.json`` is checked against it on every load
(:func:`read_config_file` is the one reader of a config file), and :func:`read_metrics` is the
one reader of ``metrics.jsonl``.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import torch

from induction_bigram.config import RunConfig
from induction_bigram.config.base import Config
from induction_bigram.config.markov import MarkovConfig
from induction_bigram.config.standard import StandardConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import CheckpointError, ConfigError, InductionBigramError
from induction_bigram.files import atomic_write_with, dumps_json
from induction_bigram.model import (
    Model,
    build_model,
    build_standard_model,
    load_optimizer_state,
    load_weights,
    portable_optimizer_state,
    portable_state_dict,
    resolve_device,
)

FORMAT = "induction-bigram-checkpoint"
VERSION = 2
CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
MetricsRecord = dict[str, Any]
ConfigT = TypeVar("ConfigT", bound=Config)


@dataclass(frozen=True)
class Family:
    """A kind of model the one training loop trains and the one checkpoint format stores."""

    name: str
    """What its checkpoints record as their ``family``."""
    command: str
    """The command that trains it (errors name it)."""
    config: type[Config]
    build: Callable[[Any, BigramStats | None, torch.device], tuple[Any, Model]]
    """A checkpoint's config and corpus statistics -> the config completed by them, and the
    untrained model that the checkpoint's weights are loaded into."""
    setup: Callable[[Sequence[Any]], Any]
    """``setup(track)``: the family's :data:`~induction_bigram.training.trainer.Setup`, with the
    ``track`` measurements added to its plans (what :func:`~induction_bigram.training.trainer.train` runs)."""


def _imported(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported when first called: a family's training module imports this one."""
    return lambda *args: getattr(importlib.import_module(module), name)(*args)


def _build_circuit(config: RunConfig, stats: BigramStats | None, device: torch.device) -> tuple[RunConfig, Model]:
    if stats is None:
        raise KeyError("stats")
    config = config.with_vocab(stats.n_tokens)
    return config, build_model(config.model, device, vocab=stats.vocab)


def _build_standard(
    config: StandardConfig | MarkovConfig, stats: BigramStats | None, device: torch.device
) -> tuple[StandardConfig | MarkovConfig, Model]:
    """The standard model, for both of its families (a text, Markov chains)."""
    return config, build_standard_model(config.model, device)


FAMILIES = {
    family.name: family
    for family in (
        Family(
            "circuit", "train", RunConfig, _build_circuit, _imported("induction_bigram.training.loop", "circuit_setup")
        ),
        Family(
            "standard",
            "standard",
            StandardConfig,
            _build_standard,
            _imported("induction_bigram.training.standard", "standard_setup"),
        ),
        Family(
            "markov",
            "markov",
            MarkovConfig,
            _build_standard,
            _imported("induction_bigram.training.markov", "markov_setup"),
        ),
    )
}
"""Every model family, by the name its checkpoints record."""


def family_of(kind: type[Config]) -> Family:
    """The family whose runs a config of class ``kind`` configures."""
    for family in FAMILIES.values():
        if kind is family.config:
            return family
    configs = ", ".join(family.config.__name__ for family in FAMILIES.values())
    raise TypeError(f"{kind.__name__} is the config of no model family (a family's config is one of {configs})")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model plus everything needed to resume."""

    model: Model
    config: Any
    """The run's config: a :class:`RunConfig`, or its family's config class."""
    stats: BigramStats | None
    """The corpus statistics of a circuit run (``None`` for the other families)."""
    step: int
    elapsed_seconds: float
    optimizer_state: dict[str, Any]
    data_rng_state: torch.Tensor


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: Model,
    config: Config,
    stats: BigramStats | None,
    step: int,
    elapsed_seconds: float,
    optimizer: torch.optim.Optimizer,
    data_generator: torch.Generator,
) -> None:
    """Write a checkpoint atomically (a crash mid-write leaves the previous one intact)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "family": family_of(type(config)).name,
        "config": config.to_json(),
        "tl_config": dumps_json(model.cfg.to_dict(), indent=None, default=str),
        "model_state": portable_state_dict(model),
        "optimizer_state": portable_optimizer_state(model, optimizer),
        "step": step,
        "elapsed_seconds": elapsed_seconds,
        "data_rng_state": data_generator.get_state(),
    }
    if stats is not None:
        payload["stats"] = dumps_json(stats.to_dict(), indent=None)
    atomic_write_with(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device | None = "auto", family: str | None = None
) -> Checkpoint:
    """Read a checkpoint file or run folder of any family (of ``family``, a name in
    :data:`FAMILIES`, when given); every failure of the file is a :class:`CheckpointError` (a bad
    ``device`` or ``family`` is a :class:`ConfigError`)."""
    device = resolve_device(device)  # a bad device is the caller's, not the checkpoint's
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; choose from {', '.join(FAMILIES)}")
    path = _checkpoint_path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"{path} is truncated or not a checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an induction-bigram checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has format version {payload.get('version')}, expected {VERSION}")
    kind = FAMILIES.get(payload.get("family"))
    if kind is None:
        raise CheckpointError(f"{path} is of an unknown model family {payload.get('family')!r}")
    if family is not None and family != kind.name:
        raise CheckpointError(f"{path} is a run of `{kind.command}`, not of `{FAMILIES[family].command}`")
    try:
        stats = BigramStats.from_dict(json.loads(payload["stats"])) if "stats" in payload else None
        config, model = kind.build(kind.config.from_dict(json.loads(payload["config"])), stats, device)
    except (KeyError, json.JSONDecodeError, InductionBigramError) as err:
        raise CheckpointError(f"{path} holds an invalid config: {err}") from None
    _check_config_file(path.parent / CONFIG, config, path)
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


def restore_optimizer(model: Model, optimizer: torch.optim.Optimizer, state: Any, source: Path) -> None:
    """Load a checkpoint's optimiser state (TL 3's layout, from either backend) into ``optimizer``;
    one that does not fit is a :class:`CheckpointError` naming ``source``."""
    try:
        load_optimizer_state(model, optimizer, state)
    except (ValueError, KeyError, TypeError) as error:  # e.g. from before one parameter group per matrix
        raise CheckpointError(f"{source}: the saved optimiser state does not fit this run ({error})") from None
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error}") from None


def read_config_file(path: str | os.PathLike[str], kind: type[ConfigT] = RunConfig) -> ConfigT:
    """The config (a :class:`RunConfig`, or ``kind``) in a ``config.json``; a file that is not
    one is a :class:`CheckpointError` naming it and what is wrong."""
    path = Path(path)
    try:
        return kind.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err.strerror or err}") from None
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError and ConfigError are ValueErrors
        reason = str(err) if isinstance(err, ConfigError) else f"not valid JSON ({err})"
        raise CheckpointError(f"{path}: {reason}") from None


def resumable_config(run_dir: str | os.PathLike[str], kind: type[ConfigT], command: str) -> ConfigT:
    """The config (a ``kind``) of the run in ``run_dir`` that ``command`` (``train`` or ``standard``)
    resumes; a :class:`CheckpointError` says when there is nothing to resume, names a run of
    another family's command as the wrong kind of folder, and suggests ``--overwrite`` for a run
    that stopped before its first checkpoint."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"nothing to resume: {path} does not exist")
    try:
        config = read_config_file(path, kind)
    except CheckpointError as err:
        for other in FAMILIES.values():  # a run of another command: say so, not which of its keys this config lacks
            try:
                read_config_file(path, other.config)
            except CheckpointError:
                continue
            raise CheckpointError(
                f"--resume: {run_dir} is a run of `{other.command}`, the wrong kind of folder for `{command}`"
            ) from None
        raise CheckpointError(f"--resume: {err}") from None
    if not (Path(run_dir) / CHECKPOINT).is_file():
        raise CheckpointError(
            f"nothing to resume: {run_dir} holds no {CHECKPOINT} (the run stopped before its first checkpoint); "
            "start it again with --overwrite"
        )
    return config


def resume_differences(saved: Config, requested: Config) -> str:
    """What differs between two configs of one run besides ``train.steps`` and what their
    ``recipe()`` leaves out (how it executes, where its data lies): "" when ``requested`` may
    resume ``saved``."""
    saved = replace(saved, train=replace(saved.train, steps=requested.train.steps))
    return config_differences(saved.recipe().to_dict(), requested.recipe().to_dict())


def _check_config_file(path: Path, config: Config, checkpoint: Path) -> None:
    """A run folder's ``config.json``, when there is one, must be the checkpoint's config: the
    checkpoint is the source of truth, and a disagreement is an error naming both. Only what a
    resumed run may change (:func:`resume_differences`) may differ: it writes its new config
    before its next checkpoint."""
    if not path.is_file():
        return
    diff = resume_differences(config, read_config_file(path, type(config)))
    if diff:
        raise CheckpointError(f"{path} does not match {checkpoint} ({diff}); one of them was edited or replaced")


def load(path: str | os.PathLike[str], device: str | torch.device | None = "auto") -> Model:
    """The trained model (``TransformerBridge``; ``HookedTransformer`` under TL 3) of a run folder
    or checkpoint file of any family, in one call."""
    return load_checkpoint(path, device).model


def _checkpoint_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def read_metrics(run_dir: str | Path) -> list[MetricsRecord]:
    """The records of ``run_dir/metrics.jsonl`` ([] if there is none).

    A torn last line (the writer was killed while appending) is dropped with a warning; resuming
    the run rewrites the file without it. Any other line that is not a JSON object is a
    :class:`CheckpointError` naming the file and the line.
    """
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    records = []
    for index, (number, line) in enumerate(numbered):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("not a metrics record")
        except ValueError as err:
            if index == len(numbered) - 1:
                warnings.warn(f"{path}: dropped a torn last line {number} ({err})", stacklevel=2)
                break
            raise CheckpointError(f"{path}, line {number}: not a metrics record ({err})") from None
        records.append(record)
    return records


def metrics_line(record: MetricsRecord) -> str:
    """One line of metrics.jsonl: strict JSON, a non-finite number becomes null."""
    return dumps_json(record, indent=None) + "\n"


def config_differences(a: dict, b: dict, prefix: str = "") -> str:
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            inner = config_differences(va, vb, f"{prefix}{key}.")
            diffs += [inner] if inner else []
        elif va != vb:
            diffs.append(f"{prefix}{key}: {va!r} -> {vb!r}")
    return ", ".join(diffs)
