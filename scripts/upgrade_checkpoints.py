"""Convert run folders' checkpoints written before the one checkpoint format to it (version 2).

    python scripts/upgrade_checkpoints.py RUN_DIR [RUN_DIR ...]

Version 1 (``train`` runs) lacked the model family; runs of the ``standard`` command (then named
``natural``) had their own unversioned format, and the oldest of them no hash of their text (it
is taken from the text file now, if that is still there: a resume checks it); version 2 runs of
that command recorded the family as ``natural``, now ``standard``. Weights, optimiser state, step
and RNG state are kept as they are, so an upgraded run resumes bitwise as before. Each file is
replaced atomically; one already at version 2 of a current family is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from induction_bigram.files import atomic_write_text, atomic_write_with
from induction_bigram.training.checkpoint import CHECKPOINT, CONFIG, FORMAT, VERSION, load_checkpoint

STANDARD_V0 = "induction-bigram-natural-checkpoint"
"""The unversioned format of the ``standard`` command's runs, from when it was named ``natural``."""


def upgraded(payload: dict, path: Path) -> dict | None:
    """The version-2 payload of an older checkpoint (``None``: already version 2)."""
    if payload.get("format") == FORMAT and payload.get("version") == VERSION:
        return {**payload, "family": "standard"} if payload.get("family") == "natural" else None
    if payload.get("format") == FORMAT and payload.get("version") == 1:
        return {**payload, "version": VERSION, "family": "circuit"}
    if payload.get("format") == STANDARD_V0:
        config = json.loads(payload["config"])
        if not config["data"].get("sha256"):
            text = Path(config["data"]["text"])
            if not text.is_file():
                raise SystemExit(f"{path}: its text {text} is gone, and the checkpoint holds no hash of it")
            config["data"]["sha256"] = hashlib.sha256(text.read_text(encoding="utf-8").encode("utf-8")).hexdigest()
        return {**payload, "format": FORMAT, "version": VERSION, "family": "standard", "config": json.dumps(config)}
    raise SystemExit(f"{path} is not a checkpoint of this package (format {payload.get('format')!r})")


def upgrade(run_dir: Path) -> str:
    path = run_dir / CHECKPOINT if run_dir.is_dir() else run_dir
    payload = upgraded(torch.load(path, map_location="cpu", weights_only=True), path)
    if payload is None:
        return f"{path}: already version {VERSION}"
    atomic_write_with(path, lambda handle: torch.save(payload, handle))
    config_file = path.parent / CONFIG
    if payload["family"] == "standard" and config_file.is_file():  # config.json holds the hash too
        written = json.loads(config_file.read_text(encoding="utf-8"))
        written["data"]["sha256"] = json.loads(payload["config"])["data"]["sha256"]
        atomic_write_text(config_file, json.dumps(written, indent=2) + "\n")
    load_checkpoint(path, "cpu")  # it loads now
    return f"{path}: upgraded to version {VERSION} ({payload['family']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders or checkpoint files")
    for run in parser.parse_args().runs:
        print(upgrade(run))


if __name__ == "__main__":
    main()
