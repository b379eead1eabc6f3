"""The general induction head against width d and training steps: a figure and a JSON.

For each width d, trains the ``general`` preset (random triggers) with ``model.d_model = d`` in
stages (``train --resume`` to each step count in turn: on CPU bitwise the run that was never
stopped) and scores the checkpoint after each stage with
:func:`induction_bigram.incontext.repeated.repeated_sequence_report`. Every stage's scores are appended to
``OUT/d{d}/repeated_stages.jsonl`` as they come, so an interrupted sweep continues where it
stopped, and a run folder already trained past a stage is not retrained.

Writes ``OUT/general_curve.json`` (every stage of every width, with the thresholds) and
``OUT/general_curve.png`` (previous-token attention, min and mean induction attention and the
repeated-half accuracy against steps, one line per d, the acceptance thresholds dashed).

    OMP_NUM_THREADS=1 python scripts/general_curve.py --out /work/runs/general_curve \\
        --d 64 128 256 --stages 1000 2500 5000 [--set task.n_triggers=40 ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from induction_bigram import preset, train
from induction_bigram.incontext.repeated import (
    INDUCTION_THRESHOLD,
    LOSS_RATIO_THRESHOLD,
    PREVIOUS_TOKEN_THRESHOLD,
    repeated_sequence_report,
)
from induction_bigram.training.checkpoint import load_checkpoint

STAGES_FILE = "repeated_stages.jsonl"


def _read_stages(run_dir: Path) -> dict[int, dict]:
    path = run_dir / STAGES_FILE
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row["step"]: row for row in rows}


def sweep_width(d: int, stages: list[int], out: Path, base: str, overrides: list[str]) -> list[dict]:
    """Train (or continue) the run for width d through ``stages``; the scores after each."""
    run_dir = out / f"d{d}"
    run_dir.mkdir(parents=True, exist_ok=True)
    done = _read_stages(run_dir)
    config = preset(base).with_overrides([*overrides, f"model.d_model={d}"])
    for steps in stages:
        if steps in done:
            continue
        stage_config = config.with_overrides({"train.steps": steps})
        exists = (run_dir / "checkpoint.pt").exists()
        if exists and load_checkpoint(run_dir, device="cpu").step > steps:
            print(f"d={d}: {run_dir} is already past {steps} steps; skipping that stage")
            continue
        result = train(stage_config, run_dir, resume=exists, progress=False)
        report = repeated_sequence_report(result.model)
        row = {
            "d_model": d,
            "step": steps,
            "train_seconds": result.final["elapsed_seconds"],
            "in_context_accuracy": result.final["in_context_accuracy"],
            **report.to_dict(),
        }
        with open(run_dir / STAGES_FILE, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        done[steps] = row
        print(
            f"d={d} steps={steps}: {report.previous_token_attention:.3f} / "
            f"{report.induction_attention_min:.3f} (mean {report.induction_attention_mean:.3f}) / "
            f"loss ratio {report.loss_ratio:.3f}",
            flush=True,
        )
    return [done[s] for s in sorted(done)]


def plot(rows_by_d: dict[int, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("previous_token_attention", "layer-1 previous-token attention", PREVIOUS_TOKEN_THRESHOLD),
        ("induction_attention_min", "layer-2 induction attention, min over positions", INDUCTION_THRESHOLD),
        ("induction_attention_mean", "layer-2 induction attention, mean", None),
        ("repeated_half_accuracy", "top-1 accuracy on the repeated half", None),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), constrained_layout=True)
    for ax, (key, title, threshold) in zip(axes, panels):
        for d, rows in sorted(rows_by_d.items()):
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], marker="o", label=f"d = {d}")
        if threshold is not None:
            ax.axhline(threshold, color="grey", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training steps")
        ax.set_ylim(0, 1.02)
    axes[0].legend(fontsize=8)
    fig.suptitle("general induction head on repeated random sequences (30 distinct tokens x 2)", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--d", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--stages", type=int, nargs="+", default=[1000, 2500, 5000])
    parser.add_argument("--preset", default="general")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    overrides = [*args.overrides, "train.device=cpu"]
    rows_by_d = {d: sweep_width(d, sorted(args.stages), args.out, args.preset, overrides) for d in args.d}
    summary = {
        "preset": args.preset,
        "overrides": overrides,
        "thresholds": {
            "previous_token_attention": PREVIOUS_TOKEN_THRESHOLD,
            "induction_attention_min": INDUCTION_THRESHOLD,
            "loss_ratio": LOSS_RATIO_THRESHOLD,
        },
        "runs": {str(d): rows for d, rows in rows_by_d.items()},
    }
    (args.out / "general_curve.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(rows_by_d, args.out / "general_curve.png")
    print(f"wrote {args.out / 'general_curve.json'} and {args.out / 'general_curve.png'}")


if __name__ == "__main__":
    main()
