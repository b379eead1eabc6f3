"""Train (or reuse) the runs behind the shipped pretrained models and export them.

    python scripts/make_pretrained.py [--runs runs/pretrained] [NAME ...]
    python scripts/make_pretrained.py --convert-legacy [NAME ...]

For each model a run folder ``RUNS/NAME`` is trained with the command below unless it already
holds a finished run; ``induction_bigram/pretrained/NAME`` then receives its config, complete
state dict (``model.safetensors``), metrics and the command
(``induction_bigram.pretrained.export_run``).

``--convert-legacy`` turns a folder of the earlier form, whose ``trained.pt`` held only the
trained tensors (the frozen matrices were rebuilt from the seed), into ``model.safetensors``
without retraining: build the model from the seed, load ``trained.pt`` into its trained
parameters (the loader of that form), save the complete state dict, remove ``trained.pt``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from induction_bigram.checkpoint import load_checkpoint
from induction_bigram.config import RunConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import CheckpointError
from induction_bigram.model import build_model, trainable_names
from induction_bigram.pretrained import WEIGHTS, export_run, load_model_file, save_model_file

PACKAGE = Path(__file__).resolve().parents[1] / "induction_bigram" / "pretrained"

# name -> (the command that trains it, after `induction-bigram`, and its run folder);
# RUNS stands for the --runs folder
RECIPES = {
    # the reference recipe (d = T = 256, K = 5, SGD lr 0.03) at batch 128, about 18 min on 2 CPU cores
    "reference": (
        [
            "train",
            "--preset",
            "reference",
            "--set",
            "train.batch_size=128",
            "--set",
            "train.micro_batch_size=none",
            "--out",
            "RUNS/reference",
        ],
        "RUNS/reference",
    ),
    # the associative memory transformer: linear W_F, full loss, d = T = 128
    "amt": (["train", "--preset", "amt-quick", "--out", "RUNS/amt"], "RUNS/amt"),
    # learned relative position bias in layer 1, trained at T = 64 with 256 positions: the `rpe`
    # variant of the positional-encoding study (which trains all four variants)
    "rpe": (["lengths", "--out", "RUNS/lengths"], "RUNS/lengths/rpe"),
    # a general induction head: random triggers (K = 40 per sequence), d = 128, T = 64, AdamW lr 0.3
    "general": (["train", "--preset", "general", "--out", "RUNS/general"], "RUNS/general"),
}


def finished(run: Path) -> bool:
    try:
        ckpt = load_checkpoint(run, "cpu")
    except CheckpointError:
        return False
    return ckpt.step == ckpt.config.train.steps


def convert_legacy(name: str) -> None:
    """``PACKAGE/name/trained.pt`` (trained tensors only) -> ``model.safetensors`` (everything)."""
    folder = PACKAGE / name
    legacy = folder / "trained.pt"
    config = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
    stats = BigramStats.from_corpus(config.task.corpus)
    model = build_model(config.with_vocab(stats.n_tokens).model, "cpu", vocab=stats.vocab)
    trained = torch.load(legacy, map_location="cpu", weights_only=True)
    expected = set(trainable_names(config.model))
    if set(trained) != expected:
        raise CheckpointError(f"{legacy} holds {sorted(trained)}, expected {sorted(expected)}")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, tensor in trained.items():
            params[key].copy_(tensor)
    save_model_file(model, folder / WEIGHTS)
    reloaded = load_model_file(config, folder / WEIGHTS, "cpu").state_dict()
    assert all(torch.equal(reloaded[k], v) for k, v in model.state_dict().items()), name
    legacy.unlink()
    print(f"converted {legacy} -> {folder / WEIGHTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {list(RECIPES)}")
    parser.add_argument("--runs", type=Path, default=Path("runs/pretrained"), help="where the training runs live")
    parser.add_argument(
        "--convert-legacy", action="store_true", help="convert trained.pt folders to model.safetensors, no training"
    )
    args = parser.parse_args()
    unknown = set(args.names) - set(RECIPES)
    if unknown:
        parser.error(f"unknown model {sorted(unknown)[0]!r}; choose from {list(RECIPES)}")
    if args.convert_legacy:
        for name in args.names or list(RECIPES):
            if (PACKAGE / name / "trained.pt").is_file():
                convert_legacy(name)
        return
    for name in args.names or list(RECIPES):
        arguments, folder = RECIPES[name]
        run = Path(folder.replace("RUNS", str(args.runs)))
        command = [a.replace("RUNS", str(args.runs)) for a in arguments]
        if not finished(run):
            if command[0] == "train" and run.exists():
                command = ["train", "--out", str(run), "--resume"]
            elif command[0] == "lengths" and Path(command[command.index("--out") + 1]).exists():
                command = [*command, "--resume"]  # reuse the variants already trained there
            print("+ induction-bigram", shlex.join(command), flush=True)
            subprocess.run([sys.executable, "-m", "induction_bigram", *command], check=True)
        export_run(run, PACKAGE / name, command="induction-bigram " + shlex.join(arguments).replace("RUNS", "runs"))
        print(f"exported {run} -> {PACKAGE / name}")


if __name__ == "__main__":
    main()
