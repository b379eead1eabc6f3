"""How long the command line and the package take to start, each in a fresh interpreter.

Issue 31's targets: ``induction-bigram --help`` and a usage error in under 1.5 s on 2 cores;
``import induction_bigram`` no slower than ``import transformer_lens`` + 0.5 s. Each row is the
median wall time (launch to exit) over ``--repeats`` fresh ``python`` processes, run from the
repository root with this interpreter; the rows are interleaved, repeat by repeat, so that a
change of load falls on all of them alike. ``from induction_bigram import *`` loads every public
name (torch and TransformerLens included): what a script that uses the package pays; "TL's
model class" is ``from transformer_lens import TransformerBridge`` (``HookedTransformer`` on TL 3).

    python benchmarks/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import cpu_model

REPO = Path(__file__).resolve().parents[1]
# TL 4's ``import transformer_lens`` leaves TransformerBridge (its model_bridge package) to first
# use, so a TL 4 user with a model pays more than that line: the row beside it is what they pay
TL_MAJOR = int(importlib.metadata.version("transformer-lens").split(".")[0])
MODEL_CLASS = "TransformerBridge" if TL_MAJOR >= 4 else "HookedTransformer"

ROWS = {
    "python -c pass": ["-c", "pass"],
    "induction-bigram --help": ["-m", "induction_bigram", "--help"],
    "induction-bigram train (usage error)": ["-m", "induction_bigram", "train"],
    "import induction_bigram": ["-c", "import induction_bigram"],
    "from induction_bigram import *": ["-c", "from induction_bigram import *"],
    "import transformer_lens": ["-c", "import transformer_lens"],
    "TL's model class": ["-c", f"from transformer_lens import {MODEL_CLASS}"],
    "import torch": ["-c", "import torch"],
}


def seconds(argv: list[str]) -> float:
    """Wall time of one fresh ``python argv``; a non-zero exit other than a usage error's 2 fails."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True)
    took = time.perf_counter() - began
    if done.returncode not in (0, 2):
        raise SystemExit(f"python {' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
    return took


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per row (default 5)")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    for _ in range(args.repeats):
        for name, command in ROWS.items():
            times[name].append(seconds(command))
    print(
        f"python {platform.python_version()}, transformer-lens {importlib.metadata.version('transformer-lens')}, "
        f"{cpu_model()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load {os.getloadavg()[0]:.2f} (1 min, after), median of {args.repeats} fresh interpreters"
    )
    print(f"{'what':<40} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, values in times.items():
        print(f"{name:<40} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f}")


if __name__ == "__main__":
    main()
