"""Where ``torch.compile`` pays for itself: compile time against the time it saves per step.

For each shape (batch 128, the model and task of ``--preset`` with d = T set to each width):
the wall time of the first two compiled steps (our forward compiles on its first call and
recompiles on its second), the median eager and compiled step after that, and the break-even:
how many steps a run needs before compiling saves more than it cost. ``train.compile = "auto"``
(:func:`induction_bigram.training.compile.compile_decision`) compiles when the run's work is past
the break-even this prints; rerun it to check that rule on another machine.

    python benchmarks/bench_compile.py [--widths 64,128,256] [--repeats 5] [--preset reference]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from common import cpu_model, machine, median_seconds

from induction_bigram import BigramStats, TriggerTask, build_model, preset
from induction_bigram.training.compile import training_work
from induction_bigram.training.fused import logits_loss
from induction_bigram.training.loop import make_optimizer, optimizer_step


def bench(name: str, width: int, repeats: int) -> dict:
    config = (
        preset(name)
        .with_vocab(65)
        .with_overrides(
            {
                "task.seq_len": width,
                "model.d_model": width,
                "model.n_ctx": width,
                "train.batch_size": 128,
                "train.micro_batch_size": None,
            }
        )
    )
    stats = BigramStats.default()
    task = TriggerTask(stats, config.task)
    row = {"width": width, "work_per_step": training_work(config) / config.train.steps}
    for mode in ("eager", "compiled"):
        torch._dynamo.reset()  # each width compiles from scratch, as a fresh run would
        model = build_model(config.model, "cpu", vocab=stats.vocab)
        optimizer = make_optimizer(model, config.train)
        generator = torch.Generator().manual_seed(0)
        forward = torch.compile(model) if mode == "compiled" else model

        def step() -> None:
            optimizer_step(logits_loss(forward), optimizer, task.sample(128, generator), config.train)

        began = time.perf_counter()
        step()
        step()
        row[f"{mode}_first_two"] = time.perf_counter() - began
        row[mode] = median_seconds(step, repeats, warmup=0)
    saved = row["eager"] - row["compiled"]
    cost = row["compiled_first_two"] - 2 * row["compiled"]
    row["compile_seconds"] = cost
    row["break_even_steps"] = cost / saved if saved > 0 else float("inf")
    row["break_even_work"] = row["break_even_steps"] * row["work_per_step"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,128,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--preset", default="reference")
    args = parser.parse_args()
    print(f"{cpu_model()}, {os.cpu_count()} cores, {machine()}, load {os.getloadavg()[0]:.2f}")
    print("d=T  eager s/step  compiled s/step  speed-up  compile s  break-even steps  break-even work")
    for width in [int(w) for w in args.widths.split(",")]:
        r = bench(args.preset, width, args.repeats)
        print(
            f"{width:>3}  {r['eager']:>12.4f}  {r['compiled']:>15.4f}  {r['eager'] / r['compiled']:>7.2f}x"
            f"  {r['compile_seconds']:>9.1f}  {r['break_even_steps']:>16.0f}  {r['break_even_work']:>15.3g}"
        )
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
