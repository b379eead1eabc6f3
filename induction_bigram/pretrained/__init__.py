"""Pretrained models shipped inside the package, loadable offline by name.

Each model is a folder here holding only what cannot be regenerated:

- ``config.json``: the :class:`RunConfig` it was trained with (the frozen random matrices are
  rebuilt from ``model.seed``, bitwise);
- ``trained.pt``: the trained tensors alone (W_K^1, W_K^2, W_O^2, and W_F or the relative bias
  where the model has them), float32;
- ``metrics.jsonl``: its training metrics; ``source.json``: the command that made it.

``scripts/make_pretrained.py`` produces every folder from a training run.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch
from transformer_lens import HookedTransformer

from induction_bigram.checkpoint import CONFIG, METRICS, load_checkpoint
from induction_bigram.config import RunConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import CheckpointError
from induction_bigram.files import atomic_write_text, atomic_write_with
from induction_bigram.model import build_model, trainable_names

TRAINED = "trained.pt"
SOURCE = "source.json"


def available() -> list[str]:
    """Names of the shipped models."""
    root = resources.files(__name__)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / TRAINED).is_file())


def pretrained_config(name: str) -> RunConfig:
    """The training config of a shipped model."""
    return RunConfig.from_dict(json.loads(_folder(name).joinpath(CONFIG).read_text()))


def pretrained_metrics(name: str) -> list[dict]:
    """The training metrics of a shipped model (one record per evaluation)."""
    text = _folder(name).joinpath(METRICS).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def pretrained_task(name: str, device: str | torch.device = "cpu") -> TriggerTask:
    """The task a shipped model was trained on: ``.stats`` (the corpus statistics) and
    ``.shared_triggers`` (its fixed triggers) are what the analyses need beside the model."""
    config = pretrained_config(name)
    return TriggerTask(BigramStats.from_corpus(config.task.corpus), config.task, device)


def load_pretrained(name: str, device: str | torch.device | None = "auto") -> HookedTransformer:
    """A shipped model as a HookedTransformer, ready for ``run_with_cache``."""
    config = pretrained_config(name)
    with resources.as_file(_folder(name).joinpath(TRAINED)) as path:
        return rebuild(config, path, device)


def rebuild(
    config: RunConfig, trained_path: str | os.PathLike[str], device: str | torch.device | None = "auto"
) -> HookedTransformer:
    """Build ``config``'s model from its seed and load the trained tensors into it."""
    model = build_model(config.model, device)
    try:
        trained = torch.load(trained_path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"{trained_path} is truncated or not a tensor file ({type(err).__name__})") from None
    expected = set(trainable_names(config.model))
    if not isinstance(trained, dict) or set(trained) != expected:
        found = sorted(trained) if isinstance(trained, dict) else type(trained).__name__
        raise CheckpointError(f"{trained_path} holds {found}, expected {sorted(expected)}")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in trained.items():
            if tensor.shape != params[name].shape:
                raise CheckpointError(
                    f"{trained_path}: {name} has shape {tuple(tensor.shape)}, "
                    f"the config needs {tuple(params[name].shape)}"
                )
            params[name].copy_(tensor)
    return model.eval()


def export_run(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], command: str) -> None:
    """Write the shipped form of a training run (config, trained tensors, metrics, source)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    ckpt = load_checkpoint(run_dir, "cpu")
    if ckpt.stats.to_dict() != BigramStats.from_corpus(ckpt.config.task.corpus).to_dict():
        raise CheckpointError(f"{run_dir} was trained on statistics its config cannot rebuild")
    params = dict(ckpt.model.named_parameters())
    trained = {name: params[name].detach().clone() for name in trainable_names(ckpt.config.model)}
    atomic_write_with(out_dir / TRAINED, lambda handle: torch.save(trained, handle))
    atomic_write_text(out_dir / CONFIG, ckpt.config.to_json() + "\n")
    atomic_write_text(out_dir / METRICS, (run_dir / METRICS).read_text())
    atomic_write_text(out_dir / SOURCE, json.dumps({"command": command, "step": ckpt.step}, indent=2) + "\n")


def _folder(name: str):
    folder = resources.files(__name__).joinpath(name)
    if not folder.joinpath(TRAINED).is_file():
        raise CheckpointError(f"no pretrained model named {name!r}; available: {', '.join(available()) or 'none'}")
    return folder
