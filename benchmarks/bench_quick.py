"""Wall time of a whole ``quick`` run from the command line, and the accuracy it reaches.

Each run is ``python -m induction_bigram train --preset quick --set model.seed=S --set
train.seed=S`` in a fresh process (start-up, evaluations and checkpoints included), timed from
launch to exit, in a fresh folder. The variants are run interleaved, seed by seed:

- ``fused``: this checkout, as a user runs it (the fused training loss);
- ``forward``: this checkout with ``--set train.fused_loss=false`` (the model's forward);
- ``REV`` (``--baseline REV``, repeatable): the package as it was at git revision REV, from a
  temporary worktree of this repository, run by the same interpreter.

For each it prints the median wall time, each run's final in-context accuracy (the mean with a
t interval over seeds), and the ratio of each variant's median to ``fused``'s.

    python benchmarks/bench_quick.py [--seeds 3] [--baseline 8342038] [--threads 2] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import cpu_model

from induction_bigram.intervals import mean_interval

REPO = Path(__file__).resolve().parents[1]


def run_once(source: Path, out: Path, seed: int, extra: list[str], threads: int) -> tuple[float, float]:
    """Wall seconds of one quick run of the package in ``source``, and its final accuracy."""
    command = [sys.executable, "-m", "induction_bigram", "train", "--preset", "quick", "--out", str(out)]
    command += ["--no-progress", "--set", f"model.seed={seed}", "--set", f"train.seed={seed}", *extra]
    env = {**os.environ, "PYTHONPATH": str(source), "OMP_NUM_THREADS": str(threads)}
    began = time.perf_counter()
    subprocess.run(command, cwd=source, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - began
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    return seconds, last["in_context_accuracy"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of each variant (default 3)")
    parser.add_argument("--baseline", action="append", default=[], help="also time the package at this git revision")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of each run (default 2)")
    parser.add_argument("--steps", type=int, default=None, help="train.steps of every run (default: the preset's)")
    args = parser.parse_args(argv)
    steps = [] if args.steps is None else ["--set", f"train.steps={args.steps}"]
    with tempfile.TemporaryDirectory() as scratch:
        variants: dict[str, tuple[Path, list[str]]] = {
            "fused": (REPO, steps),
            "forward": (REPO, [*steps, "--set", "train.fused_loss=false"]),
        }
        for rev in args.baseline:
            tree = Path(scratch) / f"tree-{rev}"
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            variants[rev] = (tree, steps)
        try:
            results = time_variants(variants, args.seeds, args.threads, Path(scratch))
        finally:
            for rev in args.baseline:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(Path(scratch) / f"tree-{rev}")],
                    check=False,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
    report(results, args)


def time_variants(variants, seeds: int, threads: int, scratch: Path) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for seed in range(seeds):
        for name, (source, extra) in variants.items():
            out = scratch / f"{name}-{seed}"
            results[name].append(run_once(source, out, seed, extra, threads))
            print(
                f"  seed {seed} {name:10s} {results[name][-1][0]:6.1f} s  accuracy {results[name][-1][1]:.4f}",
                file=sys.stderr,
                flush=True,
            )
    return results


def report(results: dict[str, list[tuple[float, float]]], args) -> None:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"{cpu_model()}, {os.cpu_count()} cores, {args.threads} threads per run, load {os.getloadavg()[0]:.2f}")
    print(f"quick from the command line, seeds 0..{args.seeds - 1}, this checkout at {head.stdout.strip()}")
    print(
        f"{'variant':10s} {'median s':>9s} {'min':>7s} {'max':>7s} {'accuracy mean [95% CI]':>28s} {'min acc':>8s} "
        f"{'fused is':>9s}"
    )
    fused = statistics.median(s for s, _ in results["fused"])
    for name, runs in results.items():
        seconds = [s for s, _ in runs]
        accuracy = [a for _, a in runs]
        interval = mean_interval(accuracy)
        median = statistics.median(seconds)
        print(
            f"{name:10s} {median:9.1f} {min(seconds):7.1f} {max(seconds):7.1f} "
            f"{interval.mean:10.4f} [{interval.low:.4f}, {interval.high:.4f}] {min(accuracy):8.4f} "
            f"{median / fused:8.2f}x"
        )


if __name__ == "__main__":
    main()
