"""Train (or reuse) the runs behind the shipped pretrained models and export them.

    python scripts/make_pretrained.py [--runs runs/pretrained] [NAME ...]

For each model a run folder ``RUNS/NAME`` is trained with the command below unless it already
holds a finished run; ``induction_bigram/pretrained/NAME`` then receives its config, complete
state dict (``model.safetensors``), metrics and the command
(``induction_bigram.pretrained.export_run``).

The ``reference``, ``amt`` and ``rpe`` folders were converted once from an earlier form that held
only the trained tensors (commit 096b529 has the conversion); ``general`` was exported here.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from induction_bigram.errors import CheckpointError
from induction_bigram.pretrained import export_run
from induction_bigram.training.checkpoint import load_checkpoint

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
    "amt": (["train", "--preset", "amt", "--out", "RUNS/amt"], "RUNS/amt"),
    # the same recipe with the idealised FFN, which reads only w_E(z_t) (docs/THEORY.md section 4.2)
    "amt-idealised": (["train", "--preset", "amt-idealised", "--out", "RUNS/amt-idealised"], "RUNS/amt-idealised"),
    # learned relative position bias in layer 1, trained at T = 64 with 256 positions: the `rpe`
    # variant of the positional-encoding study (which trains all four variants)
    "rpe": (["lengths", "--out", "RUNS/lengths", "--set", "lengths.multiples=1,2,3,4"], "RUNS/lengths/rpe"),
    # a general induction head: random triggers (K = 40 per sequence), d = 128, T = 64, AdamW lr 0.3
    "general": (["train", "--preset", "general", "--out", "RUNS/general"], "RUNS/general"),
    # a standard TL model (2 layers of 8 heads, LayerNorm) on plain text: TEXT stands for --text
    "standard": (["standard", "--preset", "standard", "--text", "TEXT", "--out", "RUNS/standard"], "RUNS/standard"),
    # the same kind of model (2 layers of 4 heads, d_model 64) on in-context Markov chains with the
    # Shakespeare bigram as prior (alpha = 1, T = 128): a statistical induction head by step 600
    # (60 s of training, its metrics.jsonl), 3000 steps in about 18 min on one thread of a busy
    # 2-core machine (load average 8-9); re-running it gives bitwise the same weights
    "markov": (["markov", "--preset", "markov", "--out", "RUNS/markov"], "RUNS/markov"),
}


def finished(run: Path) -> bool:
    try:
        ckpt = load_checkpoint(run, "cpu")
    except CheckpointError:
        return False
    return ckpt.step == ckpt.config.train.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {list(RECIPES)}")
    parser.add_argument("--runs", type=Path, default=Path("runs/pretrained"), help="where the training runs live")
    parser.add_argument(
        "--text",
        type=Path,
        default=Path("../shared/data/tinyshakespeare.txt"),
        help="the text the standard model trains on (default: ../shared/data/tinyshakespeare.txt)",
    )
    args = parser.parse_args()
    unknown = set(args.names) - set(RECIPES)
    if unknown:
        parser.error(f"unknown model {sorted(unknown)[0]!r}; choose from {list(RECIPES)}")
    for name in args.names or list(RECIPES):
        arguments, folder = RECIPES[name]
        run = Path(folder.replace("RUNS", str(args.runs)))
        command = [a.replace("RUNS", str(args.runs)).replace("TEXT", str(args.text)) for a in arguments]
        if not finished(run):
            if command[0] in ("standard", "markov") and (run / "checkpoint.pt").exists():
                command = [command[0], "--out", str(run), "--resume"]  # the run's own config (and text)
            elif command[0] == "train" and run.exists():
                command = ["train", "--out", str(run), "--resume"]
            elif command[0] == "lengths" and Path(command[command.index("--out") + 1]).exists():
                command = [*command, "--resume"]  # reuse the variants already trained there
            print("+ induction-bigram", shlex.join(command), flush=True)
            subprocess.run([sys.executable, "-m", "induction_bigram", *command], check=True)
        shown = "induction-bigram " + shlex.join(arguments).replace("RUNS", "runs").replace("TEXT", str(args.text))
        export_run(run, PACKAGE / name, command=shown)
        print(f"exported {run} -> {PACKAGE / name}")


if __name__ == "__main__":
    main()
