"""Pretrained models shipped inside the package, loadable offline by name.

Each model is a folder here holding:

- ``config.json``: the :class:`RunConfig` it was trained with;
- ``model.safetensors``: its complete state dict in TL 3's names and layouts, whichever backend
  wrote it (the frozen random matrices included, so loading never depends on torch reproducing
  ``torch.randn`` from the seed), float32;
- ``metrics.jsonl``: its training metrics; ``source.json``: the command that made it.

The models, and which induction head each has (docs/THEORY.md section 3.7):

=================  ===========================================  ============================
name               what                                         induction head
=================  ===========================================  ============================
``reference``      the reference recipe, d = T = 256, APE       fixed-trigger (K = 5 fixed)
``amt``            associative memory transformer, linear W_F   fixed-trigger (K = 5 fixed)
``amt-idealised``  ``amt`` whose W_F reads only w_E(z_t)        fixed-trigger (K = 5 fixed)
``rpe``            relative bias in layer 1, trained at T = 64  fixed-trigger (K = 5 fixed)
``general``        random triggers, K per sequence from pi_u    general (any repeated token)
=================  ===========================================  ============================

Standard TL models (several heads, LayerNorm, learned embeddings and positions) are of another
kind: their ``config.json`` holds a :class:`~induction_bigram.config.standard.StandardConfig`
(``induction-bigram standard``, plain text; none ships yet: no induction head formed in the CPU
runs tried) or a :class:`~induction_bigram.config.markov.MarkovConfig` (``induction-bigram
markov``, in-context Markov chains with the corpus bigram as prior: ``markov``, whose
statistical induction head attends to the positions after every earlier occurrence of the
current token). They are listed by :func:`standard_models`, not :func:`available` (whose models
take every analysis written for the paper's architecture), and :func:`load_pretrained` builds
them with :func:`~induction_bigram.model.build_standard_model`.

A fixed-trigger head attends from its K triggers only, so TransformerLens's repeated-random-
tokens test finds no induction head in it; :func:`induction_bigram.incontext.repeated.repeated_sequence_report`
measures both kinds. :func:`induction_head_kind` reads the kind off a model's training config.

Loading builds the model from ``config.json`` and loads the state dict strictly: a tensor
missing, extra, or of another shape than the config needs is a :class:`CheckpointError`.
``scripts/make_pretrained.py`` produces every folder from a training run.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save as safetensors_bytes

from induction_bigram.config import RunConfig
from induction_bigram.config.markov import MarkovConfig
from induction_bigram.config.standard import StandardConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import CheckpointError, InductionBigramError
from induction_bigram.files import atomic_write_text, atomic_write_with
from induction_bigram.model import (
    Model,
    build_model,
    build_standard_model,
    load_weights,
    portable_state_dict,
    resolve_device,
)
from induction_bigram.training.checkpoint import CONFIG, METRICS, load_checkpoint, read_config_file, read_metrics
from induction_bigram.training.loop import resolve_corpus

WEIGHTS = "model.safetensors"
SOURCE = "source.json"
FORMAT = "induction-bigram-pretrained"
PACKAGE_FILES = (CONFIG, METRICS, SOURCE, WEIGHTS)  # what each shipped model's folder holds


def _shipped() -> list[str]:
    root = resources.files(__name__)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / WEIGHTS).is_file())


def _standard_config(name: str) -> type[StandardConfig] | type[MarkovConfig] | None:
    """The config class of a shipped standard TL model, by its sections (``None``: the paper's
    architecture, a :class:`RunConfig`)."""
    try:
        data = json.loads(_folder(name).joinpath(CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if "data" in data:
        return StandardConfig
    task = data.get("task")
    return MarkovConfig if isinstance(task, dict) and "alpha" in task else None


def _is_standard(name: str) -> bool:
    return _standard_config(name) is not None


def available() -> list[str]:
    """Names of the shipped models of the paper's architecture (:func:`standard_models` lists the others)."""
    return [name for name in _shipped() if not _is_standard(name)]


def standard_models() -> list[str]:
    """Names of the shipped standard TL models (``standard`` and ``markov`` runs)."""
    return [name for name in _shipped() if _is_standard(name)]


def standard_pretrained_config(name: str) -> StandardConfig | MarkovConfig:
    """The training config of a shipped standard TL model (``model.vocab`` holds its characters):
    a :class:`StandardConfig` or, for a model trained on Markov chains, a :class:`MarkovConfig`."""
    kind = _standard_config(name)
    if kind is None:
        raise CheckpointError(f"{name!r} is not a standard TL model; use pretrained_config({name!r})")
    try:
        return kind.from_dict(json.loads(_folder(name).joinpath(CONFIG).read_text(encoding="utf-8")))
    except (ValueError, InductionBigramError) as err:
        raise CheckpointError(f"the shipped model {name!r} has an invalid config.json: {err}") from None


def pretrained_config(name: str) -> RunConfig:
    """The training config of a shipped model (for ``standard``: :func:`standard_pretrained_config`)."""
    if _is_standard(name):
        raise CheckpointError(f"{name!r} is a standard TL model; use standard_pretrained_config({name!r})")
    with resources.as_file(_folder(name).joinpath(CONFIG)) as path:
        return read_config_file(path)


def pretrained_metrics(name: str) -> list[dict]:
    """The training metrics of a shipped model (one record per evaluation)."""
    with resources.as_file(_folder(name)) as folder:
        return read_metrics(folder)


def pretrained_source(name: str) -> dict:
    """How a shipped model was made: ``{"command": ..., "step": ...}`` (its ``source.json``)."""
    return json.loads(_folder(name).joinpath(SOURCE).read_text(encoding="utf-8"))


def induction_head_kind(config: RunConfig) -> str:
    """``"general"`` for a model trained with random triggers, else ``"fixed-trigger"``."""
    return "general" if config.task.trigger_mode == "random" else "fixed-trigger"


def pretrained_task(name: str, device: str | torch.device = "cpu") -> TriggerTask:
    """The task a shipped model was trained on: ``.stats`` (the corpus statistics) and
    ``.shared_triggers`` (its fixed triggers) are what the analyses need beside the model."""
    config = pretrained_config(name)
    return TriggerTask(BigramStats.from_corpus(config.task.corpus), config.task, device)


def load_pretrained(name: str, device: str | torch.device | None = "auto") -> Model:
    """A shipped model as a ``TransformerBridge`` (a ``HookedTransformer`` under TL 3), ready for
    ``run_with_cache``."""
    if _is_standard(name):
        config = standard_pretrained_config(name)
        model = build_standard_model(config.model, device)
        with resources.as_file(_folder(name).joinpath(WEIGHTS)) as path:
            return load_weights(model, _read_weights(path), str(path)).eval()
    config = pretrained_config(name)
    with resources.as_file(_folder(name).joinpath(WEIGHTS)) as path:
        return load_model_file(config, path, device)


def load_model_file(
    config: RunConfig, path: str | os.PathLike[str], device: str | torch.device | None = "auto"
) -> Model:
    """Build ``config``'s model and load the complete state dict in the safetensors file
    ``path`` into it, strictly (names and shapes must be the config's)."""
    device = resolve_device(device)
    config, stats = resolve_corpus(config)
    model = build_model(config.model, device, vocab=stats.vocab)
    load_weights(model, _read_weights(path), str(path))
    return model.eval()


def _read_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    try:
        return load_safetensors(os.fspath(path), device="cpu")
    except Exception as err:  # safetensors raises its own error types for truncated or foreign files
        raise CheckpointError(f"{path} is truncated or not a safetensors file ({type(err).__name__})") from None


def save_model_file(model: Model, path: str | os.PathLike[str]) -> None:
    """Write ``model``'s complete state dict (:func:`~induction_bigram.model.portable_state_dict`:
    TL 3's names and layouts, on either backend) as a safetensors file, atomically."""
    state = portable_state_dict(model)
    data = safetensors_bytes(state, metadata={"format": FORMAT})
    atomic_write_with(path, lambda handle: handle.write(data))


def export_run(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], command: str) -> None:
    """Write the shipped form of a training run of any family (config, complete state dict,
    metrics, source)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    ckpt = load_checkpoint(run_dir, "cpu")
    if ckpt.stats is not None and ckpt.stats.to_dict() != BigramStats.from_corpus(ckpt.config.task.corpus).to_dict():
        raise CheckpointError(f"{run_dir} was trained on statistics its config cannot rebuild")
    save_model_file(ckpt.model, out_dir / WEIGHTS)
    atomic_write_text(out_dir / CONFIG, ckpt.config.to_json() + "\n")
    atomic_write_text(out_dir / METRICS, (run_dir / METRICS).read_text())
    source = {"command": command, "step": ckpt.step}
    atomic_write_text(out_dir / SOURCE, json.dumps(source, indent=2, allow_nan=False) + "\n")


def _folder(name: str):
    folder = resources.files(__name__).joinpath(name)
    if not folder.joinpath(WEIGHTS).is_file():
        raise CheckpointError(f"no pretrained model named {name!r}; available: {', '.join(_shipped()) or 'none'}")
    return folder
