"""Train (or reuse) the runs behind the shipped pretrained models and export them.

    python scripts/make_pretrained.py [--runs runs/pretrained] [NAME ...]

For each model a run folder ``RUNS/NAME`` is trained with the command below unless it already
holds a finished run; ``induction_bigram/pretrained/NAME`` then receives its config, trained
tensors, metrics and the command (``induction_bigram.pretrained.export_run``).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from induction_bigram.checkpoint import load_checkpoint
from induction_bigram.errors import CheckpointError
from induction_bigram.pretrained import export_run

PACKAGE = Path(__file__).resolve().parents[1] / "induction_bigram" / "pretrained"

# name -> the training command's arguments (after `induction-bigram train`)
RECIPES = {
    # the reference shape (d = T = 256, K = 5); AdamW, see the `reference-adamw` preset
    "reference": ["--preset", "reference-adamw", "--set", "train.compile=true"],
    # the associative memory transformer: linear W_F, full loss, d = T = 128
    "amt": ["--preset", "amt-quick"],
    # learned relative position bias in layer 1, trained at T = 64 with room for 256 positions
    "rpe": ["--preset", "lengths-rpe"],
}


def finished(run: Path) -> bool:
    try:
        ckpt = load_checkpoint(run, "cpu")
    except CheckpointError:
        return False
    return ckpt.step == ckpt.config.train.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--runs", type=Path, default=Path("runs/pretrained"))
    args = parser.parse_args()
    for name in args.names:
        run = args.runs / name
        command = ["train", *RECIPES[name], "--out", str(run)]
        if not finished(run):
            steps = ["train", "--out", str(run), "--resume"] if run.exists() else command
            print("+ induction-bigram", shlex.join(steps), flush=True)
            subprocess.run([sys.executable, "-m", "induction_bigram", *steps], check=True)
        export_run(run, PACKAGE / name, command="induction-bigram " + shlex.join(command))
        print(f"exported {run} -> {PACKAGE / name}")


if __name__ == "__main__":
    main()
